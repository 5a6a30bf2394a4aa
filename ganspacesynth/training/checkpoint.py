"""Training checkpoints: the full state in one safetensors file, written atomically.

`RUN/checkpoints/ckpt-<step>.safetensors` holds the tensors of the generator (`generator.*`), the
discriminator (`discriminator.*`), the EMA generator (`ema.*`), both Adam optimisers
(`opt_g.<param index>.<slot>`, `opt_d.…`) and the torch RNG states (`rng.*`); its JSON metadata holds
the format and version, the schedule position (step, images, seconds, stage) and the optimisers'
param groups. Nothing is pickled, so loading executes no code. Only the newest `keep` files are kept.
Each checkpoint also exports `RUN/model.safetensors` (model/files.py format, EMA weights), which every
`--model` option accepts through the run folder.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..errors import UserError
from ..fileio import atomic_path, check_format
from ..model.config import ModelConfig
from ..model.files import MODEL_FILENAME, save_model

CHECKPOINT_FORMAT = "ganspacesynth-train-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^ckpt-(\d+)\.safetensors$")


@dataclass
class Position:
    """Where a run is in its schedule."""

    step: int = 0
    images: int = 0
    seconds: float = 0.0
    stage_id: int = 0


def _optimizer_tensors(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list]:
    sd = opt.state_dict()
    tensors = {}
    for idx, slots in sd["state"].items():
        for slot, value in slots.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"{prefix}.{idx}.{slot}"] = t.detach().to("cpu").contiguous()
    return tensors, sd["param_groups"]


def _optimizer_state(prefix: str, tensors: dict[str, torch.Tensor], groups: list) -> dict:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            _, idx, slot = key.split(".", 2)
            state.setdefault(int(idx), {})[slot] = value
    return {"state": state, "param_groups": groups}


def _module_tensors(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}


def checkpoint_paths(run_dir: str | Path) -> list[Path]:
    """Checkpoints of a run, oldest first."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(run_dir: str | Path, position: Position, generator, discriminator, ema, opt_g, opt_d,
                    keep: int = 3) -> Path:
    """Write the full training state atomically, then delete all but the newest `keep` checkpoints."""
    tensors: dict[str, torch.Tensor] = {}
    tensors.update(_module_tensors("generator", generator))
    tensors.update(_module_tensors("discriminator", discriminator))
    tensors.update(_module_tensors("ema", ema))
    g_tensors, g_groups = _optimizer_tensors("opt_g", opt_g)
    d_tensors, d_groups = _optimizer_tensors("opt_d", opt_d)
    tensors.update(g_tensors)
    tensors.update(d_tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    metadata = {
        "format": CHECKPOINT_FORMAT,
        "format_version": str(CHECKPOINT_VERSION),
        "position": json.dumps(asdict(position)),
        "opt_g_groups": json.dumps(g_groups),
        "opt_d_groups": json.dumps(d_groups),
    }
    path = Path(run_dir) / CHECKPOINT_DIR / f"ckpt-{position.step:09d}.safetensors"
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    for old in checkpoint_paths(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


@dataclass
class Checkpoint:
    path: Path
    position: Position
    tensors: dict[str, torch.Tensor]
    opt_g_groups: list
    opt_d_groups: list

    def module_state(self, prefix: str) -> dict[str, torch.Tensor]:
        n = len(prefix) + 1
        return {k[n:]: v for k, v in self.tensors.items() if k.startswith(prefix + ".")}

    def restore(self, generator, discriminator, ema, opt_g, opt_d) -> None:
        """Load every state into the (already built) networks and optimisers."""
        try:
            generator.load_state_dict(self.module_state("generator"))
            discriminator.load_state_dict(self.module_state("discriminator"))
            ema.load_state_dict(self.module_state("ema"))
        except RuntimeError as exc:
            raise UserError(f"{self.path} does not fit this run's networks: {str(exc).splitlines()[0]}") from None
        device = next(generator.parameters()).device
        for opt, prefix, groups in ((opt_g, "opt_g", self.opt_g_groups), (opt_d, "opt_d", self.opt_d_groups)):
            state = _optimizer_state(prefix, self.tensors, groups)
            opt.load_state_dict(state)
            for slots in opt.state.values():
                for slot, value in slots.items():
                    if torch.is_tensor(value) and slot != "step":
                        slots[slot] = value.to(device)
        torch.set_rng_state(self.tensors["rng.torch"])
        cuda_states = [v for k, v in sorted(self.tensors.items()) if k.startswith("rng.cuda.")]
        if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and validate a checkpoint file (no code runs: safetensors + JSON)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        check_format(meta, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "GANSpaceSynth training checkpoint", path)
        tensors = load_file(str(path))
        position = Position(**json.loads(meta["position"]))
        return Checkpoint(path, position, tensors, json.loads(meta["opt_g_groups"]), json.loads(meta["opt_d_groups"]))
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path} is not a readable checkpoint ({exc})") from None


def latest_checkpoint(run_dir: str | Path) -> Checkpoint | None:
    paths = checkpoint_paths(run_dir)
    return load_checkpoint(paths[-1]) if paths else None


def export_model(run_dir: str | Path, config: ModelConfig, ema, info: dict, half: bool = False) -> Path:
    """Write the EMA generator as the run's model file (`RUN/model.safetensors`)."""
    return save_model(Path(run_dir) / MODEL_FILENAME, config, ema.state_dict(), info=info, half=half)
