"""GANSpace components files: what `ganspacesynth ganspace` writes and every player loads.

Public API (used by edits, hallucinations, the OSC server, the web explorer and `describe`):

    comps = Components.load(path, synth=synth)   # None → the bundled default; validated against the synth
    comps.comp      [K, D] float32, unit rows sorted by variance      (D = C·H·W of `comps.layer`, NCHW order)
    comps.stdev     [K]    comps.var_ratio [K]    comps.mean [D]
    comps.z_comp    [K, L] | None (unit latent directions)           comps.z_mean [L] | None
    comps.layer, comps.layer_shape (C, H, W), comps.descriptions (list[dict] | None), comps.meta (provenance)
    comps.with_descriptions([{"label": "brightness", "stats": {...}}, ...]).save("comps.npz")

The file is an `.npz` (numpy arrays only, loaded with allow_pickle=False) with a `meta` entry holding JSON:
format name and version, layer, shapes, estimator, sample count, seed, pitches, the model's fingerprint and
the optional per-component descriptions. Loading never executes code.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..fileio import check_format, write_npz

COMPONENTS_FORMAT = "ganspacesynth-components"
COMPONENTS_FORMAT_VERSION = 1
_ARRAYS = ("comp", "stdev", "var_ratio", "mean", "z_comp", "z_mean")


def resolve_components_path(path: str | os.PathLike | None) -> Path:
    """A components file, or None for the bundled default (UserError if none is installed)."""
    if path is None:
        from ..assets import default_components_path

        found = default_components_path()
        if found is None:
            raise UserError("no bundled default components are installed; pass --components FILE "
                            "(make one with `ganspacesynth ganspace`)")
        return found
    p = Path(path)
    if not p.is_file():
        raise UserError(f"components file not found: {p}")
    return p


@dataclass
class Components:
    comp: np.ndarray
    stdev: np.ndarray
    var_ratio: np.ndarray
    mean: np.ndarray
    layer: str
    layer_shape: tuple[int, int, int]
    z_comp: np.ndarray | None = None
    z_mean: np.ndarray | None = None
    descriptions: list[dict] | None = None
    #: Provenance: estimator, sample_count, seed, pitches, conditions, model_fingerprint, latent_size, regression …
    meta: dict = field(default_factory=dict)
    path: Path | None = None

    def __post_init__(self):
        self.comp = np.ascontiguousarray(self.comp, np.float32)
        self.stdev = np.asarray(self.stdev, np.float32).reshape(-1)
        self.var_ratio = np.asarray(self.var_ratio, np.float32).reshape(-1)
        self.mean = np.asarray(self.mean, np.float32).reshape(-1)
        self.layer_shape = tuple(int(v) for v in self.layer_shape)
        if self.z_comp is not None:
            self.z_comp = np.ascontiguousarray(self.z_comp, np.float32)
            self.z_mean = None if self.z_mean is None else np.asarray(self.z_mean, np.float32).reshape(-1)
        self.validate()

    # -- facts ---------------------------------------------------------------------------------
    @property
    def n_components(self) -> int:
        return int(self.comp.shape[0])

    @property
    def dim(self) -> int:
        return int(self.comp.shape[1])

    @property
    def model_fingerprint(self) -> str | None:
        return self.meta.get("model_fingerprint")

    def validate(self) -> None:
        """Internal consistency of shapes and values (UserError on a malformed file)."""
        if self.comp.ndim != 2:
            raise UserError(f"components must be a [K, D] array, got shape {list(self.comp.shape)}")
        k, d = self.comp.shape
        if k == 0:
            raise UserError(f"{self.path or 'these components'} holds no components (0 directions); make a "
                            f"components file with `ganspacesynth ganspace`")
        if d != int(np.prod(self.layer_shape)):
            raise UserError(f"components have {d} values each but layer {self.layer} {self.layer_shape} has "
                            f"{int(np.prod(self.layer_shape))}")
        for name, arr, shape in (("stdev", self.stdev, (k,)), ("var_ratio", self.var_ratio, (k,)),
                                 ("mean", self.mean, (d,))):
            if arr.shape != shape:
                raise UserError(f"components {name} has shape {list(arr.shape)}, expected {list(shape)}")
        if self.z_comp is not None:
            if self.z_comp.ndim != 2 or self.z_comp.shape[0] != k:
                raise UserError(f"z_comp has shape {list(self.z_comp.shape)}, expected [{k}, latent size]")
            if self.z_mean is None or self.z_mean.shape != (self.z_comp.shape[1],):
                raise UserError("z_comp needs a z_mean of the latent size")
        for name in _ARRAYS:
            arr = getattr(self, name)
            if arr is not None and not np.all(np.isfinite(arr)):
                raise UserError(f"components {name} contains NaN or infinity")
        if self.descriptions is not None:
            _check_descriptions(self.descriptions, k)

    def check_model(self, synth, check_fingerprint: bool = True) -> None:
        """Refuse components made for another model, or for a layer of another shape."""
        names = synth.layer_names()
        if self.layer not in names:
            raise UserError(f"components are for layer {self.layer!r}, which this model does not have")
        shape = tuple(synth.generator.layer_shape(self.layer))
        if shape != self.layer_shape:
            raise UserError(f"components are for layer {self.layer} of shape {self.layer_shape}, but this "
                            f"model's {self.layer} has shape {shape}")
        if self.z_comp is not None and self.z_comp.shape[1] != synth.latent_size:
            raise UserError(f"components' latent directions have size {self.z_comp.shape[1]}, this model's "
                            f"latents have size {synth.latent_size}")
        fp = self.model_fingerprint
        if check_fingerprint and fp and synth.fingerprint and fp != synth.fingerprint:
            raise UserError(f"components were computed for another model (fingerprint {fp}); this model's "
                            f"fingerprint is {synth.fingerprint}")

    # -- derived copies ------------------------------------------------------------------------
    def with_descriptions(self, descriptions: list[dict] | None) -> "Components":
        """A copy with per-component descriptions: one JSON object per component (first ones first), each
        with at least a "label" string, e.g. `{"label": "brighter", "stats": {"centroid_hz_per_unit": 120}}`."""
        if descriptions is not None:
            _check_descriptions(descriptions, self.n_components)
            descriptions = json.loads(json.dumps(descriptions))  # a deep, JSON-clean copy
        return dataclasses.replace(self, descriptions=descriptions)

    def subset(self, k: int) -> "Components":
        """The first k components."""
        if not 1 <= k <= self.n_components:
            raise UserError(f"choose between 1 and {self.n_components} components, not {k}")
        return dataclasses.replace(
            self, comp=self.comp[:k], stdev=self.stdev[:k], var_ratio=self.var_ratio[:k],
            z_comp=None if self.z_comp is None else self.z_comp[:k],
            descriptions=None if self.descriptions is None else self.descriptions[:k],
        )

    # -- files ---------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically as .npz (arrays) + JSON metadata."""
        self.validate()
        meta = dict(self.meta)
        meta.update({
            "format": COMPONENTS_FORMAT,
            "format_version": COMPONENTS_FORMAT_VERSION,
            "layer": self.layer,
            "layer_shape": list(self.layer_shape),
            "n_components": self.n_components,
            "descriptions": self.descriptions,
        })
        return write_npz(path, {name: getattr(self, name) for name in _ARRAYS if getattr(self, name) is not None}, meta)

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, synth=None, *, check_fingerprint: bool = True) -> "Components":
        """Load and validate a components file (None → bundled default); with `synth`, also check it fits."""
        p = resolve_components_path(path)
        try:
            with open(p, "rb") as f:
                is_zip = f.read(4) == b"PK\x03\x04"
        except OSError as exc:
            raise UserError(f"cannot read {p}: {exc.strerror or exc}") from None
        if not is_zip:  # np.load would try to unpickle it and suggest allow_pickle=True
            raise UserError(f"{p} is not a readable components file (not an .npz zip archive)")
        try:
            with np.load(p, allow_pickle=False) as data:
                arrays = {name: np.array(data[name]) for name in data.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            raise UserError(f"{p} is not a readable components file ({exc})") from None
        if "meta" not in arrays:
            raise UserError(f"{p} is not a GANSpaceSynth components file (no metadata)")
        try:
            meta = json.loads(str(arrays.pop("meta")))
        except ValueError as exc:
            raise UserError(f"{p} has unreadable metadata: {exc}") from None
        check_format(meta, COMPONENTS_FORMAT, COMPONENTS_FORMAT_VERSION, "GANSpaceSynth components file", p)
        missing = [n for n in ("comp", "stdev", "var_ratio", "mean") if n not in arrays]
        if missing or "layer" not in meta or "layer_shape" not in meta:
            raise UserError(f"{p} is incomplete (missing {', '.join(missing) or 'layer metadata'})")
        comps = cls(
            comp=arrays["comp"], stdev=arrays["stdev"], var_ratio=arrays["var_ratio"], mean=arrays["mean"],
            z_comp=arrays.get("z_comp"), z_mean=arrays.get("z_mean"), layer=str(meta["layer"]),
            layer_shape=tuple(meta["layer_shape"]), descriptions=meta.get("descriptions"),
            meta={k: v for k, v in meta.items() if k not in ("descriptions",)}, path=p,
        )
        if synth is not None:
            comps.check_model(synth, check_fingerprint=check_fingerprint)
        return comps


def _check_descriptions(descriptions, k: int) -> None:
    if not isinstance(descriptions, list) or len(descriptions) > k:
        raise UserError(f"descriptions must be a list of at most {k} objects (one per component)")
    for i, item in enumerate(descriptions):
        if not isinstance(item, dict) or not isinstance(item.get("label"), str):
            raise UserError(f"description {i} must be an object with a string \"label\"")
    try:
        json.dumps(descriptions)
    except (TypeError, ValueError) as exc:
        raise UserError(f"descriptions must be plain JSON: {exc}") from None
