"""An inversion's result folder: latents.npy, conditions.json, the WAVs, coefficients.npy and report.json (with the
command line that plays each note). The CLI writes them into `atomic_directory`'s folder."""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np

from .distance import LOSS_NOTE
from .results import Inversion, InvertedNote

REPORT_FORMAT = "ganspacesynth-inversion"
REPORT_FORMAT_VERSION = 1
CONDITIONS_FORMAT = "ganspacesynth-conditions"


def reconstruction_name(index: int, count: int) -> str:
    width = max(3, len(str(max(count - 1, 0))))
    return f"reconstruction-{index:0{width}d}.wav"


def original_name(index: int, count: int) -> str:
    width = max(3, len(str(max(count - 1, 0))))
    return f"original-{index:0{width}d}.wav"


def write_inversion(result: Inversion, folder, synth) -> list[str]:
    """Write an inversion's files into `folder` (an existing, empty folder: the CLI gives `atomic_directory`'s):
    latents.npy, conditions.json, reconstruction-<i>.wav (at the synth's output level), original-<i>.wav (the note
    as the model heard it), coefficients.npy (with components) and report.json. Returns the names written."""
    from ..audio.io import write_wav
    from ..audio.levels import peak_safe
    from ..fileio import write_json

    folder = Path(folder)
    count = len(result.notes)
    np.save(folder / "latents.npy", result.latents)
    written = ["latents.npy"]
    write_json(folder / "conditions.json", {
        "format": CONDITIONS_FORMAT, "format_version": 1,
        "notes": [{"index": i, "pitch": n.pitch, "conditions": n.conditions} for i, n in enumerate(result.notes)],
    })
    written.append("conditions.json")
    finished = synth.finish_waves(np.stack([n.reconstruction for n in result.notes]))
    for i, (note, wave) in enumerate(zip(result.notes, peak_safe(finished))):
        write_wav(folder / reconstruction_name(i, count), wave, synth.sample_rate)
        write_wav(folder / original_name(i, count), peak_safe(note.target.audio[None])[0], synth.sample_rate)
        written += [reconstruction_name(i, count), original_name(i, count)]
    comps = result.components
    if result.coefficients is not None:
        np.save(folder / "coefficients.npy", result.coefficients)
        written.append("coefficients.npy")
    notes = []
    for i, note in enumerate(result.notes):
        entry = note.report(i)
        entry.update(reconstruction=reconstruction_name(i, count), original=original_name(i, count),
                     edit=edit_command(note, i, synth, comps))
        notes.append(entry)
    from .. import __version__

    write_json(folder / "report.json", {
        "format": REPORT_FORMAT, "format_version": REPORT_FORMAT_VERSION, "ganspacesynth": __version__,
        "model": {"path": None if synth.path is None else str(synth.path), "fingerprint": synth.fingerprint},
        "components": None if comps is None else {
            "path": None if comps.path is None else str(comps.path), "layer": comps.layer,
            "n_components": comps.n_components, "model_fingerprint": comps.model_fingerprint},
        "settings": {**result.settings.to_dict(), "loss": "audio: log-mel L1 + multi-resolution STFT",
                     "why": LOSS_NOTE},
        "distance": "log-mel distance in dB (evaluate.timbre.log_mel_db: 80 mels, n_fft 1024, hop 256, each note "
                    "relative to its own maximum, floored at -80 dB; RMS over all bins); baseline_db: the best of "
                    f"{result.settings.baseline} random latents (seed {result.settings.seed}) at the same pitch and "
                    "conditions; floor_db: the recording's own Mel-IF round trip",
        "summary": result.summary(),
        "notes": notes,
        "skipped": [{"file": s.source, "start_s": round(s.start_s, 4), "reason": s.reason} for s in result.skipped],
    })
    written.append("report.json")
    return written


def edit_command(note: InvertedNote, index: int, synth, components) -> str:
    """The command line that plays the inverted note, run in the output folder: `edit` in mode offset
    (coefficients 0 = the note; others move it along the components from there), or without components
    `generate --z` (which plays every row)."""
    from ..fileio import PACKAGE_DIR

    def outside_package(path) -> bool:
        return path is not None and PACKAGE_DIR not in Path(path).resolve().parents

    model = f"--model {shlex.quote(str(Path(synth.path).resolve()))}" if outside_package(synth.path) else None
    if components is None:  # no components to edit with: generate plays every row (row `index` is this note)
        parts = ["ganspacesynth generate", model, "--z latents.npy"]
    else:
        comps = getattr(components, "path", None)
        parts = ["ganspacesynth edit", model,
                 f"--components {shlex.quote(str(Path(comps).resolve()))}" if outside_package(comps) else None,
                 "--z latents.npy", f"--z-index {index}", "--mode offset --coeffs 0"]
    if note.pitch is not None:
        parts.append(f"--pitch {note.pitch}")
    parts += [f"--condition {shlex.quote(f'{k}={v}')}" for k, v in note.conditions.items() if isinstance(v, str)]
    parts.append(f"--out note-{index}.wav" if components is not None else f"--out notes-{index}")
    return " ".join(p for p in parts if p)


def read_note_labels(path, synth, rows: int) -> tuple[list[int | None], list[dict]]:
    """The pitch and conditions of each of `rows` latents from a `conditions.json` (what `write_inversion`
    writes beside latents.npy), checked against the model: one-line UserErrors for a malformed file, another
    number of notes, or a pitch or condition the model lacks."""
    from ..errors import UserError
    from ..fileio import check_format, read_json

    data = read_json(path)
    check_format(data, CONDITIONS_FORMAT, 1, "GANSpaceSynth conditions file", path)
    notes = data.get("notes")
    if not isinstance(notes, list) or not all(isinstance(n, dict) for n in notes):
        raise UserError(f"{path}: 'notes' must be a list of objects")
    if len(notes) != rows:
        raise UserError(f"{path} lists {len(notes)} notes but the latents beside it hold {rows}")
    has_pitch = "pitch" in synth.conditions.names
    pitches, conditions = [], []
    for i, note in enumerate(notes):
        pitch, conds = note.get("pitch"), note.get("conditions", {})
        try:
            if pitch is None:
                if has_pitch:
                    raise UserError("no pitch, and this model needs one")
            elif not has_pitch:
                raise UserError(f"pitch {pitch!r}, but this model has no pitch condition")
            else:
                if isinstance(pitch, bool) or not isinstance(pitch, int):
                    raise UserError(f"the pitch must be a whole number, not {pitch!r}")
                pitch = synth.check_pitch(pitch)
            if not isinstance(conds, dict):
                raise UserError("'conditions' must be an object")
            for name, value in conds.items():
                if name == "pitch":
                    raise UserError("the pitch belongs in 'pitch', not in 'conditions'")
                synth.labels(1, synth.pitches[0] if has_pitch else None, {name: value})  # unknown names/classes
        except UserError as exc:
            raise UserError(f"{path}: note {i}: {exc}") from None
        except (TypeError, ValueError, KeyError) as exc:
            raise UserError(f"{path}: note {i}: malformed conditions ({exc})") from None
        pitches.append(pitch)
        conditions.append(dict(conds))
    return pitches, conditions
