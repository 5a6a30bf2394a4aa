"""Note envelopes and overlap-add mixing, shared by hallucinations and MIDI rendering.

An envelope has four parts, all in seconds: a start trim (samples skipped at the start of the generated
note), a linear attack, a sustain at full level and a linear release. Converted to samples (rounded), the
gain curve is exactly

    attack  (A samples): i / A          for i = 0 .. A-1   (starts at 0, reaches 1 at the sustain)
    sustain (S samples): 1
    release (R samples): 1 - (i+1) / R  for i = 0 .. R-1   (ends exactly at 0)

so the curve is A + S + R samples long and piecewise linear without repeated values at the joins.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..audio.levels import normalize_peak
from ..errors import UserError


def to_samples(seconds: float, sample_rate: int) -> int:
    """Seconds → whole samples, rounded (not truncated: 0.3 s · 16 kHz must be 4800, not 4799)."""
    return int(round(float(seconds) * sample_rate))


@dataclass(frozen=True)
class Envelope:
    """Start trim, attack, sustain and release in seconds."""

    start_trim: float = 0.0
    attack: float = 0.5
    sustain: float = 0.5
    release: float = 0.5

    def __post_init__(self):
        for name, value in asdict(self).items():
            if not np.isfinite(value) or value < 0:
                raise UserError(f"envelope {name.replace('_', ' ')} must be a finite number >= 0, not {value}")

    @property
    def seconds(self) -> float:
        """Length of the enveloped note (attack + sustain + release)."""
        return self.attack + self.sustain + self.release

    def sample_counts(self, sample_rate: int) -> tuple[int, int, int, int]:
        """(trim, attack, sustain, release) in samples."""
        return tuple(to_samples(v, sample_rate) for v in (self.start_trim, self.attack, self.sustain, self.release))

    def check(self, sample_rate: int, note_length: int) -> None:
        """Refuse an envelope that needs more samples than a generated note has."""
        trim, a, s, r = self.sample_counts(sample_rate)
        if a + s + r == 0:
            raise UserError("the envelope is empty: attack + sustain + release must be > 0")
        if trim + a + s + r > note_length:
            raise UserError(
                f"the envelope (start trim {self.start_trim:g} + attack {self.attack:g} + sustain {self.sustain:g}"
                f" + release {self.release:g} = {self.start_trim + self.seconds:g} s) is longer than this model's"
                f" notes ({note_length / sample_rate:g} s); shorten it"
            )

    def curve(self, sample_rate: int) -> np.ndarray:
        _, a, s, r = self.sample_counts(sample_rate)
        return envelope_curve(a, s, r)


def envelope_curve(attack: int, sustain: int, release: int) -> np.ndarray:
    """The gain curve (float32, attack + sustain + release samples) described in the module docstring."""
    if min(attack, sustain, release) < 0:
        raise ValueError("envelope sample counts must be >= 0")
    up = np.arange(attack, dtype=np.float64) / max(attack, 1)
    down = 1.0 - np.arange(1, release + 1, dtype=np.float64) / max(release, 1)
    return np.concatenate([up, np.ones(sustain), down]).astype(np.float32)


class Mixer:
    """Overlap-add of enveloped notes into one buffer (float64, so many quiet notes sum without drift)."""

    def __init__(self, length: int):
        if length < 0:
            raise ValueError("mix length must be >= 0")
        self.buffer = np.zeros(int(length), dtype=np.float64)

    def add(self, wave: np.ndarray, onset: int, curve: np.ndarray, trim: int = 0, gain: float = 1.0) -> None:
        """Add `wave[trim : trim + len(curve)] * curve * gain` at sample `onset`."""
        n = len(curve)
        if trim < 0 or trim + n > wave.shape[-1]:
            raise ValueError(f"note of {wave.shape[-1]} samples is too short for trim {trim} + envelope {n}")
        if onset < 0 or onset + n > len(self.buffer):
            raise ValueError(f"note at {onset} (+{n}) falls outside the mix of {len(self.buffer)} samples")
        self.buffer[onset:onset + n] += wave[trim:trim + n].astype(np.float64) * curve * gain

    def result(self, peak: float | None = 0.99) -> np.ndarray:
        """The mix as float32, peak-normalised to `peak` (None keeps the raw sum)."""
        return normalize_peak(self.buffer, peak) if peak is not None else self.buffer.astype(np.float32)

