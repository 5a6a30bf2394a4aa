"""Generic conditions: labels → the vector concatenated to z at the generator input; users' condition values
checked (`ConditionSet.check_values`, the one check every interface uses) and written as JSON (`conditions_json`)."""

from __future__ import annotations

from typing import Mapping, Sequence

import torch

from ..errors import UserError
from ..conditions import ConditionSpec, check_pitch


class ConditionSet:
    """Encodes labels of several conditions into one vector, in spec order (pitch first, as GANSynth)."""

    def __init__(self, specs: Sequence[ConditionSpec]):
        self.specs = tuple(specs)
        self._lookup = {s.name: {c: i for i, c in enumerate(s.classes)} for s in self.specs}
        self._pitches = [int(c) for c in self._lookup.get("pitch", ())]

    @property
    def dim(self) -> int:
        return sum(s.size for s in self.specs)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]

    def spec(self, name: str) -> ConditionSpec:
        for s in self.specs:
            if s.name == name:
                return s
        raise UserError(f"this model has no condition {name!r} (it has: {', '.join(self.names) or 'none'})")

    def index(self, name: str, value) -> int:
        """Class index of a label value (e.g. pitch 60 → 36 for pitches 24..84)."""
        table = self._lookup.get(name)
        if table is None:
            self.spec(name)  # raises with the list of names
        if name == "pitch":
            return table[str(check_pitch(value, self._pitches))]
        key = str(value)
        if key not in table:
            spec = self.spec(name)
            raise UserError(f"{name}={value!r} is not known to this model (choose from: {', '.join(spec.classes)})")
        return table[key]

    def check_values(self, values, *, max_count: int = 64) -> dict:
        """A user's or client's conditions other than pitch ({name: value}: a preset, a score, OSC, the web page,
        `invert`), checked once at the boundary: a categorical condition takes one class name, a multilabel one a
        class name or a list of them (kept as a frozenset, which `Synth.generate` gives every note of a batch);
        None, "" or [] leaves it out (`encode`: the mean of its classes, or no qualities). Unknown names and
        classes are refused in one line that lists the known ones."""
        if values is None:
            return {}
        if not isinstance(values, Mapping) or len(values) > max_count:
            raise UserError("conditions must be an object {name: value}")
        out: dict = {}
        for name, value in values.items():
            if name == "pitch":
                raise UserError("the pitch is not one of the conditions here: the pitch comes with each note")
            spec = self.spec(str(name))  # unknown names: one line listing the model's
            if value is None or value == "" or value == []:
                continue
            if spec.kind == "categorical":
                if not isinstance(value, str):
                    raise UserError(f"condition {name} must be one class name, not {str(value)[:40]!r}")
                self.index(spec.name, value)  # unknown classes: one line listing the known ones
                out[spec.name] = value
            else:
                names = [value] if isinstance(value, str) else value
                if not isinstance(names, (list, tuple, set, frozenset)) or not all(isinstance(v, str) for v in names):
                    raise UserError(f"condition {name} must be a class name or a list of them, not {str(value)[:40]!r}")
                for v in names:
                    self.index(spec.name, v)
                out[spec.name] = frozenset(names)
        return out

    def encode(self, labels: Mapping[str, torch.Tensor], batch: int | None = None, device=None) -> torch.Tensor:
        """labels: name → LongTensor[B] of class indices (categorical) or FloatTensor[B, K] (multilabel).

        A condition left out lets one call the generator of a conditional model with pitch alone. A categorical
        one is encoded as the mean of its classes' one-hot codes (1/K each): the generator's first layer is linear
        in it, so that input lies amid the ones it was trained on, where zeros lie outside them (a model trained
        with families, given none, played some pitches an octave low, and its GANSpace directions fitted there
        moved the pitch). A multilabel one is encoded as zeros: no qualities, an input it was trained on.
        """
        parts = []
        if batch is None:
            batch = next(iter(labels.values())).shape[0] if labels else 1
        for s in self.specs:
            value = labels.get(s.name)
            if value is None and s.kind == "categorical":
                parts.append(torch.full((batch, s.size), 1.0 / s.size, device=device))
            elif value is None:
                parts.append(torch.zeros(batch, s.size, device=device))
            elif s.kind == "categorical":
                parts.append(torch.nn.functional.one_hot(value.long().to(device), s.size).float())
            else:
                parts.append(value.float().to(device).reshape(batch, s.size))
        if not parts:
            return torch.zeros(batch, 0, device=device)
        return torch.cat(parts, dim=1)


def conditions_json(conditions: Mapping[str, object]) -> dict:
    """Checked conditions as JSON: names sorted, multilabel sets as sorted lists."""
    return {k: sorted(v) if isinstance(v, (set, frozenset)) else v for k, v in sorted(conditions.items())}
