"""Model files: one safetensors file holding the generator weights and, as JSON metadata, the config.

Loading never executes code (no pickles). The metadata carries a format name and version so a wrong,
truncated or newer file is refused with a clear message.
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
from ..fileio import atomic_path, check_format
from .config import ModelConfig

MODEL_FORMAT = "ganspacesynth-model"
MODEL_FORMAT_VERSION = 1
MODEL_FILENAME = "model.safetensors"


@dataclass
class ModelFile:
    config: ModelConfig
    generator_state: dict[str, torch.Tensor]
    info: dict = field(default_factory=dict)  # free-form provenance: training images, source checkpoint, …
    path: Path | None = None

    @property
    def fingerprint(self) -> str:
        return state_fingerprint(self.generator_state)


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
               info: dict | None = None, half: bool = False) -> Path:
    """Write a model file atomically. `half` stores the weights as float16 (half the size)."""
    config.validate()
    dtype = torch.float16 if half else torch.float32
    tensors = {f"generator.{k}": v.detach().to("cpu", dtype).contiguous() for k, v in generator_state.items()}
    metadata = {
        "format": MODEL_FORMAT,
        "format_version": str(MODEL_FORMAT_VERSION),
        "config": config.to_json(),
        "info": json.dumps(info or {}, sort_keys=True),
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
    if not p.is_file():
        raise UserError(f"model file not found: {p}")
    return p


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
    try:
        tensors = load_file(str(p))
    except (SafetensorError, OSError) as exc:
        raise UserError(f"{p} is damaged: {exc}") from None
    state = {k[len("generator."):]: v.float() for k, v in tensors.items() if k.startswith("generator.")}
    if not state:
        raise UserError(f"{p} holds no generator weights")
    return ModelFile(config=config, generator_state=state, info=info, path=p)
