"""How many intra-op threads a CPU training run uses, chosen by timing its own steps.

On a machine of its own, two threads on two cores are faster than one (about 1.6× per step at the last
stages of the `cpu` preset). When another process takes a core, OpenMP's threads wait at every barrier for
a partner that is not running: the same two-thread step was measured ~30× slower than a one-thread step.
Neither choice is right everywhere and the machine changes under a run, so `ThreadTuner` times a few real
training steps at each candidate count whenever a stage starts (and again every `retune_seconds`) and keeps
the fastest. The trial steps are ordinary training steps: nothing is thrown away.

A fixed count (`--threads N`) skips the trials. Thread count changes the order of floating-point sums in
the backward pass, so `--resume` repeats a straight run bit for bit only with a fixed count.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import torch


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, e.g. under taskset or a container's cpuset)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return max(os.cpu_count() or 1, 1)


def wait_policy() -> str:
    """OpenMP's wait policy in force (read by the runtime when torch loads)."""
    policy = os.environ.get("OMP_WAIT_POLICY", "").strip().upper()
    spin = os.environ.get("GOMP_SPINCOUNT")
    text = policy or "default (spin, then sleep)"
    return f"{text}, GOMP_SPINCOUNT={spin}" if spin else text


@dataclass
class ThreadTuner:
    """Chooses between `candidates` thread counts by the mean time of `trial_steps` steps at each
    (after one warm-up step, which pays for oneDNN's kernel choice at the new size)."""

    candidates: tuple[int, ...]
    trial_steps: int = 3
    retune_seconds: float = 300.0
    chosen: int = field(init=False)
    _queue: list[int] = field(init=False, default_factory=list)  # thread counts of the trial steps still to run
    _times: dict[int, list[float]] = field(init=False, default_factory=dict)
    _current: int = field(init=False, default=0)
    _last_tuned: float = field(init=False, default=0.0)
    _key: object = field(init=False, default=None)

    def __post_init__(self):
        self.candidates = tuple(dict.fromkeys(int(c) for c in self.candidates if int(c) >= 1)) or (1,)
        self.chosen = self.candidates[0]

    @property
    def tuning(self) -> bool:
        return len(self.candidates) > 1

    def before_step(self, key: object) -> int:
        """Set the thread count for the next step; `key` (e.g. the stage) changing starts a new trial."""
        if self.tuning and not self._queue and (key != self._key or time.monotonic() - self._last_tuned > self.retune_seconds):
            self._key = key
            self._times = {c: [] for c in self.candidates}
            self._queue = [c for c in self.candidates for _ in range(self.trial_steps + 1)]
        self._current = self._queue[0] if self._queue else self.chosen
        if torch.get_num_threads() != self._current:
            torch.set_num_threads(self._current)
        return self._current

    def after_step(self, seconds: float) -> str | None:
        """Record the step's time; returns a message when a trial has just chosen a count."""
        if not self._queue:
            return None
        self._times[self._queue.pop(0)].append(seconds)
        if self._queue:
            return None
        # The first step at each count warms up (new kernels, caches); the rest are timed.
        means = {c: sum(t[1:]) / max(len(t) - 1, 1) for c, t in self._times.items()}
        self.chosen = min(means, key=means.get)
        self._last_tuned = time.monotonic()
        if torch.get_num_threads() != self.chosen:
            torch.set_num_threads(self.chosen)
        timed = ", ".join(f"{c} thread{'s' if c > 1 else ''} {means[c] * 1000:.0f} ms" for c in self.candidates)
        return f"threads: {self.chosen} ({timed} per step)"


def omp_num_threads() -> int | None:
    """OMP_NUM_THREADS when it is set to a positive whole number (the user's choice wins over tuning)."""
    try:
        value = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return value if value >= 1 else None


def make_tuner(device_type: str, threads: int | None) -> ThreadTuner:
    """`threads` None: OMP_NUM_THREADS if set; else on a CPU, every usable core timed against one thread;
    elsewhere torch's count."""
    threads = threads if threads is not None else omp_num_threads()
    if threads is not None:
        return ThreadTuner((int(threads),))
    if device_type != "cpu":
        return ThreadTuner((torch.get_num_threads(),))
    cores = usable_cores()
    return ThreadTuner((cores, 1) if cores > 1 else (1,))
