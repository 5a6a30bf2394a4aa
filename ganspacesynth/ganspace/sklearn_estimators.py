"""The scikit-learn estimators behind the GANSpace estimator protocol (protocol.py): none of them checkpoints
or runs across processes.

- `ipca`: IncrementalPCA, the original GANSpaceSynth estimator (batches of ≥ n_components rows).
- `pca`, `randomized`, `ica`, `spca`: PCA (full / randomized SVD), FastICA, SparsePCA. These keep every sample
  in memory (count × dim × 4 bytes) and fit once at the end.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from .protocol import Decomposition, Estimator, as_numpy, decomposition

#: The estimators InMemoryEstimator runs.
IN_MEMORY = ("pca", "randomized", "ica", "spca")


class IncrementalEstimator(Estimator):
    """scikit-learn IncrementalPCA, as the original GANSpaceSynth: rows are buffered into chunks of
    `chunk_size` (≥ n_components, as partial_fit requires) and fitted chunk by chunk."""

    name = "ipca"
    streaming = True

    def __init__(self, n_components: int, chunk_size: int | None = None):
        from sklearn.decomposition import IncrementalPCA

        self.n_components = n_components
        self.chunk_size = max(chunk_size or n_components, n_components)
        self.model = IncrementalPCA(n_components=n_components)
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self.count = 0

    @classmethod
    def create(cls, name: str, n_components: int, *, chunk_size: int | None = None, **_):
        return cls(n_components, chunk_size)

    def fit_partial(self, x) -> None:
        x = as_numpy(x).reshape(len(x), -1)
        self._buffer.append(x)
        self._buffered += len(x)
        self.count += len(x)
        # Keep at least one chunk buffered so the final remainder can join it (partial_fit needs ≥ K rows).
        while self._buffered >= 2 * self.chunk_size:
            data = np.concatenate(self._buffer)
            self.model.partial_fit(data[:self.chunk_size])
            self._buffer, self._buffered = [data[self.chunk_size:]], len(data) - self.chunk_size

    def components(self) -> Decomposition:
        if self._buffered:
            data = np.concatenate(self._buffer)
            if len(data) < self.n_components:
                raise UserError(f"ipca needs at least {self.n_components} samples (the component count), got {self.count}")
            self.model.partial_fit(data)
            self._buffer, self._buffered = [], 0
        m = self.model
        total = m.explained_variance_[0] / m.explained_variance_ratio_[0] if m.explained_variance_ratio_[0] > 0 else 1.0
        return decomposition(m.components_, m.explained_variance_, total, m.mean_, m.n_samples_seen_)


class InMemoryEstimator(Estimator):
    """scikit-learn estimators that need all samples at once: `pca`, `randomized`, `ica`, `spca`."""

    streaming = False

    def __init__(self, name: str, n_components: int, seed: int = 0, sparsity: float = 1.0):
        if name not in IN_MEMORY:
            raise UserError(f"unknown estimator {name!r}")
        self.name = name
        self.n_components = n_components
        self.seed = seed
        self.sparsity = sparsity
        self._rows: list[np.ndarray] = []

    @classmethod
    def create(cls, name: str, n_components: int, *, seed: int = 0, sparsity: float = 1.0, **_):
        return cls(name, n_components, seed=seed, sparsity=sparsity)

    def fit_partial(self, x) -> None:
        self._rows.append(as_numpy(x).reshape(len(x), -1))

    def components(self) -> Decomposition:
        from sklearn.decomposition import PCA, FastICA, SparsePCA

        x = np.concatenate(self._rows)
        n, dim = x.shape
        k = self.n_components
        if k > min(n, dim):
            raise UserError(f"{self.name} needs at least {k} samples for {k} components, got {n}")
        if self.name in ("pca", "randomized"):
            solver = "full" if self.name == "pca" else "randomized"
            m = PCA(n_components=k, svd_solver=solver, random_state=self.seed).fit(x)
            return decomposition(m.components_, m.explained_variance_, np.var(x, axis=0, ddof=1).sum(), m.mean_, n)
        mean = x.mean(0)
        if self.name == "ica":
            m = FastICA(n_components=k, whiten="unit-variance", random_state=self.seed, max_iter=1000).fit(x)
            directions = m.mixing_.T  # [K, D]: the activation-space direction each independent source moves along
        else:
            m = SparsePCA(n_components=k, alpha=self.sparsity, random_state=self.seed).fit(x)
            directions = m.components_
        unit = directions / np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-30)
        # Non-orthogonal bases: report the variance of the data projected on each direction.
        variances = np.var((x - mean) @ unit.T, axis=0, ddof=1)
        return decomposition(unit, variances, np.var(x, axis=0, ddof=1).sum(), mean, n)
