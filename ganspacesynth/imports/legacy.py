"""The original GANSpaceSynth PCA pickles: read them safely, convert to components files, and write them back.

The original pickle is a dict with `layer, estimator, comp, stdev, var_ratio, global_mean` (and, in version 2,
`version: 2, z_comp, z_mean`); arrays are numpy. TensorFlow activations are NHWC, so the original's `comp`
is `[K, H, W, C]` (or flattened in that H, W, C order) and `global_mean` is `[H, W, C]`; ours are flattened NCHW
(C, H, W). `import_legacy` / `export_legacy` permute at this boundary.

Pickles can run arbitrary code when loaded, so `read_legacy_pickle` uses an unpickler that only resolves the
few numpy names needed to rebuild arrays and refuses every other global.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..fileio import atomic_path

LEGACY_KEYS = ("layer", "estimator", "comp", "stdev", "var_ratio", "global_mean")

try:  # numpy ≥ 2 moved numpy.core to numpy._core; old pickles name either
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric

_ALLOWED = {}
for _mod in ("numpy.core", "numpy._core"):
    _ALLOWED[(f"{_mod}.multiarray", "_reconstruct")] = _multiarray._reconstruct
    _ALLOWED[(f"{_mod}.multiarray", "scalar")] = _multiarray.scalar
    # Protocol 5 pickles rebuild arrays from a buffer with this helper (np.frombuffer + reshape).
    _ALLOWED[(f"{_mod}.numeric", "_frombuffer")] = _numeric._frombuffer
_ALLOWED[("numpy", "ndarray")] = np.ndarray
_ALLOWED[("numpy", "dtype")] = np.dtype
# Protocol 2 pickles store an array's raw bytes as _codecs.encode(text, "latin1"): a pure conversion.
_ALLOWED[("_codecs", "encode")] = __import__("codecs").encode


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only numpy array reconstruction; any other global (os.system, eval, …) is refused."""

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed") from None


def read_legacy_pickle(path: str | os.PathLike) -> dict:
    """Load an original GANSpaceSynth PCA pickle with the restricted unpickler and check its layout."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"pickle file not found: {p}")
    try:
        with open(p, "rb") as f:
            data = RestrictedUnpickler(f).load()
    except pickle.UnpicklingError as exc:
        raise UserError(f"{p} was refused: {exc}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError) as exc:
        raise UserError(f"{p} is not a readable pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{p} holds a {type(data).__name__}, not the GANSpaceSynth PCA dict")
    missing = [k for k in LEGACY_KEYS if k not in data]
    if missing:
        raise UserError(f"{p} is missing {', '.join(missing)} (not a GANSpaceSynth PCA pickle?)")
    version = data.get("version", 1)
    if version not in (1, 2):
        raise UserError(f"{p} has PCA version {version!r}; known versions are 1 and 2")
    if version == 2 and ("z_comp" not in data or "z_mean" not in data):
        raise UserError(f"{p} says version 2 but lacks z_comp / z_mean")
    for key in ("comp", "stdev", "var_ratio", "global_mean", "z_comp", "z_mean"):
        if key in data:
            arr = data[key]
            if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
                raise UserError(f"{p}: {key} must be a numeric numpy array")
    return data


def _nhwc_to_nchw(arr: np.ndarray, shape_chw: tuple[int, int, int], what: str) -> np.ndarray:
    """[..., H, W, C] or [..., H·W·C] (TF order) → [..., C·H·W] (ours)."""
    c, h, w = shape_chw
    lead = arr.shape[:-3] if arr.ndim >= 3 and arr.shape[-3:] == (h, w, c) else None
    if lead is None:
        if arr.shape[-1] != c * h * w:
            raise UserError(f"{what} has shape {list(arr.shape)}, which does not fit the layer's NHWC shape "
                            f"{[h, w, c]} ({c * h * w} values)")
        lead = arr.shape[:-1]
    nhwc = arr.reshape(*lead, h, w, c)
    return np.moveaxis(nhwc, -1, -3).reshape(*lead, c * h * w)


def _nchw_to_nhwc(arr: np.ndarray, shape_chw: tuple[int, int, int]) -> np.ndarray:
    """[..., C·H·W] (ours) → [..., H, W, C] (the original's inflated layout)."""
    c, h, w = shape_chw
    return np.moveaxis(arr.reshape(*arr.shape[:-1], c, h, w), -3, -1)


def import_legacy(path: str | os.PathLike, synth):
    """An original PCA pickle as Components for `synth` (shapes checked against the model's layer)."""
    from ..ganspace.components import Components

    data = read_legacy_pickle(path)
    layer = str(data["layer"])
    if layer not in synth.layer_names():
        raise UserError(f"the pickle is for layer {layer!r}, which this model does not have "
                        f"(layers: {', '.join(synth.layer_names())})")
    shape = tuple(synth.generator.layer_shape(layer))
    comp = np.asarray(data["comp"], np.float32)
    k = comp.shape[0] if comp.ndim >= 2 else 0
    comp = _nhwc_to_nchw(comp, shape, "comp")
    if comp.ndim != 2:
        raise UserError(f"comp has shape {list(data['comp'].shape)}; expected [K, H, W, C] or [K, H·W·C]")
    mean = _nhwc_to_nchw(np.asarray(data["global_mean"], np.float32).reshape(1, -1), shape, "global_mean")[0]
    z_comp = z_mean = None
    if data.get("version", 1) >= 2:
        z_comp = np.asarray(data["z_comp"], np.float32)
        z_mean = np.asarray(data["z_mean"], np.float32).reshape(-1)
        if z_comp.ndim != 2 or z_comp.shape != (k, synth.latent_size):
            raise UserError(f"z_comp has shape {list(z_comp.shape)}, expected [{k}, {synth.latent_size}]")
    meta = {
        "estimator": str(data["estimator"]),
        "sample_count": None,
        "seed": None,
        "pitches": [],
        "model_fingerprint": synth.fingerprint,
        "latent_size": synth.latent_size,
        "imported_from": str(Path(path).name),
        "legacy_version": int(data.get("version", 1)),
    }
    return Components(comp=comp, stdev=np.asarray(data["stdev"]).reshape(-1), var_ratio=np.asarray(data["var_ratio"]).reshape(-1),
                      mean=mean, layer=layer, layer_shape=shape, z_comp=z_comp, z_mean=z_mean, meta=meta)


class _LegacyPickler(pickle._Pickler):
    """Writes numpy globals under their numpy 1.x names (numpy.core.*), which numpy 1 and 2 both import:
    the old Pd setup runs numpy 1, which cannot import numpy 2's numpy._core."""

    def save_global(self, obj, name=None):
        name = name or obj.__qualname__
        module = pickle.whichmodule(obj, name)
        if module.startswith("numpy._core"):
            module = "numpy.core" + module[len("numpy._core"):]
        if self.proto >= 4:
            self.save(module)
            self.save(name)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode("utf-8"))
        self.memoize(obj)


def legacy_dict(components) -> dict:
    """The original layout: comp [K, H, W, C], global_mean [H, W, C]; version 2 keys when z_comp exists."""
    shape = components.layer_shape
    out = {
        "layer": components.layer,
        "estimator": str(components.meta.get("estimator", "cov")),
        "comp": np.ascontiguousarray(_nchw_to_nhwc(components.comp, shape), np.float32),
        "stdev": np.asarray(components.stdev, np.float32),
        "var_ratio": np.asarray(components.var_ratio, np.float32),
        "global_mean": np.ascontiguousarray(_nchw_to_nhwc(components.mean[None], shape)[0], np.float32),
    }
    if components.z_comp is not None:
        out.update({"version": 2, "z_comp": np.asarray(components.z_comp, np.float32),
                    "z_mean": np.asarray(components.z_mean, np.float32)})
    return out


def export_legacy(components, path: str | os.PathLike) -> Path:
    """Write components as an original GANSpaceSynth PCA pickle (protocol 3, readable by Python ≥ 3.0)."""
    buf = io.BytesIO()
    _LegacyPickler(buf, protocol=3).dump(legacy_dict(components))
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())
    return path
