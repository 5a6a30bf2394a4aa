"""The part of `Session` that plays and keeps a timbre: the model's conditions, keyboard renders, MIDI files,
presets and morphs (the web page's instrument and the OSC addresses of docs/live.md use these methods alike).

`TimbreControls` is mixed into `Session` (interfaces/session.py) and uses its lock, state, `_snapshot` and
output folder; like the rest of the session, every method checks a request as a whole before anything changes.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..choices import check_synthesis_mode
from ..errors import UserError
from .presets import (MAX_PRESET_BYTES, Timbre, check_conditions, condition_specs, conditions_json, from_preset,
                      morph, to_preset)
from .requests import MAX_KEYBOARD_NOTES, KeyboardRequest, MidiRequest, StateChanges

#: The largest MIDI file a client may send (a long piano piece is well under 100 KB).
MAX_MIDI_BYTES = 256 * 1024


class TimbreControls:
    """Conditions, keyboards, MIDI files, presets and morphs of a `Session` (mixed into it)."""

    # -- conditions ------------------------------------------------------------------------------
    def timbre_facts(self) -> dict:
        """What `describe()` adds for the instrument: the model's conditions and their current values."""
        with self._lock:
            return {"conditions": condition_specs(self.synth),
                    "condition_values": conditions_json(self.state.conditions)}

    def check_conditions(self, values) -> dict:
        """A client's conditions for the loaded model (`presets.check_conditions`; nothing changes)."""
        return check_conditions(self.synth, values)

    def set_conditions(self, values) -> dict:
        """Replace all conditions (left out: the mean of its classes, or no qualities); returns them as JSON."""
        with self._lock:
            self.state.conditions = self.check_conditions(values)
            return conditions_json(self.state.conditions)

    def set_condition(self, name, value) -> dict:
        """Set one condition; "none", "" or null clears it."""
        if not isinstance(name, str):
            raise UserError("a condition needs a name")
        with self._lock:
            values = conditions_json(self.state.conditions)
            values[name] = None if value in ("none", "") else value
            return self.set_conditions(values)

    # -- keyboard and MIDI -----------------------------------------------------------------------
    def keyboard_request(self, mode: str = "offset", pitches=None, coeffs=None, conditions=None,
                         as_file: bool = False) -> KeyboardRequest:
        """The current timbre (or the coefficients and conditions given, which become the state once the request
        is queued) at each of `pitches` (default: the model's whole range), in one batch; see KeyboardRequest."""
        if pitches is None:
            pitches = list(self.synth.pitches)
        if not isinstance(pitches, (list, tuple)) or not pitches:
            raise UserError("pitches must be a non-empty list of MIDI notes")
        if len(pitches) > MAX_KEYBOARD_NOTES:
            raise UserError(f"at most {MAX_KEYBOARD_NOTES} pitches per keyboard render, not {len(pitches)}")
        checked = None if conditions is None else self.check_conditions(conditions)
        source, c = self._snapshot(mode, coeffs=coeffs, conditions=checked)
        keys = tuple(sorted(set(source.synth.check_pitches(list(pitches)))))
        return KeyboardRequest(source, StateChanges(coeffs=c, conditions=checked), mode, keys, as_file)

    def midi_request(self, data: bytes, mode: str = "offset", coeffs=None) -> MidiRequest:
        """A MIDI file's notes (its bytes) played through the current timbre: every note with the current z,
        conditions and coefficients (mode `offset`, `latent` or `z`), enveloped and mixed as `ganspacesynth midi`
        does. Planned now, so a file that is too long or has no playable notes is refused at once."""
        from ..compose.midi import MidiParams, plan_midi

        if not isinstance(data, (bytes, bytearray)) or not data:
            raise UserError("send a MIDI file (.mid)")
        if len(data) > MAX_MIDI_BYTES:
            raise UserError(f"the MIDI file is {len(data) / 1024:.0f} KB; at most {MAX_MIDI_BYTES // 1024} KB")
        if check_synthesis_mode(mode) == "noz":
            raise UserError("a MIDI file plays the current z: choose mode offset, latent or z, not noz")
        source, c = self._snapshot(mode, coeffs=coeffs)
        notes = _read_midi_bytes(bytes(data))
        plan = plan_midi(source.synth, notes, MidiParams(seed=0), self.limits)
        plan = replace(plan, z=np.repeat(source.z[None], plan.count, axis=0), timbres=source.z[None],
                       timbre_times=np.zeros(1))
        return MidiRequest(source, StateChanges(coeffs=c), mode, plan)

    # -- presets and morphs ----------------------------------------------------------------------
    def timbre(self, mode: str = "offset") -> Timbre:
        """The current timbre, played in `mode`."""
        check_synthesis_mode(mode)
        with self._lock:
            s = self.state
            return Timbre(s.z.copy(), dict(s.conditions), s.coeffs.copy(), mode)

    def preset(self, mode: str = "offset") -> dict:
        """The current timbre as a preset (interfaces/presets.py)."""
        with self._lock:
            return to_preset(self.synth, self.components, self.timbre(mode))

    def check_preset(self, data) -> Timbre:
        """A preset checked against the loaded model and components (nothing changes)."""
        with self._lock:
            return from_preset(data, self.synth, self.components)

    def apply_timbre(self, timbre: Timbre) -> dict:
        """Make a checked timbre the current one (z, conditions, coefficients: also the selected step's); returns
        it as a preset."""
        with self._lock:
            self.state.z = timbre.z.copy()
            self.state.conditions = dict(timbre.conditions)
            self.state.set_coefficients(timbre.coeffs)
            return to_preset(self.synth, self.components, timbre)

    def apply_preset(self, data) -> dict:
        """Load a preset (bit for bit: the same z and coefficients as when it was saved)."""
        with self._lock:
            return self.apply_timbre(self.check_preset(data))

    def morph(self, a, b, t) -> dict:
        """The current timbre := the one a fraction t (0..1) of the way from preset a to preset b (`presets.morph`:
        z slerped, coefficients lerped); returns it as a preset."""
        from .performer import finite

        t = float(finite([t], "morph amount")[0]) if not isinstance(t, bool) else None
        if t is None or not 0.0 <= t <= 1.0:
            raise UserError("the morph amount must be a number from 0 to 1")
        with self._lock:
            return self.apply_timbre(morph(self.check_preset(a), self.check_preset(b), t))

    def save_preset(self, name, mode: str = "offset", overwrite: bool = False) -> Path:
        """Write the current timbre to `<out_dir>/presets/<name>.json` (kept when a temporary folder is removed);
        an existing file is replaced only with `overwrite`."""
        import json

        from ..fileio import atomic_path

        path = self.output.preset_path(name)
        data = self.preset(mode)
        if path.exists() and not overwrite:
            raise UserError(f"preset {path.name} exists; save it with overwrite to replace it")
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(data, indent=1) + "\n")
        os.chmod(path, 0o644)
        return path

    def load_preset(self, name) -> tuple[Path, Timbre]:
        """Load `<out_dir>/presets/<name>.json`, or a preset file inside the allowed folders, and apply it."""
        import json

        if not isinstance(name, str) or not name:
            raise UserError("load_preset needs a preset name or file")
        try:
            path = self.output.preset_path(name)
        except UserError:
            path = None
        if path is None or not path.is_file():
            path = self.resolve_allowed(name, "preset")
        if path.stat().st_size > MAX_PRESET_BYTES:
            raise UserError(f"{path.name} is too large for a preset ({path.stat().st_size} bytes)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise UserError(f"cannot read preset {path.name}: {type(exc).__name__}") from None
        with self._lock:
            timbre = self.check_preset(data)
            self.apply_timbre(timbre)
        return path, timbre


def _read_midi_bytes(data: bytes):
    """`compose.midi.read_midi` of a client's bytes (through a temporary file, named in no message)."""
    from ..compose.midi import read_midi

    fd, name = tempfile.mkstemp(suffix=".mid", prefix="ganspacesynth-upload-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            notes = read_midi(name)
        except UserError as exc:
            raise UserError(str(exc).replace(f" {name}", " (the uploaded file)")) from None
    finally:
        os.unlink(name)
    if not notes:
        raise UserError("the MIDI file has no notes")
    return notes


__all__ = ["TimbreControls", "MAX_MIDI_BYTES"]
