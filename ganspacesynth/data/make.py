"""`dataset make` and `dataset soundfont`: validate a source completely, then build manifest + shards."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from ..audio.spectral import SpectralConfig
from ..errors import UserError
from .folder import scan_note_folder
from .nsynth import NSynthFilter, find_tfrecords, read_json_release, read_tfrecords
from .shards import SILENCE_DB, build_dataset, crop_or_pad
from .validate import check_samples, raise_if_problems


def detect_source(path: str | os.PathLike) -> str:
    """'nsynth-json' (examples.json + audio/), 'tfrecord' (a file or a folder of *.tfrecord), or 'folder'."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"input not found: {path}")
    if path.is_file():
        return "tfrecord"
    if (path / "examples.json").is_file():
        return "nsynth-json"
    if find_tfrecords(path):
        return "tfrecord"
    return "folder"


def make_dataset(
    in_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    spectral: SpectralConfig | None = None,
    nsynth_filter: NSynthFilter | None = None,
    min_rms_db: float | None = SILENCE_DB,
    valid_fraction: float = 0.1,
    seed: int = 0,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build a training set from a note folder, an NSynth json/wav release or NSynth TFRecords.

    Everything is validated first; any problem raises InputProblems (all of them, with file names)
    before the output folder is created. NSynth audio is cropped or padded to the spectral length
    as Magenta does; folder notes must already have exactly that length.
    """
    spectral = spectral or SpectralConfig()
    filt = nsynth_filter or NSynthFilter()
    kind = detect_source(in_path)
    if out_dir is not None:
        from ..fileio import check_output_folder

        check_output_folder(out_dir, owner="dataset make", overwrite=overwrite)  # before reading anything
    filtered_out = 0
    if kind == "folder":
        notes, problems = scan_note_folder(in_path, spectral, min_rms_db)
    elif kind == "nsynth-json":
        result = read_json_release(in_path, filt)
        notes, problems, filtered_out = result.notes, result.problems, result.filtered_out
        problems += _check_files(notes, spectral, min_rms_db, Path(in_path))
    else:
        records = find_tfrecords(in_path)

        def audio_check(samples):
            return check_samples(crop_or_pad(samples, spectral.audio_length), min_rms_db)

        result = read_tfrecords(records, filt, audio_check)
        notes, problems, filtered_out = result.notes, result.problems, result.filtered_out
        seen: dict[str, int] = {}
        for note in notes:
            seen[note.id] = seen.get(note.id, 0) + 1
        problems += [f"duplicate id {i!r} ({n} records)" for i, n in seen.items() if n > 1]
    raise_if_problems(str(in_path), problems)
    if not notes:
        raise UserError(f"no notes in {in_path}" + (f" ({filtered_out} filtered out)" if filtered_out else ""))
    if log:
        log(f"{in_path}: {len(notes)} valid notes ({kind}), {filtered_out} filtered out")
    built_from = {"kind": kind, "path": str(Path(in_path).resolve()), "filtered_out": filtered_out}
    if kind != "folder":
        built_from["filter"] = filt.to_dict()
    return build_dataset(out_dir, notes, spectral, built_from=built_from, valid_fraction=valid_fraction,
                         seed=seed, workers=workers, overwrite=overwrite, progress=progress, log=log,
                         owner="dataset make")


def _check_files(notes, spectral: SpectralConfig, min_rms_db, root: Path) -> list[str]:
    """Content checks of NSynth json/wav files (resampled to the spectral rate when needed)."""
    from ..audio.io import read_audio

    problems = []
    for note in notes:
        path = Path(note.source[1])
        try:
            samples, _ = read_audio(path, sample_rate=spectral.sample_rate)
        except UserError as exc:
            problems.append(f"{path.relative_to(root)}: {exc}")
            continue
        problems += [f"{path.relative_to(root)}: {p}" for p in check_samples(samples, min_rms_db)]
    return problems


def make_soundfont_dataset(
    out_dir: str | os.PathLike,
    *,
    soundfont: str | os.PathLike | None = None,
    programs: list[int] = list(range(128)),
    pitches: list[int] = list(range(24, 85)),
    velocities: list[int] = [25, 50, 75, 100, 127],
    spectral: SpectralConfig | None = None,
    hold_fraction: float = 0.75,
    silence_db: float = SILENCE_DB,
    valid_fraction: float = 0.1,
    seed: int = 0,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Render program × pitch × velocity notes (held 3/4 of the length, then released) into a dataset.

    Silent renders (RMS below `silence_db`) are skipped and listed in the manifest.
    """
    from .soundfont import default_soundfont, soundfont_notes

    from ..fileio import check_output_folder

    check_output_folder(out_dir, owner="dataset soundfont", overwrite=overwrite)  # before rendering anything
    spectral = spectral or SpectralConfig()
    path = Path(soundfont) if soundfont else default_soundfont()
    if not path.is_file():
        raise UserError(f"SoundFont not found: {path}")
    hold = int(round(hold_fraction * spectral.audio_length))
    notes = soundfont_notes(path, programs, pitches, velocities, hold)
    if log:
        log(f"rendering {len(notes)} notes from {path.name}")
    built_from = {"kind": "soundfont", "soundfont": str(path.resolve()), "programs": programs, "pitches": pitches,
                  "velocities": velocities, "hold_samples": hold, "renderer": "tinysoundfont"}
    return build_dataset(out_dir, notes, spectral, built_from=built_from, valid_fraction=valid_fraction, seed=seed,
                         workers=workers, skip_below_db=silence_db, overwrite=overwrite, progress=progress, log=log,
                         owner="dataset soundfont")
