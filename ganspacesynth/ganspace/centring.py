"""Conditional means of a layer: where `noz` notes start, and what fits centre their samples on.

    m = conditional_mean(synth, "conv1", pitch=60, conditions={"instrument_family": "guitar"})   # [D] float32
    base = conditional_means(synth, "conv1", [36, 72], None, 2)                                  # [2, C, H, W]

The conditional mean of a layer for one pitch and set of conditions is the mean activation there over a fixed
seeded set of `CENTRE_LATENTS` latents (`sampling.latent_rows(0, N, L, CENTRE_SEED, STREAM_CENTRE)`), every one
played at that pitch and those conditions. Deterministic: the same latents, summed in float64 in fixed chunks
of `CHUNK` latents. Cheap: only the layers up to the named one run (256 latents: about 15 ms for conv1 of the
bundled model on one core; 15 µs from the cache). Cached per `Synth` (the model, its precision and device):
key (layer, the encoded pitch and conditions, latent count, seed), least recently used first out beyond
`CACHE_BYTES` per synth.

- `noz` notes (edits.py) start the generator at the components' layer from the conditional mean of the pitch
  and conditions asked for, plus Σ cᵢ·stdevᵢ·compᵢ: the note has that pitch and those conditions whatever the
  components file stores as its mean (its `mean` is the fit's global mean, kept for older readers).
- Fits with `centring="per-condition"` (fit.py, the default) subtract from each sampled activation the
  conditional mean of its own pitch and conditions, so the components describe how notes vary at one pitch
  (timbre), not the differences between pitches. The components file records it in its metadata:
  `centring` ("per-condition"), `centre_latents` and `centre_seed`; `noz` on that file uses the same latents.
  Files without `centring` (older fits, imported pickles) were fitted on activations across pitches: `noz` on them
  uses the default conditional mean too, but their directions may move the pitch.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from ..errors import UserError
from .sampling import STREAM_CENTRE, latent_rows

#: How fits centre their samples: on the conditional mean of each sample's own pitch and conditions, or not at all.
PER_CONDITION = "per-condition"
NO_CENTRING = "none"
CENTRINGS = (PER_CONDITION, NO_CENTRING)
#: Latents per conditional mean: its standard error is 1/16 of the layer's spread at one pitch.
CENTRE_LATENTS = 256
CENTRE_SEED = 0
MAX_CENTRE_LATENTS = 1 << 16
#: Latents per generator pass (fixed, so that a mean does not depend on what else is computed).
CHUNK = 64
#: Cached means per synth, at most this many bytes (conv1 of the bundled model: 4 KB a mean).
CACHE_BYTES = 64 << 20


@dataclass(frozen=True)
class Centring:
    """How a components file was fitted, and the conditional means its noz notes start from."""

    method: str = NO_CENTRING
    latents: int = CENTRE_LATENTS
    seed: int = CENTRE_SEED

    def meta(self) -> dict:
        """The components file's metadata entries."""
        if self.method == NO_CENTRING:
            return {"centring": NO_CENTRING}
        return {"centring": self.method, "centre_latents": self.latents, "centre_seed": self.seed}


def check_centring(method: str) -> str:
    if method not in CENTRINGS:
        raise UserError(f"centring must be one of {', '.join(CENTRINGS)}, not {method!r}")
    return method


def centring_of(components) -> Centring:
    """The centring a components file records (none recorded: NO_CENTRING, the default means); refuses values this
    version cannot reproduce."""
    meta = components.meta or {}
    method = meta.get("centring", NO_CENTRING)
    where = components.path or "the components"
    if method not in CENTRINGS:
        raise UserError(f"{where} were centred by {method!r}, which this version of ganspacesynth does not know; "
                        "update ganspacesynth or refit them")
    latents, seed = meta.get("centre_latents", CENTRE_LATENTS), meta.get("centre_seed", CENTRE_SEED)
    if (isinstance(latents, bool) or not isinstance(latents, int) or not 1 <= latents <= MAX_CENTRE_LATENTS
            or isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise UserError(f"{where} record an unusable conditional mean (centre_latents {latents!r}, "
                        f"centre_seed {seed!r}): latents 1..{MAX_CENTRE_LATENTS} and a seed >= 0")
    return Centring(method, latents, seed)


# -- the cache ---------------------------------------------------------------------------------------------------
_CACHE: "weakref.WeakKeyDictionary[object, OrderedDict]" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def clear_cache(synth=None) -> None:
    """Forget the cached means of one synth (None: of all)."""
    with _LOCK:
        if synth is None:
            _CACHE.clear()
        else:
            _CACHE.pop(synth, None)


def _cached(synth, key):
    with _LOCK:
        table = _CACHE.get(synth)
        if table is None or key not in table:
            return None
        table.move_to_end(key)
        return table[key]


def _store(synth, key, value: np.ndarray) -> None:
    with _LOCK:
        table = _CACHE.setdefault(synth, OrderedDict())
        table[key] = value
        table.move_to_end(key)
        while len(table) > 1 and sum(v.nbytes for v in table.values()) > CACHE_BYTES:
            table.popitem(last=False)


# -- conditions → keys -------------------------------------------------------------------------------------------
def condition_keys(synth, count: int, pitch=None, conditions: Mapping[str, object] | None = None) -> list[tuple]:
    """One hashable key per note: its pitch and conditions as the model encodes them (class indices; a sorted
    tuple of indices for multi-label conditions). Values are checked as `Synth.generate` checks them (one value
    for all notes, or one per note)."""
    labels = synth.labels(count, pitch, conditions)
    columns = []
    for name in sorted(labels):
        spec = synth.conditions.spec(name)
        values = labels[name]
        if spec.kind == "categorical":
            columns.append([(name, int(v)) for v in values.tolist()])
        else:
            columns.append([(name, tuple(int(i) for i in np.flatnonzero(row))) for row in values.numpy()])
    return [tuple(col[i] for col in columns) for i in range(count)]


def _inputs(synth, key: tuple) -> tuple[object, dict | None]:
    """(pitch, conditions) for `Synth.activations` from a key: class values, one for all the mean's latents."""
    pitch, conditions = None, {}
    for name, value in key:
        spec = synth.conditions.spec(name)
        if name == "pitch":
            pitch = int(spec.classes[value])
        elif spec.kind == "categorical":
            conditions[name] = spec.classes[value]
        else:
            conditions[name] = [spec.classes[i] for i in value]  # one list of names: repeated per latent below
    return pitch, conditions or None


def _compute(synth, layer: str, key: tuple, latents: int, seed: int) -> np.ndarray:
    pitch, conditions = _inputs(synth, key)
    total = None
    for start in range(0, latents, CHUNK):
        stop = min(latents, start + CHUNK)
        z = latent_rows(start, stop, synth.prior, seed, STREAM_CENTRE)
        conds = None if conditions is None else {name: ([value] * (stop - start) if isinstance(value, list) else value)
                                                 for name, value in conditions.items()}
        act = synth.activations(z, pitch, layer, conds, batch_size=stop - start)
        part = act.reshape(stop - start, -1).to("cpu", torch.float64).numpy().sum(axis=0)
        total = part if total is None else total + part
    mean = (total / latents).astype(np.float32)
    mean.flags.writeable = False
    return mean


def _check(synth, layer: str, latents: int, seed: int) -> None:
    if layer not in synth.layer_names():
        raise UserError(f"this model has no layer {layer!r} (it has: {', '.join(synth.layer_names())})")
    if (isinstance(latents, bool) or not isinstance(latents, (int, np.integer))
            or not 1 <= latents <= MAX_CENTRE_LATENTS):
        raise UserError(f"a conditional mean takes 1..{MAX_CENTRE_LATENTS} latents, not {latents!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"a seed must be a whole number >= 0, not {seed!r}")


def mean_for_key(synth, layer: str, key: tuple, latents: int = CENTRE_LATENTS, seed: int = CENTRE_SEED) -> np.ndarray:
    """The conditional mean `[D]` (float32, read-only) of one `condition_keys` key, from the cache or computed."""
    cache_key = (layer, key, int(latents), int(seed))
    mean = _cached(synth, cache_key)
    if mean is None:
        mean = _compute(synth, layer, key, int(latents), int(seed))
        _store(synth, cache_key, mean)
    return mean


def conditional_mean(synth, layer: str, pitch=None, conditions: Mapping[str, object] | None = None, *,
                     latents: int = CENTRE_LATENTS, seed: int = CENTRE_SEED) -> np.ndarray:
    """The mean activation `[D]` (float32, flattened C-major, read-only) of `layer` at one pitch and conditions."""
    _check(synth, layer, latents, seed)
    if isinstance(pitch, (list, tuple, np.ndarray)):
        raise UserError("conditional_mean takes one pitch; conditional_means takes one per note")
    (key,) = condition_keys(synth, 1, pitch, conditions)
    return mean_for_key(synth, layer, key, latents, seed)


def conditional_means(synth, layer: str, pitch=None, conditions: Mapping[str, object] | None = None,
                      count: int = 1, *, latents: int = CENTRE_LATENTS, seed: int = CENTRE_SEED) -> torch.Tensor:
    """The conditional mean of every note `[count, C, H, W]` (float32, CPU): `pitch` and each condition one value
    for all notes or one per note, as `Synth.generate` takes them."""
    _check(synth, layer, latents, seed)
    keys = condition_keys(synth, count, pitch, conditions)
    means = {key: mean_for_key(synth, layer, key, latents, seed) for key in dict.fromkeys(keys)}
    shape = tuple(synth.generator.layer_shape(layer))
    return torch.from_numpy(np.stack([means[key] for key in keys])).reshape(count, *shape)


def group_means(synth, layer: str, pitches: Sequence[int], conditions: Mapping[str, object] | None,
                centring: Centring) -> torch.Tensor:
    """`[max(1, len(pitches)), D]` conditional means of a fit's sample groups (sample i: pitches[i % n])."""
    _check(synth, layer, centring.latents, centring.seed)
    rows = [conditional_mean(synth, layer, p, conditions, latents=centring.latents, seed=centring.seed)
            for p in (pitches or [None])]
    return torch.from_numpy(np.stack(rows))
