"""Sample-quality metrics on classifier outputs and spectrograms: FID, Inception Score, NDB, accuracy, entropy.

As in the GANSynth paper (Engel et al. 2019, section 4.1): FID and IS use a pitch classifier trained on the
data instead of an image Inception network; NDB (Richardson & Weiss 2018) clusters real spectrograms with
k-means and counts the clusters whose share of generated notes differs significantly from the real share.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.stats


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64) of feature rows `[N, D]`."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need at least 2 feature rows [N, D], got {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2(Σ1Σ2)^½), the Fréchet distance between two Gaussians (Heusel et al. 2017).

    Tr((Σ1Σ2)^½) is computed as Σ√λ over the eigenvalues of the symmetric Σ1^½ Σ2 Σ1^½ (the same eigenvalues
    as Σ1Σ2): two symmetric eigendecompositions instead of scipy's general sqrtm, which is exact for covariance
    matrices, never turns complex, and takes milliseconds instead of seconds at 128 dimensions.
    """
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    w, v = np.linalg.eigh(np.asarray(sigma1, np.float64))
    root1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    middle = root1 @ np.asarray(sigma2, np.float64) @ root1
    lam = np.linalg.eigvalsh((middle + middle.T) / 2.0)
    trace_covmean = np.sqrt(np.clip(lam, 0.0, None)).sum()
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_covmean
    return float(max(value, 0.0))


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between the Gaussian fits of two feature sets."""
    return frechet_distance(*gaussian_stats(features_a), *gaussian_stats(features_b))


def inception_score(probs: np.ndarray, splits: int = 1) -> float:
    """exp(E_x KL(p(y|x) ‖ p(y))) over class probabilities `[N, K]` (mean over `splits` equal parts)."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(0, keepdims=True)
        kl = (part * (np.log(part) - np.log(marginal))).sum(1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores))


def mean_entropy(probs: np.ndarray) -> float:
    """Mean per-note entropy (nats) of class probabilities `[N, K]`: GANSynth's pitch entropy (lower is surer)."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)
    return float(-(p * np.log(p)).sum(1).mean())


def accuracy(predicted: np.ndarray, target: np.ndarray) -> float:
    """Fraction of predictions equal to the target, ignoring targets < 0 (unknown); NaN when none is known."""
    predicted, target = np.asarray(predicted), np.asarray(target)
    known = target >= 0
    return float(np.mean(predicted[known] == target[known])) if known.any() else float("nan")


# -- NDB -------------------------------------------------------------------------------------------
def pooled_logmag(specs, size: tuple[int, int] = (16, 64)) -> np.ndarray:
    """Normalised log-magnitude channel of spectrograms `[B, 2, T, F]` average-pooled to `size`, flattened.

    The space NDB clusters in: k-means on 262,144-value spectrograms would be slow and dominated by noise.
    """
    import torch

    x = torch.as_tensor(np.asarray(specs[:, :1], dtype=np.float32))
    return torch.nn.functional.adaptive_avg_pool2d(x, size).reshape(len(x), -1).numpy()


@dataclass
class NDBResult:
    ndb: int  # number of statistically different bins
    bins: int
    js_divergence: float  # Jensen–Shannon divergence between the bin histograms (nats)
    reference_share: np.ndarray  # [bins]
    sample_share: np.ndarray  # [bins]
    different: np.ndarray  # [bins] bool

    @property
    def ndb_fraction(self) -> float:
        return self.ndb / self.bins

    def to_dict(self) -> dict:
        return {"ndb": self.ndb, "bins": self.bins, "ndb_fraction": self.ndb_fraction,
                "js_divergence": self.js_divergence}


class NDB:
    """Number of statistically different bins (Richardson & Weiss 2018).

    `NDB(reference_features, bins=50)` clusters the reference (training) notes with k-means;
    `score(samples)` assigns other notes to the nearest centre and runs a two-proportion z-test per bin.
    """

    def __init__(self, reference: np.ndarray, bins: int = 50, alpha: float = 0.05, seed: int = 0):
        from sklearn.cluster import KMeans

        reference = np.asarray(reference, dtype=np.float32)
        self.bins = int(min(bins, len(reference)))
        if self.bins < 2:
            raise ValueError("NDB needs at least 2 reference notes")
        self.alpha = alpha
        self.kmeans = KMeans(n_clusters=self.bins, n_init=3, random_state=seed).fit(reference)
        self.reference_counts = np.bincount(self.kmeans.labels_, minlength=self.bins)
        self.reference_count = len(reference)

    def score(self, samples: np.ndarray) -> NDBResult:
        labels = self.kmeans.predict(np.asarray(samples, dtype=np.float32))
        counts = np.bincount(labels, minlength=self.bins)
        n1, n2 = self.reference_count, len(labels)
        p1, p2 = self.reference_counts / n1, counts / n2
        pooled = (self.reference_counts + counts) / (n1 + n2)
        se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(se > 0, (p1 - p2) / se, 0.0)
        pvalue = 2.0 * scipy.stats.norm.sf(np.abs(z))
        different = pvalue < self.alpha
        m = 0.5 * (p1 + p2)

        def kl(p, q):
            nz = p > 0
            return float(np.sum(p[nz] * np.log(p[nz] / q[nz])))

        return NDBResult(int(different.sum()), self.bins, 0.5 * kl(p1, m) + 0.5 * kl(p2, m), p1, p2, different)


def log_spectral_distance(a: np.ndarray, b: np.ndarray, n_fft: int = 512, hop: int = 128,
                          floor_db: float = -100.0) -> float:
    """Log-spectral distance in dB between two waves: per frame, the RMS over frequency of the difference of
    their power spectra in dB (Hann window, powers floored at `floor_db`), averaged over frames."""
    import scipy.signal

    def power_db(x):
        _, _, z = scipy.signal.stft(np.asarray(x, np.float64), nperseg=n_fft, noverlap=n_fft - hop, boundary=None,
                                    padded=False)
        return np.maximum(10 * np.log10(np.abs(z) ** 2 + 1e-30), floor_db)

    n = min(len(a), len(b))
    da, db = power_db(a[:n]), power_db(b[:n])
    return float(np.mean(np.sqrt(np.mean((da - db) ** 2, axis=0))))


def grid_neighbour_distance(grid_dir) -> dict:
    """Mean log-spectral distance (dB) between horizontally and vertically neighbouring cells of a grid that
    `ganspacesynth grid` (or the demo) wrote: how much a step along each direction changes the sound."""
    import json
    from pathlib import Path

    from ..audio.io import read_audio

    grid_dir = Path(grid_dir)
    meta = json.loads((grid_dir / "grid.json").read_text(encoding="utf-8"))
    cells = {(f["x"], f["y"]): read_audio(grid_dir / f["file"])[0] for f in meta["files"]}
    values = meta["values"]
    along = {"x": [], "y": []}
    for i, x in enumerate(values):
        for j, y in enumerate(values):
            if i + 1 < len(values):
                along["x"].append(log_spectral_distance(cells[(x, y)], cells[(values[i + 1], y)]))
            if j + 1 < len(values):
                along["y"].append(log_spectral_distance(cells[(x, y)], cells[(x, values[j + 1])]))
    both = along["x"] + along["y"]
    return {"mean_db": float(np.mean(both)), "x_mean_db": float(np.mean(along["x"])),
            "y_mean_db": float(np.mean(along["y"])), "pairs": len(both)}
