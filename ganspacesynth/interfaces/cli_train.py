"""`ganspacesynth train`: progressive GANSynth training on a dataset folder."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import click

from ..choices import PRECISION_NAMES, PRESET_NAMES
from ..errors import UserError
from .options import check_device_option


def _default_preset(data: Path | None) -> str:
    """The preset whose representation the dataset has: fast for 4 s (128 × 1024), cpu for 1 s at GANSynth's
    frequency resolution (32 × 1024), tiny for the 1 s test representation (128 × 256)."""
    if data is None:
        return "fast"
    from ..data.dataset import read_manifest
    from ..model.config import PRESETS

    shape = tuple(read_manifest(data)["spec_shape"][1:])
    for name in ("fast", "cpu", "tiny"):
        if PRESETS[name].output_shape == shape:
            return name
    raise UserError(f"no preset makes {shape[0]}x{shape[1]} spectrograms; pass --preset and --set to match")


@click.command("train")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Dataset folder (from `ganspacesynth dataset make/soundfont`). With --resume: the run's dataset.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Run folder to create (or continue).")
@click.option("--preset", "preset_name", type=click.Choice(PRESET_NAMES), default=None,
              help="Architecture and hyper-parameters [default: fast for 4 s datasets, cpu for 1 s (128x256) ones].")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Override a hyper-parameter (Magenta's names), e.g. --set total_num_images=2e6. Repeatable.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="JSON of settings: a run's config.json or Magenta's experiment.json.")
@click.option("--conditions", default="pitch", show_default=True,
              help="Comma-separated labels to condition on, e.g. pitch,instrument_family,qualities.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its newest checkpoint.")
@click.option("--init-from", type=click.Path(path_type=Path), default=None,
              help="Start a new run from a model file's generator, or from a run folder's newest checkpoint "
                   "(generator and whatever else both runs have, e.g. the latent codes). Same preset and conditions.")
@click.option("--device", default=None, callback=check_device_option,
              help="torch device: cpu, cuda or cuda:N (default: cuda if available; torchrun: this rank's GPU).")
@click.option("--precision", type=click.Choice(PRECISION_NAMES), default="auto", show_default=True,
              help="auto: bfloat16 autocast on CUDA and on CPUs with native bfloat16 (AMX or AVX512-BF16), "
                   "float32 on other CPUs (which emulate bfloat16 several times slower).")
@click.option("--threads", default="auto", show_default=True, metavar="auto|N",
              help="CPU threads. auto: every usable core, timed against one thread at each stage and every 5 "
                   "minutes, keeping the faster (another busy process makes one thread win). A fixed N makes "
                   "--resume repeat a straight run bit for bit.")
@click.option("--nproc", type=click.IntRange(1, 1024), default=1, show_default=True,
              help="Processes on this machine (one per GPU, or CPU processes), as torchrun --standalone starts "
                   "them; Ctrl-C stops them all with a checkpoint. Several machines: torchrun.")
@click.option("--compile", "use_compile", is_flag=True, help="torch.compile the generator's layers.")
@click.option("--max-steps", type=int, default=None, help="Stop (checkpoint and export) after this many steps.")
@click.option("--no-progress", is_flag=True, help="No progress bar (logs still go to stats.jsonl).")
@click.option("--no-tensorboard", is_flag=True, help="Do not write TensorBoard logs.")
@click.option("--dry-run", is_flag=True, help="Print the resolved configuration as JSON and exit.")
def train_cmd(data, out, preset_name, settings, config_file, conditions, resume, init_from, device, precision, threads,
              nproc, use_compile, max_steps, no_progress, no_tensorboard, dry_run) -> None:
    """Train a GANSynth model: progressive WGAN-GP with auxiliary classifiers (objective gan), reconstruction
    from learned latent codes (glo), or both (glo+gan); EMA generator.

    The run folder gets config.json, stats.jsonl, tensorboard/, checkpoints/ (written atomically every
    checkpoint_every_seconds and on Ctrl-C/SIGTERM) and model.safetensors (EMA generator), which any
    --model option accepts as the run folder itself. Several GPUs or CPU processes: --nproc N; several machines:
    start it with torchrun.

    \b
    Examples:
      ganspacesynth train --data data/gm --out runs/gm --preset fast --conditions pitch,instrument_family
      ganspacesynth train --data data/gm --out runs/gm --preset fast --set train_time_limit=none --dry-run
      ganspacesynth train --out runs/gm --resume
      ganspacesynth train --data data/gm --out runs/sharp --preset cpu --init-from runs/gm --set objective=glo+gan
      ganspacesynth train --nproc 8 --data data/gm --out runs/gm
    """
    from ..training.config import parse_overrides, resolve_config
    from ..training.loop import RunOptions, read_run_config, train

    overrides = parse_overrides(settings)
    thread_count = _parse_threads(threads)
    names = [c.strip() for c in conditions.split(",") if c.strip()]
    if out is not None and (resume or not dry_run):
        _check_run_folder(out, resume)  # before reading the data: a file, another folder's files, read-only, …
    if resume:
        if out is None:
            raise UserError("--resume needs --out RUN")
        if preset_name or config_file:
            raise UserError("a resumed run keeps its configuration: drop --preset/--config")
        _, saved = read_run_config(out)
        data = data or Path(saved.get("data", ""))
        config = None
    else:
        preset_name = preset_name or _default_preset(data)
        config = resolve_config(preset_name, overrides, config_file)
    if dry_run:
        if resume:
            resolved, _ = read_run_config(out)
            click.echo(json.dumps(resolved.to_dict(), indent=2))
            return
        resolved = config.to_dict()
        if data is not None:
            from ..training.data import TrainingData

            specs = TrainingData.from_folder(data, names, device="cpu", preload=False).condition_specs(names)
            resolved["model"] = config.model.replace(conditions=specs).to_dict()
        resolved["model"]["conditions"] = [
            {**c, "classes": c["classes"][:4] + (["…"] if len(c["classes"]) > 4 else [])}
            for c in resolved["model"]["conditions"]]
        click.echo(json.dumps(resolved, indent=2))
        return
    if data is None or out is None:
        raise UserError("train needs --data DATASET and --out RUN (or --dry-run)")

    from ..training import distributed, launch
    from ..training.data import TrainingData

    if nproc > 1 and not launch.is_worker():
        from .cli import ARGV_KEY

        _check_processes(data, names if not resume else _run_conditions(out), config, out, nproc)
        raise SystemExit(launch.run_processes(nproc, click.get_current_context().meta[ARGV_KEY]))
    info = distributed.setup(device)
    run_train = (read_run_config(out)[0] if resume else config).train
    code_label = run_train.reconstruction.latent_code_label if run_train.reconstruction else ""
    extra = [code_label] if code_label else []
    training_data = TrainingData.from_folder(data, names if not resume else _run_conditions(out), device=info.device,
                                             extra_labels=extra)
    options = RunOptions(device=device, precision=precision, threads=thread_count, compile=use_compile,
                         progress=not no_progress,
                         tensorboard=not no_tensorboard, max_steps=max_steps)
    result = train(out, training_data, config, names, resume=resume, overrides=overrides if resume else None,
                   options=options, init_from=init_from)
    if os.environ.get("RANK", "0") != "0":
        return
    p = result.position
    state = "finished" if result.finished else ("interrupted" if result.interrupted else "stopped")
    click.echo(f"{state} at step {p.step}, {p.images} images, {p.seconds:.0f} s of training; "
               f"model: {out / 'model.safetensors'}")
    if result.interrupted:
        raise SystemExit(130 if result.stop_signal == signal.SIGINT else 143)


def _check_processes(data: Path, names: list[str], config, out: Path, nproc: int) -> None:
    """What every one of `nproc` processes would refuse, refused once before starting them: the dataset and its
    conditions, a batch size the processes cannot share."""
    from ..training.data import TrainingData
    from ..training.loop import read_run_config

    TrainingData.from_folder(data, names, device="cpu", preload=False)
    schedule = (config or read_run_config(out)[0]).train.batch_size_schedule
    for batch in schedule:
        if batch % nproc:
            raise UserError(f"batch size {batch} is not divisible by {nproc} processes (batch_size_schedule "
                            f"{list(schedule)} is the global batch)")


def _parse_threads(text: str) -> int | None:
    if text.strip().lower() == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 1024:
        raise UserError(f"--threads must be auto or a whole number from 1 to 1024, not {text!r}")
    return value


def _check_run_folder(out: Path, resume: bool) -> None:
    """The run folder --out names, checked before any work with the message that fits what is there: a new run
    needs a missing or empty folder (a run already there: --resume; anything else: another folder, never
    --resume), and --resume needs a run."""
    from ..fileio import check_not_in_package, check_output_parent
    from ..training.loop import CONFIG_FILE

    check_not_in_package(out)
    check_output_parent(out)
    if not (out.exists() or out.is_symlink()):
        if resume:
            raise UserError(f"{out} is not a training run: it does not exist (drop --resume to start one there)")
        return
    if not out.is_dir():
        raise UserError(f"{out} is a file, not a folder; give --out a folder for the run")
    try:
        entries = sorted(p.name for p in out.iterdir())
    except OSError as exc:
        raise UserError(f"cannot read {out}: {exc.strerror or exc}") from None
    is_run = CONFIG_FILE in entries
    if resume and not is_run:
        others = f" (it holds {', '.join(entries[:3])}{' …' if len(entries) > 3 else ''})" if entries else ""
        raise UserError(f"{out} is not a training run: it has no {CONFIG_FILE}{others}; give --out the run's "
                        f"folder" + ("" if entries else ", or drop --resume to start one there"))
    if not resume and entries:
        if is_run:
            raise UserError(f"{out} already holds a run: add --resume to continue it, or choose another --out")
        raise UserError(f"{out} already holds other files ({', '.join(entries[:3])}"
                        f"{' …' if len(entries) > 3 else ''}), not a training run; give --out a new or empty folder")


def _run_conditions(run: Path) -> list[str]:
    from ..training.loop import read_run_config

    config, _ = read_run_config(run)
    return [c.name for c in config.model.conditions]


def register(group: click.Group) -> None:
    group.add_command(train_cmd)
