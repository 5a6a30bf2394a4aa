"""Output levels: the two ways notes and pieces are scaled before they are written.

- `peak_safe`: notes keep the model's own level and are scaled down only if they would clip (untrained or
  barely trained models can exceed ±1). Used for single notes (CLI, servers, grids, reports).
- `normalize_peak`: a mix (hallucination, MIDI) or a note meant for listening is scaled so its largest
  sample is exactly `peak`.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError

#: Where a clipping note's peak is put: just below full scale, so 16-bit conversion never wraps.
SAFE_PEAK = 0.99


def peak_safe(waves: np.ndarray, peak: float = SAFE_PEAK) -> np.ndarray:
    """Scale each note (the last axis) whose largest absolute sample exceeds 1.0 down to `peak`; leave the
    others untouched. `waves` is one note `[N]` or a batch `[B, N]`; the dtype is kept."""
    waves = np.asarray(waves)
    if waves.size == 0:
        return waves
    peaks = np.abs(waves).max(axis=-1, keepdims=True)
    return np.where(peaks > 1.0, waves * (peak / np.maximum(peaks, 1e-9)), waves).astype(waves.dtype, copy=False)


def normalize_peak(audio: np.ndarray, peak: float = 0.99) -> np.ndarray:
    """Scale so the largest absolute sample is `peak` (float32); silence stays silence."""
    audio = np.asarray(audio, dtype=np.float64)
    top = float(np.abs(audio).max()) if audio.size else 0.0
    if top == 0.0 or not np.isfinite(top):
        if not np.isfinite(top):
            raise UserError("the mix contains NaN or infinity (the model produced invalid audio)")
        return audio.astype(np.float32)
    return (audio * (peak / top)).astype(np.float32)
