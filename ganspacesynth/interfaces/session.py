"""The live-control session shared by the OSC server and the web page.

A `Session` joins the loaded `Synth` and optional GANSpace components with four parts:
`PerformerState` (interfaces/performer.py: pitch, z, coefficients, hallucination steps and settings), the
requests (interfaces/requests.py: one frozen request per kind), `GenerationWorker` (interfaces/worker.py: ONE
generation thread fed by a bounded queue) and `OutputFolder` (interfaces/output.py: atomic WAVs, retention,
saves). Transports (interfaces/osc.py, interfaces/web/) only parse requests and call the methods here; they
never generate themselves.

Every request is validated as a whole before anything happens. A request that generates carries a snapshot taken
when it is accepted (`_snapshot`: the synth and components, z, coefficients, pitch), so slider moves, or another
model loaded, while it waits or is being generated affect the next note, not this one; the pitch and
coefficients it carries become the state at that moment (as if sent with /pitch and /coefficients first), so
what a performer last heard is what exports, steps and later notes start from. A refused request changes
nothing.
"""

from __future__ import annotations

import itertools
import os
import threading
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..choices import (COMPONENT_MODES, LATENT_MODE, MAX_HALLUCINATION_NOTES as MAX_NOTES,
                       MAX_HALLUCINATION_SECONDS as MAX_SECONDS, check_synthesis_mode)
from ..compose.hallucinate import HallucinationSettings, Limits
from ..errors import UserError
from ..ganspace.coefficients import MAX_COEFFICIENT
from .output import OutputFolder
from .performer import (MAX_STEPS, SETTING_NAMES, PerformerState, check_seed, check_setting, finite,
                        settings_dict, whole_in, with_settings)
from .requests import (NO_COMPONENTS, HallucinationRequest, InstrumentRequest, Inverted, InvertRequest, NoteRequest,
                       Request, Result, Snapshot, StateChanges, allowed_file, coefficients_for, request_coeffs)
from .timbre import TimbreControls
from .worker import GenerationWorker, Rendered

#: A server refuses bigger hallucinations before generating anything (one request must not occupy the
#: generator for hours).
HALLU_LIMITS = Limits(max_notes=MAX_NOTES, max_seconds=MAX_SECONDS)
#: The longest recording a live session inverts (its first note is; `ganspacesynth invert` takes any length) and
#: the largest one a client may upload (the web page's drop; a 30 s 24-bit stereo WAV at 44.1 kHz is 7.6 MB).
MAX_INVERT_SECONDS = 30.0
MAX_SOUND_BYTES = 8 << 20

__all__ = ["Session", "Result", "Inverted", "HALLU_LIMITS", "MAX_COEFFICIENT", "MAX_INVERT_SECONDS", "MAX_SOUND_BYTES",
           "SETTING_NAMES", "check_seed"]


class Session(TimbreControls):
    """State + one generation worker + the output folder. Thread-safe: transports call it from their own threads.
    Conditions, keyboard renders, MIDI files, presets and morphs: interfaces/timbre.py."""

    def __init__(self, synth, *, components=None, allowed_dirs: Sequence[os.PathLike] = (),
                 out_dir: os.PathLike, queue_size: int = 16, keep: int = 200, seed: int = 0,
                 limits: Limits = HALLU_LIMITS, remove_out_dir: bool = False, invert_settings=None):
        """`limits` bounds every hallucination (the servers' --max-notes/--max-seconds); `remove_out_dir`: the
        output folder is the session's own temporary one, deleted by `close()`; `invert_settings`: how hard
        `invert_request` looks (an `invert.InvertSettings`; None: its defaults without the random-latent
        comparison, about 8 s a note of the bundled model)."""
        self.synth = synth
        self.limits = limits
        self.invert_settings = invert_settings
        self.components = components
        self.components_path: Path | None = None
        self.allowed_dirs = [Path(d).resolve() for d in allowed_dirs]
        self.output = OutputFolder(out_dir, keep, temporary=remove_out_dir)
        self._lock = threading.RLock()
        self._counter = itertools.count(1)
        self.last: Result | None = None
        self.state = PerformerState.start(synth, self.num_components, seed)
        self.worker = GenerationWorker(queue_size, self._finish)

    # -- facts ---------------------------------------------------------------------------------
    @property
    def out_dir(self) -> Path:
        return self.output.path

    @property
    def num_components(self) -> int:
        return 0 if self.components is None else int(self.components.n_components)

    # The performer's state, read-only here (the methods below change it).
    pitch = property(lambda self: self.state.pitch)
    z = property(lambda self: self.state.z)
    coeffs = property(lambda self: self.state.coeffs)
    steps = property(lambda self: self.state.steps)
    step_index = property(lambda self: self.state.step_index)
    settings = property(lambda self: self.state.settings)

    def describe(self) -> dict:
        """What a client needs to build its controls (JSON-friendly)."""
        with self._lock:
            synth, state = self.synth, self.state
            return {
                "model": str(synth.path) if synth.path else "", "fingerprint": synth.fingerprint or "",
                "latent_size": synth.latent_size, "sample_rate": synth.sample_rate,
                "samples": synth.config.spectral.audio_length, "pitches": list(synth.pitches),
                "components": self.num_components, "components_path": str(self.components_path or ""),
                "layer": getattr(self.components, "layer", "") if self.components is not None else "",
                "descriptions": self.component_descriptions(),
                "latent_directions": getattr(self.components, "z_comp", None) is not None,
                "pitch": state.pitch, "coefficients": state.coeffs.tolist(),
                "steps": [s.tolist() for s in state.steps], "step": state.step_index,
                "settings": settings_dict(state.settings), "queue_size": self.worker.queue_size,
                "variance": [] if self.components is None else self.components.var_ratio[:self.num_components].tolist(),
                **self.timbre_facts(),
            }

    def component_descriptions(self) -> list[str]:
        """A short label per component: its measured description when the components file has one."""
        found = list(getattr(self.components, "descriptions", None) or [])[:self.num_components]
        found += [None] * (self.num_components - len(found))
        return [d if isinstance(d, str) else str(d.get("label") or d.get("description") or "") if d else ""
                for d in found]

    # -- paths ---------------------------------------------------------------------------------
    def resolve_allowed(self, name: str, what: str) -> Path:
        """An existing file inside one of the allowed folders (`requests.allowed_file`)."""
        return allowed_file(name, what, self.allowed_dirs)

    def instrument_path(self, name) -> Path:
        return self.output.instrument_path(name)

    def save_path(self, name) -> Path:
        return self.output.save_path(name)

    # -- checks (nothing changes) --------------------------------------------------------------
    def check_pitch(self, value) -> int:
        """A client's pitch: `Synth.check_pitch`, the one pitch check."""
        return self.synth.check_pitch(value)

    def _as_z(self, values, what: str = "z") -> np.ndarray:
        from ..synth import MAX_LATENT

        arr = finite(values, what, limit=MAX_LATENT).astype(np.float32)
        if arr.shape != (self.synth.latent_size,):
            raise UserError(f"{what} needs {self.synth.latent_size} values, got {arr.size}")
        return arr

    def check_coefficients(self, values) -> np.ndarray:
        """A client's coefficient array for the loaded components (`requests.coefficients_for`)."""
        return coefficients_for(self.components, values)

    def check_steps(self, steps) -> list[np.ndarray]:
        """A whole step sequence, validated (nothing changes)."""
        if not isinstance(steps, (list, tuple)) or not 1 <= len(steps) <= MAX_STEPS:
            raise UserError(f"1..{MAX_STEPS} steps expected")
        return [self.check_coefficients(s) for s in steps]

    @staticmethod
    def check_setting(name: str, value):
        """One hallucination setting's value, by its Hallu name, validated (nothing changes)."""
        return check_setting(name, value)

    def check_settings(self, values: dict) -> HallucinationSettings:
        """The current settings with `values` ({Hallu name: value}) applied, validated (nothing changes)."""
        with self._lock:
            settings = self.state.settings
        return with_settings(settings, values)

    # -- state ---------------------------------------------------------------------------------
    def set_pitch(self, value) -> int:
        pitch = self.check_pitch(value)
        with self._lock:
            self.state.pitch = pitch
            return pitch

    def randomize_z(self, seed: int | None = None) -> np.ndarray:
        """A fresh standard-normal z (GANSynth's prior); a given seed makes it reproducible."""
        if seed is not None:
            seed = check_seed(seed)
        with self._lock:
            self.state.z = self.synth.random_z(1, seed)[0]
            return self.state.z.copy()

    def set_z(self, values) -> np.ndarray:
        with self._lock:
            self.state.z = self._as_z(values)
            return self.state.z.copy()

    def slerp_z(self, t, a, b) -> np.ndarray:
        """Current z := slerp(a, b, t); a and b are z vectors or integer seeds of random ones."""
        from ..compose.interpolate import slerp

        t = float(finite([t], "slerp amount", limit=10.0)[0])
        with self._lock:
            za, zb = (self._seed_or_z(v) for v in (a, b))
            self.state.z = slerp(za, zb, t).astype(np.float32)
            return self.state.z.copy()

    def _seed_or_z(self, value) -> np.ndarray:
        if isinstance(value, (list, tuple, np.ndarray)) and len(value) != 1:
            return self._as_z(value)
        seed = value[0] if isinstance(value, (list, tuple, np.ndarray)) else value
        return self.synth.random_z(1, check_seed(seed))[0]

    def set_coefficients(self, values) -> np.ndarray:
        """Set the whole coefficient array (also the current hallucination step's); fewer values than
        components are padded with zeros."""
        with self._lock:
            self.state.set_coefficients(self.check_coefficients(values))
            return self.state.coeffs.copy()

    def set_coefficient(self, index, value) -> np.ndarray:
        with self._lock:
            finite([index], "component index")
            if self.num_components == 0:
                raise UserError(NO_COMPONENTS)
            coeffs = self.state.coeffs.copy()
            coeffs[whole_in(index, "component index", 0, self.num_components - 1)] = \
                float(finite([value], "coefficient", limit=MAX_COEFFICIENT)[0])
            return self.set_coefficients(coeffs)

    # hallucination steps (the Hallu sequencer's state)
    def step_state(self) -> tuple[int, int, np.ndarray]:
        with self._lock:
            return self.state.step_index, len(self.state.steps), self.state.steps[self.state.step_index].copy()

    def add_step(self) -> None:
        with self._lock:
            self.state.add_step()

    def remove_step(self) -> None:
        with self._lock:
            self.state.remove_step()

    def move_step(self, delta: int) -> None:
        with self._lock:
            self.state.move_step(delta)

    def select_step(self, index) -> None:
        with self._lock:
            self.state.select(whole_in(index, "step", 0, len(self.state.steps) - 1))

    def set_steps(self, steps: Sequence[Sequence[float]]) -> None:
        """Replace the whole step sequence (the web page sends it in one request)."""
        with self._lock:
            self.state.set_steps(self.check_steps(steps))

    def set_setting(self, name: str, value) -> HallucinationSettings:
        """Set one hallucination setting by its Hallu name (interp_steps, sample_spacing, …)."""
        with self._lock:
            self.state.settings = with_settings(self.state.settings, {name: value})
            return self.state.settings

    def set_settings(self, settings: HallucinationSettings) -> None:
        with self._lock:
            self.state.settings = settings

    # -- models --------------------------------------------------------------------------------
    # Loading runs in the caller's thread, not on the worker: messages that follow a load (coefficients for the
    # new components, say) must see it. Queued notes keep the model they were submitted with.
    def load_model(self, name: str) -> Path:
        """Replace the model. Components are dropped and the state starts afresh (settings stay)."""
        from ..synth import Synth

        path = self.resolve_allowed(name, "model")
        synth = Synth.load(path, device=str(self.synth.device), precision=self.synth.precision)
        with self._lock:
            self.synth = synth
            self.components = None
            self.components_path = None
            self.state = PerformerState.start(synth, 0, settings=self.state.settings)
        return path

    def load_components(self, name: str) -> Path:
        """Load a GANSpace components file made for the current model; resets coefficients and steps."""
        from ..ganspace.components import Components

        path = self.resolve_allowed(name, "components file")
        synth = self.synth
        comps = Components.load(path, synth)
        with self._lock:
            if self.synth is not synth:  # another model was loaded meanwhile: these components are not for it
                raise UserError("the model changed while the components file loaded; load the components again")
            self.components = comps
            self.components_path = path
            self.state.reset_coefficients(self.num_components)
        return path

    # -- generation ----------------------------------------------------------------------------
    def new_id(self) -> int:
        return next(self._counter)

    def _snapshot(self, mode: str, pitch=None, coeffs=None, conditions=None) -> tuple[Snapshot, np.ndarray | None]:
        """Validate what every generating request names (mode, pitch, coefficients) and take the `Snapshot` its
        job renders from: (snapshot, the checked coefficients the request carries, None when it carries none).
        `conditions`: checked ones the request carries (default: the state's). The caller may hold the lock to
        read more of the state at the same moment."""
        check_synthesis_mode(mode)
        with self._lock:
            synth, comps = self.synth, self.components
            if comps is None and mode in COMPONENT_MODES:
                raise UserError(NO_COMPONENTS)
            p = self.state.pitch if pitch is None else self.check_pitch(pitch)
            c = request_coeffs(comps, coeffs, mode)
            use = None if comps is None else (self.state.coeffs.copy() if c is None else c)
            cond = dict(self.state.conditions if conditions is None else conditions)
            source = Snapshot(synth, comps, self.state.z.copy(), use, p, cond or None)
        if p is None:
            raise UserError("this model has no pitch condition")
        return source, c

    def note_request(self, mode: str = "offset", pitch=None, coeffs=None) -> NoteRequest:
        """Validate a note request and snapshot the state into it (nothing changes yet).

        mode: `z` (the current z alone), `offset` (z plus the coefficients as an offset at the components'
        layer; plain z when no components are loaded), `latent` (z + Σ cᵢ·z_compᵢ) or `noz` (the layer
        activation rebuilt from the coefficients alone).
        """
        source, c = self._snapshot(mode, pitch, coeffs)
        return NoteRequest(source, StateChanges(None if pitch is None else source.pitch, c), mode)

    def hallucination_request(self, mode: str = "noz", pitch=None, count=None, seed=None, *,
                              settings: HallucinationSettings | None = None,
                              steps: Sequence[np.ndarray] | None = None) -> HallucinationRequest:
        """Plan a hallucination from a snapshot of the state; the request renders it.

        mode `noz`/`offset`/`latent`: the key points are the step sequence's coefficient arrays (`offset` and
        `latent` edit the current z); mode `z`: `count` random key points in z (from `seed`). Planning runs
        here, so impossible settings are refused at once, not after waiting in the queue. `settings` and
        `steps` (validated ones) become the state's when the request is accepted. Every note plays with the
        snapshot's conditions (the session's, /condition), which the plan and its score carry.
        """
        from ..compose import hallucinate as hallu

        if seed is not None:
            seed = check_seed(seed)
        with self._lock:
            source, _ = self._snapshot(mode, pitch)
            st = self.state.settings if settings is None else settings
            keys = np.stack(self.state.steps if steps is None else steps)
        st = replace(st, notes=2, pitch=source.pitch, seed=seed)
        if mode == LATENT_MODE:
            n = 4 if count is None else whole_in(count, "count", 2, MAX_STEPS)
            plan = hallu.plan_latent(source.synth, replace(st, notes=n), self.limits, conditions=source.conditions)
        else:
            if source.components is None:
                raise UserError(NO_COMPONENTS)
            plan = hallu.plan_coefficients(source.synth, keys, None, st, mode, self.limits,
                                           base_z=None if mode == "noz" else source.z[None],
                                           conditions=source.conditions)
        changes = StateChanges(None if pitch is None else source.pitch, None,
                               None if steps is None else tuple(steps), settings)
        return HallucinationRequest(source, changes, plan)

    def instrument_request(self, name, mode: str = "offset", every=1, pitches=None, velocity_layers=1,
                           loop: str = "auto", coeffs=None) -> InstrumentRequest:
        """Validate an instrument export (compose/instrument `InstrumentOptions`) and snapshot the current timbre
        (z and coefficients, or `coeffs` when given) into a request that writes `<out_dir>/instruments/<name>.sf2`
        and returns its ExportResult. mode as for `note_request`."""
        from ..compose.instrument import InstrumentOptions

        options = InstrumentOptions(mode=mode, pitches=pitches, every=every, velocity_layers=velocity_layers,
                                    loop=loop)
        path = self.instrument_path(name)
        source, c = self._snapshot(mode, coeffs=coeffs)
        options.keyboard(source.synth.pitches)
        return InstrumentRequest(source, StateChanges(coeffs=c), path, options)

    def invert_request(self, sound, mode: str = "offset", pitch=None, *, name: str | None = None) -> InvertRequest:
        """Start from a recording (the `invert` feature, ganspacesynth/invert/; OSC `/invert`, the web page's drop):
        `sound` is a file name inside an allowed folder or an uploaded file's bytes (`name` names it in messages).

        Checked and read now: a file outside the allowed folders, missing, unreadable, shorter than
        `invert.MIN_SECONDS`, longer than `MAX_INVERT_SECONDS` or (bytes) larger than `MAX_SOUND_BYTES` is refused
        before anything is queued; so are a bad `mode` or `pitch`. On the worker, its first note (the first that
        can be inverted) gets its pitch (pYIN, unless `pitch` is given: silence, noise, a chord are refused there
        with the reason), its latent and conditions and, with components loaded, its coefficients; then the state
        becomes that note: pitch, z, conditions and the coefficients — in mode `noz` the note's own (the sliders
        start at its projection), in the other modes zeros (z is the note there; coefficients move it from
        there) — and the note is rendered as `mode` plays it (the newest result, as a synthesized note is). The
        future's result is an `Inverted`. A model or components file loaded meanwhile refuses it."""
        from .. import invert as inv

        source, _ = self._snapshot(mode, pitch)
        if isinstance(sound, (bytes, bytearray)):
            label = _sound_label(name)
            audio, rate = _read_sound_bytes(bytes(sound), label)
        else:
            path = self.resolve_allowed(sound, "sound file")
            label = _sound_label(sound if name is None else name)
            audio, rate = _read_sound(path, label)
        settings = self.invert_settings if self.invert_settings is not None else inv.InvertSettings(baseline=0)
        return InvertRequest(source, StateChanges(), audio, rate, label, mode,
                             None if pitch is None else source.pitch, settings, self._take_inversion)

    def _take_inversion(self, request: InvertRequest, note, others: int) -> Inverted:
        """On the worker: make an inverted note the state (see `invert_request`) and render it."""
        from .presets import Timbre, check_conditions

        s = request.source
        conditions = check_conditions(s.synth, note.conditions)
        coeffs = np.zeros(0 if s.components is None else int(s.components.n_components), np.float32)
        if request.mode == "noz" and note.coefficients is not None:
            coeffs = np.clip(note.coefficients, -MAX_COEFFICIENT, MAX_COEFFICIENT).astype(np.float32)
        pitch = s.pitch if note.pitch is None else int(note.pitch)
        with self._lock:
            if self.synth is not s.synth or self.components is not s.components:
                raise UserError("the model or its components changed while the sound was inverted; invert it again")
            self.state.pitch = pitch
            preset = self.apply_timbre(Timbre(np.asarray(note.z, np.float32), conditions, coeffs, request.mode))
            now = Snapshot(s.synth, s.components, self.state.z.copy(),
                           None if s.components is None else coeffs.copy(), pitch, dict(conditions) or None)
        result = self._finish(NoteRequest(now, StateChanges(), request.mode).run(), self.new_id())
        return Inverted(note, others, pitch, coeffs, preset, result)

    def submit(self, request: Request | Callable[[], object], request_id=None,
               callback: Callable[[Future], None] | None = None) -> Future:
        """Queue a request (refused with UserError when the queue is full; never blocks) and, once it is queued,
        apply the state changes it carries, in one step: a refused request changes nothing.

        The future's result is a `Result` for notes and hallucinations, an ExportResult for instruments, or
        whatever a plain callable returns."""
        job = request.run if isinstance(request, Request) else request
        with self._lock:
            fut = self.worker.submit(job, request_id, callback)
            if isinstance(request, Request):
                request.changes.apply(self.state)
        return fut

    def pending(self) -> int:
        return self.worker.pending()

    def _finish(self, rendered: Rendered, request_id) -> Result:
        """On the worker: write a rendered result into the output folder, at its own model's sample rate."""
        wave = rendered.wave
        if not np.all(np.isfinite(wave)):
            raise UserError("the model produced NaN or infinite audio")
        path = self.output.write(wave, rendered.kind, rendered.sample_rate)
        result = Result(request_id, rendered.kind, path, int(wave.shape[-1]), rendered.sample_rate, wave,
                        rendered.score)
        with self._lock:
            self.last = result
        return result

    def save_last(self, name: str, overwrite: bool = False) -> Path:
        """Copy the newest result to `<out_dir>/saved/<name>.wav` (a bare name: no folders); an existing file of
        that name is replaced only with `overwrite`."""
        self.output.save_path(name)  # the name is checked first
        with self._lock:
            last = self.last
        if last is None or not last.path.exists():
            raise UserError("nothing to save yet: synthesize or hallucinate first")
        return self.output.save(last.path, name, overwrite, last.score)

    def close(self) -> list[Path]:
        """Stop the worker; a temporary output folder is removed, except what a client saved or exported there
        (returned, so the server can say where it is)."""
        self.worker.close()
        return self.output.close()


def _sound_label(name) -> str:
    """A client's name of its sound (None: an upload without one), fit for one-line messages."""
    text = "".join(c for c in str(name or "") if c.isprintable()).strip()[:100]
    return text or "the uploaded file"


def _read_sound(path: Path, label: str) -> tuple[np.ndarray, int]:
    """A sound file to invert, mono at its own rate (`audio.io.read_audio`), its length checked before reading."""
    import soundfile as sf

    from ..audio.io import read_audio
    from ..invert import MIN_SECONDS

    if not path.is_file():
        raise UserError(f"{label} is not a file")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise UserError(f"cannot read {label} as a sound: {str(exc).replace(str(path), label)}"[:300]) from None
    seconds = info.frames / info.samplerate if info.samplerate else 0.0
    if seconds > MAX_INVERT_SECONDS:
        raise UserError(f"{label} is {seconds:.1f} s long; a live session inverts at most {MAX_INVERT_SECONDS:g} s "
                        f"(its first note): trim it, or use `ganspacesynth invert`")
    if seconds < MIN_SECONDS:
        raise UserError(f"{label} is {seconds:.3f} s long; a note needs at least {MIN_SECONDS:g} s")
    try:
        return read_audio(path, sample_rate=None)
    except UserError as exc:
        raise UserError(str(exc).replace(str(path), label)) from None


def _read_sound_bytes(data: bytes, label: str) -> tuple[np.ndarray, int]:
    """`_read_sound` of a client's bytes (through a temporary file, named in no message)."""
    import tempfile

    if not data:
        raise UserError("send a sound file (WAV, FLAC, OGG, AIFF, …)")
    if len(data) > MAX_SOUND_BYTES:
        raise UserError(f"{label} is {len(data) / 2**20:.1f} MB; at most {MAX_SOUND_BYTES >> 20} MB")
    fd, name = tempfile.mkstemp(prefix="ganspacesynth-sound-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return _read_sound(Path(name), label)
    finally:
        os.unlink(name)
