"""NSynth without TensorFlow: the json/wav release and TFRecord files, with Magenta's filters.

Three layouts are read:
- the json/wav release: `examples.json` (id → labels) beside `audio/<id>.wav`;
- the official TFRecords (`nsynth-*.tfrecord`): one tf.train.Example per note with `note_str`,
  `pitch`, `velocity`, `audio`, `instrument_str`, `instrument_family`, `instrument_source`, `qualities`;
- the original course scripts' `data.tfrecord` + `meta.json`: records carry pitch/audio and placeholder
  family/source/qualities (the script wrote zeros, so they are treated as unknown); ids and
  instrument names come from meta.json, whose keys are in record order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..fileio import read_json
from .labels import FAMILIES, QUALITIES, SOURCES, Note, name_at, qualities_from_vector
from .tfrecord import iter_records, parse_example


@dataclass(frozen=True)
class NSynthFilter:
    """Magenta's NSynth filters: pitch range (inclusive), instrument sources and families (None: all).

    Magenta's GANSynth trained on pitches 24–84 of acoustic instruments only.
    """

    min_pitch: int = 24
    max_pitch: int = 84
    sources: tuple[str, ...] | None = ("acoustic",)
    families: tuple[str, ...] | None = None

    def __post_init__(self):
        for name, allowed in (("sources", SOURCES), ("families", FAMILIES)):
            values = getattr(self, name)
            if values is not None:
                bad = [v for v in values if v not in allowed]
                if bad:
                    raise UserError(f"unknown instrument {name[:-1]} {bad[0]!r}; choose from {', '.join(allowed)}")
        if self.min_pitch > self.max_pitch:
            raise UserError(f"empty pitch range {self.min_pitch}..{self.max_pitch}")

    def keep(self, note: Note) -> bool:
        if not self.min_pitch <= note.pitch <= self.max_pitch:
            return False
        # Notes without a label pass a label filter: the course format has no real source/family.
        if self.sources is not None and note.instrument_source is not None and note.instrument_source not in self.sources:
            return False
        if self.families is not None and note.instrument_family is not None and note.instrument_family not in self.families:
            return False
        return True

    def to_dict(self) -> dict:
        return {
            "min_pitch": self.min_pitch,
            "max_pitch": self.max_pitch,
            "sources": None if self.sources is None else list(self.sources),
            "families": None if self.families is None else list(self.families),
        }


@dataclass
class ReadResult:
    notes: list[Note] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    filtered_out: int = 0


def _note_from_labels(note_id: str, labels: dict, source: tuple) -> Note:
    def opt_int(key):
        value = labels.get(key)
        return None if value is None else int(value)

    qualities = labels.get("qualities")
    return Note(
        id=note_id,
        instrument=str(labels.get("instrument_str") or labels.get("instrument", note_id.rsplit("-", 1)[0])),
        pitch=int(labels["pitch"]),
        velocity=opt_int("velocity"),
        instrument_family=name_at(FAMILIES, opt_int("instrument_family"), "instrument_family"),
        instrument_source=name_at(SOURCES, opt_int("instrument_source"), "instrument_source"),
        qualities=None if qualities is None else qualities_from_vector(qualities),
        source=source,
    )


def read_json_release(root: str | os.PathLike, filt: NSynthFilter) -> ReadResult:
    """Notes of an NSynth json/wav release folder (`examples.json` + `audio/`)."""
    root = Path(root)
    result = ReadResult()
    examples = read_json(root / "examples.json")  # an object mapping note ids to labels
    for note_id in sorted(examples):
        labels = examples[note_id]
        wav = root / "audio" / f"{note_id}.wav"
        try:
            note = _note_from_labels(note_id, labels, ("file", str(wav)))
        except (KeyError, TypeError, ValueError) as exc:
            result.problems.append(f"examples.json: {note_id}: bad labels ({exc})")
            continue
        if not filt.keep(note):
            result.filtered_out += 1
            continue
        if not wav.is_file():
            result.problems.append(f"audio/{note_id}.wav: missing")
            continue
        result.notes.append(note)
    return result


def find_tfrecords(path: str | os.PathLike) -> list[Path]:
    """A TFRecord file, or the *.tfrecord* files in a folder (sorted)."""
    path = Path(path)
    if path.is_file():
        return [path]
    return sorted(p for p in path.glob("*.tfrecord*") if p.is_file() and not p.name.startswith("."))


def read_tfrecords(paths: list[Path], filt: NSynthFilter, audio_check=None) -> ReadResult:
    """Notes from NSynth TFRecords (official, or the course scripts' data.tfrecord + meta.json beside it).

    `audio_check(samples) -> list[str]` is called on every kept note's audio (problems are collected).
    """
    result = ReadResult()
    for path in paths:
        meta_path = path.parent / "meta.json"
        meta_ids: list[str] | None = None
        meta: dict = {}
        if meta_path.is_file():
            meta = read_json(meta_path)
            meta_ids = list(meta)
        count, course = 0, False
        for index, (offset, data) in enumerate(iter_records(path)):
            count += 1
            where = f"{path.name} record {index}"
            try:
                feats = parse_example(data)
            except ValueError as exc:
                result.problems.append(f"{where}: not a tf.train.Example ({exc})")
                continue
            if "pitch" not in feats or "audio" not in feats:
                result.problems.append(f"{where}: missing 'pitch' or 'audio' feature")
                continue
            labels: dict = {"pitch": int(feats["pitch"][0])}
            if "note_str" in feats:  # official NSynth record: everything is in the record
                note_id = feats["note_str"][0].decode("utf-8")
                for key in ("velocity", "instrument_family", "instrument_source"):
                    if key in feats and len(feats[key]):
                        labels[key] = int(feats[key][0])
                if "instrument_str" in feats:
                    labels["instrument_str"] = feats["instrument_str"][0].decode("utf-8")
                if "qualities" in feats:
                    labels["qualities"] = feats["qualities"]
            elif meta_ids is not None:  # course scripts: ids and instrument names from meta.json
                course = True
                if index >= len(meta_ids):
                    result.problems.append(f"{where}: meta.json has only {len(meta_ids)} entries")
                    continue
                note_id = meta_ids[index]
                entry = meta[note_id]
                labels["instrument_str"] = entry.get("instrument_str", note_id.rsplit("_", 1)[0])
                if int(entry.get("pitch", labels["pitch"])) != labels["pitch"]:
                    result.problems.append(f"{where}: pitch {labels['pitch']} differs from meta.json's {entry.get('pitch')}")
                    continue
            else:
                note_id = f"{path.stem}-{index:06d}"
                labels["instrument_str"] = path.stem
            try:
                note = _note_from_labels(note_id, labels, ("tfrecord", str(path), offset))
            except ValueError as exc:
                result.problems.append(f"{where}: {exc}")
                continue
            if not filt.keep(note):
                result.filtered_out += 1
                continue
            if audio_check is not None:
                result.problems.extend(f"{where} ({note_id}): {p}" for p in audio_check(feats["audio"]))
            result.notes.append(note)
        if course and count != len(meta_ids):
            result.problems.append(f"{path.name}: {count} records but meta.json lists {len(meta_ids)} notes")
    return result


def tfrecord_audio(path: str, offset: int) -> np.ndarray:
    """The `audio` feature of the record at `offset` (float32)."""
    from .tfrecord import read_record_at

    return np.asarray(parse_example(read_record_at(path, offset))["audio"], dtype=np.float32)


__all__ = ["NSynthFilter", "ReadResult", "read_json_release", "read_tfrecords", "find_tfrecords", "tfrecord_audio", "QUALITIES"]
