"""The covariance estimator's sums, count n, Σ(x−c) and Σ(x−c)(x−c)ᵀ in float64 about a shift c, behind two
backends chosen once (`make_sums`), when the first batch fixes the dimension:

- `NumpySums` (CPUs): NumPy arrays and BLAS through SciPy. Only the upper triangle of Σ(x−c)(x−c)ᵀ is
  accumulated (Fortran order, so BLAS and LAPACK take it without a copy), and only it is read.
  `products="float64"`: one `dsyrk` per batch. `products="float32"`: centred rows gather into chunks of
  `chunk_rows`, each chunk's product is an `ssyrk` (twice the rate) added into the float64 sums: every entry
  keeps float32 rounding of one chunk's sum (~1e-7·√chunk), far below a PCA's sampling error.
- `TorchSums` (devices): float64 torch tensors, a matrix product per batch.

Both offer the same operations: `add(x)`, `flush()`, `tensors()` (for an in-place all-reduce), `state_dict()` /
`load_state_dict()` (the same arrays whichever backend wrote them), `mean()`, `covariance_upper()`, `describe()`.
`NumpySums` also gives the solvers the covariance as an operator on the sums (`operator()`,
`float32_covariance()`, `total_variance()`) so that no D × D float64 copy is made (eigen.solve_covariance).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import UserError

BACKENDS = ("auto", "numpy", "torch")


def backend_for(device: torch.device, backend: str = "auto") -> str:
    """The backend of sums kept on `device`: NumPy's BLAS on CPUs, torch elsewhere (unless one is named)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    if backend == "auto":
        return "numpy" if device.type == "cpu" else "torch"
    if backend == "numpy" and device.type != "cpu":
        raise ValueError("the numpy sums live on the CPU")
    return backend


def make_sums(backend: str, dim: int, shift: np.ndarray, *, device: torch.device, products: str = "float64",
              chunk_rows: int = 1):
    if backend == "numpy":
        return NumpySums(dim, shift, products=products, chunk_rows=chunk_rows)
    return TorchSums(dim, shift, device=device)


def _check(state: dict, dim: int) -> tuple[np.ndarray, np.ndarray]:
    sxx = np.asarray(state["sxx"], np.float64)
    pending = np.asarray(state["pending"], np.float32)
    if sxx.shape != (dim, dim) or np.asarray(state["sum"]).shape != (dim,) or pending.shape[1:] != (dim,):
        raise ValueError("inconsistent estimator state")
    return sxx, pending


class NumpySums:
    kind = "numpy"

    def __init__(self, dim: int, shift: np.ndarray, *, products: str = "float64", chunk_rows: int = 1):
        self.dim, self.products, self.chunk_rows = dim, products, int(chunk_rows)
        self.device = torch.device("cpu")
        if products == "float32":  # rows are centred in float32: the shift is a float32 value
            shift = np.asarray(shift, np.float32)
        self.shift = np.array(shift, np.float64)
        self._shift32 = self.shift.astype(np.float32)
        self.sum = np.zeros(dim, np.float64)
        self.sxx = np.zeros((dim, dim), np.float64, order="F")
        self.count = 0
        self.consumed = False
        self._buf = self._scratch = None
        if products == "float32":
            self._buf = np.empty((dim, self.chunk_rows), np.float32, order="F")  # pending centred rows
            self._scratch = np.zeros((dim, dim), np.float32, order="F")  # one chunk's product; lower stays zero
        self._buffered = 0

    # -- accumulation --------------------------------------------------------------------------
    def add(self, x: torch.Tensor) -> None:
        n = x.shape[0]
        if self.products == "float64":
            from scipy.linalg.blas import dsyrk

            xc = x.detach().to("cpu").numpy().astype(np.float64)  # a copy: the caller's batch is left alone
            xc -= self.shift
            self.sum += xc.sum(0)
            # A symmetric rank-k update of the upper triangle: half the flops of a full matrix product.
            out = dsyrk(1.0, xc.T, beta=1.0, c=self.sxx, trans=0, lower=0, overwrite_c=1)
            if not np.shares_memory(out, self.sxx):  # pragma: no cover - depends on scipy internals
                self.sxx[...] = out
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
                self.sum += dest.sum(0, dtype=np.float64)
                self._buffered += m
                i += m
                if self._buffered == self.chunk_rows:
                    self.flush()
        self.count += n

    def flush(self) -> None:
        """Add the pending chunk's float32 product into the float64 sums."""
        m = self._buffered
        if not m or self._buf is None:
            return
        from scipy.linalg.blas import ssyrk

        out = ssyrk(1.0, self._buf[:, :m], beta=0.0, c=self._scratch, trans=0, lower=0, overwrite_c=1)
        if not np.shares_memory(out, self._scratch):  # pragma: no cover - depends on scipy internals
            self._scratch[...] = out
        np.add(self.sxx, self._scratch, out=self.sxx)  # memory-bound; numpy's is 5× torch's mixed-dtype add
        self._buffered = 0

    # -- state ---------------------------------------------------------------------------------
    def tensors(self) -> list[torch.Tensor]:
        """[n, Σ(x−c), Σ(x−c)(x−c)ᵀ] as tensors viewing the sums (an all-reduce on them sums in place)."""
        self.flush()
        count = torch.tensor([float(self.count)], dtype=torch.float64)
        return [count, torch.from_numpy(self.sum), torch.from_numpy(self.sxx)]

    def state_dict(self) -> dict[str, np.ndarray]:
        pending = self._buf[:, :self._buffered].T if self._buf is not None else np.zeros((0, self.dim), np.float32)
        return {"count": np.array(self.count, np.int64), "shift": self.shift, "sum": self.sum, "sxx": self.sxx,
                "pending": pending}

    def load_state_dict(self, state: dict) -> None:
        sxx, pending = _check(state, self.dim)
        self.sum[...] = state["sum"]
        self.sxx[...] = sxx
        if len(pending):
            if self._buf is None or len(pending) >= self.chunk_rows:
                raise ValueError("pending rows do not fit this estimator's chunks")
            self._buf.T[:len(pending)] = pending
            self._buffered = len(pending)
        self.count = int(state["count"])

    # -- results -------------------------------------------------------------------------------
    def describe(self) -> dict:
        return {"products": self.products}

    def mean(self) -> np.ndarray:
        return self.shift + self.sum / self.count

    def total_variance(self) -> float:
        n = self.count
        return float((np.diagonal(self.sxx) - self.sum ** 2 / n).sum() / (n - 1))

    def operator(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(A, u, scale) with the covariance = scale·(A − u·uᵀ), A's upper triangle the sums (not a copy)."""
        return self.sxx, self.sum / math.sqrt(self.count), 1.0 / (self.count - 1)

    def float32_covariance(self) -> np.ndarray:
        """The covariance in float32 (upper triangle), in the chunk-product scratch when there is one."""
        from .eigen import float32_matrix

        a, u, scale = self.operator()
        return float32_matrix(a, u, scale, out=self._scratch)

    def covariance_upper(self, consume: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(mean [D], covariance [D, D], Fortran order, only the upper triangle valid) in float64 with the N−1
        normalisation. With `consume` the covariance is computed in place of the sums, which are then gone."""
        from scipy.linalg.blas import dsyr

        n = self.count
        mean = self.shift + self.sum / n
        if consume:
            cov, self.consumed = self.sxx, True
        else:
            cov = np.array(self.sxx, order="F", copy=True)
        out = dsyr(-1.0 / n, self.sum, a=cov, lower=0, overwrite_a=1)  # upper triangle −= s·sᵀ/n
        if not np.shares_memory(out, cov):  # pragma: no cover - depends on scipy internals
            cov = np.asfortranarray(out)
        cov /= n - 1
        return mean, cov


class TorchSums:
    kind = "torch"
    products = "float64"

    def __init__(self, dim: int, shift: np.ndarray, *, device: torch.device):
        self.dim, self.device = dim, torch.device(device)
        self.shift = torch.as_tensor(shift, dtype=torch.float64).to(self.device)
        self.sum = torch.zeros(dim, dtype=torch.float64, device=self.device)
        self.sxx = torch.zeros(dim, dim, dtype=torch.float64, device=self.device)
        self.count = 0
        self.consumed = False

    def add(self, x: torch.Tensor) -> None:
        xc = x.to(self.device, torch.float64) - self.shift
        self.sum += xc.sum(0)
        self.sxx.addmm_(xc.T, xc)
        self.count += x.shape[0]

    def flush(self) -> None:
        pass

    def tensors(self) -> list[torch.Tensor]:
        count = torch.tensor([float(self.count)], dtype=torch.float64, device=self.device)
        return [count, self.sum, self.sxx]

    def state_dict(self) -> dict[str, np.ndarray]:
        shift, total, sxx = (t.cpu().numpy() for t in (self.shift, self.sum, self.sxx))
        return {"count": np.array(self.count, np.int64), "shift": shift, "sum": total, "sxx": sxx,
                "pending": np.zeros((0, self.dim), np.float32)}

    def load_state_dict(self, state: dict) -> None:
        sxx, pending = _check(state, self.dim)
        self.sum.copy_(torch.from_numpy(np.asarray(state["sum"], np.float64)))
        self.sxx.copy_(torch.from_numpy(sxx))
        if len(pending):
            raise ValueError("pending rows do not fit this estimator's chunks")
        self.count = int(state["count"])

    def describe(self) -> dict:
        return {"device": self.device.type}

    def mean(self) -> np.ndarray:
        return (self.shift + self.sum / self.count).cpu().numpy()

    def covariance_upper(self, consume: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, covariance) as float64 tensors on the device (the whole matrix valid)."""
        n = self.count
        mean = self.shift + self.sum / n
        cov = torch.addr(self.sxx, self.sum, self.sum, alpha=-1.0 / n)
        cov /= n - 1
        return mean, cov


def require_samples(sums) -> None:
    if sums is None or sums.count < 2:
        raise UserError("PCA needs at least 2 samples")
    if sums.consumed:
        raise ValueError("this estimator's sums were consumed by covariance_upper(consume=True)")
