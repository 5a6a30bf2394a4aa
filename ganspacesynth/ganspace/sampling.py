"""Seeded latent sampling and streamed layer activations for GANSpace.

Latent row i (drawn from the model's prior: N(0, I), or its learned codes, model/prior.py) depends only on
(seed, stream, i): rows come in fixed blocks of `BLOCK` rows, block b drawn from
`numpy.random.default_rng([seed, stream, b])`. Any batch size, any split across processes, gives the same
latents, and nothing larger than one batch (plus one block) is ever held in memory.

A sampler may centre its activations per condition (`centres`: one conditional mean per pitch, centring.py):
sample i then gives its activation minus the mean of its own pitch and conditions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch

from ..errors import UserError

#: Rows per random block. Part of the sampling definition: changing it changes every seeded latent.
BLOCK = 1024
#: Independent random streams: PCA samples and regression samples never share latents.
STREAM_PCA = 0
STREAM_REGRESSION = 1
#: The latents of the conditional means (centring.py): shared by every fit and every noz note.
STREAM_CENTRE = 2


def latent_rows(start: int, stop: int, latent, seed: int, stream: int = STREAM_PCA) -> np.ndarray:
    """Latents for sample indices [start, stop): float32 `[stop - start, latent_size]`. `latent`: the model's
    prior (`Synth.prior`, model/prior.py) or a latent size (N(0, I)); a block holds each row's `noise_size`
    standard-normal values, which the prior maps to its latent."""
    from ..model.prior import LatentPrior

    prior = latent if isinstance(latent, LatentPrior) else LatentPrior(int(latent))
    if stop <= start:
        return np.zeros((0, prior.latent_size), np.float32)
    out = np.empty((stop - start, prior.latent_size), np.float32)
    for block in range(start // BLOCK, (stop - 1) // BLOCK + 1):
        rng = np.random.default_rng([int(seed), int(stream), block])
        lo, hi = max(start, block * BLOCK), min(stop, (block + 1) * BLOCK)
        rows = rng.standard_normal((BLOCK, prior.noise_size), dtype=np.float32)[lo - block * BLOCK:hi - block * BLOCK]
        out[lo - start:hi - start] = prior.sample(rows)
    return out


def resolve_pitches(synth, pitches: int | str | Sequence[int] | None) -> list[int]:
    """`None`/an int → one pitch; "all" → every pitch of the model; a list stays a list (all validated)."""
    if "pitch" not in synth.conditions.names:
        if pitches not in (None, "all", [], ()):
            raise UserError("this model has no pitch condition; leave out --pitch")
        return []
    if pitches is None:
        pitches = [32 if 32 in synth.pitches else synth.pitches[len(synth.pitches) // 2]]
    elif isinstance(pitches, str):
        if pitches != "all":
            raise UserError(f"--pitches takes 'all' or comma-separated MIDI numbers, not {pitches!r}")
        pitches = list(synth.pitches)
    elif isinstance(pitches, (int, np.integer)):
        pitches = [int(pitches)]
    pitches = [int(p) for p in pitches]
    if not pitches:
        raise UserError("no pitches given")
    for p in pitches:
        synth.conditions.index("pitch", p)  # refuses out-of-range pitches before any work
    return pitches


@dataclass
class ActivationSampler:
    """Streams `(z, activations)` for sample index ranges of one layer at given pitches/conditions.

    Sample i is played at `pitches[i % len(pitches)]`, so the mix of pitches does not depend on batching either.
    `centres` (optional, `[max(1, len(pitches)), D]`): sample i's activation is returned minus
    `centres[i % len(pitches)]`, the conditional mean of its pitch (and the sampler's conditions).
    """

    synth: object
    layer: str
    pitches: list[int]
    seed: int = 0
    batch_size: int = 256
    conditions: Mapping[str, object] | None = None
    stream: int = STREAM_PCA
    centres: torch.Tensor | None = None

    def __post_init__(self):
        self.shape = tuple(self.synth.generator.layer_shape(self.layer))  # validates the name
        if self.batch_size < 1:
            raise UserError("--batch-size must be at least 1")
        if self.centres is not None:
            groups = max(1, len(self.pitches))
            if tuple(self.centres.shape) != (groups, self.dim):
                raise ValueError(f"centres must be [{groups}, {self.dim}], got {list(self.centres.shape)}")

    @property
    def dim(self) -> int:
        return int(np.prod(self.shape))

    def batch(self, start: int, stop: int) -> tuple[np.ndarray, torch.Tensor]:
        """Latents `[n, L]` (numpy) and flattened activations `[n, D]` (float32, on the synth's device)."""
        z = latent_rows(start, stop, self.synth.prior, self.seed, self.stream)
        pitch = [self.pitches[i % len(self.pitches)] for i in range(start, stop)] if self.pitches else None
        act = self.synth.activations(z, pitch, self.layer, self.conditions, batch_size=stop - start)
        act = act.reshape(stop - start, -1).float()
        if self.centres is not None:
            groups = torch.arange(start, stop, device=act.device) % self.centres.shape[0]
            act = act - self.centres.to(act.device)[groups]
        return z, act

    def iterate(self, start: int, stop: int, progress=None) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """Batches covering [start, stop); `progress` (a tqdm bar or None) is advanced by each batch size."""
        for lo in range(start, stop, self.batch_size):
            hi = min(stop, lo + self.batch_size)
            yield self.batch(lo, hi)
            if progress is not None:
                progress.update(hi - lo)
