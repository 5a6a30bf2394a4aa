"""Output levels: how notes and pieces are scaled before they are written, and the measures behind it.

- `finish_notes`: what `Synth` does to every generated note (one place, so every path gets it): a short
  raised-cosine fade-in (`ONSET_FADE_S`, removes the onset click generated notes start with), then the model's
  calibrated output gain (or a per-note peak normalisation), then `peak_safe`.
- `peak_safe`: notes keep their level and are scaled down only if they would clip (untrained or barely trained
  models can exceed ±1). Used for single notes (CLI, servers, grids, reports).
- `normalize_peak`: a mix (hallucination, MIDI) or a note meant for listening is scaled so its largest
  sample is exactly `peak`.
- Measures: `rms_dbfs` (a whole note's RMS in dBFS, the level measure of the calibrated gain) and `onset_click`
  / `onset_spike` (how a note starts).
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError

#: Where a clipping note's peak is put: just below full scale, so 16-bit conversion never wraps.
SAFE_PEAK = 0.99
#: Fade-in every generated note gets (seconds, raised cosine). Generated notes start on the second half of an
#: impulse (the inverse STFT of the model's attack frames puts one at each early frame's centre, and the first
#: output sample is frame 1's centre): 4 ms removes it and leaves real attacks (>= 5 ms) alone.
ONSET_FADE_S = 0.004
#: Largest output gain a model file or a `--gain` option may carry (dB, either sign).
MAX_GAIN_DB = 60.0
#: Samples the onset measures look at.
ONSET_SAMPLES = 4
#: RMS floor of a silent note (dBFS).
SILENCE_DBFS = -200.0


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


def onset_fade(waves: np.ndarray, sample_rate: int, seconds: float = ONSET_FADE_S) -> np.ndarray:
    """A raised-cosine fade-in over the first `seconds` of each note (the last axis): the gain is
    sin²(π/2 · i / n) at sample i < n, so the first sample is 0 and the curve joins 1 without a corner. Returns a
    new array (float32 stays float32)."""
    waves = np.array(waves, copy=True)
    n = min(waves.shape[-1], int(round(seconds * sample_rate)))
    if n > 0:
        ramp = np.sin(0.5 * np.pi * np.arange(n) / n) ** 2
        waves[..., :n] *= ramp.astype(waves.dtype) if waves.dtype.kind == "f" else ramp
    return waves


def rms_dbfs(waves: np.ndarray) -> np.ndarray:
    """RMS of each whole note (the last axis) in dBFS (full scale ±1), `SILENCE_DBFS` for silence; float64."""
    w = np.asarray(waves, dtype=np.float64)
    rms = np.sqrt(np.mean(w * w, axis=-1))
    return np.where(rms > 0, 20.0 * np.log10(np.maximum(rms, 1e-300)), SILENCE_DBFS)


def _peaks(w: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(w).max(axis=-1), 1e-12)


def onset_click(waves: np.ndarray, samples: int = ONSET_SAMPLES) -> np.ndarray:
    """How loud each note starts: the largest |sample| of its first `samples` over its peak (0: starts from
    silence; real notes from a SoundFont measure 0.00, the model's notes without the fade-in 0.27 median)."""
    w = np.atleast_2d(np.asarray(waves, dtype=np.float64))
    return np.abs(w[:, :samples]).max(axis=1) / _peaks(w)


def onset_spike(waves: np.ndarray, samples: int = ONSET_SAMPLES, follow: int = 32) -> np.ndarray:
    """Whether each note starts with an isolated spike: its first `samples` reach over 0.1 of its peak and over
    twice the largest |sample| of the `follow` samples after them."""
    w = np.atleast_2d(np.asarray(waves, dtype=np.float64))
    first = np.abs(w[:, :samples]).max(axis=1)
    after = np.abs(w[:, samples:samples + follow]).max(axis=1)
    return (first > 0.1 * _peaks(w)) & (first > 2.0 * after)


def check_gain_db(value, what: str = "the output gain") -> float:
    """A gain in dB: a finite number within ±MAX_GAIN_DB, else a one-line UserError."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise UserError(f"{what} must be a number of dB, not {value!r}")
    value = float(value)
    if not np.isfinite(value) or abs(value) > MAX_GAIN_DB:
        raise UserError(f"{what} must be a finite number of dB within ±{MAX_GAIN_DB:g}, not {value:g}")
    return value


def finish_notes(waves: np.ndarray, sample_rate: int, gain_db: float = 0.0, normalize: float | None = None,
                 fade: bool = True) -> np.ndarray:
    """Generated notes `[B, N]` (or one `[N]`) as they are handed out: the onset fade-in, then either the gain
    (`gain_db`) or, with `normalize`, every note's peak scaled to that value, then `peak_safe` (a note the gain
    would push over full scale is put at `SAFE_PEAK` instead: never clips). Gain 0 without `normalize` leaves the
    level alone (the raw model, as before calibration: interfaces still apply `peak_safe` when writing)."""
    waves = np.asarray(waves)
    dtype = waves.dtype if waves.dtype.kind == "f" else np.float32
    out = onset_fade(waves, sample_rate) if fade else np.array(waves, dtype=dtype, copy=True)
    if normalize is not None:
        peaks = np.abs(out).max(axis=-1, keepdims=True)
        out = np.where(peaks > 0, out * (float(normalize) / np.maximum(peaks, 1e-30)), out)
        return peak_safe(out.astype(dtype, copy=False))
    if gain_db != 0.0:
        out = out.astype(dtype, copy=False)
        out *= np.asarray(10.0 ** (gain_db / 20.0), dtype=dtype)
        return peak_safe(out)
    return out.astype(dtype, copy=False)
