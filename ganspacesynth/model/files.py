"""Model files: one safetensors file holding the generator weights and, as JSON metadata, the config.

Loading never executes code (no pickles). The metadata carries a format name and version so a wrong,
truncated or newer file is refused with a clear message.

The `info` metadata is free-form provenance, plus one key generation reads: `output_gain_db`, the gain (dB) that
brings the model's notes to its training data's level (measured by `ganspacesynth calibrate`, see
`ganspacesynth/calibration.py`; the measurement itself under `calibration`). A file without it plays at the raw
level (0 dB): older files load unchanged, and adding it needs no new format version. Likewise `latent_prior`
with the `prior.centres` tensor (model/prior.py): a reconstruction run's codes, which random latents are drawn
from; a file without them draws from N(0, I). `set_model_info` rewrites
only the metadata: the tensors (and so the fingerprint) stay byte for byte the same.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import UserError
from ..fileio import atomic_path, check_format, check_input_file
from .config import ModelConfig
from .prior import PRIOR_INFO_KEY, LatentPrior

MODEL_FORMAT = "ganspacesynth-model"
MODEL_FORMAT_VERSION = 1
MODEL_FILENAME = "model.safetensors"
#: The `info` key holding the calibrated output gain (dB); absent: 0 dB.
OUTPUT_GAIN_KEY = "output_gain_db"


@dataclass
class ModelFile:
    config: ModelConfig
    generator_state: dict[str, torch.Tensor]
    info: dict = field(default_factory=dict)  # free-form provenance: training images, source checkpoint, …
    path: Path | None = None
    prior: LatentPrior | None = None  # where random latents come from (None: N(0, I))

    @property
    def fingerprint(self) -> str:
        return state_fingerprint(self.generator_state)

    @property
    def output_gain_db(self) -> float:
        """The calibrated output gain (dB) the file carries; 0.0 when it has none."""
        return output_gain_of(self.info, self.path)


def output_gain_of(info: dict, where: object = "the model") -> float:
    """`info["output_gain_db"]` checked (a finite number within ±60 dB), 0.0 when absent or null."""
    from ..audio.levels import check_gain_db

    value = (info or {}).get(OUTPUT_GAIN_KEY)
    if value is None:
        return 0.0
    return check_gain_db(value, f"{where}: info.{OUTPUT_GAIN_KEY}")


def state_fingerprint(state: dict[str, torch.Tensor]) -> str:
    """sha256 over parameter names, shapes and float32 values: identifies a generator's weights."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().to("cpu", torch.float32).contiguous()
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def save_model(path: str | os.PathLike, config: ModelConfig, generator_state: dict[str, torch.Tensor],
               info: dict | None = None, half: bool = False, prior: LatentPrior | None = None) -> Path:
    """Write a model file atomically. `half` stores the weights as float16 (half the size); `prior`: where
    random latents come from (model/prior.py; None or N(0, I): nothing stored, as in every older file)."""
    config.validate()
    dtype = torch.float16 if half else torch.float32
    tensors = {f"generator.{k}": v.detach().to("cpu", dtype).contiguous() for k, v in generator_state.items()}
    prior_tensors, prior_info = (prior.to_file() if prior is not None else ({}, {}))
    tensors.update(prior_tensors)
    metadata = {
        "format": MODEL_FORMAT,
        "format_version": str(MODEL_FORMAT_VERSION),
        "config": config.to_json(),
        # the prior is what `prior` says, never a stale entry copied along with another file's info
        "info": json.dumps({**{k: v for k, v in (info or {}).items() if k != PRIOR_INFO_KEY}, **prior_info},
                           sort_keys=True),
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def resolve_model_path(path: str | os.PathLike | None) -> Path:
    """A model file, a training run folder (its latest export), or None for the bundled default."""
    if path is None:
        from ..assets import default_model_path

        found = default_model_path()
        if found is None:
            raise UserError("no bundled default model is installed; pass --model MODEL (make one with `ganspacesynth init`)")
        return found
    p = Path(path)
    if p.is_dir():
        candidate = p / MODEL_FILENAME
        if candidate.is_file():
            return candidate
        raise UserError(f"{p} is a folder without {MODEL_FILENAME} (is it a training run that has not exported yet?)")
    return check_input_file(p, "model file")  # missing, or a device or pipe (/dev/zero): said as it is


def read_metadata(path: Path) -> dict:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable model file ({exc})") from None


def load_model(path: str | os.PathLike | None) -> ModelFile:
    """Load and validate a model file (or run folder, or the bundled default when None)."""
    p = resolve_model_path(path)
    meta = read_metadata(p)
    check_format(meta, MODEL_FORMAT, MODEL_FORMAT_VERSION, "GANSpaceSynth model file", p)
    try:
        config = ModelConfig.from_dict(json.loads(meta["config"]))
        config.validate()
        info = json.loads(meta.get("info", "{}"))
    except (KeyError, ValueError, TypeError) as exc:
        raise UserError(f"{p} has an invalid model config: {exc}") from None
    if not isinstance(info, dict):
        raise UserError(f"{p} has an invalid model info (a JSON object is expected)")
    output_gain_of(info, p)  # refuse a damaged gain now, not at the first note
    try:
        tensors = load_file(str(p))
    except (SafetensorError, OSError) as exc:
        raise UserError(f"{p} is damaged: {exc}") from None
    state = {k[len("generator."):]: v.float() for k, v in tensors.items() if k.startswith("generator.")}
    if not state:
        raise UserError(f"{p} holds no generator weights")
    prior = LatentPrior.from_file(config.latent_vector_size, tensors, info, p)
    return ModelFile(config=config, generator_state=state, info=info, path=p, prior=prior)


def set_model_info(path: str | os.PathLike, updates: dict, out: str | os.PathLike | None = None) -> Path:
    """Rewrite a model file with `updates` merged into its `info` (a value None removes the key), atomically,
    to `out` (default: in place). Only the metadata changes: every tensor keeps its name, dtype (float16 stays
    float16) and bytes, so the fingerprint and GANSpace components made for the file still match."""
    p = resolve_model_path(path)
    meta = read_metadata(p)
    check_format(meta, MODEL_FORMAT, MODEL_FORMAT_VERSION, "GANSpaceSynth model file", p)
    try:
        info = json.loads(meta.get("info", "{}"))
    except ValueError as exc:
        raise UserError(f"{p} has an invalid model info: {exc}") from None
    if not isinstance(info, dict):
        raise UserError(f"{p} has an invalid model info (a JSON object is expected)")
    try:
        tensors = load_file(str(p))
    except (SafetensorError, OSError) as exc:
        raise UserError(f"{p} is damaged: {exc}") from None
    for key, value in updates.items():
        if value is None:
            info.pop(key, None)
        else:
            info[key] = value
    output_gain_of(info, p)
    metadata = {**meta, "info": json.dumps(info, sort_keys=True)}
    target = Path(out) if out is not None else p
    with atomic_path(target) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return target
