"""What a performer has set in a live session: pitch, z, conditions, coefficients, the Hallu step sequence and its
settings.

`PerformerState` holds values that were already checked (the session validates each request as a whole
first) and keeps them consistent: the coefficients are always the selected step's. The helpers below check
single values from clients (Pd sends whole numbers as floats) with one-line errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

from ..compose.envelope import Envelope
from ..compose.hallucinate import HallucinationSettings
from ..errors import UserError

MAX_STEPS = 256
MAX_INTERP_STEPS = 64
MAX_SETTING_SECONDS = 60.0
#: The Hallu sequencer's setting names (OSC addresses, the web page's JSON), in its order.
SETTING_NAMES = ("interp_steps", "sample_spacing", "start_trim", "attack", "sustain", "release")
#: Hallu's defaults: short notes close together, for playing rather than composing.
LIVE_SETTINGS = HallucinationSettings.make(steps=4, spacing=0.2, start_trim=0.0, attack=0.05, sustain=0.3,
                                           release=0.3)


def finite(values: Sequence[float], what: str, limit: float | None = None) -> np.ndarray:
    """Numbers from a client as float64, refusing non-numbers, NaN/inf and (with `limit`) magnitudes beyond it."""
    try:
        arr = np.asarray([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"{what} must be numbers") from None
    if not np.all(np.isfinite(arr)):
        raise UserError(f"{what} must be finite numbers")
    if limit is not None and arr.size and np.abs(arr).max() > limit:
        raise UserError(f"{what} must lie within ±{limit:g}")
    return arr


def check_seed(value) -> int:
    """A seed from a client: a whole number in 0..2**32-1 (numpy and torch both accept it)."""
    if isinstance(value, bool):
        raise UserError(f"seed must be a whole number >= 0, not {value!r}")
    v = finite([value], "seed")[0]
    if v != round(v) or not 0 <= v < 2**32:
        raise UserError(f"seed must be a whole number in 0..{2**32 - 1}, not {value!r}"[:200])
    return int(v)


def whole_in(value, what: str, lo: int, hi: int) -> int:
    """A whole number in lo..hi from a client (Pd sends 2.0), or a UserError."""
    v = float(finite([value], what)[0])
    if v != round(v) or not lo <= v <= hi:
        raise UserError(f"{what} must be a whole number in {lo}..{hi}")
    return int(v)


# -- hallucination settings by their Hallu names ----------------------------------------------------------------
def settings_dict(settings: HallucinationSettings) -> dict:
    """The settings by their Hallu names (what `/api/state` reports and the page sends back)."""
    env = settings.envelope
    return {"interp_steps": settings.steps, "sample_spacing": settings.spacing, "start_trim": env.start_trim,
            "attack": env.attack, "sustain": env.sustain, "release": env.release}


def check_setting(name: str, value) -> int | float:
    """One setting's value, by its Hallu name, validated."""
    if name not in SETTING_NAMES:
        raise UserError(f"unknown setting {str(name)[:40]!r}")
    v = float(finite([value], name.replace("_", " "))[0])
    if name == "interp_steps":
        if v != round(v) or not 0 <= v <= MAX_INTERP_STEPS:
            raise UserError(f"interp steps must be a whole number in 0..{MAX_INTERP_STEPS}")
        return int(v)
    if not 0 <= v <= MAX_SETTING_SECONDS:
        raise UserError(f"{name.replace('_', ' ')} must be between 0 and {MAX_SETTING_SECONDS:g} seconds")
    return v


def with_settings(settings: HallucinationSettings, values: dict) -> HallucinationSettings:
    """`settings` with `values` ({Hallu name: value}) applied, all validated first."""
    if not isinstance(values, dict):
        raise UserError("settings must be an object")
    named = settings_dict(settings)
    named.update({str(k): check_setting(str(k), v) for k, v in values.items()})
    envelope = Envelope(named["start_trim"], named["attack"], named["sustain"], named["release"])
    return replace(settings, steps=named["interp_steps"], spacing=named["sample_spacing"], envelope=envelope)


@dataclass
class PerformerState:
    """The current pitch, z, coefficients and step sequence. Not thread-safe: the session locks around it."""

    pitch: int | None
    z: np.ndarray
    coeffs: np.ndarray
    steps: list[np.ndarray] = field(default_factory=list)
    step_index: int = 0
    settings: HallucinationSettings = LIVE_SETTINGS
    #: The model's other conditions (instrument family, …) by name: a class name, or a frozenset of them for a
    #: multilabel one (interfaces/presets.py `check_conditions`); one left out: `ConditionSet.encode`.
    conditions: dict = field(default_factory=dict)

    @classmethod
    def start(cls, synth, n_components: int, seed: int = 0,
              settings: HallucinationSettings = LIVE_SETTINGS) -> "PerformerState":
        """Middle C (or the middle of the model's range), the seed's z, all coefficients zero, one step."""
        pitches = synth.pitches
        pitch = 60 if 60 in pitches else (pitches[len(pitches) // 2] if pitches else None)
        state = cls(pitch, synth.random_z(1, seed)[0], np.zeros(0, dtype=np.float32), settings=settings)
        state.reset_coefficients(n_components)
        return state

    def reset_coefficients(self, n_components: int) -> None:
        """All zero, one step: for newly loaded components."""
        self.coeffs = np.zeros(n_components, dtype=np.float32)
        self.steps = [self.coeffs.copy()]
        self.step_index = 0

    def set_coefficients(self, coeffs: np.ndarray) -> None:
        """The whole (checked, padded) coefficient array; it is also the selected step's."""
        self.coeffs = np.asarray(coeffs, dtype=np.float32).copy()
        self.steps[self.step_index] = self.coeffs.copy()

    def select(self, index: int) -> None:
        self.step_index = index
        self.coeffs = self.steps[index].copy()

    def add_step(self) -> None:
        """Append a step (a copy of the current one, so small moves from it are easy) and select it."""
        if len(self.steps) >= MAX_STEPS:
            raise UserError(f"at most {MAX_STEPS} steps")
        self.steps.append(self.steps[self.step_index].copy())
        self.select(len(self.steps) - 1)

    def remove_step(self) -> None:
        """Remove the selected step; the last one left is cleared instead."""
        if len(self.steps) == 1:
            self.steps[0] = np.zeros_like(self.steps[0])
            self.select(0)
            return
        del self.steps[self.step_index]
        self.select(min(self.step_index, len(self.steps) - 1))

    def move_step(self, delta: int) -> None:
        self.select(int(np.clip(self.step_index + delta, 0, len(self.steps) - 1)))

    def set_steps(self, steps: list[np.ndarray]) -> None:
        """Replace the whole (checked) step sequence, keeping the selection where it still exists."""
        self.steps = [np.asarray(s, dtype=np.float32).copy() for s in steps]
        self.select(min(self.step_index, len(self.steps) - 1))
