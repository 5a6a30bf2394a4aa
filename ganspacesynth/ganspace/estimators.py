"""PCA-like estimators behind one protocol: `fit_partial(x)` (streamed batches), `fit(x)`, `components()`.

- `cov` (default): exact PCA from streamed sufficient statistics (count, Σx, Σxxᵀ in float64) and one
  symmetric eigendecomposition on the estimator's device. Batch order, batch size and the number of processes
  do not change the result (up to float64 rounding); `reduce()` all-reduces the statistics across processes.
- `ipca`: scikit-learn IncrementalPCA, the original GANSpaceSynth estimator (batches of ≥ n_components rows).
- `pca`, `randomized`, `ica`, `spca`: scikit-learn PCA (full / randomized SVD), FastICA, SparsePCA. These keep
  every sample in memory (count × dim × 4 bytes) and fit once at the end.

`components()` returns `Decomposition`: unit-norm components sorted by decreasing variance, their standard
deviations, explained-variance ratios (of the total variance) and the global mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from ..errors import UserError

ESTIMATORS = ("cov", "ipca", "pca", "randomized", "ica", "spca")


@dataclass
class Decomposition:
    comp: np.ndarray       # [K, D] float32, unit rows, sorted by decreasing variance
    stdev: np.ndarray      # [K] float32
    var_ratio: np.ndarray  # [K] float32, fraction of the total variance
    mean: np.ndarray       # [D] float32
    count: int


class Estimator(Protocol):
    name: str
    streaming: bool  # True: memory independent of the sample count

    def fit_partial(self, x: torch.Tensor | np.ndarray) -> None: ...
    def fit(self, x: torch.Tensor | np.ndarray) -> None: ...
    def components(self) -> Decomposition: ...


def _as_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float32).numpy()
    return np.asarray(x, dtype=np.float32)


def _flip_signs(comp: np.ndarray) -> np.ndarray:
    """Make the largest-magnitude entry of each component positive (as scikit-learn's svd_flip): a
    deterministic sign, so results of different estimators and runs can be compared entry by entry."""
    idx = np.argmax(np.abs(comp), axis=1)
    signs = np.sign(comp[np.arange(comp.shape[0]), idx])
    signs[signs == 0] = 1
    return comp * signs[:, None]


def _finish(comp, variances, total_var, mean, count) -> Decomposition:
    comp = np.asarray(comp, np.float64)
    comp = comp / np.maximum(np.linalg.norm(comp, axis=1, keepdims=True), 1e-30)
    variances = np.maximum(np.asarray(variances, np.float64), 0.0)
    order = np.argsort(-variances, kind="stable")
    comp, variances = comp[order], variances[order]
    return Decomposition(
        comp=_flip_signs(comp).astype(np.float32),
        stdev=np.sqrt(variances).astype(np.float32),
        var_ratio=(variances / max(float(total_var), 1e-30)).astype(np.float32),
        mean=np.asarray(mean, np.float32).reshape(-1),
        count=int(count),
    )


#: Layer sizes above which a full CPU eigendecomposition is solved in float32 (see CovarianceEstimator).
FLOAT32_SOLVE_ABOVE = 4096


class CovarianceEstimator:
    """Exact streamed PCA: accumulate (count, Σx, Σxxᵀ) in float64, then eigendecompose the covariance."""

    name = "cov"
    streaming = True

    def __init__(self, n_components: int | None = None, device: str | torch.device = "cpu"):
        self.n_components = n_components
        self.device = torch.device(device)
        self.count = 0
        self.sum: torch.Tensor | None = None
        self.sxx: torch.Tensor | None = None
        self._sxx_np: np.ndarray | None = None  # CPU path: Fortran-ordered view of sxx for BLAS dsyrk

    def _init(self, dim: int) -> None:
        self.sum = torch.zeros(dim, dtype=torch.float64, device=self.device)
        if self.device.type == "cpu":
            # Fortran order so scipy's dsyrk updates it in place; only the upper triangle is accumulated.
            self._sxx_np = np.zeros((dim, dim), dtype=np.float64, order="F")
            self.sxx = torch.from_numpy(self._sxx_np)
        else:
            self.sxx = torch.zeros(dim, dim, dtype=torch.float64, device=self.device)

    @property
    def dim(self) -> int | None:
        return None if self.sum is None else self.sum.shape[0]

    def fit_partial(self, x) -> None:
        x = torch.as_tensor(x).reshape(len(x), -1).to(self.device, torch.float64)
        if self.sum is None:
            self._init(x.shape[1])
        if x.shape[1] != self.dim:
            raise ValueError(f"batch has {x.shape[1]} features, estimator has {self.dim}")
        self.count += x.shape[0]
        self.sum += x.sum(0)
        if self._sxx_np is not None:
            from scipy.linalg.blas import dsyrk

            # Σxxᵀ via a symmetric rank-k update: half the flops of a full matrix product.
            a = x.numpy().T  # [D, B], Fortran-contiguous view: no copy
            out = dsyrk(1.0, a, beta=1.0, c=self._sxx_np, trans=0, lower=0, overwrite_c=1)
            if not np.shares_memory(out, self._sxx_np):  # pragma: no cover - depends on scipy internals
                self._sxx_np[...] = out
        else:
            self.sxx.addmm_(x.T, x)

    def fit(self, x) -> None:
        self.fit_partial(x)

    def state(self) -> list[torch.Tensor]:
        """The statistics as tensors (for all-reduce): [count, Σx, Σxxᵀ]."""
        count = torch.tensor([float(self.count)], dtype=torch.float64, device=self.device)
        return [count, self.sum, self.sxx]

    def reduce(self, all_reduce) -> None:
        """Sum the statistics over processes with `all_reduce(list_of_tensors)` (in place)."""
        tensors = self.state()
        all_reduce(tensors)
        self.count = int(round(tensors[0].item()))

    def covariance(self, symmetric: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean [D], covariance [D, D]) in float64 with the N-1 normalisation (as scikit-learn's PCA).

        With `symmetric=False` only the upper triangle is valid (what the eigensolver reads; saves memory).
        """
        if self.count < 2:
            raise UserError("PCA needs at least 2 samples")
        n = self.count
        mean = self.sum / n
        cov = torch.addr(self.sxx, mean, mean, alpha=-float(n))  # Σxxᵀ - n·μμᵀ
        cov /= n - 1
        if symmetric:
            upper = torch.triu(cov)
            cov = upper + torch.triu(cov, diagonal=1).T
        return mean, cov

    def components(self) -> Decomposition:
        mean, cov = self.covariance(symmetric=False)
        dim = cov.shape[0]
        k = min(self.n_components or dim, dim)
        total = float(torch.trace(cov))
        if self.device.type == "cpu" and k == dim and dim > FLOAT32_SOLVE_ABOVE:
            # All components of a large layer (conv0 of mel_prog_hires: 8192): the statistics stay exact
            # float64; the eigendecomposition runs in float32 (MKL ssyevd), twice as fast as float64. The
            # leading directions agree with a float64 solve to ~1e-6 (tests/test_ganspace_estimators.py).
            full = torch.triu(cov) + torch.triu(cov, diagonal=1).T
            w, v = torch.linalg.eigh(full.float())
            w, v = w.double().numpy(), v.double().numpy()
        elif self.device.type == "cpu":
            import scipy.linalg

            # LAPACK on the upper triangle: divide and conquer for all vectors; MRRR for a top-k subset.
            a = cov.numpy()
            if k < dim:
                w, v = scipy.linalg.eigh(a, lower=False, subset_by_index=[dim - k, dim - 1], driver="evr",
                                         overwrite_a=True, check_finite=False)
            else:
                w, v = scipy.linalg.eigh(a, lower=False, driver="evd", overwrite_a=True, check_finite=False)
        else:
            w, v = torch.linalg.eigh(cov, UPLO="U")
            w, v = w[dim - k:].cpu().numpy(), v[:, dim - k:].cpu().numpy()
        return _finish(v.T, w, total, mean.cpu().numpy(), self.count)


class IncrementalEstimator:
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

    def fit_partial(self, x) -> None:
        x = _as_numpy(x).reshape(len(x), -1)
        self._buffer.append(x)
        self._buffered += len(x)
        self.count += len(x)
        # Keep at least one chunk buffered so the final remainder can join it (partial_fit needs ≥ K rows).
        while self._buffered >= 2 * self.chunk_size:
            data = np.concatenate(self._buffer)
            self.model.partial_fit(data[:self.chunk_size])
            self._buffer, self._buffered = [data[self.chunk_size:]], len(data) - self.chunk_size

    def fit(self, x) -> None:
        self.fit_partial(x)

    def components(self) -> Decomposition:
        if self._buffered:
            data = np.concatenate(self._buffer)
            if len(data) < self.n_components:
                raise UserError(f"ipca needs at least {self.n_components} samples (the component count), got {self.count}")
            self.model.partial_fit(data)
            self._buffer, self._buffered = [], 0
        m = self.model
        total = m.explained_variance_[0] / m.explained_variance_ratio_[0] if m.explained_variance_ratio_[0] > 0 else 1.0
        return _finish(m.components_, m.explained_variance_, total, m.mean_, m.n_samples_seen_)


class InMemoryEstimator:
    """scikit-learn estimators that need all samples at once: `pca`, `randomized`, `ica`, `spca`."""

    streaming = False

    def __init__(self, name: str, n_components: int, seed: int = 0, sparsity: float = 1.0):
        self.name = name
        self.n_components = n_components
        self.seed = seed
        self.sparsity = sparsity
        self._rows: list[np.ndarray] = []

    def fit_partial(self, x) -> None:
        self._rows.append(_as_numpy(x).reshape(len(x), -1))

    def fit(self, x) -> None:
        self.fit_partial(x)

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
            return _finish(m.components_, m.explained_variance_, np.var(x, axis=0, ddof=1).sum(), m.mean_, n)
        mean = x.mean(0)
        if self.name == "ica":
            m = FastICA(n_components=k, whiten="unit-variance", random_state=self.seed, max_iter=1000).fit(x)
            directions = m.mixing_.T  # [K, D]: the activation-space direction each independent source moves along
        elif self.name == "spca":
            m = SparsePCA(n_components=k, alpha=self.sparsity, random_state=self.seed).fit(x)
            directions = m.components_
        else:
            raise UserError(f"unknown estimator {self.name!r}")
        unit = directions / np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-30)
        # Non-orthogonal bases: report the variance of the data projected on each direction.
        variances = np.var((x - mean) @ unit.T, axis=0, ddof=1)
        return _finish(unit, variances, np.var(x, axis=0, ddof=1).sum(), mean, n)


def get_estimator(name: str, n_components: int | None, dim: int, *, device: str | torch.device = "cpu",
                  seed: int = 0, chunk_size: int | None = None, sparsity: float = 1.0) -> Estimator:
    """An estimator by name; `n_components` None means all (`dim`)."""
    k = dim if n_components is None else int(n_components)
    if not 1 <= k <= dim:
        raise UserError(f"--components must be between 1 and the layer size {dim}, got {k}")
    if name == "cov":
        return CovarianceEstimator(k, device=device)
    if name == "ipca":
        return IncrementalEstimator(k, chunk_size)
    if name in ("pca", "randomized", "ica", "spca"):
        return InMemoryEstimator(name, k, seed=seed, sparsity=sparsity)
    raise UserError(f"unknown estimator {name!r}; choose one of {', '.join(ESTIMATORS)}")
