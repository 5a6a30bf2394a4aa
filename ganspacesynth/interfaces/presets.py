"""Timbre presets: one timbre of a live session as JSON, and its checks.

A preset holds what a note of the session is made from besides its pitch: z, the model's other conditions
(instrument family, …), the GANSpace coefficients and the synthesis mode, with the model's fingerprint (and the
components' digest when it has coefficients) so that it is never played by a model it was not made with:

    {"format": "ganspacesynth-timbre", "format_version": 1, "model_fingerprint": "…", "mode": "offset",
     "z": [64 numbers], "conditions": {"instrument_family": "guitar"}, "coefficients": [1.5, 0, -2],
     "components": {"count": 256, "layer": "conv1", "digest": "…"}}

Numbers are the float32 values written as JSON numbers (shortest round-trip form), so a preset read back — from
a file, a URL or a browser that parsed it into doubles — gives the same bits. Trailing zero coefficients are left
out (coefficients are zero-padded everywhere). `components` is null when the preset has no coefficients.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from ..choices import COMPONENT_MODES, check_synthesis_mode
from ..errors import UserError
from ..model.conditions import conditions_json
from .requests import NO_COMPONENTS, coefficients_for

PRESET_FORMAT = "ganspacesynth-timbre"
PRESET_VERSION = 1
#: A preset file is a few kilobytes; anything much larger is refused before it is read.
MAX_PRESET_BYTES = 1 << 20
MAX_CONDITIONS = 32


@dataclass(frozen=True, eq=False)
class Timbre:
    """A checked timbre: float32 z `[L]`, conditions {name: class or frozenset of classes}, float32 coefficients
    `[K]` (K = the loaded components' count, 0 without components) and the synthesis mode."""

    z: np.ndarray = field(repr=False)
    conditions: Mapping[str, object]
    coeffs: np.ndarray = field(repr=False)
    mode: str


# -- conditions -------------------------------------------------------------------------------------------------------
def condition_specs(synth) -> list[dict]:
    """The model's conditions a performer chooses (all but pitch, which the keys play): name, kind, classes."""
    return [{"name": s.name, "kind": s.kind, "classes": list(s.classes)}
            for s in synth.conditions.specs if s.name != "pitch"]


def check_conditions(synth, values) -> dict:
    """A client's conditions ({name: value}) for `synth`, checked (`ConditionSet.check_values`)."""
    return synth.conditions.check_values(values, max_count=MAX_CONDITIONS)


# -- components ---------------------------------------------------------------------------------------------------------
_digests: dict[int, tuple[object, str]] = {}
_digest_lock = threading.Lock()


def components_digest(components) -> str:
    """sha256 over the layer and the arrays that give coefficients their meaning (components, stdev, mean), so a
    preset's coefficients are never applied to other directions. Cached per loaded components object."""
    with _digest_lock:
        hit = _digests.get(id(components))
        if hit is not None and hit[0] is components:
            return hit[1]
    h = hashlib.sha256(str(components.layer).encode())
    for arr in (components.comp, components.stdev, components.mean):
        a = np.ascontiguousarray(arr, dtype=np.float32)
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    digest = h.hexdigest()
    with _digest_lock:
        if len(_digests) > 8:
            _digests.clear()
        _digests[id(components)] = (components, digest)
    return digest


# -- presets ------------------------------------------------------------------------------------------------------------
def _floats(values: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=np.float32)]


def to_preset(synth, components, timbre: Timbre) -> dict:
    """The JSON object of a timbre played by `synth` (with `components`)."""
    coeffs = np.asarray(timbre.coeffs, dtype=np.float32)
    nonzero = np.flatnonzero(coeffs)
    coeffs = coeffs[:nonzero[-1] + 1] if nonzero.size else coeffs[:0]
    comps = None
    if components is not None and coeffs.size:
        comps = {"count": int(components.n_components), "layer": str(components.layer),
                 "digest": components_digest(components)}
    return {"format": PRESET_FORMAT, "format_version": PRESET_VERSION, "model_fingerprint": synth.fingerprint or "",
            "mode": timbre.mode, "z": _floats(timbre.z), "conditions": conditions_json(timbre.conditions),
            "coefficients": _floats(coeffs), "components": comps}


def _numbers(values, what: str, count: int | None = None) -> np.ndarray:
    from .performer import finite

    if not isinstance(values, list) or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        raise UserError(f"the preset's {what} must be a list of numbers")
    if count is not None and len(values) != count:
        raise UserError(f"the preset's {what} has {len(values)} values; this model needs {count}")
    return finite(values, f"the preset's {what}")


def from_preset(data, synth, components) -> Timbre:
    """A preset's timbre, checked against the loaded model and components (nothing changes): a one-line UserError
    for anything else, a preset of another model (fingerprint) or other components (digest) among them."""
    from ..synth import MAX_LATENT

    if not isinstance(data, dict):
        raise UserError("a preset must be a JSON object")
    if data.get("format") != PRESET_FORMAT:
        raise UserError(f"not a GANSpaceSynth timbre preset (its format is {str(data.get('format'))[:40]!r}, "
                        f"expected {PRESET_FORMAT!r})")
    version = data.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise UserError("the preset has no valid format_version")
    if version > PRESET_VERSION:
        raise UserError(f"the preset is format version {version}, newer than this GANSpaceSynth reads "
                        f"({PRESET_VERSION}): update GANSpaceSynth")
    fingerprint = data.get("model_fingerprint")
    if not isinstance(fingerprint, str):
        raise UserError("the preset names no model fingerprint")
    if fingerprint != (synth.fingerprint or ""):
        raise UserError(f"the preset was made with another model (fingerprint {fingerprint[:12] or 'none'}…), "
                        f"not the loaded one ({(synth.fingerprint or 'none')[:12]}…): load that model first")
    mode = check_synthesis_mode(data.get("mode"))
    if components is None and mode in COMPONENT_MODES:
        raise UserError(f"the preset plays in mode {mode!r}, which needs GANSpace components: {NO_COMPONENTS}")
    z = _numbers(data.get("z"), "z", synth.latent_size)
    if np.abs(z).max(initial=0) > MAX_LATENT:
        raise UserError(f"the preset's z must lie within ±{MAX_LATENT:g}")
    conditions = check_conditions(synth, data.get("conditions"))
    coeffs = _numbers(data.get("coefficients", []), "coefficients")
    count = 0 if components is None else int(components.n_components)
    if np.any(coeffs):
        info = data.get("components")
        if components is None:
            raise UserError(f"the preset moves GANSpace directions: {NO_COMPONENTS}")
        if isinstance(info, dict) and info.get("digest") not in (None, components_digest(components)):
            raise UserError(f"the preset's coefficients belong to other GANSpace components ({info.get('count')} at "
                            f"{str(info.get('layer'))[:20]}), not the loaded ones ({count} at {components.layer})")
        values = coefficients_for(components, coeffs.tolist())
    else:
        values = np.zeros(count, dtype=np.float32)
    return Timbre(z.astype(np.float32), conditions, values, mode)


def morph(a: Timbre, b: Timbre, t: float) -> Timbre:
    """The timbre a fraction t of the way from a to b: z slerped (GANSynth's path for Gaussian latents),
    coefficients lerped, conditions and mode a's below the middle and b's from there."""
    from ..compose.interpolate import lerp, slerp

    z = slerp(a.z, b.z, t).astype(np.float32)
    coeffs = lerp(a.coeffs, b.coeffs, t).astype(np.float32)
    nearer = a if t < 0.5 else b
    return Timbre(z, dict(nearer.conditions), coeffs, nearer.mode)


__all__ = ["PRESET_FORMAT", "PRESET_VERSION", "MAX_PRESET_BYTES", "Timbre", "condition_specs", "check_conditions",
           "conditions_json", "components_digest", "to_preset", "from_preset", "morph"]
