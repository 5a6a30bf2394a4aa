"""NSynth's label vocabularies and the note record every dataset source produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: NSynth `instrument_family` names, in NSynth's index order.
FAMILIES = ("bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string", "synth_lead", "vocal")
#: NSynth `instrument_source` names, in NSynth's index order.
SOURCES = ("acoustic", "electronic", "synthetic")
#: NSynth `qualities` names, in NSynth's index order (the 10-element multi-hot vector).
QUALITIES = (
    "bright",
    "dark",
    "distortion",
    "fast_decay",
    "long_release",
    "multiphonic",
    "nonlinear_env",
    "percussive",
    "reverb",
    "tempo-synced",
)

#: Label fields of a note and the vocabulary each is checked against (None: open vocabulary).
CONDITION_VOCABULARIES = {"instrument_family": FAMILIES, "instrument_source": SOURCES, "qualities": QUALITIES}


@dataclass
class Note:
    """One example: its labels and where its audio comes from.

    `source` is a small picklable description that `load_note_audio` (make.py) turns into samples:
    `("file", path)`, `("array", samples)`, `("soundfont", sf_path, program, pitch, velocity)`.
    Unknown labels are None; `extra` holds source-specific fields copied into the manifest.
    """

    id: str
    instrument: str
    pitch: int
    source: tuple
    velocity: int | None = None
    instrument_family: str | None = None
    instrument_source: str | None = None
    qualities: list[str] | None = None
    group: str | None = None  # what the train/valid split keeps together (default: instrument)
    extra: dict[str, Any] = field(default_factory=dict)

    def manifest_entry(self) -> dict[str, Any]:
        entry = {
            "id": self.id,
            "instrument": self.instrument,
            "pitch": int(self.pitch),
            "velocity": None if self.velocity is None else int(self.velocity),
            "instrument_family": self.instrument_family,
            "instrument_source": self.instrument_source,
            "qualities": None if self.qualities is None else list(self.qualities),
        }
        entry.update(self.extra)
        return entry


def qualities_from_vector(vector) -> list[str]:
    """NSynth's 10-element 0/1 vector → the names of the qualities that are set."""
    values = [int(v) for v in vector]
    if len(values) != len(QUALITIES):
        raise ValueError(f"expected {len(QUALITIES)} qualities, got {len(values)}")
    return [name for name, v in zip(QUALITIES, values) if v]


def name_at(vocabulary: tuple[str, ...], index: int | None, what: str) -> str | None:
    """NSynth integer label → its name (None stays None)."""
    if index is None:
        return None
    if not 0 <= int(index) < len(vocabulary):
        raise ValueError(f"{what} index {index} out of range 0..{len(vocabulary) - 1}")
    return vocabulary[int(index)]
