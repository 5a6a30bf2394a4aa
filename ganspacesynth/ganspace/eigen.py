"""Eigendecompositions of a covariance matrix for GANSpace: the top k, or all.

Matrices are float64 numpy arrays of which only the upper triangle is read (what the streamed covariance
accumulates); in column-major (Fortran) order they go to BLAS and LAPACK without a copy.

`top_eigh(a, k)` returns the k largest eigenpairs without a full eigendecomposition: randomised subspace
iteration with a Rayleigh–Ritz step every round (Halko, Martinsson & Tropp 2011, algorithms 4.4 and 5.3;
Saad, "Numerical methods for large eigenvalue problems", §5.2), built only from library kernels: BLAS `?symm`
(the product with the symmetric matrix, read from its upper triangle; through SciPy), LAPACK QR and a small
dense `?syevd` (through torch). A round costs one product of the d × d matrix with a d × l block (l = k plus
oversampling, at least `min_block`), 2·d²·l flops: for conv0 of mel_prog_hires (d = 8192) and k = 256 that is
0.04 TFLOP, about a third of a second on two cores, against ~40 s or more for a full LAPACK solve, whose
tridiagonal reduction is bound by memory bandwidth.

The rounds run in float32 until the residuals reach float32's floor, then finish in float64 on the exact
matrix, which also certifies the result: every kept pair must satisfy ‖A·vᵢ − θᵢ·vᵢ‖ ≤ tol·θ₁ (θ₁ the largest
eigenvalue), reported in `info`. Then the eigenvalue error is below (tol·θ₁)²/gapᵢ and the angle to the exact
eigenvector below tol·θ₁/gapᵢ (Davis–Kahan; gapᵢ the distance to the nearest other eigenvalue): with the
default tol = 1e-7, a pair 0.1 % of θ₁ away from its neighbours is within 1e-4 rad of LAPACK's.

Pair i converges like (λ_{l+1}/λᵢ)^rounds, so the block must reach past a gap in the spectrum. A generator's
early layer varies mostly along as many directions as its first layer has inputs (latent size plus condition
size: the first layer is linear in them), with a cliff after them; `fit_components` passes that size as
`min_block`. If the residuals cannot reach the tolerance within the round budget, `top_eigh` returns None and
the caller solves with LAPACK.

Which solver runs is decided in one place, `choose_solver` (dimension, k, the user's `solver`, where the sums
are), and `solve_covariance` carries the choice out on a covariance estimator's sums (sums.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

#: Extra block columns beyond k (and beyond `min_block`).
MIN_OVERSAMPLE = 64
#: Residual target, relative to the largest eigenvalue (see the module docstring).
DEFAULT_TOL = 1e-7
#: float32 rounds stop here (float32 rounding leaves residuals of ~1e-6 of θ₁ at d ~ 10⁴); float64 finishes.
FLOAT32_TOL = 3e-5
#: Round budgets: beyond these the spectrum has no usable gap and LAPACK is cheaper.
MAX_FLOAT32_ROUNDS = 40
MAX_FLOAT64_ROUNDS = 6
#: A top-k subset of a layer wider than ITERATIVE_MIN_DIM, with k at most ITERATIVE_MAX_FRACTION of it, is
#: solved by subspace iteration (top_eigh) instead of LAPACK (conv0 of mel_prog_hires: k ≤ 1024; a round costs
#: 2·D²·(k + k/4), so beyond that a LAPACK solve, ~30 s there, is as quick).
ITERATIVE_MIN_DIM = 2048
ITERATIVE_MAX_FRACTION = 0.125
#: Layer sizes above which LAPACK solves in float32 (its tridiagonal reduction is bound by memory bandwidth:
#: float32 is twice as fast; the leading directions agree with a float64 solve to ~1e-6).
FLOAT32_SOLVE_ABOVE = 4096
#: The `solver` a user may ask for: "auto" (choose_solver decides), or one forced.
SOLVERS = ("auto", "iterative", "lapack")


@dataclass(frozen=True)
class SolverPlan:
    """How the top k eigenpairs of a covariance are solved.

    `iterative`: subspace iteration first (top_eigh), which certifies its result or gives up. `lapack`: what
    solves otherwise (or after it gave up): "float64" or "float32" (LAPACK on the float64 covariance, or a
    float32 copy of it; MRRR for a subset, divide and conquer for all), "float32-from-sums" (all pairs of a wide
    layer: the float32 covariance made straight from the sums, no float64 copy), "torch" (torch.linalg.eigh
    where the sums are: devices)."""

    iterative: bool
    lapack: str


def choose_solver(dim: int, k: int, *, solver: str = "auto", backend: str = "numpy") -> SolverPlan:
    """The solver for the top `k` of `dim` eigenpairs; `backend`: where the sums are ("numpy" or "torch")."""
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, not {solver!r}")
    if backend == "torch":
        return SolverPlan(iterative=False, lapack="torch")
    iterative = k < dim and solver != "lapack" and (
        solver == "iterative" or (dim > ITERATIVE_MIN_DIM and k <= ITERATIVE_MAX_FRACTION * dim))
    wide = dim > FLOAT32_SOLVE_ABOVE
    lapack = ("float32-from-sums" if k == dim else "float32") if wide else "float64"
    return SolverPlan(iterative=iterative, lapack=lapack)


def solve_covariance(sums, k: int, *, solver: str = "auto", min_block: int = 0):
    """The k largest eigenpairs of the covariance held by `sums` (sums.py, flushed, n ≥ 2) by the solver
    `choose_solver` picks: (eigenvalues [k] descending, eigenvectors [D, k] as columns, total variance, info)."""
    dim = sums.dim
    plan = choose_solver(dim, k, solver=solver, backend=sums.kind)
    if plan.lapack == "torch":
        _, cov = sums.covariance_upper()
        total = float(torch.trace(cov))
        w, v = torch.linalg.eigh(cov, UPLO="U")
        return w[dim - k:].cpu().numpy(), v[:, dim - k:].cpu().numpy(), total, {"method": "torch-eigh"}
    total = sums.total_variance()
    solved = None
    if plan.iterative:
        # The covariance as an operator on the sums: no D × D float64 copy; its float32 copy goes into the
        # chunk-product scratch (already in memory).
        a, u, scale = sums.operator()
        solved = top_eigh(a, k, min_block=min_block, minus=u, scale=scale, a32=sums.float32_covariance())
    if solved is not None:
        w, v, info = solved
    elif plan.lapack == "float32-from-sums":
        w, v = full_eigh(sums.float32_covariance())
        info = {"method": "lapack-evd", "precision": "float32"}
    else:
        _, cov = sums.covariance_upper()
        w, v, info = lapack_eigh(cov, k, float32=plan.lapack == "float32")
    if plan.iterative and solved is None:
        info["note"] = "subspace iteration did not converge; solved with LAPACK"
    return w, v, total, info


def block_size(k: int, dim: int, min_block: int = 0) -> int:
    """Columns of the iterated block for k wanted pairs."""
    return min(dim, max(k, int(min_block)) + max(MIN_OVERSAMPLE, k // 4))


def _symm(a: np.ndarray, q: np.ndarray) -> np.ndarray:
    """a @ q with `a` symmetric, read from its upper triangle (BLAS ?symm)."""
    from scipy.linalg import blas

    fn = blas.ssymm if a.dtype == np.float32 else blas.dsymm
    return fn(1.0, a, q, side=0, lower=0)


def _orthonormal(x: np.ndarray) -> np.ndarray:
    """An orthonormal basis of the columns of x (Householder QR; torch's LAPACK: SciPy's bundled OpenBLAS
    LAPACK took 30× longer on these blocks on an AMD EPYC)."""
    q = torch.linalg.qr(torch.from_numpy(np.ascontiguousarray(x)), mode="reduced").Q
    return np.asfortranarray(q.numpy())


def _rayleigh_ritz(apply, q: np.ndarray, k: int):
    """Ritz pairs of the operator `apply` on the orthonormal block `q` (largest first), its product with them,
    and the first k relative residuals."""
    y = apply(q)
    h = q.T @ y
    h = (h + h.T) * 0.5
    theta, s = (t.numpy() for t in torch.linalg.eigh(torch.from_numpy(h)))
    theta, s = theta[::-1], np.ascontiguousarray(s[:, ::-1])
    v = q @ s
    av = y @ s
    res = np.linalg.norm(av[:, :k] - v[:, :k] * theta[:k], axis=0)
    scale = max(abs(float(theta[0])), np.finfo(q.dtype).tiny)
    return theta, v, av, res / scale


def float32_matrix(a: np.ndarray, minus: np.ndarray | None = None, scale: float = 1.0,
                   out: np.ndarray | None = None) -> np.ndarray:
    """scale·(A − u·uᵀ) in float32 (upper triangle; Fortran order), A's upper triangle being `a`, u `minus`;
    written into `out` (float32 [d, d], Fortran order) when given."""
    from scipy.linalg.blas import ssyr

    if out is None:
        out = np.empty(a.shape, np.float32, order="F")
    np.copyto(out, a, casting="same_kind")
    if minus is not None:
        res = ssyr(np.float32(-1.0), np.asarray(minus, np.float32), a=out, lower=0, overwrite_a=1)
        if not np.shares_memory(res, out):  # pragma: no cover - depends on scipy internals
            out[...] = res
    if scale != 1.0:
        out *= np.float32(scale)
    return out


def top_eigh(a: np.ndarray, k: int, *, min_block: int = 0, tol: float = DEFAULT_TOL, seed: int = 0,
             minus: np.ndarray | None = None, scale: float = 1.0, a32: np.ndarray | None = None,
             max_float32_rounds: int = MAX_FLOAT32_ROUNDS, max_float64_rounds: int = MAX_FLOAT64_ROUNDS,
             log=None) -> tuple[np.ndarray, np.ndarray, dict] | None:
    """The k largest eigenpairs of M = scale·(A − u·uᵀ), A the symmetric float64 matrix whose upper triangle
    is `a` [d, d] and u = `minus` (none by default): with A = Σ(x−c)(x−c)ᵀ, u = Σ(x−c)/√n and scale = 1/(n−1),
    the covariance straight from its sums, without a d × d copy. `a32`: M in float32 (`float32_matrix`) if the
    caller has it (made here otherwise).

    Returns (eigenvalues [k] descending, eigenvectors [d, k] as columns, info), float64, or None when the
    residuals did not reach `tol` within the round budget (then solve with LAPACK). Deterministic for a
    given matrix, k, block and seed (and BLAS thread count).
    """
    dim = a.shape[0]
    if not 1 <= k <= dim:
        raise ValueError(f"k must be between 1 and {dim}, got {k}")
    if a.dtype != np.float64:
        raise ValueError("top_eigh takes a float64 matrix")
    l = block_size(k, dim, min_block)
    rng = np.random.default_rng([int(seed), dim, l])
    history: list[float] = []
    rounds32 = rounds64 = 0
    u = None if minus is None else np.asarray(minus, np.float64)

    def apply64(q):
        y = _symm(a, q)
        if u is not None:
            y -= np.outer(u, u @ q)
        if scale != 1.0:
            y *= scale
        return y

    # float32 rounds: twice the arithmetic rate and half the memory traffic of float64.
    if a32 is None:
        a32 = float32_matrix(a, u, scale)
    q = _orthonormal(rng.standard_normal((dim, l), dtype=np.float32))
    av = None
    for rounds32 in range(1, max_float32_rounds + 1):
        theta, v, av, rel = _rayleigh_ritz(lambda q: _symm(a32, q), q, k)
        err = float(rel.max())
        history.append(err)
        if not math.isfinite(err):
            return None
        if err <= max(tol, FLOAT32_TOL):
            break
        if rounds32 >= 4:
            rate = (history[-1] / history[-4]) ** (1 / 3)  # residual reduction per round, recently
            if rate > 0.95 and err < 10 * FLOAT32_TOL:  # float32's rounding floor: float64 finishes
                break
            if rate > 0.95 or rounds32 + math.log(FLOAT32_TOL / err) / math.log(rate) > max_float32_rounds:
                if log is not None:
                    log(f"top-{k} eigensolver: residual {err:.1e} falls only {min(rate, 1.0):.2f}x per round on "
                        f"a {dim} x {l} block (no gap in the spectrum after it); solving with LAPACK instead")
                return None
        q = _orthonormal(av)
    del a32

    # float64 rounds on the exact matrix, from the span of the float32 Ritz vectors; they certify the result.
    q = _orthonormal(av.astype(np.float64))
    err = math.inf
    for rounds64 in range(1, max_float64_rounds + 1):
        theta, v, av, rel = _rayleigh_ritz(apply64, q, k)
        err = float(rel.max())
        history.append(err)
        if err <= tol or not math.isfinite(err):
            break
        q = _orthonormal(av)
    info = {"method": "subspace-iteration", "block": int(l), "float32_rounds": rounds32,
            "float64_rounds": rounds64, "max_relative_residual": err, "tolerance": tol}
    if log is not None:
        log(f"top-{k} eigensolver: {rounds32} float32 + {rounds64} float64 rounds on a {dim} x {l} block, "
            f"max residual {err:.1e} of the largest eigenvalue")
    if not err <= tol:
        return None
    return np.array(theta[:k]), np.array(v[:, :k]), info


def lapack_eigh(a: np.ndarray, k: int, *, float32: bool = False) -> tuple[np.ndarray, np.ndarray, dict]:
    """The k largest eigenpairs of the symmetric matrix whose upper triangle is `a` (float64 [d, d]; not
    modified), by LAPACK: divide and conquer for all pairs, MRRR for a top-k subset; in float32 when `float32`
    (half the memory traffic of the tridiagonal reduction, which dominates). Descending, vectors as columns."""
    import scipy.linalg

    dim = a.shape[0]
    work = a.astype(np.float32 if float32 else np.float64, order="F", copy=True)
    if k < dim:
        w, v = scipy.linalg.eigh(work, lower=False, subset_by_index=[dim - k, dim - 1], driver="evr",
                                 overwrite_a=True, check_finite=False)
        method = "lapack-evr"
    else:
        w, v = full_eigh(work)
        method = "lapack-evd"
    return (w[::-1].astype(np.float64), v[:, ::-1].astype(np.float64),
            {"method": method, "precision": "float32" if float32 else "float64"})


def full_eigh(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All eigenpairs of a symmetric float32 or float64 matrix whose upper triangle is `a`, ascending, the
    vectors as columns (`a` is not modified).

    LAPACK's divide and conquer in the stages `?syevd` runs: tridiagonal reduction (`?sytrd`) and divide and
    conquer on the tridiagonal (`?stevd`) through SciPy, then the back-transformation of its eigenvectors by
    the reduction's reflectors (`?ormqr`, as `?ormtr` does for a lower reduction) through torch: SciPy's
    OpenBLAS took 52 s of CPU for that last stage at 8192 × 8192 on an AMD EPYC, torch's MKL 23 s, which makes
    the whole solve 1.5× faster (58 s against 87 s for SciPy's `?syevd`, one thread)."""
    import scipy.linalg
    import scipy.linalg.lapack as lapack

    dim = a.shape[0]
    if dim < 3 or a.dtype not in (np.float32, np.float64):
        return scipy.linalg.eigh(a, lower=False, driver="evd", check_finite=False)
    p = "s" if a.dtype == np.float32 else "d"
    # The reversal J·A·J (J the exchange matrix) holds A's upper triangle as its lower one, which the QR-shaped
    # reflectors below need; in column-major memory it is the array read backwards (a streaming copy, not a
    # transposition). Its eigenvectors are A's with the rows reversed.
    low = np.array(a[::-1, ::-1], order="F")
    lwork, info = getattr(lapack, p + "sytrd_lwork")(dim, lower=1)
    refl, diag, off, tau, info = getattr(lapack, p + "sytrd")(low, lower=1, lwork=int(lwork), overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"{p}sytrd failed (info {info})")
    w, z, info = getattr(lapack, p + "stevd")(diag, off, compute_v=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"{p}stevd failed (info {info})")
    # Q = H(1)…H(n−1) acts on rows 2..n; its reflectors are the columns of refl[1:, :n−1] below the diagonal.
    q_z = torch.ormqr(torch.from_numpy(refl)[1:, :-1], torch.from_numpy(tau[:dim - 1]), torch.from_numpy(z)[1:],
                      left=True, transpose=False)
    z[1:] = q_z.numpy()
    return w, z[::-1]
