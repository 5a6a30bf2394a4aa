"""`InstrumentOptions`: everything about an instrument besides its timbre, validated once when it is made.

The CLI (`instrument`), the live session (OSC /export_instrument, the web page's /api/instrument) and
`Synth.export_instrument` all build one, so each option has one check and one message; what needs the model
(the pitches it has) is checked by `keyboard(model_pitches)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...choices import INSTRUMENT_LOOPS as LOOP_CHOICES, check_synthesis_mode
from ...errors import UserError
from .analysis import MAX_LOOP_ERROR
from .keyboard import check_every, check_velocity_layers, key_plan, parse_pitches, pitch_list


def check_loop(loop) -> str:
    if loop not in LOOP_CHOICES:
        raise UserError(f"loop must be one of {', '.join(LOOP_CHOICES)}, not {str(loop)[:40]!r}")
    return loop


@dataclass(frozen=True)
class InstrumentOptions:
    """How one timbre becomes an instrument. Making one checks every field (one-line UserErrors) and normalises
    whole numbers (Pd's 2.0 becomes 2) and pitch lists (sorted MIDI numbers)."""

    mode: str = "offset"  # choices.SYNTHESIS_MODES: a GANSpace mode, or `z` (the latent alone, no components)
    pitches: tuple[int, ...] | None = None  # '24-84', '36,48-72' or a list when made; None: the model's range
    every: int = 1  # a note for every n-th key; the keys between play the nearest one, transposed
    velocity_layers: int = 1
    loop: str = "auto"  # auto: sustain loops where a note has a good one; none: one-shots only
    sfz: bool = False  # also NAME.sfz and its WAVs in NAME-samples/
    name: str | None = None  # preset and sample names (default: the file name)
    batch_size: int = 8
    max_loop_error: float = MAX_LOOP_ERROR
    overwrite_samples: bool = True

    def __post_init__(self):
        check_synthesis_mode(self.mode)
        check_loop(self.loop)
        set_ = object.__setattr__  # frozen: normalised values are set once, here
        set_(self, "pitches", pitch_list(self.pitches))
        set_(self, "every", check_every(self.every))
        set_(self, "velocity_layers", check_velocity_layers(self.velocity_layers))
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise UserError(f"batch size must be a whole number >= 1, not {self.batch_size!r}")
        if isinstance(self.max_loop_error, bool) or not isinstance(self.max_loop_error, (int, float)) \
                or not math.isfinite(self.max_loop_error) or self.max_loop_error < 0:
            raise UserError(f"the largest loop match error must be a number >= 0, not {self.max_loop_error!r}")
        if self.name is not None and not isinstance(self.name, str):
            raise UserError(f"an instrument name must be text, not {self.name!r}"[:200])

    def keyboard(self, model_pitches) -> tuple[list[int], list[tuple[int, int, int]]]:
        """(the keys, the key plan) on a model with `model_pitches`: refuses keys outside its range."""
        chosen = parse_pitches(self.pitches, model_pitches)
        return chosen, key_plan(chosen, self.every)
