"""Offline pitch estimation of a clip with librosa's pYIN (no weights to download).

Settings follow what was measured on GM notes (docs/datasets.md): fmin 30 Hz, fmax 2100 Hz, frame 2048,
40 ms hop, median f0 over voiced frames. pYIN makes octave errors on about 4% of notes, and ~3% of GM
notes have no clear pitch at all, so each estimate carries a confidence to filter on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PitchEstimate:
    pitch: int | None  # MIDI note, None when no frame was voiced
    confidence: float  # fraction of all frames voiced and within half a semitone of `pitch`
    f0_hz: float | None


def estimate_pitch(samples: np.ndarray, sample_rate: int) -> PitchEstimate:
    """Median pYIN pitch of a clip, rounded to the nearest MIDI note, and how consistently it held."""
    import librosa

    hop = int(round(0.04 * sample_rate))
    f0, voiced, _ = librosa.pyin(
        np.asarray(samples, dtype=np.float32),
        fmin=30.0,
        fmax=2100.0,
        sr=sample_rate,
        frame_length=2048,
        hop_length=hop,
        center=True,
    )
    voiced_f0 = f0[voiced & np.isfinite(f0)]
    if voiced_f0.size == 0:
        return PitchEstimate(None, 0.0, None)
    median = float(np.median(voiced_f0))
    midi = int(np.round(librosa.hz_to_midi(median)))
    midi = min(max(midi, 0), 127)
    agree = np.abs(librosa.hz_to_midi(voiced_f0) - midi) <= 0.5
    return PitchEstimate(midi, float(agree.sum() / len(f0)), median)
