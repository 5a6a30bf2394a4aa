"""Latent directions by regression, as GANSpace does: least squares from scaled PCA coordinates to z.

For fresh samples (z, x): coords = (x - mean) · compᵀ / stdev (one unit = one standard deviation along a
component). The regression z ≈ z_mean + coords · M gives row i of M as the change in z that moves the activation
one stdev along component i; GANSpace normalises these rows, so `z_comp` rows are unit vectors and a latent edit
z + c · z_comp[i] moves z by c prior standard deviations (for N(0, I); a model whose prior is its learned codes,
model/prior.py, samples z from those, and c is then a distance in the same latent units).

The normal equations are accumulated with the streamed covariance estimator over rows [coords | z], so the
regression is exact, streams in bounded memory and all-reduces across processes like the PCA itself.

When every component is kept (K = D) the components are a basis of the activations, and regressing z on the
coordinates is regressing z on x itself: the rows are then accumulated as [x | z] and mapped afterwards,
M = diag(stdev)·comp·M_x, which skips projecting every sample on all D components (for conv0 of mel_prog_hires
and 10,000 samples a 1.3 TFLOP product, ~9 s on two cores).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import UserError
from .estimators import CovarianceEstimator, Decomposition

#: GANSpace fits the latent regression on at least this many samples.
MIN_REGRESSION_SAMPLES = 10_000


@dataclass
class Regression:
    z_comp: np.ndarray  # [K, L] float32, unit rows (zero rows for components without variance)
    z_mean: np.ndarray  # [L] float32
    report: dict = field(default_factory=dict)


def orthonormality_error(comp: np.ndarray, max_components: int = 1024) -> tuple[float, int]:
    """max |C Cᵀ - I| over the first `max_components` rows (GANSpace's sanity check of the basis)."""
    c = torch.from_numpy(np.asarray(comp[:max_components], np.float64))
    gram = c @ c.T
    return float((gram - torch.eye(len(c), dtype=torch.float64)).abs().max()), len(c)


class RegressionAccumulator:
    """Streams (z, x) batches into the statistics of [coords | z] (or [x | z] when K = D); `solve()` returns
    the regression."""

    def __init__(self, dec: Decomposition, latent_size: int, device: str | torch.device = "cpu",
                 activation_space: bool | None = None):
        self.device = torch.device(device)
        self.k = dec.comp.shape[0]
        self.latent_size = latent_size
        self.comp = torch.from_numpy(dec.comp).to(self.device, torch.float32)
        self.mean = torch.from_numpy(dec.mean).to(self.device, torch.float32)
        stdev = torch.from_numpy(dec.stdev.astype(np.float64))
        # Components without variance (beyond the data's rank) get zero coordinates instead of 0/0.
        self.live = stdev > max(float(stdev.max()), 1e-30) * 1e-6
        inv = torch.where(self.live, 1.0 / stdev.clamp_min(1e-30), torch.zeros_like(stdev))
        self.inv_stdev = inv.to(self.device, torch.float32)
        self.stdev = stdev
        full = self.k == dec.comp.shape[1]  # all components: regress on x (see above)
        if activation_space and not full:
            raise ValueError("the regression runs in activation space only when every component is kept")
        self.in_activation_space = full if activation_space is None else bool(activation_space)
        # Sums about the PCA mean and zero (coordinates and latents are centred): the same on every process.
        width = dec.comp.shape[1] if self.in_activation_space else self.k
        shift = np.zeros(width + latent_size)
        if self.in_activation_space:
            shift[:width] = dec.mean
        self.stats = CovarianceEstimator(device=self.device, shift=shift)

    def update(self, z: np.ndarray, x: torch.Tensor) -> None:
        x = x.to(self.device, torch.float32)
        if self.in_activation_space:
            rows = x
        else:
            rows = ((x - self.mean) @ self.comp.T) * self.inv_stdev
        zt = torch.from_numpy(np.asarray(z, np.float32)).to(self.device)
        self.stats.fit_partial(torch.cat([rows, zt], dim=1))

    def solve(self) -> Regression:
        n = self.stats.count
        if n < 2:
            raise UserError("latent regression needs samples")
        k = self.k
        # A tiny ridge keeps the solve defined when some coordinates are constant (dead components).
        mean, cov = self.stats.covariance_upper(consume=True)  # as the sums keep them (sums.py)
        if isinstance(cov, np.ndarray):
            import scipy.linalg

            # The upper triangle as accumulated, straight to LAPACK (no symmetric copies of a D × D matrix).
            mean = torch.from_numpy(mean)
            a = np.array(cov[:k, :k], order="F")
            b = np.array(cov[:k, k:])
            zz_trace = float(np.trace(cov[k:, k:]))
            del cov
            a.flat[::k + 1] += 1e-9 * max(float(np.diagonal(a).mean()), 1e-30)
            factor = scipy.linalg.cho_factor(a, lower=False, overwrite_a=True, check_finite=False)
            m = scipy.linalg.cho_solve(factor, b, check_finite=False)  # [K, L] (per unit of x in activation space)
            resid_trace = zz_trace - float(np.sum(b * m))  # trace(zz − bᵀ·m)
            m = torch.from_numpy(m)
        else:
            cov = torch.triu(cov) + torch.triu(cov, diagonal=1).T
            a, b = cov[:k, :k], cov[:k, k:]
            ridge = 1e-9 * float(torch.diagonal(a).mean().clamp_min(1e-30))
            a = a + ridge * torch.eye(k, dtype=a.dtype, device=a.device)
            chol = torch.linalg.cholesky(a)
            m = torch.cholesky_solve(b, chol)
            zz_trace = float(torch.trace(cov[k:, k:]))
            resid_trace = zz_trace - float(torch.sum(b * m))
        r2 = 1.0 - resid_trace / max(zz_trace, 1e-30)
        if self.in_activation_space:
            # x − mean = Σᵢ coordᵢ·stdevᵢ·compᵢ, so one unit of coordinate i moves z by stdevᵢ·compᵢ·M_x.
            m = (self.comp.to(m.dtype) @ m) * self.stdev.to(m.device, m.dtype)[:, None]
            m[~self.live.to(m.device)] = 0.0
        m = m.cpu().numpy()
        norms = np.linalg.norm(m, axis=1, keepdims=True)
        z_comp = np.where(norms > 0, m / np.maximum(norms, 1e-30), 0.0).astype(np.float32)
        live = self.live.numpy()
        zc = z_comp[live][:1024].astype(np.float64)
        gram = zc @ zc.T
        off = gram - np.diag(np.diag(gram))
        report = {
            "samples": int(n),
            "r2": r2,
            "dead_components": int((~live).sum()),
            "z_comp_max_abs_cosine": float(np.abs(off).max()) if len(zc) > 1 else 0.0,
            "z_comp_raw_norms_first": [float(v) for v in norms[:8, 0]],
        }
        return Regression(z_comp=z_comp, z_mean=mean[k:].cpu().numpy().astype(np.float32), report=report)
