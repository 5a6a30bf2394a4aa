"""`ganspacesynth train --nproc N`: N processes of the same command on this machine, started by PyTorch's elastic
agent exactly as `torchrun --standalone --nproc-per-node N` starts them (same rendezvous, same environment:
training/distributed.py takes it from there), but ending like a one-process command.

torchrun's agent answers Ctrl-C (or SIGTERM) by passing the signal on to its processes, waiting for them (they
stop after the current step with a checkpoint and the model file, as one process does) and then raising its own
exception, whose traceback ends every interrupted torchrun. Here the agent's exceptions become exit statuses:
a signal is 128 + its number (Ctrl-C: 130, SIGTERM: 143), with rank 0's "interrupted at step …" line the only
report; a process that failed gives its own exit status (its error line already printed), one killed by a signal
one line. The agent's own log lines (the signals it sends, the failures it sees) are silenced.
"""

from __future__ import annotations

import logging
import os
from typing import Sequence

from ..errors import UserError

#: Seconds the agent waits after a signal for its processes' last checkpoint before it kills them (torchrun: 30 s,
#: too short for a slow step on CPU plus the checkpoint and the export). TORCH_ELASTIC_SHUTDOWN_TIMEOUT wins.
SHUTDOWN_SECONDS = 300


def is_worker() -> bool:
    """True in a process the elastic agent started (torchrun's or `run_processes`'): it sets TORCHELASTIC_RUN_ID."""
    return "TORCHELASTIC_RUN_ID" in os.environ


def run_processes(nproc: int, argv: Sequence[str]) -> int:
    """Run `python -m ganspacesynth.interfaces.cli *argv` in `nproc` processes and wait for them: the exit status."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    for name in list(logging.root.manager.loggerDict):  # torch sets each of its loggers' level explicitly
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    args = parse_args(["--standalone", "--nproc-per-node", str(nproc), "-m", "ganspacesynth.interfaces.cli"])
    args.training_script_args = list(argv)  # not through torchrun's parser, which would take `--nproc` for its own
    if getattr(args, "shutdown_timeout", 0) is None:  # a torchrun that has --shutdown-timeout (older ones: 30 s)
        text = os.environ.get("TORCH_ELASTIC_SHUTDOWN_TIMEOUT", str(SHUTDOWN_SECONDS))
        if not text.strip().isdigit():
            raise UserError(f"TORCH_ELASTIC_SHUTDOWN_TIMEOUT must be a whole number of seconds, not {text!r}")
        args.shutdown_timeout = int(text)
    try:
        run(args)
    except SignalException as exc:  # the processes got the signal and have ended (after their checkpoint)
        return 128 + int(exc.sigval)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        if failure.exitcode < 0:
            raise UserError(f"training process {rank} was killed by {failure.signal_name()}") from None
        return failure.exitcode
    return 0
