"""PCA-like estimators behind one protocol (protocol.py: `Estimator`), made by name with `get_estimator`.

- `cov` (default): exact PCA from streamed sufficient statistics (count, Σ(x−c), Σ(x−c)(x−c)ᵀ in float64 about
  a fixed shift c near the mean; sums.py keeps them, with NumPy's BLAS on CPUs and torch on devices) and an
  eigensolver chosen by eigen.choose_solver: for the top k of a wide layer, subspace iteration instead of a full
  eigendecomposition. Batch size and the number of processes do not change the result (up to rounding); it
  is `shifted`, `checkpointable` (a resumed fit equals an uninterrupted one) and `reducible` (torchrun).
- `ipca`, `pca`, `randomized`, `ica`, `spca`: scikit-learn (sklearn_estimators.py); `ipca` streams, the others
  keep every sample in memory. None of them checkpoints or runs across processes.

`components()` returns `Decomposition`: unit-norm components sorted by decreasing variance, their standard
deviations, explained-variance ratios (of the total variance) and the global mean.
"""

from __future__ import annotations

import numpy as np
import torch

from ..choices import ESTIMATOR_NAMES
from ..errors import UserError
from .eigen import SOLVERS, solve_covariance
from .protocol import Decomposition, Estimator, Unsupported, decomposition
from .sklearn_estimators import IN_MEMORY, IncrementalEstimator, InMemoryEstimator
from .sums import backend_for, make_sums, require_samples

__all__ = ["ESTIMATORS", "ESTIMATOR_CLASSES", "CovarianceEstimator", "Decomposition", "Estimator",
           "IncrementalEstimator", "InMemoryEstimator", "Unsupported", "capable", "get_estimator"]

ESTIMATORS = ESTIMATOR_NAMES  # one list: the CLI offers it without importing torch

#: On CPUs, layers at least this wide accumulate Σ(x−c)(x−c)ᵀ from float32 products, each over CHUNK_ROWS
#: rows, added into the float64 sums (twice BLAS's float64 rate; see sums.py).
FLOAT32_PRODUCTS_MIN_DIM = 1024
CHUNK_ROWS = 4096
PRODUCTS = ("auto", "float32", "float64")


class CovarianceEstimator(Estimator):
    """Exact streamed PCA: accumulate (count, Σ(x−c), Σ(x−c)(x−c)ᵀ) in float64, then eigendecompose.

    The shift c (`shift`, else the mean of the first batch) keeps the sums centred, so that the covariance
    (Σ(x−c)(x−c)ᵀ − s·sᵀ/n)/(n−1), s = Σ(x−c), loses nothing to cancellation; processes whose statistics are
    summed (`reduce`) must share it (`fit_components` takes the mean of the first 256 samples).

    `products` (NumPy sums): "float64", one BLAS `dsyrk` per batch; "float32" (the default from
    FLOAT32_PRODUCTS_MIN_DIM features up), float32 products of chunks of `chunk_rows` rows added into the
    float64 sums (sums.py). Sums on a device are float64 matrix products. `backend`: "auto" (NumPy on CPUs,
    torch elsewhere) or one named (tests run the device backend on the CPU).

    `solver`: "auto", "iterative" or "lapack", see eigen.choose_solver. `min_block`: the block the subspace
    iteration needs at least (the size of the generator's input, see eigen.py).
    """

    name = "cov"
    streaming = True
    shifted = True
    checkpointable = True
    reducible = True
    state_keys = ("count", "shift", "sum", "sxx", "pending")

    def __init__(self, n_components: int | None = None, device: str | torch.device = "cpu", *,
                 shift=None, products: str = "auto", chunk_rows: int | None = None, solver: str = "auto",
                 min_block: int = 0, backend: str = "auto"):
        if products not in PRODUCTS:
            raise ValueError(f"products must be one of {PRODUCTS}, not {products!r}")
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, not {solver!r}")
        chunk_rows = CHUNK_ROWS if chunk_rows is None else chunk_rows
        if chunk_rows < 1:
            raise ValueError("chunk_rows must be at least 1")
        self.n_components = n_components
        self.device = torch.device(device)
        self.backend = backend_for(self.device, backend)
        self._backend_named = backend != "auto" and self.backend != backend_for(self.device)
        self.products_option = products
        self.chunk_rows = int(chunk_rows)
        self.solver = solver
        self.min_block = int(min_block)
        self._shift_given = None if shift is None else np.asarray(shift, np.float64).reshape(-1).copy()
        self.sums = None  # sums.NumpySums or sums.TorchSums, made when the first batch fixes the dimension

    @classmethod
    def create(cls, name: str, n_components: int, *, device="cpu", solver: str = "auto", min_block: int = 0,
               seed: int = 0, chunk_size=None, sparsity=None, **options):
        return cls(n_components, device=device, solver=solver, min_block=min_block, **options)

    # -- configuration -------------------------------------------------------------------------
    def products_for(self, dim: int) -> str:
        """The product precision this estimator uses for `dim` features."""
        if self.backend != "numpy":
            return "float64"
        if self.products_option == "auto":
            return "float32" if dim >= FLOAT32_PRODUCTS_MIN_DIM else "float64"
        return self.products_option

    def config(self, dim: int) -> dict:
        """What the accumulated sums depend on besides the data (checkpoints must match it)."""
        products = self.products_for(dim)
        out = {"products": products, "chunk_rows": self.chunk_rows if products == "float32" else None,
               "device": self.device.type}
        if self._backend_named:
            out["backend"] = self.backend
        return out

    @property
    def count(self) -> int:
        return 0 if self.sums is None else self.sums.count

    @property
    def dim(self) -> int | None:
        return None if self.sums is None else self.sums.dim

    @property
    def products(self) -> str | None:
        return None if self.sums is None else self.sums.products

    def set_shift(self, shift) -> None:
        """The point the sums are taken about (before the first batch; every process of a fit the same)."""
        if self.sums is not None:
            raise ValueError("the shift is fixed once accumulation has started")
        self._shift_given = np.asarray(shift, np.float64).reshape(-1).copy()

    def _start(self, dim: int, first_mean: np.ndarray | None) -> None:
        shift = self._shift_given if self._shift_given is not None else first_mean
        if shift is None or shift.shape != (dim,):
            raise ValueError(f"the shift must have the layer's {dim} features")
        self.sums = make_sums(self.backend, dim, shift, device=self.device, products=self.products_for(dim),
                              chunk_rows=self.chunk_rows)

    # -- accumulation --------------------------------------------------------------------------
    def fit_partial(self, x) -> None:
        x = torch.as_tensor(x)
        x = x.reshape(len(x), -1)
        if self.sums is None:
            first = None if self._shift_given is not None else x.detach().to("cpu", torch.float64).mean(0).numpy()
            self._start(x.shape[1], first)
        if x.shape[1] != self.dim:
            raise ValueError(f"batch has {x.shape[1]} features, estimator has {self.dim}")
        if x.shape[0]:
            self.sums.add(x)

    def flush(self) -> None:
        """Fold pending rows into the sums (done by `state`, `covariance` and `components`)."""
        if self.sums is not None:
            self.sums.flush()

    # -- state ---------------------------------------------------------------------------------
    def state(self) -> list[torch.Tensor]:
        """The statistics as tensors (for all-reduce): [count, Σ(x−c), Σ(x−c)(x−c)ᵀ]."""
        return self.sums.tensors()

    def reduce(self, all_reduce) -> None:
        """Sum the statistics over processes with `all_reduce(list_of_tensors)` (in place). Every process must
        use the same shift."""
        tensors = self.state()
        all_reduce(tensors)
        self.sums.count = int(round(tensors[0].item()))

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything accumulated so far, as numpy arrays (views, not copies), pending rows included: loading it
        into a fresh estimator continues exactly as this one would. The same arrays whichever backend."""
        if self.sums is None:
            raise ValueError("nothing accumulated yet")
        return self.sums.state_dict()

    def load_state_dict(self, state: dict) -> None:
        shift = np.asarray(state["shift"], np.float64)
        if self.sums is not None:
            raise ValueError("load_state_dict needs a fresh estimator")
        self._shift_given = shift.copy()
        self._start(shift.shape[0], None)
        self.sums.load_state_dict(state)

    # -- results -------------------------------------------------------------------------------
    def covariance_upper(self, consume: bool = False):
        """(mean [D], covariance [D, D]) in float64 with the N-1 normalisation, as the sums keep them: numpy
        on CPUs (only the upper triangle valid, Fortran order), torch on devices. With `consume` (NumPy sums)
        the covariance is computed in place of the sums, which are then gone (saves a copy)."""
        self.flush()
        require_samples(self.sums)
        return self.sums.covariance_upper(consume=consume)

    def covariance(self, symmetric: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean [D], covariance [D, D]) as float64 tensors with the N-1 normalisation (as scikit-learn's PCA).

        With `symmetric=False` only the upper triangle is valid (what the eigensolvers read; saves memory).
        """
        mean, cov = self.covariance_upper()
        mean, cov = torch.as_tensor(mean), torch.as_tensor(cov)
        if symmetric:
            upper = torch.triu(cov)
            cov = upper + torch.triu(cov, diagonal=1).T
        return mean, cov

    def components(self) -> Decomposition:
        self.flush()
        require_samples(self.sums)
        dim = self.dim
        k = min(self.n_components or dim, dim)
        w, v, total, info = solve_covariance(self.sums, k, solver=self.solver, min_block=self.min_block)
        info.update(self.sums.describe())
        return decomposition(np.asarray(v).T, w, total, self.sums.mean(), self.count, info)


#: Every estimator name and its class (each has `create(name, n_components, **options)`).
ESTIMATOR_CLASSES: dict[str, type[Estimator]] = {
    "cov": CovarianceEstimator, "ipca": IncrementalEstimator, **{name: InMemoryEstimator for name in IN_MEMORY}}
assert tuple(ESTIMATOR_CLASSES) == ESTIMATORS


def capable(capability: str) -> tuple[str, ...]:
    """The names of the estimators whose class declares `capability` (protocol.py), in the CLI's order."""
    return tuple(name for name, cls in ESTIMATOR_CLASSES.items() if getattr(cls, capability))


def get_estimator(name: str, n_components: int | None, dim: int, *, device: str | torch.device = "cpu",
                  seed: int = 0, chunk_size: int | None = None, sparsity: float = 1.0, solver: str = "auto",
                  min_block: int = 0, **cov_options) -> Estimator:
    """An estimator by name; `n_components` None means all (`dim`). Each takes the options it uses (its
    `create`) and ignores the others: `seed` (scikit-learn's randomness), `chunk_size` (ipca), `sparsity` (spca),
    `solver` and `min_block` (cov: eigen.choose_solver), `cov_options` (cov: shift, products, chunk_rows, backend)."""
    k = dim if n_components is None else int(n_components)
    if not 1 <= k <= dim:
        raise UserError(f"--components must be between 1 and the layer size {dim}, got {k}")
    cls = ESTIMATOR_CLASSES.get(name)
    if cls is None:
        raise UserError(f"unknown estimator {name!r}; choose one of {', '.join(ESTIMATORS)}")
    return cls.create(name, k, device=device, seed=seed, chunk_size=chunk_size, sparsity=sparsity, solver=solver,
                      min_block=min_block, **cov_options)
