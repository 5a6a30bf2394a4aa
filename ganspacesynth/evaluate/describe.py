"""Name GANSpace directions by what they do to the sound.

For each direction, its coefficient is swept (e.g. −2…2) in several contexts (pitches × latents); every
rendered note is measured with `descriptors.describe_waves`. A descriptor counts as controlled by the
direction when it moves monotonically in every context (mean Spearman ρ over contexts, scipy.stats) and by
a clearly audible amount (the least-squares change over the sweep, on the descriptor's comparison scale,
divided by its `min_change`: the effect size). The strongest one or two give the label ("brighter",
"longer sustain, quieter").

Each direction's pitch drift is measured too: every context also renders its note with all coefficients zero,
and pYIN (`evaluate.pitch.track_f0`) tracks every note; `pitch_drift` is the share of the direction's notes
(coefficient ≠ 0) whose tracked pitch moved from that reference by half a semitone or more (or lost or gained
its voicing) and the median size of those changes in semitones. `measure_pitch_keeping` is the same measure at
±2σ over many random contexts (docs/ganspace.md).

The core, `describe_directions`, takes one `render(coeffs [B, k]) -> waves [B, N]` callable per context,
so it runs on any generator (tests use a toy one); `describe_components` wires it to a model and a
GANSpace components file.
"""

from __future__ import annotations

import warnings
from typing import Callable, Sequence

import numpy as np
import scipy.stats

from .descriptors import DESCRIPTORS, describe_waves

#: 2: `pitch_drift` per direction.
DESCRIPTION_VERSION = 2
Render = Callable[[np.ndarray], np.ndarray]


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    if np.ptp(y) == 0:  # constant: no monotone relation (scipy would warn and return NaN)
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = scipy.stats.spearmanr(x, y).statistic
    return 0.0 if not np.isfinite(rho) else float(rho)


def direction_stats(values: np.ndarray, measured: np.ndarray, name: str) -> dict:
    """Statistics of one descriptor for one direction: `measured` is `[contexts, len(values)]`.

    `rho`: mean Spearman ρ over contexts; `change`: mean least-squares slope × sweep range on the comparison
    scale; `effect`: change / min_change; `curve`: the descriptor (raw units) averaged over contexts per value.
    """
    d = DESCRIPTORS[name]
    finite = np.all(np.isfinite(measured), axis=1)
    if not finite.any():
        return {"rho": float("nan"), "change": float("nan"), "effect": float("nan"),
                "curve": [None] * len(values)}
    m = measured[finite]
    scaled = d.scaled(m)
    v = np.asarray(values, dtype=np.float64)
    vc = v - v.mean()
    slopes = (scaled - scaled.mean(1, keepdims=True)) @ vc / (vc @ vc)
    change = float(slopes.mean() * (v.max() - v.min()))
    rho = float(np.mean([_spearman(v, row) for row in m]))
    return {"rho": rho, "change": change, "effect": change / d.min_change,
            "curve": [float(x) for x in m.mean(0)], "contexts": int(finite.sum())}


def label_direction(stats: dict[str, dict], min_rho: float = 0.8, min_effect: float = 1.0,
                    max_words: int = 2) -> tuple[str, list[dict]]:
    """Label from the descriptors that change monotonically and audibly, strongest first."""
    kept = []
    for name, s in stats.items():
        rho, effect = s["rho"], s["effect"]
        if np.isfinite(rho) and np.isfinite(effect) and abs(rho) >= min_rho and abs(effect) >= min_effect \
                and np.sign(rho) == np.sign(effect):
            d = DESCRIPTORS[name]
            kept.append({"descriptor": name, "words": d.up if effect > 0 else d.down, "rho": rho,
                         "effect": effect, "change": s["change"]})
    kept.sort(key=lambda k: -abs(k["effect"]))
    return ", ".join(k["words"] for k in kept[:max_words]), kept


#: A tracked pitch counts as changed when it moves by this many semitones or more (or is voiced in one note and
#: not in the other): a note a hair either side of a semitone boundary has not changed pitch.
PITCH_CHANGE_SEMITONES = 0.5


def pitch_changes(reference, edited) -> tuple[np.ndarray, np.ndarray]:
    """(changed [n] bool, change in semitones [n]) of edited notes against their references, both
    `pitch.F0Result`s of the same length. The change is 12·log2 of the ratio of the median pYIN f0s (NaN where
    either is unvoiced); changed: |change| ≥ PITCH_CHANGE_SEMITONES, or voiced in one and unvoiced in the other."""
    ref_hz, hz = np.asarray(reference.median_hz, np.float64), np.asarray(edited.median_hz, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        semitones = 12.0 * np.log2(hz / ref_hz)
    voicing = np.isfinite(ref_hz) != np.isfinite(hz)
    changed = voicing | (np.nan_to_num(np.abs(semitones), nan=0.0) >= PITCH_CHANGE_SEMITONES)
    return changed, semitones


def drift_summary(changed: np.ndarray, semitones: np.ndarray) -> dict:
    """`changed`: the share of notes whose tracked pitch changed; `median_semitones`: the median |change| of those
    (0 when none changed; None when none of them was voiced); `notes`."""
    changed = np.asarray(changed, bool).reshape(-1)
    moved = np.abs(np.asarray(semitones, np.float64).reshape(-1)[changed])
    moved = moved[np.isfinite(moved)]
    median = 0.0 if not changed.any() else (float(np.median(moved)) if moved.size else None)
    return {"changed": float(changed.mean()) if changed.size else 0.0, "median_semitones": median,
            "notes": int(changed.size)}


def describe_directions(renders: Sequence[Render], num_components: int, sample_rate: int,
                        values: Sequence[float] = (-2.0, -1.0, 0.0, 1.0, 2.0), *, context_names: Sequence[str] | None = None,
                        min_rho: float = 0.8, min_effect: float = 1.0,
                        progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """Describe the first `num_components` directions; one JSON-ready dict per direction.

    Each dict: `label` (e.g. "brighter, louder"; "" when nothing changes clearly), `changes` (the descriptors
    kept, strongest first), `stats` (every descriptor: rho, change, effect, curve), the sweep `values` and
    `pitch_drift` (`drift_summary` of its notes with a coefficient ≠ 0 against the context's unedited note).
    """
    from .pitch import track_f0

    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) < 3:
        raise ValueError("sweep at least 3 coefficient values")
    k, v = num_components, len(values)
    # One batch per context: row (i, j) has coefficient values[j] on direction i, zeros elsewhere; the last row
    # is the unedited note, the reference of the pitch drift.
    coeffs = np.zeros((k * v + 1, k))
    for i in range(k):
        coeffs[i * v : (i + 1) * v, i] = values
    measured = {name: np.empty((k, len(renders), v)) for name in DESCRIPTORS}
    changed = np.zeros((k, len(renders), v), bool)
    semitones = np.full((k, len(renders), v), np.nan)
    for c, render in enumerate(renders):
        waves = np.asarray(render(coeffs))
        if waves.shape[0] != k * v + 1:
            raise ValueError(f"render returned {waves.shape[0]} notes for {k * v + 1} coefficient vectors")
        desc = describe_waves(waves[:-1], sample_rate)
        for name in DESCRIPTORS:
            measured[name][:, c, :] = desc[name].reshape(k, v)
        f0 = track_f0(waves, sample_rate)
        ref = type(f0)(*(np.repeat(a[-1:], k * v) for a in (f0.median_hz, f0.midi, f0.voiced_fraction)))
        edited = type(f0)(f0.median_hz[:-1], f0.midi[:-1], f0.voiced_fraction[:-1])
        moved, steps = pitch_changes(ref, edited)
        changed[:, c, :], semitones[:, c, :] = moved.reshape(k, v), steps.reshape(k, v)
        if progress:
            progress(c + 1, len(renders))
    out = []
    nonzero = values != 0
    for i in range(k):
        stats = {name: direction_stats(values, measured[name][i], name) for name in DESCRIPTORS}
        label, kept = label_direction(stats, min_rho, min_effect)
        out.append({"label": label, "changes": kept, "stats": stats, "values": values.tolist(),
                    "pitch_drift": drift_summary(changed[i][:, nonzero], semitones[i][:, nonzero]),
                    "contexts": list(context_names) if context_names else len(renders),
                    "description_version": DESCRIPTION_VERSION})
    return out


def drift_text(drift: dict | None) -> str:
    """"pitch kept in all 24 notes" / "pitch changed in 8 % of 24 notes, median 12.0 semitones"."""
    if not drift:
        return "pitch drift not measured"
    share = drift["changed"]
    if share == 0:
        return f"pitch kept in all {drift['notes']} notes"
    median = drift.get("median_semitones")
    how = "" if median is None else f", median {median:.1f} semitones"
    return f"pitch changed in {100 * share:.0f} % of {drift['notes']} notes{how}"


def describe_components(synth, components, top: int = 16, values: Sequence[float] = (-2.0, -1.0, 0.0, 1.0, 2.0),
                        pitches: Sequence[int] | None = None, latents: int = 2, seed: int = 0, mode: str = "offset",
                        batch_size: int = 8, progress=None, **kwargs) -> list[dict]:
    """`describe_directions` on the first `top` GANSpace directions of a model.

    Contexts: every pitch (default: three spread over the model's range) × `latents` random latents
    (mode `offset` or `latent`), or every pitch alone (mode `noz`, which uses no latent).
    """
    from ..ganspace.edits import synthesize

    top = min(top, components.n_components)
    if pitches is None:
        ps = synth.pitches
        pitches = sorted({ps[len(ps) // 4], ps[len(ps) // 2], ps[(3 * len(ps)) // 4]}) if ps else [None]
    z = synth.random_z(latents, seed) if mode != "noz" else [None]
    renders, names = [], []
    for p in pitches:
        for j, zj in enumerate(z):
            def render(coeffs, p=p, zj=zj):
                zz = None if zj is None else zj[None]
                return synthesize(synth, components, coeffs, pitch=p, mode=mode, z=zz, batch_size=batch_size)
            renders.append(render)
            names.append(f"pitch {p}" + ("" if zj is None else f", latent {j} (seed {seed})"))
    return describe_directions(renders, top, synth.sample_rate, values, context_names=names,
                               progress=progress, **kwargs)


def measure_pitch_keeping(synth, components, *, mode: str = "offset", top: int = 8,
                          values: Sequence[float] = (-2.0, 2.0), notes: int = 24, seed: int = 0,
                          pitches: Sequence[int] | None = None, batch_size: int = 8) -> dict:
    """How often the first `top` directions keep the pitch: for each direction and value, `notes` contexts (a
    random latent each, seed `seed`, none in mode noz; pitches spread evenly over the model's range unless given,
    one per context) are rendered with that coefficient alone and with none, and pYIN tracks both.

    Returns `kept` (share of edited notes whose tracked pitch stayed within half a semitone of their unedited
    note's, `pitch_changes`), `on_pitch` (share of edited notes tracked at the MIDI note asked for; None for a
    model without pitch) and `reference_on_pitch` (the same for the unedited notes), `median_semitones` (of the
    changed notes), `per_direction` (one `drift_summary` per direction and value, with `component` and `value`),
    `notes` (edited notes) and `seconds`."""
    import time

    from ..ganspace.edits import synthesize
    from .pitch import track_f0

    t0 = time.perf_counter()
    top = min(int(top), components.n_components)
    values = [float(v) for v in values]
    if pitches is None:
        ps = synth.pitches
        pitches = [int(round(p)) for p in np.linspace(ps[0], ps[-1], notes)] if ps else [None] * notes
    if len(pitches) != notes:
        raise ValueError(f"{len(pitches)} pitches for {notes} notes")
    rows = 1 + top * len(values)  # per context: the unedited note, then each direction at each value
    coeffs = np.zeros((notes * rows, top))
    for j in range(notes):
        for i in range(top):
            for a, v in enumerate(values):
                coeffs[j * rows + 1 + i * len(values) + a, i] = v
    pitch = [p for p in pitches for _ in range(rows)] if pitches[0] is not None else None
    z = None
    if mode != "noz":
        z = np.repeat(synth.random_z(notes, seed), rows, axis=0)
    waves = synthesize(synth, components, coeffs, pitch, mode=mode, z=z, batch_size=batch_size)
    f0 = track_f0(waves, synth.sample_rate)
    shaped = [np.asarray(a).reshape(notes, rows) for a in (f0.median_hz, f0.midi, f0.voiced_fraction)]
    ref = type(f0)(*(np.repeat(a[:, :1], rows - 1, axis=1).reshape(-1) for a in shaped))
    edited = type(f0)(*(a[:, 1:].reshape(-1) for a in shaped))
    changed, semitones = pitch_changes(ref, edited)
    changed, semitones = changed.reshape(notes, top, len(values)), semitones.reshape(notes, top, len(values))
    asked = None if pitch is None else np.asarray(pitches)
    per = [dict(drift_summary(changed[:, i, a], semitones[:, i, a]), component=i, value=v)
           for i in range(top) for a, v in enumerate(values)]
    return {"mode": mode, "top": top, "values": values, "contexts": notes, "notes": int(changed.size),
            "kept": float(1.0 - changed.mean()),
            "on_pitch": None if asked is None else float(np.mean(shaped[1][:, 1:] == asked[:, None])),
            "reference_on_pitch": None if asked is None else float(np.mean(shaped[1][:, 0] == asked)),
            "median_semitones": drift_summary(changed, semitones)["median_semitones"],
            "per_direction": per, "seconds": time.perf_counter() - t0}
