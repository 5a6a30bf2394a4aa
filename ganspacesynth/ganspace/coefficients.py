"""The one check for GANSpace coefficient arrays, wherever they come in (CLI, composer, OSC, web, library).

Kept free of torch so the command line can import its limit without slowing `--help`.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError

#: Largest coefficient magnitude accepted (standard deviations of a component): far beyond any musically
#: useful value, it keeps hostile input from producing inf/NaN activations.
MAX_COEFFICIENT = 1000.0


def check_coefficients(values, n_components: int | None = None, *, limit: float | None = MAX_COEFFICIENT,
                       what: str = "coefficients") -> np.ndarray:
    """`values` (one vector `[k]` or a batch `[B, k]`) as float64 `[B, n_components]`, zero-padded: numbers,
    finite, within ±`limit`, at most `n_components` per row. With `n_components=None`: `[B, k]`, unpadded."""
    try:
        c = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"{what} must be numbers") from None
    if c.ndim < 2:
        c = c.reshape(1, -1)
    if c.ndim != 2 or c.shape[0] == 0:
        raise UserError(f"{what} must be a vector or a [batch, k] array, got shape {list(c.shape)}")
    if not np.all(np.isfinite(c)):
        raise UserError(f"{what} must be finite numbers, not NaN or infinity")
    if limit is not None and c.size and np.abs(c).max() > limit:
        raise UserError(f"{what} must lie within ±{limit:g}")
    if n_components is None:
        return c
    k = c.shape[1]
    if k > n_components:
        raise UserError(f"{k} coefficients given but the components file has only {n_components}")
    if k == n_components:
        return c
    out = np.zeros((c.shape[0], n_components))
    out[:, :k] = c
    return out
