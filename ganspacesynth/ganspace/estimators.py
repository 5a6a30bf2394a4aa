"""PCA-like estimators behind one protocol: `fit_partial(x)` (streamed batches), `fit(x)`, `components()`.

- `cov` (default): exact PCA from streamed sufficient statistics (count, Σ(x−c), Σ(x−c)(x−c)ᵀ in float64 about
  a fixed shift c near the mean) and an eigensolver on the estimator's device: for the top k of a wide layer,
  subspace iteration (eigen.py) instead of a full eigendecomposition. Batch size and the number of processes
  do not change the result (up to rounding); `reduce()` all-reduces the statistics across processes, and
  `state_dict()` / `load_state_dict()` checkpoint them exactly (a resumed fit equals an uninterrupted one).
- `ipca`: scikit-learn IncrementalPCA, the original GANSpaceSynth estimator (batches of ≥ n_components rows).
- `pca`, `randomized`, `ica`, `spca`: scikit-learn PCA (full / randomized SVD), FastICA, SparsePCA. These keep
  every sample in memory (count × dim × 4 bytes) and fit once at the end.

`components()` returns `Decomposition`: unit-norm components sorted by decreasing variance, their standard
deviations, explained-variance ratios (of the total variance) and the global mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from ..choices import ESTIMATOR_NAMES
from ..errors import UserError

ESTIMATORS = ESTIMATOR_NAMES  # one list: the CLI offers it without importing torch


@dataclass
class Decomposition:
    comp: np.ndarray       # [K, D] float32, unit rows, sorted by decreasing variance
    stdev: np.ndarray      # [K] float32
    var_ratio: np.ndarray  # [K] float32, fraction of the total variance
    mean: np.ndarray       # [D] float32
    count: int
    info: dict = field(default_factory=dict)  # how it was solved (method, rounds, residual)


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
    deterministic sign, so results of different estimators and runs can be compared entry by entry.
    Flips `comp` in place and returns it."""
    idx = np.argmax(np.abs(comp), axis=1)
    signs = np.sign(comp[np.arange(comp.shape[0]), idx])
    signs[signs == 0] = 1
    comp *= signs[:, None].astype(comp.dtype)
    return comp


def _finish(comp, variances, total_var, mean, count, info: dict | None = None) -> Decomposition:
    comp = np.asarray(comp)
    # float32 eigenvectors (the full float32 solve of a wide layer: 256 MB) are finished in float32, without
    # float64 copies; everything else in float64.
    dtype = np.float32 if comp.dtype == np.float32 else np.float64
    variances = np.maximum(np.asarray(variances, np.float64), 0.0)
    order = np.argsort(-variances, kind="stable")
    if np.array_equal(order, np.arange(len(order))):
        comp = np.array(comp, dtype=dtype, order="C")  # a copy: the caller's array is left alone
    else:
        comp, variances = np.ascontiguousarray(comp[order], dtype=dtype), variances[order]
    comp /= np.maximum(np.linalg.norm(comp, axis=1, keepdims=True), 1e-30).astype(dtype)
    return Decomposition(
        comp=_flip_signs(comp).astype(np.float32, copy=False),
        stdev=np.sqrt(variances).astype(np.float32),
        var_ratio=(variances / max(float(total_var), 1e-30)).astype(np.float32),
        mean=np.asarray(mean, np.float32).reshape(-1),
        count=int(count),
        info=dict(info or {}),
    )


#: Layer sizes above which a full CPU eigendecomposition is solved in float32 (see CovarianceEstimator).
FLOAT32_SOLVE_ABOVE = 4096
#: On CPUs, layers at least this wide accumulate Σ(x−c)(x−c)ᵀ from float32 products, each over CHUNK_ROWS
#: rows, added into the float64 sums (twice BLAS's float64 rate; see CovarianceEstimator).
FLOAT32_PRODUCTS_MIN_DIM = 1024
CHUNK_ROWS = 4096
#: A top-k subset of a layer wider than ITERATIVE_MIN_DIM, with k at most ITERATIVE_MAX_FRACTION of it, is
#: solved by subspace iteration (eigen.top_eigh) instead of LAPACK (conv0 of mel_prog_hires: k ≤ 1024; a round
#: costs 2·D²·(k + k/4), so beyond that a LAPACK solve, ~30 s there, is as quick).
ITERATIVE_MIN_DIM = 2048
ITERATIVE_MAX_FRACTION = 0.125
PRODUCTS = ("auto", "float32", "float64")
SOLVERS = ("auto", "iterative", "lapack")


class CovarianceEstimator:
    """Exact streamed PCA: accumulate (count, Σ(x−c), Σ(x−c)(x−c)ᵀ) in float64, then eigendecompose.

    The shift c (`shift`, else the mean of the first batch) keeps the sums centred, so that the covariance
    (Σ(x−c)(x−c)ᵀ − s·sᵀ/n)/(n−1), s = Σ(x−c), loses nothing to cancellation; processes whose statistics are
    summed (`reduce`) must share it (`fit_components` takes the mean of the first 256 samples).

    `products`: "float64" runs one BLAS `dsyrk` per batch into the float64 sums (exact to float64 rounding);
    "float32" (the CPU default from FLOAT32_PRODUCTS_MIN_DIM features up) gathers the centred rows into chunks
    of `chunk_rows`, takes each chunk's product with `ssyrk` (float32, twice the rate) and adds it into the
    float64 sums: the relative error of each entry stays at float32 rounding of one chunk's sum (~1e-7·√chunk),
    far below the sampling error of any PCA. On GPUs the sums are float64 matrix products.

    `solver`: "auto" solves a top-k subset of a layer wider than ITERATIVE_MIN_DIM by subspace iteration
    (k ≤ ITERATIVE_MAX_FRACTION of it: 1/8; certified by its residuals, LAPACK if it does not converge), and
    everything else with LAPACK; "iterative" / "lapack" force one. `min_block`: the block the subspace
    iteration needs at least (the size of the generator's input, see eigen.py).

    Only the upper triangle of Σ(x−c)(x−c)ᵀ is accumulated (on CPUs), and only it is read.
    """

    name = "cov"
    streaming = True

    def __init__(self, n_components: int | None = None, device: str | torch.device = "cpu", *,
                 shift=None, products: str = "auto", chunk_rows: int | None = None, solver: str = "auto",
                 min_block: int = 0):
        if products not in PRODUCTS:
            raise ValueError(f"products must be one of {PRODUCTS}, not {products!r}")
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, not {solver!r}")
        chunk_rows = CHUNK_ROWS if chunk_rows is None else chunk_rows
        if chunk_rows < 1:
            raise ValueError("chunk_rows must be at least 1")
        self.n_components = n_components
        self.device = torch.device(device)
        self.products_option = products
        self.chunk_rows = int(chunk_rows)
        self.solver = solver
        self.min_block = int(min_block)
        self.count = 0
        self._shift_given = None if shift is None else np.asarray(shift, np.float64).reshape(-1).copy()
        self.products: str | None = None  # resolved when the first batch fixes the dimension
        # Statistics as torch tensors (all-reduce works on them); on CPUs they view the numpy arrays below.
        self.shift: torch.Tensor | None = None
        self.sum: torch.Tensor | None = None
        self.sxx: torch.Tensor | None = None
        self._shift_np = self._sum_np = self._sxx_np = None  # CPU: float64; sxx Fortran-ordered for BLAS
        self._buf: np.ndarray | None = None      # CPU float32 products: [D, chunk_rows] pending centred rows
        self._scratch: np.ndarray | None = None  # CPU float32 products: [D, D] one chunk's product
        self._buffered = 0

    # -- configuration -------------------------------------------------------------------------
    @property
    def on_cpu(self) -> bool:
        return self.device.type == "cpu"

    def products_for(self, dim: int) -> str:
        """The product precision this estimator uses for `dim` features."""
        if not self.on_cpu:
            return "float64"
        if self.products_option == "auto":
            return "float32" if dim >= FLOAT32_PRODUCTS_MIN_DIM else "float64"
        return self.products_option

    def config(self, dim: int) -> dict:
        """What the accumulated sums depend on besides the data (checkpoints must match it)."""
        products = self.products_for(dim)
        return {"products": products, "chunk_rows": self.chunk_rows if products == "float32" else None,
                "device": self.device.type}

    @property
    def dim(self) -> int | None:
        return None if self.sum is None else self.sum.shape[0]

    def set_shift(self, shift) -> None:
        """The point the sums are taken about (before the first batch; every process of a fit the same)."""
        if self.sum is not None:
            raise ValueError("the shift is fixed once accumulation has started")
        self._shift_given = np.asarray(shift, np.float64).reshape(-1).copy()

    def _init(self, dim: int, first_mean: np.ndarray | None) -> None:
        shift = self._shift_given if self._shift_given is not None else first_mean
        if shift is None or shift.shape != (dim,):
            raise ValueError(f"the shift must have the layer's {dim} features")
        self.products = self.products_for(dim)
        if self.on_cpu:
            if self.products == "float32":  # rows are centred in float32: the shift is a float32 value
                shift = np.asarray(shift, np.float32)
            self._shift_np = np.array(shift, np.float64)
            self._shift32 = self._shift_np.astype(np.float32)
            self._sum_np = np.zeros(dim, np.float64)
            self._sxx_np = np.zeros((dim, dim), np.float64, order="F")
            self.shift, self.sum = torch.from_numpy(self._shift_np), torch.from_numpy(self._sum_np)
            self.sxx = torch.from_numpy(self._sxx_np)
            if self.products == "float32":
                self._buf = np.empty((dim, self.chunk_rows), np.float32, order="F")
                self._scratch = np.zeros((dim, dim), np.float32, order="F")  # its lower triangle stays zero
        else:
            self.shift = torch.as_tensor(shift, dtype=torch.float64).to(self.device)
            self.sum = torch.zeros(dim, dtype=torch.float64, device=self.device)
            self.sxx = torch.zeros(dim, dim, dtype=torch.float64, device=self.device)

    # -- accumulation --------------------------------------------------------------------------
    def fit_partial(self, x) -> None:
        x = torch.as_tensor(x)
        x = x.reshape(len(x), -1)
        if self.sum is None:
            first = None if self._shift_given is not None else x.detach().to("cpu", torch.float64).mean(0).numpy()
            self._init(x.shape[1], first)
        if x.shape[1] != self.dim:
            raise ValueError(f"batch has {x.shape[1]} features, estimator has {self.dim}")
        n = x.shape[0]
        if n == 0:
            return
        if not self.on_cpu:
            xc = x.to(self.device, torch.float64) - self.shift
            self.sum += xc.sum(0)
            self.sxx.addmm_(xc.T, xc)
            self.count += n
            return
        if self.products == "float64":
            from scipy.linalg.blas import dsyrk

            xc = x.detach().to("cpu").numpy().astype(np.float64)  # a copy: the caller's batch is left alone
            xc -= self._shift_np
            self._sum_np += xc.sum(0)
            # A symmetric rank-k update of the upper triangle: half the flops of a full matrix product.
            out = dsyrk(1.0, xc.T, beta=1.0, c=self._sxx_np, trans=0, lower=0, overwrite_c=1)
            if not np.shares_memory(out, self._sxx_np):  # pragma: no cover - depends on scipy internals
                self._sxx_np[...] = out
        else:
            # Centred rows go straight into the chunk (one pass); Σ(x−c) sums exactly those float32 rows, in
            # float64, so the sums and the products describe the same numbers.
            xf = x.detach().to("cpu", torch.float32).numpy()
            rows = self._buf.T  # [chunk_rows, D] C-ordered view: row j is sample j of the chunk
            i = 0
            while i < n:
                m = min(n - i, self.chunk_rows - self._buffered)
                dest = rows[self._buffered:self._buffered + m]
                np.subtract(xf[i:i + m], self._shift32, out=dest)
                self._sum_np += dest.sum(0, dtype=np.float64)
                self._buffered += m
                i += m
                if self._buffered == self.chunk_rows:
                    self._flush()
        self.count += n

    def _flush(self) -> None:
        """Add the pending chunk's float32 product into the float64 sums."""
        m = self._buffered
        if not m or self._buf is None:
            return
        from scipy.linalg.blas import ssyrk

        out = ssyrk(1.0, self._buf[:, :m], beta=0.0, c=self._scratch, trans=0, lower=0, overwrite_c=1)
        if not np.shares_memory(out, self._scratch):  # pragma: no cover - depends on scipy internals
            self._scratch[...] = out
        np.add(self._sxx_np, self._scratch, out=self._sxx_np)  # memory-bound; numpy's is 5× torch's mixed-dtype add
        self._buffered = 0

    def flush(self) -> None:
        """Fold pending rows into the sums (done by `state`, `covariance` and `components`)."""
        self._flush()

    def fit(self, x) -> None:
        self.fit_partial(x)

    # -- state ---------------------------------------------------------------------------------
    def state(self) -> list[torch.Tensor]:
        """The statistics as tensors (for all-reduce): [count, Σ(x−c), Σ(x−c)(x−c)ᵀ]."""
        self.flush()
        count = torch.tensor([float(self.count)], dtype=torch.float64, device=self.device)
        return [count, self.sum, self.sxx]

    def reduce(self, all_reduce) -> None:
        """Sum the statistics over processes with `all_reduce(list_of_tensors)` (in place). Every process must
        use the same shift."""
        tensors = self.state()
        all_reduce(tensors)
        self.count = int(round(tensors[0].item()))

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything accumulated so far, as numpy arrays (views, not copies), pending rows included: loading it
        into a fresh estimator continues exactly as this one would."""
        if self.sum is None:
            raise ValueError("nothing accumulated yet")
        if self.on_cpu:
            shift, total, sxx = self._shift_np, self._sum_np, self._sxx_np
        else:
            shift, total, sxx = (t.cpu().numpy() for t in (self.shift, self.sum, self.sxx))
        pending = (self._buf[:, :self._buffered].T if self._buf is not None
                   else np.zeros((0, len(shift)), np.float32))
        return {"count": np.array(self.count, np.int64), "shift": shift, "sum": total, "sxx": sxx,
                "pending": pending}

    def load_state_dict(self, state: dict) -> None:
        shift = np.asarray(state["shift"], np.float64)
        dim = shift.shape[0]
        if self.sum is not None:
            raise ValueError("load_state_dict needs a fresh estimator")
        self._shift_given = shift.copy()
        self._init(dim, None)
        sxx = np.asarray(state["sxx"], np.float64)
        pending = np.asarray(state["pending"], np.float32)
        if sxx.shape != (dim, dim) or np.asarray(state["sum"]).shape != (dim,) or pending.shape[1:] != (dim,):
            raise ValueError("inconsistent estimator state")
        if self.on_cpu:
            self._sum_np[...] = state["sum"]
            self._sxx_np[...] = sxx
        else:
            self.sum.copy_(torch.from_numpy(np.asarray(state["sum"], np.float64)))
            self.sxx.copy_(torch.from_numpy(sxx))
        if len(pending):
            if self._buf is None or len(pending) >= self.chunk_rows:
                raise ValueError("pending rows do not fit this estimator's chunks")
            self._buf.T[:len(pending)] = pending
            self._buffered = len(pending)
        self.count = int(state["count"])

    # -- results -------------------------------------------------------------------------------
    def _covariance_upper(self, consume: bool = False):
        """(mean [D], covariance [D, D]) in float64 with the N-1 normalisation; only the upper triangle of the
        covariance is valid. numpy (the covariance Fortran-ordered) on CPUs, torch on other devices. With
        `consume` (CPU) the covariance is computed in place of the sums, which are then gone (saves a copy)."""
        if getattr(self, "_consumed", False):
            raise ValueError("this estimator's sums were consumed by covariance(consume=True)")
        self.flush()
        if self.count < 2:
            raise UserError("PCA needs at least 2 samples")
        n = self.count
        if not self.on_cpu:
            mean = self.shift + self.sum / n
            cov = torch.addr(self.sxx, self.sum, self.sum, alpha=-1.0 / n)
            cov /= n - 1
            return mean, cov
        from scipy.linalg.blas import dsyr

        mean = self._shift_np + self._sum_np / n
        if consume:
            cov, self._consumed = self._sxx_np, True
        else:
            cov = np.array(self._sxx_np, order="F", copy=True)
        out = dsyr(-1.0 / n, self._sum_np, a=cov, lower=0, overwrite_a=1)  # upper triangle −= s·sᵀ/n
        if not np.shares_memory(out, cov):  # pragma: no cover - depends on scipy internals
            cov = np.asfortranarray(out)
        cov /= n - 1
        return mean, cov

    def covariance(self, symmetric: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean [D], covariance [D, D]) as float64 tensors with the N-1 normalisation (as scikit-learn's PCA).

        With `symmetric=False` only the upper triangle is valid (what the eigensolvers read; saves memory).
        """
        mean, cov = self._covariance_upper()
        if self.on_cpu:
            mean, cov = torch.from_numpy(mean), torch.from_numpy(cov)
        if symmetric:
            upper = torch.triu(cov)
            cov = upper + torch.triu(cov, diagonal=1).T
        return mean, cov

    def _iterative(self, dim: int, k: int) -> bool:
        if k >= dim or self.solver == "lapack":
            return False
        return self.solver == "iterative" or (dim > ITERATIVE_MIN_DIM and k <= ITERATIVE_MAX_FRACTION * dim)

    def components(self) -> Decomposition:
        if self.sum is None or self.count < 2:
            raise UserError("PCA needs at least 2 samples")
        self.flush()
        dim = self.dim
        k = min(self.n_components or dim, dim)
        if not self.on_cpu:
            mean, cov = self._covariance_upper()
            total = float(torch.trace(cov))
            w, v = torch.linalg.eigh(cov, UPLO="U")
            w, v = w[dim - k:].cpu().numpy(), v[:, dim - k:].cpu().numpy()
            return _finish(v.T, w, total, mean.cpu().numpy(), self.count,
                           {"method": "torch-eigh", "device": self.device.type})
        from .eigen import float32_matrix, full_eigh, lapack_eigh, top_eigh

        n = self.count
        total = float((np.diagonal(self._sxx_np) - self._sum_np ** 2 / n).sum() / (n - 1))
        mean = self._shift_np + self._sum_np / n
        solved = None
        if self._iterative(dim, k):
            # The covariance (S − s·sᵀ/n)/(n−1) as an operator on the sums: no D × D float64 copy; its float32
            # copy goes into the chunk-product scratch (already in memory).
            u, scale = self._sum_np / math.sqrt(n), 1.0 / (n - 1)
            a32 = float32_matrix(self._sxx_np, u, scale, out=self._scratch)
            solved = top_eigh(self._sxx_np, k, min_block=self.min_block, minus=u, scale=scale, a32=a32)
            del a32
        if solved is not None:
            w, v, info = solved
        elif k == dim and dim > FLOAT32_SOLVE_ABOVE:
            # All components of a large layer (conv0 of mel_prog_hires: 8192): the statistics stay float64;
            # the eigendecomposition runs in float32, twice as fast as float64 (its tridiagonal reduction is
            # bound by memory bandwidth). The leading directions agree with a float64 solve to ~1e-6
            # (tests/test_ganspace_estimators.py).
            u, scale = self._sum_np / math.sqrt(n), 1.0 / (n - 1)
            w, v = full_eigh(float32_matrix(self._sxx_np, u, scale, out=self._scratch))
            info = {"method": "lapack-evd", "precision": "float32"}
        else:
            mean, cov = self._covariance_upper()
            w, v, info = lapack_eigh(cov, k, float32=dim > FLOAT32_SOLVE_ABOVE)
        if self._iterative(dim, k) and solved is None:
            info["note"] = "subspace iteration did not converge; solved with LAPACK"
        info["products"] = self.products
        return _finish(np.asarray(v).T, w, total, mean, self.count, info)


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
                  seed: int = 0, chunk_size: int | None = None, sparsity: float = 1.0, **cov_options) -> Estimator:
    """An estimator by name; `n_components` None means all (`dim`). `cov_options` (shift, products, chunk_rows,
    solver, min_block) go to CovarianceEstimator."""
    k = dim if n_components is None else int(n_components)
    if not 1 <= k <= dim:
        raise UserError(f"--components must be between 1 and the layer size {dim}, got {k}")
    if name == "cov":
        return CovarianceEstimator(k, device=device, **cov_options)
    if name == "ipca":
        return IncrementalEstimator(k, chunk_size)
    if name in ("pca", "randomized", "ica", "spca"):
        return InMemoryEstimator(name, k, seed=seed, sparsity=sparsity)
    raise UserError(f"unknown estimator {name!r}; choose one of {', '.join(ESTIMATORS)}")
