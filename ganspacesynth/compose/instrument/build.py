"""Building an `Instrument` from generated notes: onsets cut, envelopes and loops measured, releases, loudness
matched (see the package docstring, steps 2 to 5). Pure numpy: tests feed it synthetic notes."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ...errors import UserError
from .analysis import ATTACK_DB, BODY_S, MAX_LOOP_ERROR, apply_loop, find_loop, measure_envelope, onset_index
from .keyboard import velocity_ranges
from .model import DEFAULT_RELEASE_S, Instrument, NoteSample, notes_table
from .options import check_loop

MAX_GAIN_DB = 24.0
PEAK = 10 ** (-0.1 / 20)
FADE_IN_S = 0.001
FADE_OUT_S = 0.02


def build_instrument(waves: np.ndarray, plan: Sequence[tuple[int, int, int]], sample_rate: int, *,
                     name: str = "instrument", layers: int = 1, shared_layers: bool = True, loop: str = "auto",
                     max_loop_error: float = MAX_LOOP_ERROR, metadata: dict | None = None) -> Instrument:
    """An Instrument from generated notes: `waves` `[layers_made, len(plan), N]` (layers_made is 1 when the
    velocity layers share their samples). Pure numpy: tests feed it synthetic notes."""
    check_loop(loop)
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
