"""The keyboard plan: which keys an instrument covers, which of them get their own note (the roots) and the
velocity layers (see the package docstring, step 1)."""

from __future__ import annotations

import math
import numbers
from typing import Sequence

from ...conditions import check_pitches
from ...errors import UserError

MAX_VELOCITY_LAYERS = 4


def whole_number(value, message: str, lo: int, hi: int | None = None) -> int:
    """`value` as an int when it is a whole number in lo..hi (a float such as Pd's 2.0 included; never a bool or
    text), else a UserError saying `message`, not value."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) \
        and value == int(value) and lo <= value and (hi is None or value <= hi)
    if not ok:
        raise UserError(f"{message}, not {value!r}"[:200])
    return int(value)


def check_every(every) -> int:
    return whole_number(every, "--every must be a whole number >= 1 (1: a note for every key)", 1)


def check_velocity_layers(layers) -> int:
    return whole_number(layers, f"--velocity-layers must be a whole number in 1..{MAX_VELOCITY_LAYERS}", 1,
                        MAX_VELOCITY_LAYERS)


def pitch_list(spec) -> tuple[int, ...] | None:
    """The keys a spec names, sorted, checked as MIDI note numbers but not yet against a model: '24-84',
    '36,48,60-72', a list, or None (the model's whole range)."""
    if spec is None:
        return None
    if isinstance(spec, str):
        from ...data.soundfont import parse_int_list

        values = parse_int_list(spec, 0, 127, "pitch")
    else:
        try:
            values = sorted({int(v) for v in spec})
        except (TypeError, ValueError):
            raise UserError(f"pitches must be MIDI note numbers, not {spec!r}"[:200]) from None
    if not values:
        raise UserError("no pitches given")
    return tuple(values)


def parse_pitches(spec, model_pitches: Sequence[int]) -> list[int]:
    """'24-84', '36,48,60-72', a list, or None (the model's whole range), checked against the model's pitches."""
    model_pitches = sorted(int(p) for p in model_pitches)
    if not model_pitches:
        raise UserError("this model has no pitch condition: it cannot make a keyboard instrument")
    values = pitch_list(spec)
    return model_pitches if values is None else check_pitches(list(values), model_pitches)


def key_plan(pitches: Sequence[int], every: int) -> list[tuple[int, int, int]]:
    """(root, lowest key, highest key) for every `every`-th pitch; each key between the lowest and highest pitch goes
    to its nearest root (ties to the lower one)."""
    every = check_every(every)
    pitches = sorted(pitches)
    roots = pitches[::every]
    plan = []
    for i, r in enumerate(roots):
        lo = pitches[0] if i == 0 else (roots[i - 1] + r) // 2 + 1
        hi = pitches[-1] if i == len(roots) - 1 else (r + roots[i + 1]) // 2
        plan.append((r, lo, hi))
    return plan


def velocity_ranges(layers: int) -> list[tuple[int, int]]:
    """(lowest, highest) MIDI velocity of each of `layers` equal velocity layers, softest first."""
    layers = check_velocity_layers(layers)
    bounds = [round(128 * i / layers) for i in range(layers + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(layers)]
