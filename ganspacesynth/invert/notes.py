"""The notes of a recording as the model hears them: read at the model's rate, cut at onsets, pYIN pitch (chords
and noise refused), the given conditions checked and the searched ones' combinations."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import product
from typing import Mapping

import numpy as np

from ..errors import UserError
from .results import Skipped, Target

#: Shortest sound accepted (seconds).
MIN_SECONDS = 0.1
#: A note (or file) whose peak is below this is silence.
SILENT_DBFS = -60.0
#: pYIN's confidence (fraction of frames voiced within half a semitone of the median) below which a note is
#: unpitched. TimGM6mb notes across MIDI 24..84: 0.81 and up; white noise: 0.08.
MIN_PITCH_CONFIDENCE = 0.5
#: A note whose first harmonic within `HARMONIC_FLOOR_DB` of its strongest is above this one is a chord or an
#: interval (C-E-G reads as C two octaves down with harmonics 4, 5, 6). 140 TimGM6mb notes: 1 or 2.
MAX_LOWEST_HARMONIC = 2
HARMONIC_FLOOR_DB = 25.0
#: Combinations of searched conditions beyond which `--condition` is required.
MAX_COMBINATIONS = 64
#: An onset counts where the level of the 50 ms after it is this much above the 50 ms before.
ONSET_RISE_DB = 6.0
ONSET_WINDOW_S = 0.05
#: Onsets closer than this are one.
MIN_GAP_S = 0.1
CUT_FADE_S = 0.005


def _peak_dbfs(x: np.ndarray) -> float:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def _level_db(x: np.ndarray) -> float:
    return 10.0 * math.log10(float(np.mean(np.square(x, dtype=np.float64))) + 1e-20) if x.size else -200.0


def _frames_db(x: np.ndarray, hop: int) -> np.ndarray:
    n = max(1, len(x) // hop)
    frames = np.zeros((n, hop), np.float64)
    frames.reshape(-1)[:min(len(x), n * hop)] = x[:n * hop]
    return 10.0 * np.log10(np.mean(frames * frames, axis=1) + 1e-20)


def find_onsets(audio: np.ndarray, sample_rate: int) -> list[int]:
    """Note starts (samples) in a recording: the first sound (1 ms before the first frame within 40 dB of the
    loudest, `compose.instrument.analysis.onset_index`), plus librosa's onsets where the level rises by
    `ONSET_RISE_DB` (a new note, not a wobble in a held one), each moved to the quietest 1 ms before its rise."""
    import librosa

    from ..compose.instrument.analysis import onset_index

    window, gap, hop = int(ONSET_WINDOW_S * sample_rate), int(MIN_GAP_S * sample_rate), max(1, sample_rate // 1000)
    starts = [onset_index(audio, sample_rate)]
    for found in sorted(int(v) for v in librosa.onset.onset_detect(y=audio, sr=sample_rate, units="samples")):
        lo = max(0, found - window)
        db = _frames_db(audio[lo:found + window], hop)
        s = lo + int(np.argmin(db[:int(np.argmax(db)) + 1])) * hop
        if s - starts[-1] < gap:
            continue
        if _level_db(audio[s:s + window]) - _level_db(audio[max(0, s - window):s]) < ONSET_RISE_DB:
            continue
        starts.append(s)
    return starts


def cut_note(audio: np.ndarray, start: int, stop: int, length: int, sample_rate: int) -> np.ndarray:
    """`length` samples from `start` (the part from `stop` on silenced with a short fade), zero-padded."""
    end = min(stop, start + length, len(audio))
    note = np.zeros(length, np.float32)
    piece = np.array(audio[start:end], np.float32)
    if end < min(start + length, len(audio)):  # cut short by the next note
        fade = min(len(piece), int(CUT_FADE_S * sample_rate))
        if fade:
            piece[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    note[:len(piece)] = piece
    return note


@dataclass
class PitchAnalysis:
    pitch: int | None
    f0_hz: float | None
    confidence: float
    lowest_harmonic: int | None
    problem: str | None  # why the note has no single pitch, or None


def harmonic_levels(note: np.ndarray, sample_rate: int, f0_hz: float, count: int = 8) -> np.ndarray:
    """Level (dB below the strongest) of harmonics 1..count of `f0_hz` in the note's spectrum."""
    spec = np.abs(np.fft.rfft(note * np.hanning(len(note)))) ** 2
    freqs = np.fft.rfftfreq(len(note), 1.0 / sample_rate)
    levels = []
    for k in range(1, count + 1):
        band = np.abs(freqs - k * f0_hz) <= max(0.03 * f0_hz, 2.0 * sample_rate / len(note))
        levels.append(spec[band].sum() if band.any() and k * f0_hz < sample_rate / 2 else 0.0)
    levels = np.asarray(levels)
    return 10.0 * np.log10(levels / max(levels.max(), 1e-30) + 1e-12)


def analyse_pitch(note: np.ndarray, sample_rate: int) -> PitchAnalysis:
    """pYIN's pitch of a note (`data.pitch.estimate_pitch`) and whether it is one pitched note."""
    from ..data.pitch import estimate_pitch

    est = estimate_pitch(note, sample_rate)
    if est.pitch is None or est.confidence < MIN_PITCH_CONFIDENCE:
        return PitchAnalysis(est.pitch, est.f0_hz, est.confidence, None,
                             f"no steady pitch found (pYIN: {est.confidence:.0%} of its frames voiced on one note): "
                             f"it sounds unpitched (noise, a drum?)")
    levels = harmonic_levels(note, sample_rate, est.f0_hz)
    lowest = int(np.argmax(levels > -HARMONIC_FLOOR_DB)) + 1
    if lowest > MAX_LOWEST_HARMONIC:
        return PitchAnalysis(est.pitch, est.f0_hz, est.confidence, lowest,
                             f"it sounds like a chord or an interval (pYIN hears their common root, MIDI "
                             f"{est.pitch}, whose harmonics 1-{lowest - 1} are missing): the model plays one note "
                             f"at a time")
    return PitchAnalysis(est.pitch, est.f0_hz, est.confidence, lowest, None)


def prepare_notes(synth, audio: np.ndarray, sample_rate: int, *, source: str = "audio", pitch=None,
                  conditions: Mapping[str, object] | None = None, start: float | None = None,
                  length: float | None = None) -> tuple[list[Target], list[Skipped]]:
    """The notes of one recording (any rate, mono `[n]` or `[n, channels]`) as the model hears them, with their
    pitch; notes that cannot be inverted are returned as `Skipped` with the reason. Refuses (UserError) a sound
    shorter than `MIN_SECONDS`, silence, and bad `pitch`/`conditions`/`start`/`length` values."""
    from ..audio.io import resample

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if audio.ndim != 1:
        raise UserError(f"{source}: audio must be [samples] or [samples, channels], got shape {list(audio.shape)}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise UserError(f"{source}: the sample rate must be a whole number of Hz, not {sample_rate!r}")
    if not np.all(np.isfinite(audio)):
        raise UserError(f"{source} holds NaN or infinite samples")
    seconds = len(audio) / sample_rate
    if seconds < MIN_SECONDS:
        raise UserError(f"{source} is {seconds:.3f} s long; a note needs at least {MIN_SECONDS:g} s")
    given_pitch = None
    if pitch is not None:
        if "pitch" not in synth.conditions.names:
            raise UserError("this model has no pitch condition: give no pitch")
        given_pitch = synth.check_pitch(pitch)
    conditions = check_conditions(synth, conditions)
    rate = synth.sample_rate
    audio = resample(audio, int(sample_rate), rate)
    if _peak_dbfs(audio) < SILENT_DBFS:
        raise UserError(f"{source} is silent (peak {_peak_dbfs(audio):.0f} dBFS, below {SILENT_DBFS:g}): "
                        f"nothing to invert")
    length_samples = synth.config.spectral.audio_length
    if start is not None or length is not None:
        s = _check_seconds(0.0 if start is None else start, "start")
        n = length_samples if length is None else int(round(_check_seconds(length, "length") * rate))
        if n < MIN_SECONDS * rate:
            raise UserError(f"length must be at least {MIN_SECONDS:g} s, not {length!r}")
        first = int(round(s * rate))
        if first >= len(audio) - int(MIN_SECONDS * rate):
            raise UserError(f"{source} is {len(audio) / rate:.2f} s long: nothing from start {s:g} s on")
        cuts = [(first, first + n)]
    else:
        starts = find_onsets(audio, rate)
        cuts = [(s, starts[i + 1] if i + 1 < len(starts) else len(audio)) for i, s in enumerate(starts)]
    targets, skipped = [], []
    for first, stop in cuts:
        note = cut_note(audio, first, stop, length_samples, rate)
        at = first / rate
        if _peak_dbfs(note) < SILENT_DBFS:
            skipped.append(Skipped(source, at, f"silent (peak {_peak_dbfs(note):.0f} dBFS)"))
            continue
        if "pitch" not in synth.conditions.names:
            targets.append(Target(note, source, at, None, "none", None, None, dict(conditions)))
            continue
        heard = note[:min(len(note), stop - first)]
        analysis = analyse_pitch(heard if len(heard) >= 2048 else note, rate)
        warnings = []
        if given_pitch is None:
            problem = analysis.problem
            if problem is None and analysis.pitch not in synth.pitches:
                problem = (f"pYIN found pitch {analysis.pitch} ({analysis.f0_hz:.0f} Hz), outside this model's "
                           f"range {synth.pitches[0]}..{synth.pitches[-1]}")
            if problem is not None:
                skipped.append(Skipped(source, at, problem + "; give a pitch (--pitch) to invert it anyway"))
                continue
            note_pitch, pitch_source = analysis.pitch, "pyin"
        else:
            note_pitch, pitch_source = given_pitch, "given"
            if analysis.problem is not None:
                warnings.append(f"{analysis.problem}; inverted at the given pitch {given_pitch} anyway")
            elif analysis.pitch is not None and analysis.pitch % 12 != given_pitch % 12:
                warnings.append(f"pYIN hears MIDI {analysis.pitch}, not the given {given_pitch}")
        targets.append(Target(note, source, at, note_pitch, pitch_source, analysis.f0_hz, analysis.confidence,
                              dict(conditions), warnings))
    return targets, skipped


def _check_seconds(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a number of seconds, not {value!r}") from None
    if not math.isfinite(v) or v < 0 or v > 86400:
        raise UserError(f"{name} must be a number of seconds from 0 to 86400, not {value!r}")
    return v


def check_conditions(synth, conditions: Mapping[str, object] | None) -> dict:
    """Given conditions (not pitch) checked against the model (`ConditionSet.check_values`)."""
    return synth.conditions.check_values(conditions)


def searched_conditions(synth, given: Mapping[str, object]) -> list:
    """The categorical conditions (other than pitch) not given, as specs."""
    return [s for s in synth.config.conditions
            if s.name != "pitch" and s.kind == "categorical" and s.name not in given]


def combinations(synth, given: Mapping[str, object]) -> list[dict]:
    """Every combination of the searched conditions' classes, with the given ones (one dict each)."""
    specs = searched_conditions(synth, given)
    count = math.prod(s.size for s in specs) if specs else 1
    if count > MAX_COMBINATIONS:
        sizes = " × ".join(f"{s.size} {s.name}" for s in specs)
        raise UserError(f"this model's conditions make {count} combinations ({sizes}), more than the "
                        f"{MAX_COMBINATIONS} searched: give some with --condition NAME=VALUE")
    return [{**given, **{s.name: v for s, v in zip(specs, values)}}
            for values in product(*[s.classes for s in specs])]
