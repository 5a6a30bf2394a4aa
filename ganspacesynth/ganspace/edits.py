"""Synthesis from component coefficients (the GANSpaceSynth controls).

    waves = synthesize(synth, comps, coeffs, pitch=60)                       # noz: no latent needed
    waves = synthesize(synth, comps, [[1, 0], [0, 1]], 60, mode="offset", z=z)
    waves = synthesize(synth, comps, coeffs, 60, mode="latent", z=z)

`coeffs` is one vector `[k]` or a batch `[B, k]` with k ≤ K (missing trailing coefficients are zero). Modes:
- `noz`: layer activation = the conditional mean of the note's pitch and conditions (centring.py) +
  Σ cᵢ·stdevᵢ·compᵢ, then the rest of the generator (no z).
- `offset`: Σ cᵢ·stdevᵢ·compᵢ is added to the layer activation of latent z.
- `latent`: the latent z + Σ cᵢ·z_compᵢ goes through the whole generator (needs regression directions).
`z` is `[L]`, `[1, L]` (shared by all rows) or `[B, L]`; `pitch` one value or one per row. Returns float32 `[B, N]`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from .. import choices
from ..errors import UserError
from .centring import centring_of, conditional_means
from .coefficients import check_coefficients
from .components import Components

MODES = choices.GANSPACE_MODES


def coefficient_matrix(components: Components, coeffs) -> np.ndarray:
    """Coefficients as float64 `[B, K]`, zero-padded (`check_coefficients` against these components)."""
    return check_coefficients(coeffs, components.n_components)


def layer_offsets(components: Components, coeffs) -> torch.Tensor:
    """Σ cᵢ·stdevᵢ·compᵢ as activations `[B, C, H, W]` (float32)."""
    return _layer_offsets(components, coefficient_matrix(components, coeffs))


def _layer_offsets(components: Components, c: np.ndarray) -> torch.Tensor:
    """`layer_offsets` of a checked coefficient matrix."""
    used = np.flatnonzero(np.any(c != 0, axis=0))  # only the components in use: K can be 8192
    off = (c[:, used] * components.stdev[used].astype(np.float64)) @ components.comp[used].astype(np.float64)
    return torch.from_numpy(off.astype(np.float32)).reshape(c.shape[0], *components.layer_shape)


def latent_offsets(components: Components, coeffs) -> np.ndarray:
    """Σ cᵢ·z_compᵢ as latents `[B, L]` (float32)."""
    return _latent_offsets(components, coefficient_matrix(components, coeffs))


def _latent_offsets(components: Components, c: np.ndarray) -> np.ndarray:
    """`latent_offsets` of a checked coefficient matrix."""
    if components.z_comp is None:
        raise UserError("these components have no latent directions (z_comp); use mode noz or offset, "
                        "or recompute them with latent regression")
    return (c @ components.z_comp.astype(np.float64)).astype(np.float32)


def _broadcast_z(synth, z, rows: int) -> np.ndarray:
    if z is None:
        raise UserError("this mode needs a latent z (give a seed or a latents file)")
    z = synth.check_z(z)
    if z.shape[0] == rows:
        return z
    if z.shape[0] == 1:
        return np.repeat(z, rows, axis=0)
    raise UserError(f"{z.shape[0]} latents for {rows} coefficient vectors")


def synthesize_specgrams(synth, components: Components, coeffs, pitch=None, mode: str = "noz", z=None,
                         conditions: Mapping[str, object] | None = None, *, batch_size: int = 8) -> torch.Tensor:
    """Like `synthesize` but returns the normalised spectrograms `[B, 2, T, F]`."""
    if mode not in MODES:
        raise UserError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    components.check_model(synth, check_fingerprint=False)  # layer and shapes; the fingerprint is checked at load
    c = coefficient_matrix(components, coeffs)
    rows = c.shape[0]
    if z is not None and mode != "noz":
        zb = synth.check_z(z)
        if rows == 1 and zb.shape[0] > 1:  # one coefficient vector applied to many latents
            c = np.repeat(c, zb.shape[0], axis=0)
            rows = zb.shape[0]
    if mode == "noz":
        centring = centring_of(components)
        base = conditional_means(synth, components.layer, pitch, conditions, rows, latents=centring.latents,
                                 seed=centring.seed)
        act = base + _layer_offsets(components, c)
        return synth.generate_specgrams(None, pitch, conditions, batch_size=batch_size,
                                        start_at=components.layer, start_activation=act)
    zb = _broadcast_z(synth, z, rows)
    if mode == "offset":
        return synth.generate_specgrams(zb, pitch, conditions, batch_size=batch_size,
                                        offsets={components.layer: _layer_offsets(components, c)})
    return synth.generate_specgrams(zb + _latent_offsets(components, c), pitch, conditions, batch_size=batch_size)


def synthesize(synth, components: Components, coeffs, pitch: int | Sequence[int] | None = None,
               mode: str = "noz", z=None, conditions: Mapping[str, object] | None = None, *,
               batch_size: int = 8) -> np.ndarray:
    """Waves `[B, N]` (float32) for a batch of coefficient vectors; see the module docstring for the modes."""
    specs = synthesize_specgrams(synth, components, coeffs, pitch, mode, z, conditions, batch_size=batch_size)
    return synth.specgrams_to_waves(specs)
