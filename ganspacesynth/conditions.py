"""Condition specifications: the names and vocabularies of a model's labels (pitch, instrument family, …).

A neutral module: datasets, training, the model and the evaluation classifier all describe conditions with
`ConditionSpec`, and none of them needs the others to do so. Encoding labels as vectors is
model/conditions.py's `ConditionSet`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

CONDITION_KINDS = ("categorical", "multilabel")


@dataclass(frozen=True)
class ConditionSpec:
    """One condition: `categorical` (one-hot: pitch, instrument_family, …) or `multilabel` (multi-hot: qualities)."""

    name: str
    kind: str
    classes: tuple[str, ...]

    def __post_init__(self):
        if self.kind not in CONDITION_KINDS:
            raise ValueError(f"condition {self.name}: kind must be one of {CONDITION_KINDS}, not {self.kind!r}")
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        if len(self.classes) == 0:
            raise ValueError(f"condition {self.name} has no classes")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"condition {self.name} has duplicate classes")

    @property
    def size(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "classes": list(self.classes)}


def check_pitch(value, pitches: Sequence[int]) -> int:
    """THE pitch check (Synth.check_pitch and ConditionSet use it): a whole MIDI note number (Pd sends 60.0) among
    `pitches`, the model's sorted pitch classes; any whole number when the model has no pitch condition."""
    from .errors import UserError

    if isinstance(value, bool):
        raise UserError(f"pitch must be a number, not {value!r}")
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise UserError(f"pitch must be a number, not {str(value)[:40]!r}") from None
    if not math.isfinite(f) or f != round(f):
        raise UserError(f"pitch must be a whole MIDI note number, not {value!r}")
    p = int(round(f))
    if pitches and p not in pitches:
        raise UserError(f"pitch {p} is outside this model's range {pitches[0]}..{pitches[-1]}")
    return p


def check_pitches(values: Sequence[int], pitches: Sequence[int]) -> list[int]:
    """Several pitches at once, refused together: 'pitches 10-23 are outside this model's range 24..84'."""
    from .errors import UserError

    checked = [check_pitch(v, ()) for v in values]
    outside = sorted({p for p in checked if pitches and p not in pitches})
    if outside:
        raise UserError(f"pitches {format_ranges(outside)} are outside this model's range {pitches[0]}..{pitches[-1]}")
    return checked


def format_ranges(values: Sequence[int]) -> str:
    """Sorted whole numbers as runs: [10, 11, 12, 15] -> '10-12,15'."""
    out, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            out.append(str(start) if start == v else f"{start}-{v}")
            start = None
    return ",".join(out)
