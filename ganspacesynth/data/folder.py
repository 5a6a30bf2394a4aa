"""Folders of audio: chopping long recordings into clips, padding single sounds, scanning note folders.

Names follow the original GANSpaceSynth scripts: chop writes `<source>_<index>_<pitch>.wav`
(index counts clip positions from 1), pad writes `<source>_<pitch>.wav`, and a training folder holds
`[instrument]_[pitch].wav` files (instrument = everything before the last `_`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Callable

import numpy as np

from ..audio.io import LOSSLESS_SUBTYPES, fade, list_audio_files, read_audio, rms_db, write_wav
from ..audio.spectral import SpectralConfig
from ..errors import UserError
from ..fileio import atomic_directory, write_json
from .labels import Note
from .validate import check_samples, raise_if_problems

NOTE_NAME = re.compile(r"^(.+)_(\d+)$")
CHOP_SIDECAR = "chop.json"
PAD_SIDECAR = "pad.json"


#: chop and pad may fill one clip folder together (each replaces only its own clips with --overwrite).
CLIP_WRITERS = ("dataset chop", "dataset pad")


def parse_note_name(stem: str) -> tuple[str, int] | None:
    """'flute_2_60' → ('flute_2', 60); None when the name does not end in `_<pitch>`."""
    m = NOTE_NAME.match(stem)
    return (m.group(1), int(m.group(2))) if m else None


def source_name(path: Path, root: Path) -> str:
    """A file-name-safe identifier for an input: its relative path without suffix, folders joined by '-'."""
    rel = path.relative_to(root).with_suffix("")
    name = "-".join(rel.parts)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "audio"


def _pitch_of(samples: np.ndarray, rate: int, pitch: int | str) -> tuple[int | None, float | None]:
    if pitch == "auto":
        from .pitch import estimate_pitch

        est = estimate_pitch(samples, rate)
        return est.pitch, round(est.confidence, 3)
    return int(pitch), None


def _check_pitch_option(pitch: int | str) -> int | str:
    if pitch == "auto":
        return pitch
    try:
        value = int(pitch)
    except (TypeError, ValueError):
        raise UserError(f"--pitch must be a MIDI note 0..127 or 'auto', not {pitch!r}") from None
    if not 0 <= value <= 127:
        raise UserError(f"--pitch must be a MIDI note 0..127 or 'auto', not {pitch!r}")
    return value


def _readable_inputs(in_dir: str | os.PathLike) -> list[Path]:
    files, broken = list_audio_files(in_dir)
    raise_if_problems(str(in_dir), [f"{p.relative_to(in_dir)}: soundfile cannot read it" for p in broken])
    if not files:
        raise UserError(f"no audio files in {in_dir}")
    return files


def chop(
    in_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    length: int = 64000,
    step: int = 16000,
    sample_rate: int = 16000,
    pitch: int | str = 32,
    min_rms_db: float = -60.0,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Cut every audio file under `in_dir` into `length`-sample clips every `step` samples.

    Files are resampled (soxr) and mixed to mono; clips quieter than `min_rms_db` are skipped, and with
    pitch='auto' so are clips pYIN finds no pitch in. Returns the summary also saved as chop.json.
    """
    in_dir = Path(in_dir)
    pitch = _check_pitch_option(pitch)
    if length <= 0 or step <= 0 or sample_rate <= 0:
        raise UserError("--length, --step and --sample-rate must be positive")
    files = _readable_inputs(in_dir)
    clips, skipped = [], {"silent": 0, "unpitched": 0, "too_short": 0}
    with atomic_directory(out_dir, overwrite=overwrite, owner="dataset chop", merge=CLIP_WRITERS) as tmp:
        for path in files:
            audio, _ = read_audio(path, sample_rate=sample_rate)
            source = source_name(path, in_dir)
            starts = range(0, len(audio) - length + 1, step) if len(audio) >= length else range(0)
            if not len(starts):
                skipped["too_short"] += 1
            written = 0
            for index, start in enumerate(starts, start=1):
                clip = audio[start : start + length]
                level = rms_db(clip)
                if level < min_rms_db:
                    skipped["silent"] += 1
                    continue
                note_pitch, confidence = _pitch_of(clip, sample_rate, pitch)
                if note_pitch is None:
                    skipped["unpitched"] += 1
                    continue
                name = f"{source}_{index}_{note_pitch}.wav"
                write_wav(tmp / name, clip, sample_rate)
                clips.append(
                    {"file": name, "source": source, "index": index, "start": start, "pitch": note_pitch,
                     "pitch_confidence": confidence, "rms_db": round(level, 2)}
                )
                written += 1
            if log:
                log(f"{path.relative_to(in_dir)}: {len(audio)} samples -> {written} clips")
        summary = {
            "format": "ganspacesynth-chop",
            "format_version": 1,
            "settings": {"length": length, "step": step, "sample_rate": sample_rate, "pitch": pitch,
                         "min_rms_db": min_rms_db},
            "skipped": skipped,
            "clips": clips,
        }
        if not clips:
            raise UserError(f"no clips: every file in {in_dir} was shorter than {length} samples, silent or unpitched")
        write_json(tmp / CHOP_SIDECAR, summary)
    return summary


def pad(
    in_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    length: int = 64000,
    sample_rate: int = 16000,
    pitch: int | str = 32,
    fade_ms: float = 10.0,
    normalize: bool = True,
    min_rms_db: float = -60.0,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Pad (zeros at the end) or trim every sound under `in_dir` to `length` samples.

    The last `fade_ms` of the kept sound fade out so neither a cut nor an abrupt ending clicks;
    `normalize` scales each sound's peak to full scale (as the original pad.py did).
    """
    in_dir = Path(in_dir)
    pitch = _check_pitch_option(pitch)
    if length <= 0:
        raise UserError("--length must be positive")
    files = _readable_inputs(in_dir)
    fade_len = int(round(fade_ms * sample_rate / 1000.0))
    sounds, skipped = [], []
    used: set[str] = set()
    with atomic_directory(out_dir, overwrite=overwrite, owner="dataset pad", merge=CLIP_WRITERS) as tmp:
        for path in files:
            audio, _ = read_audio(path, sample_rate=sample_rate)
            kept = fade(audio[:length], fade_out=fade_len)
            out = np.zeros(length, np.float32)
            out[: len(kept)] = kept
            level = rms_db(out)
            if level < min_rms_db:
                skipped.append(str(path.relative_to(in_dir)))
                continue
            if normalize:
                out = out / float(np.max(np.abs(out)))
            note_pitch, confidence = _pitch_of(out, sample_rate, pitch)
            if note_pitch is None:
                skipped.append(str(path.relative_to(in_dir)))
                continue
            source = source_name(path, in_dir)
            name, k = f"{source}_{note_pitch}.wav", 1
            while name in used:  # a.wav and a.flac in one folder
                k += 1
                name = f"{source}-{k}_{note_pitch}.wav"
            used.add(name)
            write_wav(tmp / name, out, sample_rate)
            sounds.append({"file": name, "source": str(path.relative_to(in_dir)), "original_length": len(audio),
                           "trimmed": len(audio) > length, "pitch": note_pitch, "pitch_confidence": confidence})
            if log:
                log(f"{path.relative_to(in_dir)}: {len(audio)} samples -> {name}")
        if not sounds:
            raise UserError(f"no sounds written: every file in {in_dir} was silent or unpitched")
        summary = {"format": "ganspacesynth-pad", "format_version": 1,
                   "settings": {"length": length, "sample_rate": sample_rate, "pitch": pitch, "fade_ms": fade_ms,
                                "normalize": normalize, "min_rms_db": min_rms_db},
                   "skipped": skipped, "sounds": sounds}
        write_json(tmp / PAD_SIDECAR, summary)
    return summary


def scan_note_folder(
    in_dir: str | os.PathLike, spectral: SpectralConfig, min_rms_db: float | None = -60.0
) -> tuple[list[Note], list[str]]:
    """Notes of a folder of `[instrument]_[pitch].<ext>` files and every problem found in it.

    Checks each file: readable, name with a pitch (0..127), sample rate, mono, exact length, a
    full-resolution sample format, no NaN, not silent; and that no id (file stem) repeats.
    A chop.json beside the clips supplies the pitch confidence, keeps clips of one source in one split and
    names each clip's instrument after its source recording (not after the clip), so that conditions and
    per-instrument latent codes see one instrument per recording.
    """
    in_dir = Path(in_dir)
    files, broken = list_audio_files(in_dir)
    problems = [f"{p.relative_to(in_dir)}: soundfile cannot read it" for p in broken]
    sidecar: dict[str, dict] = {}
    if (in_dir / CHOP_SIDECAR).is_file():
        try:
            sidecar = {c["file"]: c for c in json.loads((in_dir / CHOP_SIDECAR).read_text())["clips"]}
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"{CHOP_SIDECAR}: unreadable ({exc})")
    import soundfile as sf

    notes, seen = [], {}
    for path in files:
        rel = str(path.relative_to(in_dir))
        parsed = parse_note_name(path.stem)
        if parsed is None:
            problems.append(f"{rel}: name has no pitch (expected [instrument]_[pitch]{path.suffix})")
            continue
        instrument, pitch = parsed
        if not 0 <= pitch <= 127:
            problems.append(f"{rel}: pitch {pitch} is not a MIDI note (0..127)")
            continue
        if path.stem in seen:
            problems.append(f"{rel}: duplicate id {path.stem!r} (also {seen[path.stem]})")
            continue
        seen[path.stem] = rel
        info = sf.info(str(path))
        errs = []
        if info.samplerate != spectral.sample_rate:
            errs.append(f"sample rate {info.samplerate} (need {spectral.sample_rate})")
        if info.channels != 1:
            errs.append(f"{info.channels} channels (need mono)")
        if info.frames != spectral.audio_length:
            errs.append(f"length {info.frames} samples (need {spectral.audio_length})")
        if info.subtype not in LOSSLESS_SUBTYPES:
            errs.append(f"sample format {info.subtype} (need 16/24/32-bit PCM or float)")
        if errs:
            problems.append(f"{rel}: " + "; ".join(errs))
            continue
        clip = sidecar.get(path.name, {})
        extra = {"file": rel}
        if clip.get("pitch_confidence") is not None:
            extra["pitch_confidence"] = clip["pitch_confidence"]
        instrument = clip.get("source") or instrument
        notes.append(Note(id=path.stem, instrument=instrument, pitch=pitch, source=("file", str(path)),
                          group=clip.get("source"), extra=extra))
    if not files and not broken:
        problems.append("no audio files found")
    # Content checks read every file: threads overlap libsndfile's I/O (it releases the GIL).
    from concurrent.futures import ThreadPoolExecutor

    def content(note: Note) -> list[str]:
        samples, _ = read_audio(note.source[1], sample_rate=None)
        return check_samples(samples, min_rms_db)

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        results = list(pool.map(content, notes))
    problems += [f"{n.extra['file']}: " + "; ".join(errs) for n, errs in zip(notes, results) if errs]
    notes = [n for n, errs in zip(notes, results) if not errs]
    return notes, problems
