"""What a live request carries once the session has accepted it: a snapshot, its job and the state changes.

The session validates a request as a whole and takes one `Snapshot` of what the job needs (the synth and the
components loaded at that moment, z, the coefficients, the pitch, the conditions) under its lock. The job
renders from the snapshot alone, so nothing that happens later (a slider moved, another model or components
file loaded) changes a request already accepted; the `Rendered` audio it returns carries the snapshot on, so
its WAV is written at the sample rate of the model that made it. The `StateChanges` a request carries become
the session's state when it is queued (as if its pitch and coefficients had been sent first).

Also here: the checks of what a request names against what is loaded (`allowed_file`, `coefficients_for`,
`request_coeffs`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..choices import LATENT_MODE
from ..compose.hallucinate import HallucinationSettings
from ..errors import UserError
from ..ganspace.coefficients import MAX_COEFFICIENT, check_coefficients
from .performer import finite
from .worker import Rendered

NO_COMPONENTS = "no GANSpace components loaded (send /load_ganspace_components first)"
#: The records below: immutable, compared by identity (they hold arrays).
_record = dataclass(frozen=True, eq=False)


def allowed_file(name: str, what: str, allowed_dirs: Sequence[Path]) -> Path:
    """An existing file a request names (/load, /load_ganspace_components) inside one of the allowed folders
    (resolved ones); relative names are tried in each."""
    if not isinstance(name, str) or not name or "\x00" in name or len(name) > 4096:
        raise UserError(f"{what}: expected a file name")
    p = Path(name).expanduser()
    candidates = [p] if p.is_absolute() else [root / p for root in allowed_dirs]
    for cand in candidates:
        try:
            real = cand.resolve()
        except (OSError, RuntimeError, ValueError):
            continue
        if any(real.is_relative_to(root) for root in allowed_dirs):
            if real.exists():
                return real
        else:
            raise UserError(f"{what} {name!r} is outside the allowed folders "
                            f"({', '.join(str(d) for d in allowed_dirs) or 'none'}); start the "
                            f"server with --allow-dir to add one")
    raise UserError(f"{what} {name!r} not found in the allowed folders")


def coefficients_for(components, values) -> np.ndarray:
    """A client's coefficient array for `components`: `check_coefficients` (finite, within ±MAX_COEFFICIENT, at
    most one per component), padded with zeros to float32 `[K]`."""
    if components is None:
        finite(values, "coefficients", limit=MAX_COEFFICIENT)  # bad values are named before the missing file
        raise UserError(NO_COMPONENTS)
    c = check_coefficients(values, int(components.n_components))
    if c.shape[0] != 1:
        raise UserError("coefficients must be one list of numbers")
    return c[0].astype(np.float32)


def request_coeffs(components, coeffs, mode: str) -> np.ndarray | None:
    """The coefficients a generating request carries, checked: None when it carries none. Patches send their
    whole slider array with every note: without components, all zeros means "plain z" and is accepted."""
    if coeffs is None:
        return None
    if components is None:
        values = finite(coeffs, "coefficients", limit=MAX_COEFFICIENT)
        if mode == LATENT_MODE or (mode == "offset" and not np.any(values)):
            return None
        raise UserError(NO_COMPONENTS)
    return coefficients_for(components, coeffs)


@_record
class Snapshot:
    """What a request renders from, taken from the session when it was accepted (arrays are copies)."""

    synth: Any
    components: Any | None
    z: np.ndarray = field(repr=False)  # [latent_size] float32
    coeffs: np.ndarray | None = field(repr=False)  # [K] float32 in effect; None without components
    pitch: int
    conditions: Mapping[str, object] | None = None


@_record
class Result:
    """One finished request: a WAV on disk plus the samples (kept for the web page's spectrogram)."""

    id: object
    kind: str  # "note" or "hallucination"
    path: Path
    samples: int
    sample_rate: int
    wave: np.ndarray = field(repr=False)
    score: dict | None = None  # hallucinations: the score that reproduces them


@_record
class StateChanges:
    """The performer state a request sets once it is queued (None: left as it is); all validated."""

    pitch: int | None = None
    coeffs: np.ndarray | None = field(default=None, repr=False)
    steps: tuple[np.ndarray, ...] | None = field(default=None, repr=False)
    settings: HallucinationSettings | None = None
    conditions: Mapping[str, object] | None = None

    def apply(self, state) -> None:
        """Set them on a `PerformerState` (the session holds its lock)."""
        if self.pitch is not None:
            state.pitch = self.pitch
        if self.conditions is not None:
            state.conditions = dict(self.conditions)
        if self.settings is not None:
            state.settings = self.settings
        if self.steps is not None:
            state.set_steps(list(self.steps))
        if self.coeffs is not None:
            state.set_coefficients(self.coeffs)


@_record
class Request:
    """A validated request: the snapshot its job renders from and the state changes it carries."""

    source: Snapshot
    changes: StateChanges

    def run(self) -> object:
        """The job, on the worker thread."""
        raise NotImplementedError


@_record
class NoteRequest(Request):
    """One note in a synthesis mode (choices.SYNTHESIS_MODES; `z`, or no components: the latent alone)."""

    mode: str

    def run(self) -> Rendered:
        from ..audio.levels import peak_safe

        s = self.source
        if self.mode == LATENT_MODE or s.components is None:
            wave = s.synth.generate(s.z[None], pitch=s.pitch, conditions=s.conditions)[0]
        else:
            from ..ganspace.edits import synthesize

            wave = np.asarray(synthesize(s.synth, s.components, s.coeffs[None], s.pitch, mode=self.mode,
                                         z=None if self.mode == "noz" else s.z[None], conditions=s.conditions))[0]
        return Rendered(peak_safe(np.asarray(wave, dtype=np.float32)), "note", s)


@_record
class HallucinationRequest(Request):
    """A hallucination planned when it was accepted (compose/hallucinate.py `Plan`)."""

    plan: Any

    def run(self) -> Rendered:
        from ..compose.hallucinate import render

        wave, score = render(self.source.synth, self.plan, self.source.components)
        return Rendered(np.asarray(wave, dtype=np.float32), "hallucination", self.source, score)


@_record
class InstrumentRequest(Request):
    """An instrument export of the snapshot's timbre to `path` (compose/instrument); returns its ExportResult."""

    path: Path
    options: Any  # compose.instrument.InstrumentOptions

    def run(self):
        from ..compose.instrument import export_instrument

        s = self.source
        use = None if self.options.mode == LATENT_MODE else s.components
        result = export_instrument(s.synth, self.path, z=s.z[None], components=use,
                                   coefficients=None if use is None else s.coeffs, conditions=s.conditions,
                                   options=self.options)
        os.chmod(self.path, 0o644)  # like the WAVs: Pd or a sampler may run as another user
        return result


@_record
class InvertRequest(Request):
    """A recording's first note found in the snapshot's model (ganspacesynth/invert/: onsets, pYIN pitch unless
    `pitch` is given, the latent and conditions, the note's coefficients of the snapshot's components), then handed
    to `take(request, note, others)`, the session's, which makes it the state and renders it: the future's result
    is what `take` returns (an `Inverted`). The audio was read when the request was accepted."""

    audio: np.ndarray = field(repr=False)  # [n] float32, mono, at `sample_rate`
    sample_rate: int
    name: str  # the sound's name in messages
    mode: str  # the synthesis mode the client plays in (choices.SYNTHESIS_MODES)
    pitch: int | None  # given, checked; None: pYIN's
    settings: Any  # invert.InvertSettings
    take: Callable[["InvertRequest", Any, int], Any] = field(repr=False)

    def run(self):
        from .. import invert as inv

        s = self.source
        targets, skipped = inv.prepare_notes(s.synth, self.audio, self.sample_rate, source=self.name,
                                             pitch=self.pitch)
        if not targets:  # the CLI's refusal, without its option name
            raise UserError(inv.refusal(skipped).replace("give a pitch (--pitch)", "give its pitch"))
        found = inv.invert_notes(s.synth, targets[:1], settings=self.settings, components=s.components)
        return self.take(self, found.notes[0], len(targets) - 1 + len(skipped))


@_record
class Inverted:
    """A finished inversion: the note found (`invert.InvertedNote`: z, pitch, conditions, distance_db, coefficients,
    warnings), how many other notes the recording held (not inverted), what the state now holds (the pitch, the
    coefficients `[K]`, the timbre as a preset, interfaces/presets.py) and the `Result` of the note as the
    request's mode now plays it."""

    note: Any = field(repr=False)
    others: int
    pitch: int
    coeffs: np.ndarray = field(repr=False)
    preset: dict = field(repr=False)
    result: Result


#: The most notes one keyboard render may ask for (a MIDI keyboard has 128 keys).
MAX_KEYBOARD_NOTES = 128
#: Notes per generator batch in a keyboard render.
KEYBOARD_BATCH = 64


@dataclass
class Keyboard:
    """A keyboard render: one note per pitch of the snapshot's timbre, float32 `[len(pitches), samples]`."""

    pitches: tuple[int, ...]
    waves: np.ndarray = field(repr=False)
    sample_rate: int


@_record
class KeyboardRequest(Request):
    """The snapshot's timbre at each of `pitches`, in one batch (the web page's keyboard, Pd's `/keyboard`).
    `as_file`: one WAV of the notes back to back, a note's length apart, lowest pitch first, with silence for
    pitches the model lacks (a `Rendered` the session writes); otherwise a `Keyboard`."""

    mode: str
    pitches: tuple[int, ...]
    as_file: bool = False

    def run(self):
        from ..audio.levels import peak_safe

        s, n = self.source, len(self.pitches)
        z, pitches, batch = np.repeat(s.z[None], n, axis=0), list(self.pitches), min(n, KEYBOARD_BATCH)
        if self.mode == LATENT_MODE or s.components is None:
            waves = s.synth.generate(z, pitch=pitches, conditions=s.conditions, batch_size=batch)
        else:
            from ..ganspace.edits import synthesize

            waves = synthesize(s.synth, s.components, np.repeat(s.coeffs[None], n, axis=0), pitches,
                               mode=self.mode, z=None if self.mode == "noz" else z, conditions=s.conditions,
                               batch_size=batch)
        waves = np.stack([peak_safe(np.asarray(w, dtype=np.float32)) for w in waves]).astype(np.float32)
        if not self.as_file:
            return Keyboard(self.pitches, waves, int(s.synth.sample_rate))
        lo, length = self.pitches[0], waves.shape[1]
        out = np.zeros((self.pitches[-1] - lo + 1) * length, dtype=np.float32)
        for p, wave in zip(self.pitches, waves):
            out[(p - lo) * length:(p - lo + 1) * length] = wave
        return Rendered(out, "keyboard", s)


@_record
class MidiRequest(Request):
    """A MIDI file played through the snapshot's timbre (compose/midi.py, every note with the snapshot's z): the
    plan was made (and refused) when the request was accepted."""

    mode: str
    plan: Any  # compose.midi.MidiPlan

    def run(self) -> Rendered:
        from ..compose.midi import render_midi

        s = self.source
        use = None if self.mode == LATENT_MODE else s.components
        wave = render_midi(s.synth, self.plan, use, None if use is None else s.coeffs[None],
                           self.mode if use is not None else "offset", conditions=s.conditions)
        return Rendered(np.asarray(wave, dtype=np.float32), "midi", s)
