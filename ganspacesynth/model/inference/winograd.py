"""Winograd F(6×6, 3×3) convolution for float32 generation on CPUs.

A 3×3 'same' conv done directly costs 9 multiply-adds per output pixel and channel pair; Winograd's minimal
filtering (Lavin & Gray 2016) computes each 6×6 output tile from an 8×8 input tile with 64 instead of 324, as
64 independent matrix products `[tiles, C] @ [C, K]` between transformed inputs and transformed kernels. oneDNN
offers no Winograd path through PyTorch on CPUs, and its direct conv already runs near this machine's
matrix-multiply rate, so fewer multiply-adds is the way left to make float32 generation faster
(docs/BENCHMARKS.md). The transforms are memory-bound, so it pays only where channels are many and maps not
tiny (`route`; with the compiled transforms of `native`, from 64 channels). Rounding: about 2e-5 of the output's
range, against 2e-6 for the direct conv; bfloat16 and training (the reference network) keep the direct conv.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

OUTPUT_TILE = 6  # m: output pixels per tile side
KERNEL = 3  # r
INPUT_TILE = OUTPUT_TILE + KERNEL - 1  # n = 8
# Interpolation points of the Cook–Toom construction (plus the point at infinity): small, symmetric, and
# powers of two, the usual choice that keeps F(6, 3)'s rounding error low.
POINTS = (0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5)

# Below these sizes the tile transforms cost more than the saved multiply-adds (measured on a 2-core
# AVX-512 VM, benchmarks/generate_speed.py). In PyTorch the transforms are memory-bound matrix passes: 32 channels
# at 128 × 1024 ran 1.6× slower than the direct conv and 64 channels 1.07×. The compiled transforms
# (native) are one pass each and pay from 64 channels.
MIN_CHANNELS_PYTORCH = 128
MIN_CHANNELS_COMPILED = 64
MIN_HEIGHT = 8


@functools.lru_cache(maxsize=None)
def transforms() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(Aᵀ [m, n], G [n, r], Bᵀ [n, n]) in float64 with y = Aᵀ[(G g) ⊙ (Bᵀ d)] the correlation of d with g."""
    m, r, n = OUTPUT_TILE, KERNEL, INPUT_TILE
    at = np.zeros((m, n))
    g = np.zeros((n, r))
    for j, p in enumerate(POINTS):
        at[:, j] = [p**i for i in range(m)]
        g[j] = [p**k / np.prod([p - q for q in POINTS if q != p]) for k in range(r)]
    at[m - 1, n - 1] = 1.0
    g[n - 1, r - 1] = 1.0
    # Bᵀ solves Σ_j Aᵀ[i,j] G[j,k] Bᵀ[j,l] = [l = i + k] for every output i, tap k and input l: an exactly
    # determined system once the other two are fixed (least squares returns its exact solution).
    eq = np.einsum("ij,jk,jx,ly->iklxy", at, g, np.eye(n), np.eye(n)).reshape(m * r * n, n * n)
    rhs = np.array([float(l == i + k) for i in range(m) for k in range(r) for l in range(n)])
    bt = np.linalg.lstsq(eq, rhs, rcond=None)[0].reshape(n, n)
    bt = np.round(bt * 64) / 64  # its entries are multiples of 1/4; drop the solver's 1e-14 residue
    if not np.allclose(eq @ bt.ravel(), rhs, atol=1e-9):  # pragma: no cover - a construction error
        raise AssertionError("Winograd transforms do not reproduce the correlation")
    return tuple(torch.from_numpy(a) for a in (at, g, bt))


@functools.lru_cache(maxsize=None)
def _float_transforms() -> tuple[torch.Tensor, torch.Tensor]:
    """(Aᵀ, Bᵀ) in float32, as every call of `winograd_conv3x3` uses them."""
    at, _, bt = transforms()
    return at.float(), bt.float()


def kernel_transform(weight: torch.Tensor) -> torch.Tensor:
    """`[K, C, 3, 3]` kernel → `[n², C, K]` transformed kernel (G g Gᵀ per channel pair), float32."""
    _, g, _ = transforms()
    u = torch.einsum("ai,kcij,bj->abck", g, weight.detach().double(), g)
    n = INPUT_TILE
    return u.reshape(n * n, weight.shape[1], weight.shape[0]).float().contiguous()


def route(channels_in: int, channels_out: int, height: int, *, compiled: bool,
          min_channels_compiled: int = MIN_CHANNELS_COMPILED, min_channels_pytorch: int = MIN_CHANNELS_PYTORCH,
          min_height: int = MIN_HEIGHT) -> str | None:
    """How a float32 CPU 3×3 'same' conv runs best: "compiled" (the C transforms, where `compiled` says they
    can run these channel counts), "pytorch" (PyTorch transforms) or None (the direct conv)."""
    if height < min_height:
        return None
    if compiled and min(channels_in, channels_out) >= min_channels_compiled:
        return "compiled"
    return "pytorch" if min(channels_in, channels_out) >= min_channels_pytorch else None


def winograd_conv3x3(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """`F.conv2d(x, weight, bias, padding=1)` with `u = kernel_transform(weight)`, for a channels-last float32 `x`.

    Returns a channels-last `[N, K, H, W]`. Samples go one at a time so a batch gives exactly the results of
    one-by-one generation (the matrix products see the same shapes).
    """
    at, bt = _float_transforms()
    m, n = OUTPUT_TILE, INPUT_TILE
    b, c, h, w = x.shape
    k = u.shape[2]
    th, tw = -(-h // m), -(-w // m)
    hp, wp = th * m + 2, tw * m + 2
    # NHWC, zero-padded by 1 for 'same' and up to whole tiles at the bottom and right.
    xp = F.pad(x.permute(0, 2, 3, 1), (0, 0, 1, wp - w - 1, 1, hp - h - 1))
    out = torch.empty(b, h, w, k, dtype=x.dtype)
    for i in range(b):
        # Tiles overlap by 2: view them as [n(row), n(col), th, tw, C], gathered into [n, n, tiles·C].
        tiles = xp[i].as_strided((n, n, th, tw, c), (wp * c, c, m * wp * c, m * c, 1)).reshape(n, n, -1)
        v = bt @ torch.matmul(bt, tiles).view(n, -1)  # Bᵀ d B: columns, then rows → [n², tiles·C]
        prod = torch.bmm(v.view(n * n, th * tw, c), u)  # [n², tiles, K]
        y = torch.matmul(at, (at @ prod.view(n, -1)).view(m, n, -1))  # Aᵀ M A: rows, then columns
        y = y.view(m, m, th, tw, k).permute(2, 0, 3, 1, 4).reshape(th * m, tw * m, k)[:h, :w]
        if bias is None:
            out[i] = y
        else:  # the bias rides on the copy that untiles the output
            torch.add(bias, y, out=out[i])
    return out.permute(0, 3, 1, 2)
