"""Hallucinations: a sequence of notes that wanders between key points, mixed into one piece.

n key points; between each consecutive pair m interpolation steps (slerp for latent vectors z, lerp for
GANSpace coefficients) → n + (n−1)·m notes. Every note gets the same envelope (envelope.py), note k
starts at sample round(k · spacing · sample_rate), the notes are summed with overlap and the mix is
peak-normalised.

Two kinds of key points share one score format (docs/composing.md):
  mode "z"                      key points are latent vectors (the original random hallucination)
  mode "noz" | "offset" | "latent"  key points are GANSpace coefficient vectors (the Hallu step sequencer),
                                 synthesised with ganspace.edits.synthesize in that mode

    params = HallucinationSettings.make(notes=3, steps=3, spacing=0.5, attack=0.1, sustain=0.3, release=0.2, seed=1)
    plan = plan_latent(synth, params)
    audio, score = render(synth, plan)
    save_score("piece.score.json", score)   # plan_from_score(synth, load_score(...)) gives the same notes

A model conditioned on more than pitch (an instrument family, say) plays every note of a plan with the plan's
`conditions` ({name: value}, as `Synth.generate` takes them): `plan_latent(..., conditions={"instrument_family":
"guitar"})`. They are checked once, when planning (`ConditionSet.check_values`), and recorded in the score.
"""

from __future__ import annotations

import math
import os
import secrets
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..choices import GANSPACE_MODES, LATENT_MODE, SYNTHESIS_MODES
from ..errors import UserError
from ..fileio import check_format, read_json, write_json
from ..model.conditions import conditions_json
from .envelope import Envelope, Mixer, envelope_curve, to_samples
from .interpolate import interpolate

SCORE_FORMAT = "ganspacesynth-hallucination"
SCORE_VERSION = 1
MODES = SYNTHESIS_MODES


@dataclass(frozen=True)
class Limits:
    """The largest request accepted; checked before any generation (servers pass their own)."""

    max_notes: int = 1024
    max_seconds: float = 1200.0

    def check(self, notes: int, seconds: float) -> None:
        if notes > self.max_notes:
            raise UserError(f"{notes} notes requested; the limit is {self.max_notes} (raise it with --max-notes)")
        if seconds > self.max_seconds:
            raise UserError(
                f"the piece would last {seconds:.1f} s; the limit is {self.max_seconds:g} s (raise it with --max-seconds)"
            )


@dataclass(frozen=True)
class HallucinationSettings:
    """Everything a hallucination needs besides its key points: how many, how they are joined, and how each
    note is shaped (all times in seconds). The CLI, the live servers and scores all use this one record;
    `make` takes the envelope's fields flat, as the options and score files spell them."""

    notes: int = 3            # key points (random ones in mode "z")
    steps: int = 3            # interpolation steps between consecutive key points
    spacing: float = 0.5      # seconds between note onsets
    envelope: Envelope = Envelope()
    pitch: int = 32           # MIDI pitch (mode "z"; the default for steps without one)
    seed: int | None = None   # None: a fresh random seed, recorded in the score

    def __post_init__(self):
        if not isinstance(self.notes, int) or self.notes < 1:
            raise UserError(f"the number of key points must be an integer >= 1, not {self.notes!r}")
        if not isinstance(self.steps, int) or self.steps < 0:
            raise UserError(f"interpolation steps must be an integer >= 0, not {self.steps!r}")
        if not math.isfinite(self.spacing) or self.spacing < 0:
            raise UserError(f"spacing must be a finite number of seconds >= 0, not {self.spacing!r}")
        if not isinstance(self.envelope, Envelope):
            raise TypeError("envelope must be an Envelope")

    @classmethod
    def make(cls, *, start_trim: float = 0.0, attack: float = 0.5, sustain: float = 0.5, release: float = 0.5,
             **fields) -> "HallucinationSettings":
        """Settings with the envelope given field by field (validated by `Envelope`)."""
        return cls(envelope=Envelope(start_trim, attack, sustain, release), **fields)

    def timing(self) -> dict[str, float]:
        """Spacing and the envelope's fields by their score names (spacing, start_trim, attack, sustain, release)."""
        return {"spacing": float(self.spacing), **{k: float(v) for k, v in asdict(self.envelope).items()}}

    @property
    def note_count(self) -> int:
        return note_count(self.notes, self.steps)

    @property
    def seconds(self) -> float:
        """Length of the piece: last onset plus one enveloped note."""
        return (self.note_count - 1) * self.spacing + self.envelope.seconds


#: The original tool's envelope and spacing, made for GANSynth's 4 s notes; shorter models get them scaled.
REFERENCE_NOTE_SECONDS = 4.0
REFERENCE_TIMES = {"spacing": 0.5, "attack": 0.5, "sustain": 0.5, "release": 0.5}
REFERENCE_PITCH = 32


def default_times(synth) -> dict[str, float]:
    """Spacing, attack, sustain and release that fit the model's notes: the original's 0.5 s each for 4 s
    notes, scaled down in proportion for shorter ones (0.128 s each for the 1.024 s tiny notes)."""
    note_seconds = synth.config.spectral.audio_length / synth.sample_rate
    scale = min(1.0, note_seconds / REFERENCE_NOTE_SECONDS)
    return {name: round(value * scale, 4) for name, value in REFERENCE_TIMES.items()}


def default_pitch(synth) -> int:
    """The original's pitch 32 where the model has it, else the middle of the model's range."""
    pitches = list(synth.pitches)
    if not pitches or REFERENCE_PITCH in pitches:
        return REFERENCE_PITCH
    return int(pitches[len(pitches) // 2])


def score_mode(score: dict) -> str:
    """The mode `plan_from_score` reads a score (or steps file) in: its `mode`, else `noz` when the steps hold
    coefficients and `z` (latent vectors) otherwise."""
    mode = score.get("mode") if isinstance(score, dict) else None
    if mode is not None:
        return mode
    return "noz" if _first_has(score, "coeffs") else LATENT_MODE


def note_count(key_points: int, steps: int) -> int:
    return key_points + (key_points - 1) * steps


def note_onsets(count: int, spacing: float, sample_rate: int) -> np.ndarray:
    """Onset sample of each note: round(k · spacing · rate), computed per note so errors never accumulate."""
    return np.array([to_samples(k * spacing, sample_rate) for k in range(count)], dtype=np.int64)


@dataclass
class Plan:
    """Per-note inputs of a hallucination, ready to render."""

    mode: str
    params: HallucinationSettings
    keys: np.ndarray                 # [n, D] key points (z or coefficients)
    key_pitches: list[int]
    pitches: list[int]               # per note
    z: np.ndarray | None = None      # [N, latent] per note (mode z), else None
    coeffs: np.ndarray | None = None  # [N, k] per note (GANSpace modes)
    base_z: np.ndarray | None = None  # [latent]: the timbre edited in modes offset/latent
    conditions: dict = field(default_factory=dict)  # the model's other conditions, the same for every note

    @property
    def count(self) -> int:
        return len(self.pitches)


# -- planning --------------------------------------------------------------------------------------
def _path(keys: np.ndarray, steps: int, method: str) -> np.ndarray:
    """Key points with `steps` interpolated points strictly between each consecutive pair."""
    rows = [keys[0][None]]
    for a, b in zip(keys[:-1], keys[1:]):
        if steps:
            rows.append(interpolate(a, b, steps + 2, method)[1:-1])
        rows.append(b[None])
    return np.concatenate(rows).astype(np.float32)


def _pitch_path(key_pitches: Sequence[int], steps: int) -> list[int]:
    """A note between key points i and i+1 keeps key point i's pitch."""
    out: list[int] = []
    for i, p in enumerate(key_pitches):
        out.append(int(p))
        if i < len(key_pitches) - 1:
            out.extend([int(p)] * steps)
    return out


def _check_common(synth, params: HallucinationSettings, pitches: Sequence[int], limits: Limits) -> None:
    """Every refusal that needs no generation: limits, envelope length, pitches."""
    limits.check(params.note_count, params.seconds)
    params.envelope.check(synth.sample_rate, synth.config.spectral.audio_length)
    for p in sorted(set(pitches)):
        synth.check_pitch(p)


def resolve_seed(seed: int | None) -> int:
    return int(secrets.randbelow(2**31)) if seed is None else int(seed)


def plan_latent(synth, params: HallucinationSettings, limits: Limits = Limits(),
                keys: np.ndarray | None = None, key_pitches: Sequence[int] | None = None, *,
                conditions: Mapping[str, object] | None = None) -> Plan:
    """Plan a latent hallucination: `params.notes` random z (from the seed) or the given `keys`, slerped.
    `conditions`: the model's other conditions for every note (`ConditionSet.check_values`)."""
    conditions = synth.conditions.check_values(conditions)
    if keys is not None:
        keys = synth.check_z(keys)
        params = replace(params, notes=len(keys))
    key_pitches = [int(params.pitch)] * params.notes if key_pitches is None else [int(p) for p in key_pitches]
    if len(key_pitches) != params.notes:
        raise UserError(f"{len(key_pitches)} pitches for {params.notes} key points")
    _check_common(synth, params, key_pitches, limits)
    params = replace(params, seed=resolve_seed(params.seed))
    if keys is None:
        keys = synth.random_z(params.notes, params.seed)
    z = _path(keys, params.steps, "slerp")
    return Plan(LATENT_MODE, params, keys, key_pitches, _pitch_path(key_pitches, params.steps), z=z,
                conditions=conditions)


def plan_coefficients(synth, coeffs, pitches: Sequence[int] | None, params: HallucinationSettings,
                      mode: str = "noz", limits: Limits = Limits(), base_z: np.ndarray | None = None, *,
                      conditions: Mapping[str, object] | None = None) -> Plan:
    """Plan a GANSpace hallucination: coefficient key points [n, k] (one pitch each), lerped.

    Modes offset and latent edit one timbre, `base_z` (default: the seed's first random z). `conditions`: the
    model's other conditions for every note (`ConditionSet.check_values`).
    """
    if mode not in GANSPACE_MODES:
        raise UserError(f"mode must be one of {', '.join(GANSPACE_MODES)}, not {mode!r}")
    conditions = synth.conditions.check_values(conditions)
    from ..ganspace.coefficients import check_coefficients

    if np.ndim(coeffs) != 2 or np.shape(coeffs)[0] < 1 or np.shape(coeffs)[1] < 1:
        raise UserError(f"coefficients must be a non-empty list of equally long vectors, got shape "
                        f"{list(np.shape(coeffs))}")
    keys = check_coefficients(coeffs).astype(np.float32)
    params = replace(params, notes=keys.shape[0])
    key_pitches = [int(params.pitch)] * params.notes if pitches is None else [int(p) for p in pitches]
    if len(key_pitches) != params.notes:
        raise UserError(f"{len(key_pitches)} pitches for {params.notes} steps")
    _check_common(synth, params, key_pitches, limits)
    params = replace(params, seed=resolve_seed(params.seed))
    if mode != "noz":
        base_z = synth.random_z(1, params.seed)[0] if base_z is None else synth.check_z(base_z)[0]
    else:
        base_z = None
    coeff_path = _path(keys, params.steps, "lerp")
    return Plan(mode, params, keys, key_pitches, _pitch_path(key_pitches, params.steps), coeffs=coeff_path,
                base_z=base_z, conditions=conditions)


# -- rendering -------------------------------------------------------------------------------------
def _generate(synth, plan: Plan, components, sl: slice, batch_size: int) -> np.ndarray:
    pitches = plan.pitches[sl]
    conditions = plan.conditions or None  # checked when planned; the same for every note
    if plan.mode == LATENT_MODE:
        return synth.generate(plan.z[sl], pitch=pitches, conditions=conditions, batch_size=batch_size)
    from ..ganspace.edits import synthesize

    coeffs = plan.coeffs[sl]
    z = None if plan.base_z is None else np.repeat(plan.base_z[None], len(coeffs), axis=0)
    return synthesize(synth, components, coeffs, pitches, mode=plan.mode, z=z, conditions=conditions,
                      batch_size=batch_size)


def render(synth, plan: Plan, components=None, *, batch_size: int = 16, peak: float = 0.99,
           progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, dict]:
    """Generate every note (in batches), envelope and overlap-add them; return (audio float32 [S], score)."""
    if plan.mode != LATENT_MODE:
        if components is None:
            raise UserError(f"mode {plan.mode!r} needs a components file (--components)")
        k = components.n_components
        if plan.keys.shape[1] > k:  # refused here, before any note is generated
            raise UserError(f"steps have {plan.keys.shape[1]} coefficients but the components file has only {k}")
        components.check_model(synth, check_fingerprint=False)
        if plan.mode == "latent" and components.z_comp is None:
            raise UserError("mode 'latent' needs components with latent directions (z_comp); use noz or offset")
    sr = synth.sample_rate
    env = plan.params.envelope
    env.check(sr, synth.config.spectral.audio_length)
    trim, a, s, r = env.sample_counts(sr)
    curve = envelope_curve(a, s, r)
    onsets = note_onsets(plan.count, plan.params.spacing, sr)
    mixer = Mixer(int(onsets[-1]) + len(curve))
    batch_size = max(1, int(batch_size))
    for start in range(0, plan.count, batch_size):
        sl = slice(start, min(plan.count, start + batch_size))
        waves = _generate(synth, plan, components, sl, batch_size)
        for wave, onset in zip(waves, onsets[sl]):
            mixer.add(wave, int(onset), curve, trim)
        if progress is not None:
            progress(sl.stop, plan.count)
    return mixer.result(peak), score_from_plan(plan, synth, components)


# -- scores ----------------------------------------------------------------------------------------
_ENVELOPE_FIELDS = ("spacing", "start_trim", "attack", "sustain", "release")
_SCORE_KEYS = {"format", "format_version", "mode", "steps", "interpolation_steps", "seed", "z", "pitch",
               "conditions", "model", "components", "note_count", "seconds", *_ENVELOPE_FIELDS}


def _floats(values: np.ndarray) -> list[float]:
    # float32 → Python float is exact, and JSON's repr round-trips float64 exactly: re-renders are bit-identical.
    return [float(v) for v in np.asarray(values, dtype=np.float32)]


def score_from_plan(plan: Plan, synth=None, components=None) -> dict:
    """The JSON-able score: every parameter, the key points and the seed (docs/composing.md)."""
    p = plan.params
    key = "z" if plan.mode == LATENT_MODE else "coeffs"
    score: dict[str, Any] = {
        "format": SCORE_FORMAT,
        "format_version": SCORE_VERSION,
        "mode": plan.mode,
        "steps": [{key: _floats(k), "pitch": int(pt)} for k, pt in zip(plan.keys, plan.key_pitches)],
        "interpolation_steps": p.steps,
        **p.timing(),
        "seed": p.seed,
    }
    if plan.base_z is not None:
        score["z"] = _floats(plan.base_z)
    if plan.conditions:  # written only when there are some: scores without stay readable by older versions
        score["conditions"] = conditions_json(plan.conditions)
    score["note_count"] = plan.count
    score["seconds"] = p.seconds
    if synth is not None:
        score["model"] = {"fingerprint": synth.fingerprint, "sample_rate": synth.sample_rate,
                          "audio_length": synth.config.spectral.audio_length}
        if getattr(synth, "path", None) is not None:  # so that `--from` finds it again
            score["model"]["path"] = str(Path(synth.path).resolve())
    if components is not None:
        path = getattr(components, "path", None)
        score["components"] = {"file": None if path is None else Path(path).name, "layer": components.layer,
                               "n_components": components.n_components,
                               "model_fingerprint": components.model_fingerprint}
        if path is not None:
            score["components"]["path"] = str(Path(path).resolve())
    return score


def _number(score: dict, name: str, default, kind=float):
    value = score.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise UserError(f"score field {name!r} must be {'an integer' if kind is int else 'a number'}, not {value!r}")
    return kind(value)


def plan_from_score(synth, score: dict, limits: Limits = Limits(),
                    defaults: HallucinationSettings = HallucinationSettings(), *,
                    conditions: Mapping[str, object] | None = None) -> Plan:
    """Rebuild the plan a score describes; fields it lacks come from `defaults` (Pd/OSC send partial scores) and
    `conditions` (for a score without its own `conditions`; a score made before they were recorded has none)."""
    if not isinstance(score, dict):
        raise UserError("a score must be a JSON object")
    unknown = set(score) - _SCORE_KEYS
    if unknown:
        raise UserError(f"unknown score fields {sorted(unknown)}; known: {', '.join(sorted(_SCORE_KEYS))}")
    check_format({"format": SCORE_FORMAT, "format_version": SCORE_VERSION, **score}, SCORE_FORMAT, SCORE_VERSION,
                 "hallucination score")  # Pd and OSC send scores without these fields
    mode = score.get("mode", "noz" if "steps" in score and _first_has(score, "coeffs") else LATENT_MODE)
    if mode not in MODES:
        raise UserError(f"score mode must be one of {', '.join(MODES)}, not {mode!r}")
    steps = score.get("steps")
    if not isinstance(steps, list) or not steps:
        raise UserError("a score needs a non-empty list 'steps'")
    key = "z" if mode == LATENT_MODE else "coeffs"
    default_pitch = _number(score, "pitch", defaults.pitch, int)
    vectors, pitches = [], []
    for i, step in enumerate(steps):
        if not isinstance(step, dict) or key not in step or not set(step) <= {key, "pitch"}:
            raise UserError(f"score step {i} must be an object with {key!r} (a list of numbers) and optionally 'pitch'")
        vec = step[key]
        if not isinstance(vec, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vec):
            raise UserError(f"score step {i}: {key!r} must be a list of numbers")
        vectors.append(vec)
        pitches.append(_number(step, "pitch", default_pitch, int))
    if len({len(v) for v in vectors}) != 1:
        raise UserError(f"score steps have {key} vectors of different lengths")
    seed = score.get("seed", defaults.seed)
    if seed is not None:
        seed = _number(score, "seed", None, int)
    conditions = score.get("conditions", conditions)
    if conditions is not None and not isinstance(conditions, dict):
        raise UserError("score field 'conditions' must be an object {name: value}")
    timing = defaults.timing()
    params = HallucinationSettings.make(
        notes=len(steps),
        steps=_number(score, "interpolation_steps", defaults.steps, int),
        **{name: _number(score, name, timing[name]) for name in _ENVELOPE_FIELDS},
        pitch=default_pitch,
        seed=seed,
    )
    if mode == LATENT_MODE:
        return plan_latent(synth, params, limits, keys=np.asarray(vectors, dtype=np.float32), key_pitches=pitches,
                           conditions=conditions)
    base_z = score.get("z")
    if base_z is not None:
        if not isinstance(base_z, list):
            raise UserError("score field 'z' must be a list of numbers")
        base_z = np.asarray(base_z, dtype=np.float32)
    return plan_coefficients(synth, vectors, pitches, params, mode, limits, base_z=base_z, conditions=conditions)


def _first_has(score: dict, key: str) -> bool:
    steps = score.get("steps")
    return isinstance(steps, list) and bool(steps) and isinstance(steps[0], dict) and key in steps[0]


def save_score(path: str | os.PathLike, score: dict) -> Path:
    """Write a score atomically."""
    write_json(path, score)
    return Path(path)


def load_score(path: str | os.PathLike) -> dict:
    """Read a score (or Hallu steps file) as a dict, with one-line errors for missing or malformed files."""
    path = Path(path)
    if not path.is_file():
        hint = path.with_suffix(".score.json")
        raise UserError(f"score file not found: {path}" + (f" (did you mean {hint}?)" if hint.is_file() else ""))
    return read_json(path)


def score_path_for(wav_path: str | os.PathLike) -> Path:
    """Where the score of `piece.wav` goes: `piece.score.json` beside it."""
    return Path(wav_path).with_suffix(".score.json")

