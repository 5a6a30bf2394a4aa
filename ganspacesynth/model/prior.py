"""Where random latents come from: GANSynth's N(0, I), or a mixture over a reconstruction run's learned codes.

A model trained with latent codes (`glo`, `glo+gan`: one code per instrument) reconstructs its instruments from
the codes, but N(0, I) draws fall between them and play the average note of their labels. With
`latent_prior: codes` the run stores its codes in the model file, and every random latent (`Synth.random_z`,
GANSpace's samples, hallucinations, the web page's random timbre) is a code plus N(0, spread² I) — as GLO
samples from a density fitted to its codes (Bojanowski et al. 2018); `glo+gan`'s critic then judges notes from
that same prior, so the notes users draw are the ones the critic sharpened.

Sampling is a fixed map of standard-normal noise, one row per latent: column 0 picks the code (through the
normal CDF, so each code is equally likely), the other columns are the offset. A row depends only on its own
noise, so seeded latents do not depend on batching (ganspace/sampling.py). A model without codes keeps N(0, I)
and draws exactly what it always drew.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UserError

#: The model file's tensor holding the codes and its `info` key holding the spread.
CENTRES_TENSOR = "prior.centres"
PRIOR_INFO_KEY = "latent_prior"
#: The most codes a prior holds (a code per note of a large dataset is not a prior anyone samples from).
MAX_CENTRES = 65536


def sample_mixture(centres: torch.Tensor, spread: float, noise: torch.Tensor) -> torch.Tensor:
    """Latents from standard-normal `noise` [N, 1 + L]: code ⌊Φ(noise₀)·K⌋ of `centres` [K, L] plus
    `spread` · noise₁..L. The one implementation training (on its live codes) and inference (on stored ones) use."""
    k = centres.shape[0]
    pick = (torch.special.ndtr(noise[:, 0].double()) * k).long().clamp_(0, k - 1)
    return centres.index_select(0, pick.to(centres.device)) + spread * noise[:, 1:].to(centres)


@dataclass(frozen=True)
class LatentPrior:
    """N(0, I) when `centres` is None; else a mixture of N(centre, spread² I) over `centres` [K, L]."""

    latent_size: int
    centres: np.ndarray | None = None
    spread: float = 0.0

    def __post_init__(self):
        if self.centres is None:
            return
        c = np.asarray(self.centres)
        if c.ndim != 2 or c.shape[1] != self.latent_size or not 1 <= c.shape[0] <= MAX_CENTRES:
            raise UserError(f"a latent prior needs 1 to {MAX_CENTRES} codes of size {self.latent_size}, "
                            f"got shape {list(c.shape)}")
        if not np.isfinite(c).all():
            raise UserError("the latent prior's codes are not all finite")
        if not (isinstance(self.spread, (int, float)) and math.isfinite(self.spread) and 0 <= self.spread <= 10):
            raise UserError(f"the latent prior's spread must be a number in [0, 10], not {self.spread!r}")
        object.__setattr__(self, "centres", np.ascontiguousarray(c, dtype=np.float32))

    @property
    def is_standard(self) -> bool:
        return self.centres is None

    @property
    def noise_size(self) -> int:
        """Standard-normal values one latent is made from."""
        return self.latent_size if self.is_standard else 1 + self.latent_size

    def sample(self, noise: np.ndarray) -> np.ndarray:
        """Latents float32 [N, latent_size] from standard-normal `noise` [N, noise_size]."""
        noise = np.asarray(noise, dtype=np.float32)
        if self.is_standard:
            return noise
        return sample_mixture(torch.from_numpy(self.centres), self.spread, torch.from_numpy(noise)).numpy()

    def draw(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """`count` latents from `rng` (row i from the rng's i-th block of `noise_size` values)."""
        return self.sample(rng.standard_normal((count, self.noise_size), dtype=np.float32))

    # -- the model file -----------------------------------------------------------------------------------------
    def to_file(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(tensors, info entries) a model file stores; nothing for N(0, I)."""
        if self.is_standard:
            return {}, {}
        return ({CENTRES_TENSOR: torch.from_numpy(self.centres)},
                {PRIOR_INFO_KEY: {"kind": "codes", "count": int(self.centres.shape[0]), "spread": float(self.spread)}})

    @classmethod
    def from_file(cls, latent_size: int, tensors: dict[str, torch.Tensor], info: dict, where: object) -> "LatentPrior":
        """The prior a model file stores (N(0, I) when it stores none); a damaged one is refused in one line."""
        entry = (info or {}).get(PRIOR_INFO_KEY)
        centres = tensors.get(CENTRES_TENSOR)
        if entry is None and centres is None:
            return cls(latent_size)
        if not isinstance(entry, dict) or entry.get("kind") != "codes" or centres is None:
            raise UserError(f"{where} has a damaged latent prior (info.{PRIOR_INFO_KEY} and the "
                            f"{CENTRES_TENSOR} tensor go together)")
        try:
            return cls(latent_size, centres.float().numpy(), entry.get("spread"))
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from None
