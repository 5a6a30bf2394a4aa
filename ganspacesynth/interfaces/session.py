"""The live-control session shared by the OSC server and the web page.

One `Session` owns the loaded `Synth`, optional GANSpace components, the performer's current state
(pitch, z, coefficients, hallucination steps and settings) and ONE generation worker thread fed by a
bounded queue. Transports (interfaces/osc.py, interfaces/web/) only parse requests, call the state
methods here and submit jobs; they never generate themselves.

Requests snapshot the state when they are submitted, so slider moves that arrive while a note is being
generated affect the next note, not the one in flight. Every result is written as a WAV file (atomically)
into the output folder; only the newest `keep` files are kept, so a long session uses bounded disk.
"""

from __future__ import annotations

import itertools
import os
import queue
import sys
import threading
import traceback
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import UserError
from ..compose.hallucinate import Limits

#: Largest coefficient magnitude accepted (in standard deviations of the component); far beyond any
#: musically useful value, it only keeps hostile input from producing inf/NaN activations.
MAX_COEFFICIENT = 1000.0
MAX_STEPS = 256
MAX_INTERP_STEPS = 64
#: A server refuses bigger hallucinations before generating anything (one request must not occupy the
#: generator for hours).
HALLU_LIMITS = Limits(max_notes=512, max_seconds=600.0)
#: Names clients may give exported instruments: a plain file name, never a path (written to <out_dir>/instruments/).
INSTRUMENT_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
MAX_INSTRUMENT_NAME = 64


@dataclass(frozen=True)
class HalluSettings:
    """How a hallucination is built from its key points (names of the original Hallu sequencer)."""

    interp_steps: int = 4
    sample_spacing: float = 0.2
    start_trim: float = 0.0
    attack: float = 0.05
    sustain: float = 0.3
    release: float = 0.3


@dataclass
class Result:
    """One finished request: a WAV on disk plus the samples (kept for the web page's spectrogram)."""

    id: object
    kind: str  # "note" or "hallucination"
    path: Path
    samples: int
    sample_rate: int
    wave: np.ndarray = field(repr=False)
    score: dict | None = None  # hallucinations: the score that reproduces them


def _finite(values: Sequence[float], what: str, limit: float | None = None) -> np.ndarray:
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
    v = _finite([value], "seed")[0]
    if v != round(v) or not 0 <= v < 2**32:
        raise UserError(f"seed must be a whole number in 0..{2**32 - 1}, not {value!r}"[:200])
    return int(v)


def _whole(value, what: str) -> int:
    """A whole number from a client (Pd sends 2.0), or a UserError."""
    v = _finite([value], what)[0]
    if v != round(v):
        raise UserError(f"{what} must be a whole number, not {value!r}")
    return int(v)


def _peak_safe(wave: np.ndarray) -> np.ndarray:
    """Scale a note down only if it would clip (untrained models can exceed ±1)."""
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    return wave * (0.99 / peak) if peak > 1.0 else wave


class Session:
    """State + one generation worker. Thread-safe: transports call it from their own threads."""

    def __init__(self, synth, *, components=None, allowed_dirs: Sequence[os.PathLike] = (),
                 out_dir: os.PathLike, queue_size: int = 16, keep: int = 200, seed: int = 0,
                 limits: Limits = HALLU_LIMITS, remove_out_dir: bool = False):
        """`limits` bounds every hallucination (the servers' --max-notes/--max-seconds); `remove_out_dir`: the
        output folder is the session's own temporary one, deleted by `close()`."""
        self.synth = synth
        self.limits = limits
        self.remove_out_dir = remove_out_dir
        self.components = components
        self.components_path: Path | None = None
        self.allowed_dirs = [Path(d).resolve() for d in allowed_dirs]
        self.out_dir = Path(out_dir).resolve()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.keep = max(1, int(keep))
        self._lock = threading.RLock()
        self._counter = itertools.count(1)
        self._file_counter = itertools.count(1)
        self._files: list[Path] = []
        self.last: Result | None = None
        self._reset_state(seed)
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(queue_size)))
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name="ganspacesynth-generator", daemon=True)
        self._worker.start()

    # -- facts ---------------------------------------------------------------------------------
    @property
    def num_components(self) -> int:
        return 0 if self.components is None else int(self.components.n_components)

    def describe(self) -> dict:
        """What a client needs to build its controls (JSON-friendly)."""
        with self._lock:
            synth = self.synth
            return {
                "model": str(synth.path) if synth.path else "",
                "fingerprint": synth.fingerprint or "",
                "latent_size": synth.latent_size,
                "sample_rate": synth.sample_rate,
                "samples": synth.config.spectral.audio_length,
                "pitches": list(synth.pitches),
                "components": self.num_components,
                "components_path": str(self.components_path or ""),
                "layer": getattr(self.components, "layer", "") if self.components is not None else "",
                "descriptions": self.component_descriptions(),
                "latent_directions": getattr(self.components, "z_comp", None) is not None,
                "pitch": self.pitch,
                "coefficients": self.coeffs.tolist(),
                "steps": [s.tolist() for s in self.steps],
                "step": self.step_index,
                "settings": asdict(self.settings),
                "queue_size": self._queue.maxsize,
            }

    def component_descriptions(self) -> list[str]:
        """A short label per component: its measured description when the components file has one."""
        comps = self.components
        if comps is None:
            return []
        labels = []
        descriptions = getattr(comps, "descriptions", None) or []
        for i in range(self.num_components):
            text = ""
            if i < len(descriptions) and descriptions[i]:
                d = descriptions[i]
                text = d if isinstance(d, str) else str(d.get("label") or d.get("description") or "")
            labels.append(text)
        return labels

    # -- paths ---------------------------------------------------------------------------------
    def resolve_allowed(self, name: str, what: str) -> Path:
        """An existing file inside one of the allowed folders (relative names are tried in each)."""
        if not isinstance(name, str) or not name or "\x00" in name or len(name) > 4096:
            raise UserError(f"{what}: expected a file name")
        p = Path(name).expanduser()
        candidates = [p] if p.is_absolute() else [root / p for root in self.allowed_dirs]
        for cand in candidates:
            try:
                real = cand.resolve()
            except (OSError, RuntimeError, ValueError):
                continue
            if any(real.is_relative_to(root) for root in self.allowed_dirs):
                if real.exists():
                    return real
            else:
                raise UserError(f"{what} {name!r} is outside the allowed folders "
                                f"({', '.join(str(d) for d in self.allowed_dirs) or 'none'}); start the "
                                f"server with --allow-dir to add one")
        raise UserError(f"{what} {name!r} not found in the allowed folders")

    # -- state ---------------------------------------------------------------------------------
    def _reset_state(self, seed: int = 0) -> None:
        pitches = self.synth.pitches
        self.pitch = 60 if 60 in pitches else (pitches[len(pitches) // 2] if pitches else None)
        self.z = self.synth.random_z(1, seed)[0]
        self.coeffs = np.zeros(self.num_components, dtype=np.float32)
        self.steps: list[np.ndarray] = [self.coeffs.copy()]
        self.step_index = 0
        if not hasattr(self, "settings"):
            self.settings = HalluSettings()

    def check_pitch(self, value) -> int:
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise UserError(f"pitch must be a number, not {value!r}") from None
        if not np.isfinite(f) or f != round(f):
            raise UserError(f"pitch must be a whole MIDI note number, not {value!r}")
        p = int(round(f))
        if self.synth.pitches and p not in self.synth.pitches:
            raise UserError(f"pitch {p} is outside this model's range "
                            f"{min(self.synth.pitches)}..{max(self.synth.pitches)}")
        return p

    def set_pitch(self, value) -> int:
        with self._lock:
            self.pitch = self.check_pitch(value)
            return self.pitch

    def _as_z(self, values, what: str = "z") -> np.ndarray:
        arr = _finite(values, what, limit=1e4).astype(np.float32)
        if arr.shape != (self.synth.latent_size,):
            raise UserError(f"{what} needs {self.synth.latent_size} values, got {arr.size}")
        return arr

    def randomize_z(self, seed: int | None = None) -> np.ndarray:
        """A fresh standard-normal z (GANSynth's prior); a given seed makes it reproducible."""
        if seed is not None:
            seed = check_seed(seed)
        with self._lock:
            self.z = self.synth.random_z(1, seed)[0]
            return self.z.copy()

    def set_z(self, values) -> np.ndarray:
        with self._lock:
            self.z = self._as_z(values)
            return self.z.copy()

    def slerp_z(self, t, a, b) -> np.ndarray:
        """Current z := slerp(a, b, t); a and b are z vectors or integer seeds of random ones."""
        from ..compose.interpolate import slerp

        t = float(_finite([t], "slerp amount", limit=10.0)[0])
        with self._lock:
            za, zb = (self._seed_or_z(v) for v in (a, b))
            self.z = slerp(za, zb, t).astype(np.float32)
            return self.z.copy()

    def _seed_or_z(self, value) -> np.ndarray:
        if isinstance(value, (list, tuple, np.ndarray)) and len(value) != 1:
            return self._as_z(value)
        seed = value[0] if isinstance(value, (list, tuple, np.ndarray)) else value
        return self.synth.random_z(1, check_seed(seed))[0]

    def _as_coeffs(self, values) -> np.ndarray:
        """Coefficients for the loaded components; fewer values than components are padded with 0."""
        arr = _finite(values, "coefficients", limit=MAX_COEFFICIENT).astype(np.float32)
        k = self.num_components
        if k == 0:
            raise UserError("no GANSpace components loaded (send /load_ganspace_components first)")
        if arr.size > k:
            raise UserError(f"{arr.size} coefficients but the components file has {k}")
        out = np.zeros(k, dtype=np.float32)
        out[: arr.size] = arr
        return out

    def set_coefficients(self, values) -> np.ndarray:
        """Set the whole coefficient array (also the current hallucination step's)."""
        with self._lock:
            self.coeffs = self._as_coeffs(values)
            self.steps[self.step_index] = self.coeffs.copy()
            return self.coeffs.copy()

    def set_coefficient(self, index, value) -> np.ndarray:
        with self._lock:
            k = self.num_components
            i = float(_finite([index], "component index")[0])
            if k == 0:
                raise UserError("no GANSpace components loaded (send /load_ganspace_components first)")
            if i != round(i) or not 0 <= i < k:
                raise UserError(f"component index must be a whole number in 0..{k - 1}")
            coeffs = self.coeffs.copy()
            coeffs[int(i)] = float(_finite([value], "coefficient", limit=MAX_COEFFICIENT)[0])
            return self.set_coefficients(coeffs)

    # -- hallucination steps (the Hallu sequencer's state) -------------------------------------
    def step_state(self) -> tuple[int, int, np.ndarray]:
        with self._lock:
            return self.step_index, len(self.steps), self.steps[self.step_index].copy()

    def _select(self, index: int) -> None:
        self.step_index = index
        self.coeffs = self.steps[index].copy()

    def add_step(self) -> None:
        """Append a step (a copy of the current one, so small moves from it are easy) and select it."""
        with self._lock:
            if len(self.steps) >= MAX_STEPS:
                raise UserError(f"at most {MAX_STEPS} steps")
            self.steps.append(self.steps[self.step_index].copy())
            self._select(len(self.steps) - 1)

    def remove_step(self) -> None:
        with self._lock:
            if len(self.steps) == 1:
                self.steps[0] = np.zeros_like(self.steps[0])
                self._select(0)
                return
            del self.steps[self.step_index]
            self._select(min(self.step_index, len(self.steps) - 1))

    def move_step(self, delta: int) -> None:
        with self._lock:
            self._select(int(np.clip(self.step_index + delta, 0, len(self.steps) - 1)))

    def select_step(self, index) -> None:
        with self._lock:
            i = float(_finite([index], "step")[0])
            if i != round(i) or not 0 <= i < len(self.steps):
                raise UserError(f"step must be a whole number in 0..{len(self.steps) - 1}")
            self._select(int(i))

    def check_steps(self, steps) -> list[np.ndarray]:
        """A whole step sequence, validated (nothing changes)."""
        if not isinstance(steps, (list, tuple)) or not 1 <= len(steps) <= MAX_STEPS:
            raise UserError(f"1..{MAX_STEPS} steps expected")
        return [self._as_coeffs(s) for s in steps]

    def set_steps(self, steps: Sequence[Sequence[float]]) -> None:
        """Replace the whole step sequence (the web page sends it in one request)."""
        with self._lock:
            self.steps = self.check_steps(steps)
            self._select(min(self.step_index, len(self.steps) - 1))

    @staticmethod
    def check_setting(name: str, value):
        """One hallucination setting's value, validated (nothing changes)."""
        if name not in HalluSettings.__dataclass_fields__:
            raise UserError(f"unknown setting {str(name)[:40]!r}")
        v = float(_finite([value], name.replace("_", " "))[0])
        if name == "interp_steps":
            if v != round(v) or not 0 <= v <= MAX_INTERP_STEPS:
                raise UserError(f"interp steps must be a whole number in 0..{MAX_INTERP_STEPS}")
            return int(v)
        if not 0 <= v <= 60:
            raise UserError(f"{name.replace('_', ' ')} must be between 0 and 60 seconds")
        return v

    def check_settings(self, values: dict) -> HalluSettings:
        """The current settings with `values` ({name: value}) applied, validated (nothing changes)."""
        if not isinstance(values, dict):
            raise UserError("settings must be an object")
        with self._lock:
            settings = self.settings
        return replace(settings, **{str(k): self.check_setting(str(k), v) for k, v in values.items()})

    def set_setting(self, name: str, value) -> HalluSettings:
        """Set one hallucination setting by its original name (interp_steps, sample_spacing, …)."""
        with self._lock:
            self.settings = replace(self.settings, **{name: self.check_setting(name, value)})
            return self.settings

    def set_settings(self, settings: HalluSettings) -> None:
        with self._lock:
            self.settings = settings

    # -- models --------------------------------------------------------------------------------
    def load_model(self, name: str) -> Path:
        """Replace the model (runs on the worker, between notes). Components are dropped."""
        from ..synth import Synth

        path = self.resolve_allowed(name, "model")
        synth = Synth.load(path, device=str(self.synth.device), precision=self.synth.precision)
        with self._lock:
            self.synth = synth
            self.components = None
            self.components_path = None
            self._reset_state()
        return path

    def load_components(self, name: str) -> Path:
        """Load a GANSpace components file made for the current model."""
        from ..ganspace.components import Components

        path = self.resolve_allowed(name, "components file")
        comps = Components.load(path, self.synth)
        with self._lock:
            self.components = comps
            self.components_path = path
            k = self.num_components
            self.coeffs = np.zeros(k, dtype=np.float32)
            self.steps = [self.coeffs.copy()]
            self.step_index = 0
        return path

    # -- generation ----------------------------------------------------------------------------
    def new_id(self) -> int:
        return next(self._counter)

    def note_job(self, mode: str = "offset", pitch=None, coeffs=None, z=None) -> Callable[[], tuple[np.ndarray, str]]:
        """Snapshot the state and return a job that renders one note.

        mode: `z` (the current z alone), `offset` (z plus the coefficients as an offset at the components'
        layer; plain z when no components are loaded), `latent` (z + Σ cᵢ·z_compᵢ) or `noz` (the layer
        activation rebuilt from the coefficients alone).
        """
        if mode not in ("z", "offset", "latent", "noz"):
            raise UserError(f"unknown synthesis mode {mode!r}")
        with self._lock:
            synth, comps = self.synth, self.components
            p = self.pitch if pitch is None else self.check_pitch(pitch)
            zz = self.z.copy() if z is None else self._as_z(z)
            if comps is None and mode == "offset" and coeffs is not None:
                # patches send their whole slider array with every note; all zeros means "plain z"
                if np.any(_finite(coeffs, "coefficients") != 0):
                    raise UserError("no GANSpace components loaded (send /load_ganspace_components first)")
            elif comps is None and mode in ("latent", "noz"):
                raise UserError("no GANSpace components loaded (send /load_ganspace_components first)")
            c = None if comps is None else (self.coeffs.copy() if coeffs is None else self._as_coeffs(coeffs))
        if p is None:
            raise UserError("this model has no pitch condition")

        def run() -> tuple[np.ndarray, str]:
            if mode == "z" or comps is None:
                wave = synth.generate(zz[None], pitch=p)[0]
            else:
                from ..ganspace.edits import synthesize

                wave = np.asarray(synthesize(synth, comps, c[None], p, mode=mode, z=None if mode == "noz" else zz[None]))[0]
            return _peak_safe(np.asarray(wave, dtype=np.float32)), "note"

        return run

    def hallucination_job(self, mode: str = "noz", pitch=None, count: int | None = None,
                          seed: int | None = None, *, settings: HalluSettings | None = None,
                          steps: Sequence[np.ndarray] | None = None) -> Callable[[], tuple[np.ndarray, str]]:
        """Plan a hallucination from a snapshot of the state; the returned job renders it.

        mode `noz`/`offset`/`latent`: the key points are the step sequence's coefficient arrays (`offset` and
        `latent` edit the current z); mode `z`: `count` random key points in z (from `seed`). Planning runs
        here, so impossible settings are refused at once, not after waiting in the queue. `settings` and
        `steps` (validated ones) replace the state's for this request only.
        """
        from ..compose import hallucinate as hallu

        if mode not in ("z",) + hallu.GANSPACE_MODES:
            raise UserError(f"unknown hallucination mode {str(mode)[:40]!r}")
        if seed is not None:
            seed = check_seed(seed)
        with self._lock:
            synth, comps = self.synth, self.components
            st = self.settings if settings is None else settings
            p = self.pitch if pitch is None else self.check_pitch(pitch)
            zz = self.z.copy()
            steps = np.stack(self.steps if steps is None else steps)
        if p is None:
            raise UserError("this model has no pitch condition")
        params = hallu.HallucinationParams(
            notes=2, steps=int(st.interp_steps), spacing=float(st.sample_spacing), start_trim=float(st.start_trim),
            attack=float(st.attack), sustain=float(st.sustain), release=float(st.release), pitch=p, seed=seed)
        if mode == "z":
            n = 4 if count is None else _finite([count], "count")[0]
            if n != round(n) or not 2 <= n <= MAX_STEPS:
                raise UserError(f"count must be a whole number in 2..{MAX_STEPS}")
            plan = hallu.plan_latent(synth, replace(params, notes=int(n)), self.limits)
        else:
            if comps is None:
                raise UserError("no GANSpace components loaded (send /load_ganspace_components first)")
            plan = hallu.plan_coefficients(synth, steps, None, params, mode, self.limits,
                                           base_z=None if mode == "noz" else zz[None])

        def run() -> tuple[np.ndarray, str, dict]:
            wave, score = hallu.render(synth, plan, comps)
            return np.asarray(wave, dtype=np.float32), "hallucination", score

        return run

    def submit(self, job: Callable[[], tuple[np.ndarray, str] | object], request_id=None,
               callback: Callable[[Future], None] | None = None) -> Future:
        """Queue a job for the worker; refuses with UserError when the queue is full (never blocks).

        The future's result is a `Result` for render jobs, or whatever a plain job returns.
        """
        fut: Future = Future()
        if callback is not None:
            fut.add_done_callback(callback)
        try:
            self._queue.put_nowait((job, request_id, fut))
        except queue.Full:
            raise UserError(f"busy: {self._queue.maxsize} requests are already waiting; try again") from None
        return fut

    def pending(self) -> int:
        return self._queue.qsize()

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            job, request_id, fut = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                out = job()
                if isinstance(out, tuple) and len(out) in (2, 3) and isinstance(out[0], np.ndarray):
                    out = self._store(*out[:2], request_id, score=out[2] if len(out) == 3 else None)
                fut.set_result(out)
            except UserError as exc:
                fut.set_exception(exc)
            except Exception as exc:  # the server must survive anything a request provokes
                traceback.print_exc(file=sys.stderr)
                fut.set_exception(UserError(f"internal error: {type(exc).__name__}: {exc}"))
            finally:
                del item, job, fut

    def _store(self, wave: np.ndarray, kind: str, request_id, score: dict | None = None) -> Result:
        from ..audio.io import write_wav

        if not np.all(np.isfinite(wave)):
            raise UserError("the model produced NaN or infinite audio")
        n = next(self._file_counter)
        path = self.out_dir / f"{kind}-{n:06d}.wav"
        write_wav(path, wave, self.synth.sample_rate)
        os.chmod(path, 0o644)  # mkstemp made it 0600; Pd may run as another user
        with self._lock:
            self._files.append(path)
            while len(self._files) > self.keep:
                old = self._files.pop(0)
                old.unlink(missing_ok=True)
            self.last = Result(request_id, kind, path, int(wave.shape[-1]), self.synth.sample_rate, wave, score)
            return self.last

    # -- instruments ---------------------------------------------------------------------------
    def instrument_path(self, name) -> Path:
        """`<out_dir>/instruments/<name>.sf2` for a plain name (letters, digits, '_', '-', '.'; no folders)."""
        if not isinstance(name, str):
            raise UserError("an instrument needs a name")
        stem = name[:-4] if name.lower().endswith(".sf2") else name
        if not stem or len(stem) > MAX_INSTRUMENT_NAME or stem[0] in ".-" or ".." in stem \
                or not set(stem) <= INSTRUMENT_NAME_CHARS:
            raise UserError(f"an instrument name must be a plain file name of at most {MAX_INSTRUMENT_NAME} letters, "
                            f"digits, '_', '-' or '.' (no folders), not {name[:80]!r}")
        return self.out_dir / "instruments" / f"{stem}.sf2"

    def instrument_job(self, name, mode: str = "offset", every=1, pitches=None, velocity_layers=1,
                       loop: str = "auto", coeffs=None) -> Callable[[], object]:
        """Snapshot the current timbre (z and coefficients, or `coeffs` when given) and return a job that exports it
        across the keyboard as `<out_dir>/instruments/<name>.sf2` (generate/instrument.py); the job returns its
        ExportResult.

        mode as for `note_job`: `z` (the z alone), `offset` (z plus the coefficients; plain z without
        components), `latent` or `noz`. Everything is checked here, before the job is queued; the state is not
        changed."""
        from ..compose.instrument import LOOP_CHOICES, key_plan, parse_pitches, velocity_ranges

        if mode not in ("z", "offset", "latent", "noz"):
            raise UserError(f"unknown synthesis mode {mode!r}")
        if loop not in LOOP_CHOICES:
            raise UserError(f"loop must be one of {', '.join(LOOP_CHOICES)}, not {loop!r}")
        path = self.instrument_path(name)
        every = _whole(every, "every")
        velocity_layers = _whole(velocity_layers, "velocity layers")
        with self._lock:
            synth, comps = self.synth, self.components
            zz = self.z.copy()
            if comps is None and coeffs is not None and np.any(_finite(coeffs, "coefficients") != 0):
                raise UserError("no GANSpace components loaded (send /load_ganspace_components first)")
            c = None if comps is None else (self.coeffs.copy() if coeffs is None else self._as_coeffs(coeffs))
        if comps is None and mode in ("latent", "noz"):
            raise UserError("no GANSpace components loaded (send /load_ganspace_components first)")
        key_plan(parse_pitches(pitches, synth.pitches), every)
        velocity_ranges(velocity_layers)
        use = None if mode == "z" else comps

        def run():
            result = synth.export_instrument(path, z=zz[None], components=use, coefficients=None if use is None else c,
                                             mode="offset" if mode == "z" else mode, pitches=pitches, every=every,
                                             velocity_layers=velocity_layers, loop=loop)
            os.chmod(path, 0o644)  # like the WAVs: Pd or a sampler may run as another user
            return result

        return run

    def save_path(self, name) -> Path:
        """`<out_dir>/saved/<name>.wav` for a plain name: no folders, no control characters, and short enough
        for the file system with the score's name beside it."""
        if not isinstance(name, str) or not name or any(c in name for c in "/\\") or name.startswith("."):
            raise UserError("save needs a plain file name (no folders)")
        if any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise UserError("a save name may not contain control characters (tabs, newlines, …)")
        stem = name[:-4] if name.endswith(".wav") else name
        try:
            size = len((stem + ".score.json").encode("utf-8"))
        except UnicodeEncodeError:
            raise UserError("a save name must be valid text (UTF-8)") from None
        folder = self.out_dir / "saved"
        try:
            limit = os.pathconf(self.out_dir, "PC_NAME_MAX")
        except (OSError, ValueError):
            limit = 255
        if size > limit:
            raise UserError(f"save name too long: {size - len('.score.json')} bytes; this file system allows "
                            f"{limit - len('.score.json')} (file names of at most {limit} bytes with '.score.json')")
        return folder / (stem + ".wav")

    def save_last(self, name: str, overwrite: bool = False) -> Path:
        """Copy the newest result to `<out_dir>/saved/<name>.wav` (a bare name: no folders); an existing file of
        that name is replaced only with `overwrite`."""
        import shutil

        from ..fileio import atomic_path

        dest = self.save_path(name)
        with self._lock:
            last = self.last
        if last is None or not last.path.exists():
            raise UserError("nothing to save yet: synthesize or hallucinate first")
        from ..compose.hallucinate import score_path_for

        if not overwrite and (dest.exists() or score_path_for(dest).exists()):
            raise UserError(f"{dest.name} is already saved; send /save {dest.stem} overwrite to replace it")
        with atomic_path(dest) as tmp:
            shutil.copyfile(last.path, tmp)
        os.chmod(dest, 0o644)
        if last.score is not None:
            from ..compose.hallucinate import save_score, score_path_for

            save_score(score_path_for(dest), last.score)
        return dest

    def close(self) -> list[Path]:
        """Stop the worker; with `remove_out_dir`, delete the temporary output folder, except what a client
        saved or exported there (returned, so the server can say where it is)."""
        self._stop.set()
        self._worker.join(timeout=10)
        if not self.remove_out_dir or not self.out_dir.is_dir():
            return []
        import shutil

        kept = [self.out_dir / d for d in ("saved", "instruments")
                if (self.out_dir / d).is_dir() and any((self.out_dir / d).iterdir())]
        if not kept:
            shutil.rmtree(self.out_dir, ignore_errors=True)
            return []
        for entry in self.out_dir.iterdir():
            if entry not in kept:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
        return kept
