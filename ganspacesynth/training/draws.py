"""Randomness from counters: every draw of step s comes from (seed, purpose, s) and the real rows from per-epoch
permutations, never from a global RNG, so a resumed run and an R-process run repeat a straight run."""

from __future__ import annotations

import functools

import numpy as np
import torch

#: The `purpose` of each stream (the second element of a `seeded` key); one per consumer, never shared.
GAN_STEP, REAL_ROWS, FIXED_SAMPLES, RECONSTRUCTION_STEP, PRIOR_STEP = 0, 1, 2, 3, 4


def seeded(*key: int) -> torch.Generator:
    """A CPU generator whose stream depends only on `key` (e.g. (seed, purpose, step))."""
    g = torch.Generator()
    g.manual_seed(int(np.random.SeedSequence([int(k) for k in key]).generate_state(1)[0]))
    return g


@functools.lru_cache(maxsize=4)
def _epoch_permutation(seed: int, epoch: int, n: int) -> torch.Tensor:
    return torch.randperm(n, generator=seeded(seed, REAL_ROWS, epoch))


def real_rows(seed: int, start: int, count: int, n: int) -> torch.Tensor:
    """Rows for real-image positions start..start+count-1: epoch after epoch of a fresh permutation."""
    pos = torch.arange(start, start + count)
    out = torch.empty(count, dtype=torch.long)
    for epoch in torch.unique(pos // n).tolist():
        mask = (pos // n) == epoch
        out[mask] = _epoch_permutation(seed, epoch, n)[pos[mask] % n]
    return out
