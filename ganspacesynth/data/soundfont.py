"""NSynth-like notes rendered offline from a General MIDI SoundFont with TinySoundFont.

The default SoundFont is TimGM6mb.sf2, shipped inside PyPI's pretty_midi (GPL-2, Tim Brechbill).
Rendering happens at 48 kHz and is decimated to the target rate, because TinySoundFont's own low-pass
filter is unstable near 8 kHz when run at 16 kHz and high notes alias (docs/datasets.md).
"""

from __future__ import annotations

import functools
import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import UserError
from .gm import GM_PROGRAMS
from .labels import Note

RENDER_RATE = 48000
#: Fixed gain so the loudest GM notes stay below full scale (peaks reach ~2.4 at 0 dB in FluidR3).
DEFAULT_GAIN_DB = -8.0


def default_soundfont() -> Path:
    """TimGM6mb.sf2 from the pretty_midi package."""
    try:
        import pretty_midi
    except ImportError:  # pragma: no cover - pretty_midi is a dependency
        raise UserError("the default SoundFont comes with pretty_midi: pip install pretty_midi") from None
    path = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    if not path.is_file():  # pragma: no cover
        raise UserError(f"pretty_midi's SoundFont is missing ({path}); pass --soundfont PATH")
    return path


def _tsf():
    try:
        # Only the low-level binding: the package's playback parts need pyaudio.
        from tinysoundfont import _tinysoundfont
    except ImportError:
        raise UserError("SoundFont rendering needs tinysoundfont: pip install --no-deps tinysoundfont") from None
    return _tinysoundfont


class Renderer:
    """Renders single held notes from one SoundFont, reproducibly in any order."""

    def __init__(self, soundfont: str | os.PathLike, sample_rate: int = 16000, gain_db: float = DEFAULT_GAIN_DB):
        tsf = _tsf()
        self.path = str(soundfont)
        try:
            self._sf = tsf.SoundFont(self.path)
        except Exception as exc:  # the binding raises plain RuntimeError/Exception for bad files
            raise UserError(f"cannot load SoundFont {soundfont}: {exc}") from None
        self._sf.set_output(tsf.OutputMode.Mono, RENDER_RATE, float(gain_db))
        self.sample_rate = sample_rate
        ratio = Fraction(sample_rate, RENDER_RATE)
        self._up, self._down = ratio.numerator, ratio.denominator

    def has_program(self, program: int, bank: int = 0) -> bool:
        return self._sf.get_preset_index(bank, program) >= 0

    def preset_name(self, program: int, bank: int = 0) -> str | None:
        return self._sf.get_preset_name(bank, program) if self.has_program(program, bank) else None

    def _render(self, seconds_samples: int) -> np.ndarray:
        buf = np.zeros(seconds_samples, dtype=np.float32)
        self._sf.render(buf.view(np.uint8))
        return buf

    def render(self, program: int, pitch: int, velocity: int, length: int, hold: int, bank: int = 0) -> np.ndarray:
        """`length` samples at `sample_rate`: the note is held for `hold` samples, then released."""
        from scipy.signal import resample_poly

        index = self._sf.get_preset_index(bank, program)
        if index < 0:
            raise UserError(f"SoundFont {self.path} has no program {program} in bank {bank}")
        scale = RENDER_RATE / self.sample_rate
        n_hold = int(round(hold * scale))
        n_total = int(round(length * scale))
        self._sf.note_on(index, int(pitch), float(velocity) / 127.0)
        on = self._render(n_hold)
        self._sf.note_off(index, int(pitch))
        off = self._render(n_total - n_hold)
        # reset() only starts a 10 ms release: render and drop 50 ms so nothing bleeds into the next note.
        self._sf.reset()
        self._render(RENDER_RATE // 20)
        audio = np.concatenate([on, off])
        out = resample_poly(audio, self._up, self._down).astype(np.float32)
        return out[:length]


@functools.lru_cache(maxsize=2)
def cached_renderer(soundfont: str, sample_rate: int, gain_db: float) -> Renderer:
    """One renderer per process (worker processes load the SoundFont once)."""
    return Renderer(soundfont, sample_rate, gain_db)


def parse_int_list(text: str, lo: int, hi: int, what: str) -> list[int]:
    """'0-3,7,10-11' → [0, 1, 2, 3, 7, 10, 11], each value checked to lie in lo..hi."""
    values: list[int] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part:
                a, b = part.split("-", 1)
                start, stop = int(a), int(b)
                if stop < start:
                    raise ValueError
                values.extend(range(start, stop + 1))
            else:
                values.append(int(part))
    except ValueError:
        raise UserError(f"bad {what} list {text!r} (expected e.g. '0-3,7')") from None
    bad = [v for v in values if not lo <= v <= hi]
    if bad or not values:
        raise UserError(f"{what} must be in {lo}..{hi} (got {text!r})")
    return sorted(set(values))


def soundfont_notes(
    soundfont: str | os.PathLike,
    programs: list[int],
    pitches: list[int],
    velocities: list[int],
    hold: int,
    gain_db: float = DEFAULT_GAIN_DB,
) -> list[Note]:
    """One Note per program × pitch × velocity, labelled from the GM table (instrument = program)."""
    sf_path = str(Path(soundfont).resolve())
    renderer = Renderer(sf_path)  # fails early on a bad file and tells which programs exist
    missing = [p for p in programs if not renderer.has_program(p)]
    if missing:
        raise UserError(f"SoundFont {soundfont} lacks GM programs {missing[:10]}{' …' if len(missing) > 10 else ''}")
    sf_name = Path(soundfont).stem
    notes = []
    for program in programs:
        gm = GM_PROGRAMS[program]
        instrument = f"{sf_name}-{program:03d}"
        for pitch in pitches:
            for velocity in velocities:
                notes.append(
                    Note(
                        id=f"{instrument}-{pitch:03d}-{velocity:03d}",
                        instrument=instrument,
                        pitch=pitch,
                        velocity=velocity,
                        instrument_family=gm.family,
                        instrument_source=gm.source,
                        qualities=None,
                        source=("soundfont", sf_path, program, pitch, velocity, hold, gain_db),
                        extra={"gm_program": program, "gm_name": gm.name, "pitched": gm.pitched},
                    )
                )
    return notes
