"""Playable instruments: one timbre across the keyboard, exported as a SoundFont 2 (and optionally SFZ + WAVs).

    result = export_instrument(synth, "pad.sf2", seed=3)                       # or synth.export_instrument(...)
    result = export_instrument(synth, "pad.sf2", components=comps, coefficients=[1.5, -0.5], mode="offset",
                               pitches="36-84", every=2, velocity_layers=2, sfz=True)

What happens, note by note (every measure below is also recorded in the file's metadata):

1. **Notes.** One note per root key (every `every`-th chosen pitch) at one timbre, generated in one batch: the same
   z (or GANSpace coefficients, see `ganspace/edits.py`) for every pitch. Each root key's zone covers the skipped
   keys nearest to it (ties go to the lower root). With a `velocity` condition in the model, each velocity layer
   is its own notes; otherwise the layers share the samples and soft layers are darker (a low-pass filter one
   octave lower per layer below the top).
2. **Onset.** Leading silence is cut: the sample starts 1 ms before the first 1 ms frame within 40 dB of the
   note's loudest frame, so a sampler's note starts at the MIDI onset. A 1 ms fade-in removes any start click.
3. **Envelope, from the model's own note.** Attack end: the first 10 ms frame within 3 dB of the loudest. The
   sample keeps the model's attack (the volume envelope only adds the players' 1 ms default). The release time is
   the model's own decay: after the last frame within 12 dB of the loudest, the level's fall rate (dB/s, until
   60 dB down or the note's end); releaseVolEnv = 100 dB / that rate (the SoundFont release runs to 100 dB down),
   clamped to 0.02–4 s; notes that do not decay take the median of the others (0.3 s if none does).
4. **Loudness.** Stated measure: RMS (dBFS) of the note's body, the 0.5 s from its attack end. Every note is
   scaled to the median body level (at most +24 dB, so a near-silent note is not blown up into noise), then all
   by one factor so the loudest peak is −0.1 dBFS. The spread left over is recorded.
5. **Loops.** In the stable part of the note (the longest run of 10 ms frames within 10 dB of the loudest, after
   the attack), loop points are searched at upward zero crossings for lengths of 0.1–1 s. The match error of a
   loop is the relative RMS difference between the waveform around its end and around its start,
   `sqrt(Σ (x[end+k] − x[start+k])² / Σ x[start+k]²)` over k in ±max(4 ms, one period) (0: identical,
   about 1.4: unrelated). A loop is used when its match error is ≤ `MAX_LOOP_ERROR` (0.25, −12 dB) and its level
   drift (first vs last 20 ms of the loop) is ≤ `MAX_LOOP_DRIFT_DB` (1.5 dB); then the last 10 ms before the loop
   end are cross-faded into the 10 ms before the loop start, so the played seam continues the waveform, and the
   measured discontinuity
   (`seam_step`: the step played across the seam over the largest step inside the loop; ≤ 1 is click-free) is
   recorded. Otherwise the note is a one-shot: it plays to its end (a 20 ms fade-out) with the release envelope.
6. **Files.** A SoundFont 2 (audio/sf2.py: one preset, one instrument, 16-bit samples, loop points and pitch
   correction 0 in the sample headers), written under a temporary name and renamed; with `sfz`, also NAME.sfz and
   its WAVs in NAME-samples/ beside it (audio/sfz.py). Names and metadata (INFO ICMT, SFZ comment) say which model
   file (fingerprint), z or coefficients, conditions and pitches made it, enough to make it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..conditions import check_pitches, format_ranges
from ..errors import UserError

INSTRUMENT_FORMAT = "ganspacesynth-instrument"
INSTRUMENT_FORMAT_VERSION = 1
LOOP_CHOICES = ("auto", "none")
MODES = ("offset", "noz", "latent")
MAX_VELOCITY_LAYERS = 4

ONSET_FRAME_S = 0.001
ONSET_DB = 40.0
FRAME_S = 0.01
ATTACK_DB = 3.0
BODY_S = 0.5
MAX_GAIN_DB = 24.0
PEAK = 10 ** (-0.1 / 20)
STABLE_DB = 10.0
MIN_LOOP_S, MAX_LOOP_S = 0.1, 1.0
#: Loops with a larger match error are not used (the note becomes a one-shot). 0.25: the waveform around the
#: loop end matches the one around its start to within −12 dB.
MAX_LOOP_ERROR = 0.25
#: Nor loops whose level changes more than this from start to end (each repetition would jump by it).
MAX_LOOP_DRIFT_DB = 1.5
CROSSFADE_S = 0.01
LOOP_GUARD = 32  # samples after the loop end (copies of those after its start, for the players' interpolation)
FADE_IN_S = 0.001
FADE_OUT_S = 0.02
RELEASE_FROM_DB = 12.0
RELEASE_TO_DB = 60.0
RELEASE_RANGE_S = (0.02, 4.0)
DEFAULT_RELEASE_S = 0.3
FILTER_OCTAVES_PER_LAYER = 1.0


# -- analysis of one note ---------------------------------------------------------------------------------------------
def _frames_db(x: np.ndarray, hop: int) -> np.ndarray:
    n = max(1, len(x) // hop)
    fr = np.zeros((n, hop))
    seg = x[: n * hop]
    fr.reshape(-1)[: len(seg)] = seg
    rms = np.sqrt(np.mean(fr * fr, axis=1))
    return 20.0 * np.log10(np.maximum(rms, 1e-12))


def onset_index(x: np.ndarray, sample_rate: int) -> int:
    """First sample of the note: 1 ms before the first 1 ms frame within ONSET_DB of the loudest frame."""
    hop = max(1, int(round(ONSET_FRAME_S * sample_rate)))
    db = _frames_db(x, hop)
    if db.max() <= -200:
        return 0
    first = int(np.argmax(db >= db.max() - ONSET_DB))
    return max(0, (first - 1) * hop)


@dataclass
class Envelope:
    attack_end: int  # samples from the (trimmed) sample's start
    attack_s: float
    body_db: float  # the loudness measure: RMS dBFS of BODY_S from the attack end
    release_s: float | None  # None: the note does not decay within its length
    release_rate_db_s: float | None


def measure_envelope(x: np.ndarray, sample_rate: int) -> Envelope:
    hop = max(1, int(round(FRAME_S * sample_rate)))
    db = _frames_db(x, hop)
    top = db.max()
    a = int(np.argmax(db >= top - ATTACK_DB))
    attack_end = a * hop
    body = x[attack_end: attack_end + int(BODY_S * sample_rate)]
    rms = float(np.sqrt(np.mean(np.square(body, dtype=np.float64)))) if body.size else 0.0
    body_db = 20.0 * np.log10(rms) if rms > 0 else float("-inf")
    # release: from the last frame within RELEASE_FROM_DB of the loudest to RELEASE_TO_DB down (or the end)
    release_s = rate = None
    loud = np.flatnonzero(db >= top - RELEASE_FROM_DB)
    if top > -200 and loud.size:
        start = int(loud[-1])
        below = np.flatnonzero(db[start:] <= top - RELEASE_TO_DB)
        stop = start + int(below[0]) if below.size else len(db) - 1
        if stop - start >= 3:
            fall = float(db[start] - db[stop])
            r = fall / ((stop - start) * hop / sample_rate)
            if fall >= 6.0 and r > 1.0:
                rate = r
                release_s = float(np.clip(100.0 / r, *RELEASE_RANGE_S))
    return Envelope(attack_end, attack_end / sample_rate, body_db, release_s, rate)


@dataclass
class Loop:
    start: int
    end: int  # exclusive: the first sample after the loop (SoundFont convention)
    match_error: float
    drift_db: float
    crossfade: int
    seam_step: float = float("nan")

    @property
    def length(self) -> int:
        return self.end - self.start


def _upward_zero_crossings(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    lo = max(lo, 1)
    seg = x[lo - 1: hi]
    return lo + np.flatnonzero((seg[:-1] < 0) & (seg[1:] >= 0))


def _rms_db(x: np.ndarray) -> float:
    v = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    return 20.0 * np.log10(max(v, 1e-12))


def find_loop(x: np.ndarray, sample_rate: int, attack_end: int, period: float | None = None,
              max_error: float = MAX_LOOP_ERROR, starts: int = 8) -> Loop | None:
    """The best loop in the stable part of note `x` (see the module docstring), or None when none is good enough."""
    from scipy.signal import correlate

    x = np.asarray(x, dtype=np.float64)
    hop = max(1, int(round(FRAME_S * sample_rate)))
    db = _frames_db(x, hop)
    top = db.max()
    if top <= -200:
        return None
    ok = db >= top - STABLE_DB
    ok[: attack_end // hop + 2] = False
    best_run, run_start = (0, 0), None
    for i, good in enumerate(np.append(ok, False)):
        if good and run_start is None:
            run_start = i
        elif not good and run_start is not None:
            if i - run_start > best_run[1] - best_run[0]:
                best_run = (run_start, i)
            run_start = None
    a, b = best_run[0] * hop, best_run[1] * hop
    half = int(round(max(0.004 * sample_rate, period or 0.0)))
    half = min(half, int(0.03 * sample_rate))
    fade = int(round(CROSSFADE_S * sample_rate))
    lmin = int(MIN_LOOP_S * sample_rate)
    lo_start = a + max(half, fade) + 8
    hi_end = min(b, len(x) - LOOP_GUARD) - half
    lmax = min(int(MAX_LOOP_S * sample_rate), int(0.75 * (hi_end - lo_start)))
    if lmax < lmin:
        return None
    cands = _upward_zero_crossings(x, lo_start, hi_end - lmin)
    cands = cands[cands <= lo_start + max(1, (hi_end - lmin - lo_start) // 2)]
    if cands.size == 0:
        return None
    picks = cands[np.unique(np.linspace(0, cands.size - 1, min(starts, cands.size)).round().astype(int))]
    energy = np.concatenate([[0.0], np.cumsum(x * x)])
    zc = np.zeros(len(x), dtype=bool)
    zc[_upward_zero_crossings(x, 1, len(x))] = True
    best: Loop | None = None
    for s in picks:
        tmpl = x[s - half: s + half]
        t_energy = float(np.dot(tmpl, tmpl))
        if t_energy <= 0:
            continue
        e_lo, e_hi = s + lmin, min(s + lmax, hi_end)
        if e_hi <= e_lo:
            continue
        region = x[e_lo - half: e_hi + half]
        cross = correlate(region, tmpl, mode="valid", method="fft")  # cross[j] = Σ x[e_lo+j+k-half]·tmpl[k]
        ends = np.arange(e_lo, e_lo + len(cross))
        mask = zc[ends]
        if not mask.any():
            continue
        ends, cross = ends[mask], cross[mask]
        x_energy = energy[ends + half] - energy[ends - half]
        err = np.sqrt(np.maximum(x_energy - 2 * cross + t_energy, 0.0) / t_energy)
        order = np.argsort(err, kind="stable")
        for j in order[:16]:  # the best few by match error; the first without level drift wins
            e = int(ends[j])
            edge = min(int(0.02 * sample_rate), (e - s) // 4)
            drift = abs(_rms_db(x[s:s + edge]) - _rms_db(x[e - edge:e]))
            if drift <= MAX_LOOP_DRIFT_DB:
                if best is None or err[j] < best.match_error:
                    best = Loop(int(s), e, float(err[j]), float(drift), min(fade, (e - s) // 4, int(s) - 1))
                break
    if best is None or best.match_error > max_error:
        return None
    return best


def apply_loop(x: np.ndarray, loop: Loop) -> np.ndarray:
    """The sample cut after the loop: the last `crossfade` samples before the loop end cross-faded into those before
    the loop start (so playing on from the end continues like playing on from just before the start), then
    LOOP_GUARD copies of the samples after the start; sets `loop.seam_step`."""
    s, e, f = loop.start, loop.end, loop.crossfade
    y = np.array(x[:e], dtype=np.float64)
    if f > 0:
        w = np.arange(1, f + 1, dtype=np.float64) / f
        y[e - f: e] = (1 - w) * y[e - f: e] + w * np.asarray(x[s - f: s], dtype=np.float64)
    y = np.concatenate([y, np.asarray(x[s: s + LOOP_GUARD], dtype=np.float64)])
    loop.seam_step = seam_step(y, s, e)
    return y


def seam_step(y: np.ndarray, start: int, end: int) -> float:
    """The step a player makes across the loop seam (y[end-1] → y[start]) over the largest step inside the loop:
    the measured discontinuity (≤ 1: no larger than the waveform's own steps, no click)."""
    inside = np.abs(np.diff(np.asarray(y[start:end], dtype=np.float64)))
    top = float(inside.max()) if inside.size else 0.0
    jump = abs(float(y[start]) - float(y[end - 1]))
    return jump / top if top > 0 else (0.0 if jump == 0 else float("inf"))


# -- the keyboard ---------------------------------------------------------------------------------------------------
def parse_pitches(spec, model_pitches: Sequence[int]) -> list[int]:
    """'24-84', '36,48,60-72', a list, or None (the model's whole range), checked against the model's pitches."""
    model_pitches = sorted(int(p) for p in model_pitches)
    if not model_pitches:
        raise UserError("this model has no pitch condition: it cannot make a keyboard instrument")
    if spec is None:
        return model_pitches
    if isinstance(spec, str):
        from ..data.soundfont import parse_int_list

        values = parse_int_list(spec, 0, 127, "pitch")
    else:
        try:
            values = sorted({int(v) for v in spec})
        except (TypeError, ValueError):
            raise UserError(f"pitches must be MIDI note numbers, not {spec!r}") from None
        if not values:
            raise UserError("no pitches given")
    return check_pitches(values, model_pitches)


def key_plan(pitches: Sequence[int], every: int) -> list[tuple[int, int, int]]:
    """(root, lowest key, highest key) for every `every`-th pitch; each key between the lowest and highest pitch goes
    to its nearest root (ties to the lower one)."""
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise UserError(f"--every must be a whole number >= 1 (1: a note for every key), not {every!r}")
    pitches = sorted(pitches)
    roots = pitches[:: int(every)]
    plan = []
    for i, r in enumerate(roots):
        lo = pitches[0] if i == 0 else (roots[i - 1] + r) // 2 + 1
        hi = pitches[-1] if i == len(roots) - 1 else (r + roots[i + 1]) // 2
        plan.append((r, lo, hi))
    return plan


def velocity_ranges(layers: int) -> list[tuple[int, int]]:
    if isinstance(layers, bool) or not isinstance(layers, (int, np.integer)) or not 1 <= layers <= MAX_VELOCITY_LAYERS:
        raise UserError(f"--velocity-layers must be a whole number in 1..{MAX_VELOCITY_LAYERS}, not {layers!r}")
    bounds = [round(128 * i / layers) for i in range(layers + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(layers)]


# -- building -------------------------------------------------------------------------------------------------------
@dataclass
class NoteSample:
    root: int
    key_range: tuple[int, int]
    layer: int
    data: np.ndarray  # float64, final gain applied
    onset: int  # samples cut from the generated note
    envelope: Envelope
    loop: Loop | None
    gain_db: float = 0.0
    release_s: float = DEFAULT_RELEASE_S


@dataclass
class Instrument:
    name: str
    sample_rate: int
    notes: list[NoteSample]  # layer-major: layer 0's roots, then layer 1's (or one set shared by every layer)
    velocity_ranges: list[tuple[int, int]]
    shared_layers: bool  # True: the layers share the samples and differ by a low-pass filter
    metadata: dict = field(default_factory=dict)
    loudness_spread_db: float = 0.0

    @property
    def looped(self) -> int:
        return sum(n.loop is not None for n in self.notes)

    def zones(self) -> list[tuple[int, int, tuple[int, int], dict]]:
        """(sample index, layer, velocity range, sampler settings) for every zone, top layer last."""
        out = []
        layers = len(self.velocity_ranges)
        for layer, vel in enumerate(self.velocity_ranges):
            for i, note in enumerate(self.notes):
                if not self.shared_layers and note.layer != layer:
                    continue
                settings = {"loop": note.loop is not None, "release_s": note.release_s}
                if self.shared_layers and layer < layers - 1:
                    settings["cutoff_hz"] = 20000.0 / 2 ** (FILTER_OCTAVES_PER_LAYER * (layers - 1 - layer))
                out.append((i, layer, vel, settings))
        return out

    def bank_name(self) -> str:
        """What a sampler shows as the bank: the name, the model's fingerprint and the timbre, e.g.
        'GANSpaceSynth pad: model ac31ba8d370f, seed 3, keys 24-84'."""
        meta = self.metadata
        parts = [f"GANSpaceSynth {self.name}"]
        fp = (meta.get("model") or {}).get("fingerprint")
        if fp:
            parts.append(f"model {fp[:12]}")
        timbre = meta.get("timbre") or {}
        if timbre.get("seed") is not None:
            parts.append(f"seed {timbre['seed']}")
        elif "z" in timbre:
            parts.append("z given")
        if timbre.get("coefficients"):
            parts.append(f"{timbre.get('mode')} {','.join(f'{c:g}' for c in timbre['coefficients'][:8])}")
        keys = (meta.get("keyboard") or {}).get("pitches")
        if keys:
            parts.append(f"keys {keys}")
        return ", ".join([": ".join(parts[:2])] + parts[2:])[:250]

    def sample_name(self, note: NoteSample) -> str:
        layer = f"v{note.layer + 1}" if not self.shared_layers and len(self.velocity_ranges) > 1 else ""
        return f"{self.name[:13]}-{note.root:03d}{layer}"

    # -- files
    def soundfont(self):
        from ..audio import sf2

        samples = [sf2.Sample(self.sample_name(n), n.data, self.sample_rate, n.root,
                              None if n.loop is None else (n.loop.start, n.loop.end)) for n in self.notes]
        zones = []
        for i, _layer, vel, st in self.zones():
            note = self.notes[i]
            gens = {"sampleModes": sf2.LOOP_CONTINUOUS if st["loop"] else sf2.NO_LOOP,
                    "overridingRootKey": note.root, "releaseVolEnv": sf2.timecents(st["release_s"])}
            if "cutoff_hz" in st:
                gens["initialFilterFc"] = sf2.hz_to_cents(st["cutoff_hz"])
            zones.append(sf2.Zone(i, note.key_range, vel, gens))
        meta = self.metadata
        return sf2.SoundFont(
            name=self.bank_name(), preset_name=self.name[:19], instrument_name=self.name[:19],
            samples=samples, zones=zones, comment=json.dumps(meta, separators=(",", ":")),
            engineer="GANSpaceSynth", creation_date=meta.get("created", ""),
            software=f"GANSpaceSynth {meta.get('ganspacesynth', '')}".strip())


def notes_table(notes: Sequence[NoteSample]) -> dict:
    """Per-note measures as columns (compact enough for the SoundFont's 64 KB comment)."""
    def r(v, nd):
        return None if v is None or not np.isfinite(v) else round(float(v), nd)

    return {
        "root": [n.root for n in notes], "layer": [n.layer for n in notes], "onset": [n.onset for n in notes],
        "attack_s": [r(n.envelope.attack_s, 3) for n in notes], "body_db": [r(n.envelope.body_db, 2) for n in notes],
        "gain_db": [r(n.gain_db, 2) for n in notes], "release_s": [r(n.release_s, 3) for n in notes],
        "release_measured": [n.envelope.release_s is not None for n in notes],
        "loop": [None if n.loop is None else [n.loop.start, n.loop.end] for n in notes],
        "loop_match_error": [None if n.loop is None else r(n.loop.match_error, 4) for n in notes],
        "loop_seam_step": [None if n.loop is None else r(n.loop.seam_step, 4) for n in notes],
    }


def build_instrument(waves: np.ndarray, plan: Sequence[tuple[int, int, int]], sample_rate: int, *,
                     name: str = "instrument", layers: int = 1, shared_layers: bool = True, loop: str = "auto",
                     max_loop_error: float = MAX_LOOP_ERROR, metadata: dict | None = None) -> Instrument:
    """An Instrument from generated notes: `waves` `[layers_made, len(plan), N]` (layers_made is 1 when the
    velocity layers share their samples). Pure numpy: tests feed it synthetic notes."""
    if loop not in LOOP_CHOICES:
        raise UserError(f"loop must be one of {', '.join(LOOP_CHOICES)}, not {loop!r}")
    waves = np.asarray(waves, dtype=np.float64)
    if waves.ndim == 2:
        waves = waves[None]
    if waves.shape[1] != len(plan):
        raise ValueError(f"{waves.shape[1]} notes per layer for {len(plan)} root keys")
    if not np.all(np.isfinite(waves)):
        raise UserError("the model produced NaN or infinite audio")
    vel = velocity_ranges(layers)
    notes: list[NoteSample] = []
    for layer in range(waves.shape[0]):
        for (root, lo, hi), wave in zip(plan, waves[layer]):
            onset = onset_index(wave, sample_rate)
            x = wave[onset:].copy()
            k = min(len(x), max(1, int(round(FADE_IN_S * sample_rate))))
            x[:k] *= np.arange(1, k + 1) / k
            env = measure_envelope(x, sample_rate)
            note_loop = None
            if loop == "auto":
                period = sample_rate / (440.0 * 2 ** ((root - 69) / 12))
                note_loop = find_loop(x, sample_rate, env.attack_end, period, max_error=max_loop_error)
            notes.append(NoteSample(root, (lo, hi), layer, x, onset, env, note_loop))
    # releases: the model's own, or the median of the measured ones
    measured = [n.envelope.release_s for n in notes if n.envelope.release_s is not None]
    fallback = float(np.median(measured)) if measured else DEFAULT_RELEASE_S
    for n in notes:
        n.release_s = n.envelope.release_s if n.envelope.release_s is not None else fallback
    # loudness: the same body level for every root (the top layer's measure, applied to all its layers)
    top_layer = waves.shape[0] - 1
    level = {n.root: n.envelope.body_db for n in notes if n.layer == top_layer}
    finite = [v for v in level.values() if np.isfinite(v)]
    target = float(np.median(finite)) if finite else 0.0
    gains = {r: (float(np.clip(target - v, -MAX_GAIN_DB, MAX_GAIN_DB)) if np.isfinite(v) else 0.0)
             for r, v in level.items()}
    for n in notes:
        n.gain_db = gains[n.root]
        n.data = n.data * 10 ** (n.gain_db / 20)
        if n.loop is not None:
            n.data = apply_loop(n.data, n.loop)
        else:
            k = min(len(n.data), int(round(FADE_OUT_S * sample_rate)))
            n.data[len(n.data) - k:] *= np.linspace(1.0, 0.0, k)
        if len(n.data) < 48:
            n.data = np.pad(n.data, (0, 48 - len(n.data)))
    peak = max(float(np.abs(n.data).max()) for n in notes)
    scale = PEAK / peak if peak > 0 else 1.0
    for n in notes:
        n.data = n.data * scale
        n.gain_db += 20 * np.log10(scale)
    matched = [n.envelope.body_db + n.gain_db for n in notes if n.layer == top_layer
               and np.isfinite(n.envelope.body_db) and abs(gains[n.root]) < MAX_GAIN_DB]
    spread = float(max(matched) - min(matched)) if matched else 0.0
    meta = dict(metadata or {})
    meta.update({
        "loudness": {"measure": f"RMS dBFS of the {BODY_S:g} s from the attack end (within {ATTACK_DB:g} dB of the "
                                f"loudest 10 ms frame)", "target_db": round(float(target + 20 * np.log10(scale)), 2),
                     "spread_db": round(spread, 3), "max_gain_db": MAX_GAIN_DB},
        "loops": {"mode": loop, "max_match_error": max_loop_error, "looped": sum(n.loop is not None for n in notes),
                  "one_shot": sum(n.loop is None for n in notes)},
        "velocity_layers": {"count": layers, "ranges": [list(v) for v in vel],
                            "kind": "filter" if shared_layers else "condition"},
    })
    inst = Instrument(name, int(sample_rate), notes, vel, shared_layers, meta, spread)
    meta["notes"] = notes_table(notes)
    return inst


# -- from a model ---------------------------------------------------------------------------------------------------
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(text: str) -> str:
    """An ASCII name for presets, samples and files (other characters become '-')."""
    out = _SAFE.sub("-", str(text)).strip("-.") or "instrument"
    return out[:64]


def _file_digest(path: Path | None) -> str | None:
    if path is None:
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_output(out: str | os.PathLike) -> Path:
    """The .sf2 path to write, refused before any generation if it cannot be written."""
    out = Path(out)
    if out.suffix.lower() != ".sf2":
        raise UserError(f"the output must be a .sf2 file, not {out}")
    if out.exists() and not out.is_file():
        raise UserError(f"cannot write {out}: it is a folder or not a regular file")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"cannot write {out}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {out}: permission denied in {parent}")
    return out


def sfz_paths(out: Path) -> tuple[Path, Path]:
    """NAME.sfz and its sample folder NAME-samples/ beside NAME.sf2."""
    return out.with_suffix(".sfz"), out.with_name(out.stem + "-samples")


@dataclass
class ExportResult:
    path: Path
    instrument: Instrument
    seconds: float
    sfz_path: Path | None = None
    samples_dir: Path | None = None
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        inst = self.instrument
        roots = sorted({n.root for n in inst.notes})
        keys = (min(n.key_range[0] for n in inst.notes), max(n.key_range[1] for n in inst.notes))
        extra = f" and {self.sfz_path}" if self.sfz_path else ""
        return (f"wrote {self.path}{extra}: keys {keys[0]}-{keys[1]} from {len(roots)} notes, "
                f"{len(inst.velocity_ranges)} velocity layer(s), {inst.looped} looped / "
                f"{len(inst.notes) - inst.looped} one-shot, loudness spread {inst.loudness_spread_db:.2f} dB, "
                f"{self.seconds:.1f} s")


def _timbre(synth, z, seed, components, coefficients, mode) -> tuple[np.ndarray | None, np.ndarray | None, dict]:
    """(z [1, L] or None, coefficients [K] or None, metadata) of the timbre."""
    from ..ganspace.edits import coefficient_matrix

    meta: dict = {}
    if components is None:
        if coefficients is not None and np.any(np.asarray(coefficients, dtype=np.float64) != 0):
            raise UserError("coefficients need a components file (--components)")
        mode = "z"
        coeffs = None
    else:
        if mode not in MODES:
            raise UserError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        coeffs = coefficient_matrix(components, [0.0] if coefficients is None else coefficients)[0]
        k = int(np.max(np.flatnonzero(coeffs)) + 1) if np.any(coeffs) else 0
        meta["components"] = {"file": components.path.name if components.path else None,
                              "sha256": _file_digest(components.path), "layer": components.layer,
                              "count": components.n_components, "model_fingerprint": components.model_fingerprint}
        meta["coefficients"] = [float(c) for c in coeffs[:k]]
    meta["mode"] = mode
    if mode == "noz":
        return None, coeffs, meta
    if z is None:
        zz = synth.random_z(1, seed)
        meta["seed"] = int(seed)
    else:
        zz = synth.check_z(z)
        if zz.shape[0] != 1:
            raise UserError(f"an instrument has one timbre: give one latent, not {zz.shape[0]}")
        meta["seed"] = None
    meta["z"] = [float(v) for v in zz[0]]
    return zz, coeffs, meta


def render_notes(synth, plan, z, coeffs, components, mode, conditions, layer_values, batch_size: int) -> np.ndarray:
    """`[layers, len(plan), N]` notes of one timbre (all in one batch)."""
    roots = [r for r, _, _ in plan]
    layers = layer_values or [None]
    pitch = roots * len(layers)
    conds: dict[str, object] = dict(conditions or {})
    if layer_values:
        conds["velocity"] = [v for v in layer_values for _ in roots]
    count = len(pitch)
    if components is None:
        waves = synth.generate(np.repeat(z, count, axis=0), pitch=pitch, conditions=conds, batch_size=batch_size)
    else:
        from ..ganspace.edits import synthesize

        waves = synthesize(synth, components, np.repeat(coeffs[None], count, axis=0), pitch, mode=mode,
                           z=None if z is None else np.repeat(z, count, axis=0), conditions=conds,
                           batch_size=batch_size)
    return np.asarray(waves).reshape(len(layers), len(roots), -1)


def _velocity_layer_values(synth, layers: int, conditions: Mapping | None) -> list[str] | None:
    """The velocity condition's class for each layer (the class nearest each layer's top velocity), or None when
    the model has no velocity condition (the layers then share their samples)."""
    spec = synth.config.condition("velocity")
    if spec is None or layers == 1 or spec.kind != "categorical":
        return None
    if conditions and "velocity" in conditions:
        raise UserError("give either a velocity condition or several velocity layers, not both")
    try:
        classes = [(float(c), c) for c in spec.classes]
    except ValueError:
        return None
    return [min(classes, key=lambda vc: abs(vc[0] - hi))[1] for _, hi in velocity_ranges(layers)]


def export_instrument(synth, out: str | os.PathLike, *, z=None, seed: int = 0, components=None, coefficients=None,
                      mode: str = "offset", conditions: Mapping[str, object] | None = None, pitches=None,
                      every: int = 1, velocity_layers: int = 1, loop: str = "auto", sfz: bool = False,
                      name: str | None = None, batch_size: int = 8, max_loop_error: float = MAX_LOOP_ERROR,
                      overwrite_samples: bool = True) -> ExportResult:
    """Generate one timbre across the keyboard and write it as a SoundFont 2 (and SFZ); see the module docstring.

    `components` is a loaded `Components` (or None for plain z); `coefficients` its coefficients (fewer than the
    components: zero-padded); `mode` offset | noz | latent as in `ganspace/edits.py`. Everything is checked before
    generating; files appear complete or not at all."""
    t0 = time.perf_counter()
    out = check_output(out)
    if loop not in LOOP_CHOICES:
        raise UserError(f"loop must be one of {', '.join(LOOP_CHOICES)}, not {loop!r}")
    chosen = parse_pitches(pitches, synth.pitches)
    plan = key_plan(chosen, every)
    velocity_ranges(velocity_layers)
    if components is not None:
        components.check_model(synth)
    for cname in (conditions or {}):
        if cname == "pitch":
            raise UserError("the pitch comes from the keyboard: do not give it as a condition")
        synth.conditions.spec(cname)  # unknown names fail here, before generating
    name = safe_name(name or out.stem)
    if sfz:
        sfz_file, samples_dir = sfz_paths(out)
        from ..audio.sfz import check_samples_dir

        check_samples_dir(samples_dir, overwrite_samples)
    zz, coeffs, timbre = _timbre(synth, z, seed, components, coefficients, mode)
    layer_values = _velocity_layer_values(synth, velocity_layers, conditions)
    waves = render_notes(synth, plan, zz, coeffs, components, timbre["mode"], conditions, layer_values, batch_size)
    from .. import __version__

    model_path = Path(synth.path) if synth.path else None
    metadata = {
        "format": INSTRUMENT_FORMAT, "format_version": INSTRUMENT_FORMAT_VERSION, "ganspacesynth": __version__,
        "created": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "name": name,
        "model": {"file": model_path.name if model_path else None, "fingerprint": synth.fingerprint,
                  "precision": synth.precision, "sample_rate": synth.sample_rate},
        "timbre": timbre, "conditions": {k: v for k, v in (conditions or {}).items()},
        "keyboard": {"pitches": format_ranges(chosen), "every": int(every), "roots": [r for r, _, _ in plan],
                     "ranges": [[lo, hi] for _, lo, hi in plan]},
    }
    if layer_values:
        metadata["velocity_condition"] = layer_values
    inst = build_instrument(waves, plan, synth.sample_rate, name=name, layers=velocity_layers,
                            shared_layers=layer_values is None, loop=loop, max_loop_error=max_loop_error,
                            metadata=metadata)
    result = ExportResult(out, inst, 0.0)
    silent = [n.root for n in inst.notes if not np.isfinite(n.envelope.body_db)]
    if silent:
        result.warnings.append(f"silent notes at {format_ranges(sorted(set(silent)))}")
    write_instrument(inst, out, sfz=sfz, overwrite_samples=overwrite_samples)
    if sfz:
        result.sfz_path, result.samples_dir = sfz_paths(out)
    result.seconds = time.perf_counter() - t0
    return result


def write_instrument(inst: Instrument, out: str | os.PathLike, *, sfz: bool = False,
                     overwrite_samples: bool = True) -> Path:
    """Write NAME.sf2 (and NAME.sfz + NAME-samples/): each under a temporary name, renamed when complete; on any
    error nothing new is left behind."""
    from ..audio import sf2

    out = Path(out)
    soundfont = inst.soundfont()
    if not sfz:
        return sf2.write_sf2(out, soundfont)
    from ..audio.sfz import write_sfz

    sfz_file, samples_dir = sfz_paths(out)
    data = sf2.sf2_bytes(soundfont)
    from ..fileio import atomic_path

    try:
        with write_sfz(inst, sfz_file, samples_dir, overwrite=overwrite_samples):
            with atomic_path(out) as tmp:
                tmp.write_bytes(data)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out


def read_metadata(path: str | os.PathLike) -> dict:
    """The metadata an exported .sf2 carries (its INFO comment)."""
    from ..audio.sf2 import read_sf2

    parsed = read_sf2(path)
    try:
        meta = json.loads(parsed.info.get("ICMT", ""))
    except ValueError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != INSTRUMENT_FORMAT:
        raise UserError(f"{path} was not made by `ganspacesynth instrument` (no instrument metadata)")
    return meta


__all__ = ["export_instrument", "build_instrument", "write_instrument", "read_metadata", "key_plan",
           "parse_pitches", "find_loop", "apply_loop", "seam_step", "onset_index", "measure_envelope",
           "Instrument", "NoteSample", "Loop", "ExportResult"]
