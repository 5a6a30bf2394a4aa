"""From a model to an instrument's files: the timbre, its notes across the keyboard (one batch), the metadata that
makes it again, then `build_instrument` and `write_instrument` (see the package docstring)."""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from ...choices import LATENT_MODE
from ...conditions import format_ranges
from ...errors import UserError
from .build import build_instrument
from .files import (INSTRUMENT_FORMAT, INSTRUMENT_FORMAT_VERSION, check_output, check_sfz_output, sfz_paths,
                    write_instrument)
from .keyboard import velocity_ranges
from .model import Instrument
from .options import InstrumentOptions

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
    """(z [1, L] or None, coefficients [K] or None, metadata) of the timbre. Without components, or in mode `z`,
    the timbre is z alone."""
    from ...ganspace.edits import coefficient_matrix

    meta: dict = {}
    if components is None or mode == LATENT_MODE:
        if coefficients is not None and np.any(np.asarray(coefficients, dtype=np.float64) != 0):
            raise UserError("coefficients need a components file (--components)" if components is None else
                            "coefficients need a GANSpace mode (offset, noz or latent), not z")
        mode = LATENT_MODE
        coeffs = None
    else:
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
    if coeffs is None:
        waves = synth.generate(np.repeat(z, count, axis=0), pitch=pitch, conditions=conds, batch_size=batch_size)
    else:
        from ...ganspace.edits import synthesize

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
                      conditions: Mapping[str, object] | None = None, options: InstrumentOptions | None = None,
                      **settings) -> ExportResult:
    """Generate one timbre across the keyboard and write it as a SoundFont 2 (and SFZ); see the package docstring.

    The timbre: `z` (one latent) or `seed`, `components` (a loaded `Components`, or None for plain z) with their
    `coefficients` (fewer than the components: zero-padded), and the model's other `conditions`. The rest is an
    `InstrumentOptions` (mode offset | noz | latent as in `ganspace/edits.py`, or z; pitches, every,
    velocity_layers, loop, sfz, name, batch_size, max_loop_error, overwrite_samples): `options`, or its fields as
    keywords. Everything is checked before generating; files appear complete or not at all."""
    t0 = time.perf_counter()
    if options is None:
        options = InstrumentOptions(**settings)
    elif settings:
        raise TypeError(f"give InstrumentOptions or their fields, not both ({', '.join(settings)})")
    out = check_output(out)
    chosen, plan = options.keyboard(synth.pitches)
    if components is not None:
        components.check_model(synth)
    for cname in (conditions or {}):
        if cname == "pitch":
            raise UserError("the pitch comes from the keyboard: do not give it as a condition")
        synth.conditions.spec(cname)  # unknown names fail here, before generating
    name = safe_name(options.name or out.stem)
    if options.sfz:
        check_sfz_output(out, options.overwrite_samples)
    zz, coeffs, timbre = _timbre(synth, z, seed, components, coefficients, options.mode)
    layer_values = _velocity_layer_values(synth, options.velocity_layers, conditions)
    waves = render_notes(synth, plan, zz, coeffs, components, timbre["mode"], conditions, layer_values,
                         options.batch_size)
    from ... import __version__

    model_path = Path(synth.path) if synth.path else None
    metadata = {
        "format": INSTRUMENT_FORMAT, "format_version": INSTRUMENT_FORMAT_VERSION, "ganspacesynth": __version__,
        "created": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "name": name,
        "model": {"file": model_path.name if model_path else None, "fingerprint": synth.fingerprint,
                  "precision": synth.precision, "sample_rate": synth.sample_rate},
        "timbre": timbre, "conditions": {k: v for k, v in (conditions or {}).items()},
        "keyboard": {"pitches": format_ranges(chosen), "every": options.every, "roots": [r for r, _, _ in plan],
                     "ranges": [[lo, hi] for _, lo, hi in plan]},
    }
    if layer_values:
        metadata["velocity_condition"] = layer_values
    inst = build_instrument(waves, plan, synth.sample_rate, name=name, layers=options.velocity_layers,
                            shared_layers=layer_values is None, loop=options.loop,
                            max_loop_error=options.max_loop_error, metadata=metadata)
    result = ExportResult(out, inst, 0.0)
    silent = [n.root for n in inst.notes if not np.isfinite(n.envelope.body_db)]
    if silent:
        result.warnings.append(f"silent notes at {format_ranges(sorted(set(silent)))}")
    write_instrument(inst, out, sfz=options.sfz, overwrite_samples=options.overwrite_samples)
    if options.sfz:
        result.sfz_path, result.samples_dir = sfz_paths(out)
    result.seconds = time.perf_counter() - t0
    return result
