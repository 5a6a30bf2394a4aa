"""Name GANSpace directions by what they do to the sound.

For each direction, its coefficient is swept (e.g. −2…2) in several contexts (pitches × latents); every
rendered note is measured with `descriptors.describe_waves`. A descriptor counts as controlled by the
direction when it moves monotonically in every context (mean Spearman ρ over contexts, scipy.stats) and by
a clearly audible amount (the least-squares change over the sweep, on the descriptor's comparison scale,
divided by its `min_change`: the effect size). The strongest one or two give the label ("brighter",
"longer sustain, quieter").

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

DESCRIPTION_VERSION = 1
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


def describe_directions(renders: Sequence[Render], num_components: int, sample_rate: int,
                        values: Sequence[float] = (-2.0, -1.0, 0.0, 1.0, 2.0), *, context_names: Sequence[str] | None = None,
                        min_rho: float = 0.8, min_effect: float = 1.0,
                        progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """Describe the first `num_components` directions; one JSON-ready dict per direction.

    Each dict: `label` (e.g. "brighter, louder"; "" when nothing changes clearly), `changes` (the descriptors
    kept, strongest first), `stats` (every descriptor: rho, change, effect, curve) and the sweep `values`.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) < 3:
        raise ValueError("sweep at least 3 coefficient values")
    k, v = num_components, len(values)
    # One batch per context: row (i, j) has coefficient values[j] on direction i, zeros elsewhere.
    coeffs = np.zeros((k * v, k))
    for i in range(k):
        coeffs[i * v : (i + 1) * v, i] = values
    measured = {name: np.empty((k, len(renders), v)) for name in DESCRIPTORS}
    for c, render in enumerate(renders):
        waves = np.asarray(render(coeffs))
        if waves.shape[0] != k * v:
            raise ValueError(f"render returned {waves.shape[0]} notes for {k * v} coefficient vectors")
        desc = describe_waves(waves, sample_rate)
        for name in DESCRIPTORS:
            measured[name][:, c, :] = desc[name].reshape(k, v)
        if progress:
            progress(c + 1, len(renders))
    out = []
    for i in range(k):
        stats = {name: direction_stats(values, measured[name][i], name) for name in DESCRIPTORS}
        label, kept = label_direction(stats, min_rho, min_effect)
        out.append({"label": label, "changes": kept, "stats": stats, "values": values.tolist(),
                    "contexts": list(context_names) if context_names else len(renders),
                    "description_version": DESCRIPTION_VERSION})
    return out


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
