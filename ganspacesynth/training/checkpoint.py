"""Training checkpoints: the full state in one safetensors file, written atomically.

`RUN/checkpoints/ckpt-<step>.safetensors` holds the tensors of every module under its slot name
(`generator.*`, `ema.*` and the objective's own, e.g. `discriminator.*` or `codes.*`), every Adam optimiser
(`opt.<slot>.<param index>.<state>`) and the torch RNG states (`rng.*`); its JSON metadata holds the format
and version, the objective, the schedule position (step, images, seconds, stage) and the optimisers' param
groups. Format 1 had fixed slots (`discriminator.*`, `opt_g.*`, `opt_d.*`); it is read by renaming them to the
objective's (`Objective.legacy_slots`). Nothing is pickled, so loading executes no code. Only the newest `keep`
files are kept.
Each checkpoint also exports `RUN/model.safetensors` (model/files.py format, EMA weights), which every
`--model` option accepts through the run folder.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..errors import UserError
from ..fileio import atomic_path, check_format
from ..model.config import ModelConfig
from ..model.files import MODEL_FILENAME, save_model

CHECKPOINT_FORMAT = "ganspacesynth-train-checkpoint"
CHECKPOINT_VERSION = 2
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
            idx, slot = key[len(prefix) + 1:].split(".", 1)
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


def save_checkpoint(run_dir: str | Path, position: Position, modules: Mapping[str, torch.nn.Module],
                    optimizers: Mapping[str, torch.optim.Optimizer], keep: int = 3, objective: str = "") -> Path:
    """Write the full training state atomically, then delete all but the newest `keep` checkpoints."""
    tensors: dict[str, torch.Tensor] = {}
    groups = {}
    for name, module in modules.items():
        tensors.update(_module_tensors(name, module))
    for name, opt in optimizers.items():
        opt_tensors, groups[name] = _optimizer_tensors(f"opt.{name}", opt)
        tensors.update(opt_tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    metadata = {
        "format": CHECKPOINT_FORMAT,
        "format_version": str(CHECKPOINT_VERSION),
        "objective": objective,
        "position": json.dumps(asdict(position)),
        "optimizers": json.dumps(groups),
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
    optimizer_groups: dict[str, list]
    version: int = CHECKPOINT_VERSION
    objective: str = ""
    skipped: list = field(default_factory=list)  # newer checkpoints that could not be read (latest_checkpoint)

    def module_state(self, prefix: str) -> dict[str, torch.Tensor]:
        n = len(prefix) + 1
        return {k[n:]: v for k, v in self.tensors.items() if k.startswith(prefix + ".")}

    def slots(self) -> set[str]:
        """Names of the module slots this checkpoint holds."""
        return {k.split(".", 1)[0] for k in self.tensors if not k.startswith(("opt.", "rng."))}

    def renamed(self, legacy_slots: Mapping[str, str]) -> "Checkpoint":
        """A format-1 checkpoint with its fixed slots given the objective's names (format 2: itself)."""
        if self.version >= 2:
            return self
        tensors, groups = {}, {}
        for key, value in self.tensors.items():
            head, rest = key.split(".", 1)
            if head in ("opt_g", "opt_d"):
                key = f"opt.{legacy_slots[head]}.{rest}"
            elif head in legacy_slots:
                key = f"{legacy_slots[head]}.{rest}"
            tensors[key] = value
        for head, value in self.optimizer_groups.items():
            groups[legacy_slots[head]] = value
        return Checkpoint(self.path, self.position, tensors, groups, CHECKPOINT_VERSION, self.objective)

    def restore(self, modules: Mapping[str, torch.nn.Module], optimizers: Mapping[str, torch.optim.Optimizer],
                legacy_slots: Mapping[str, str] | None = None) -> None:
        """Load every state into the (already built) modules and optimisers, by slot name."""
        ckpt = self.renamed(legacy_slots or {})
        missing = sorted(set(modules) - ckpt.slots()) + sorted(set(optimizers) - set(ckpt.optimizer_groups))
        if missing:
            raise UserError(f"{self.path} has no {', '.join(missing)} state: it was written by another objective "
                            f"({self.objective or 'a format-1 run'})")
        try:
            for name, module in modules.items():
                module.load_state_dict(ckpt.module_state(name))
        except RuntimeError as exc:
            raise UserError(f"{self.path} does not fit this run's networks: {str(exc).splitlines()[0]}") from None
        device = next(next(iter(modules.values())).parameters()).device
        for name, opt in optimizers.items():
            opt.load_state_dict(_optimizer_state(f"opt.{name}", ckpt.tensors, ckpt.optimizer_groups[name]))
            for slots in opt.state.values():
                for slot, value in slots.items():
                    if torch.is_tensor(value) and slot != "step":
                        slots[slot] = value.to(device)
        torch.set_rng_state(ckpt.tensors["rng.torch"])
        cuda_states = [v for k, v in sorted(ckpt.tensors.items()) if k.startswith("rng.cuda.")]
        if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and validate a checkpoint file (no code runs: safetensors + JSON)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        version = check_format(meta, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "GANSpaceSynth training checkpoint", path)
        tensors = load_file(str(path))
        position = Position(**json.loads(meta["position"]))
        if version == 1:
            groups = {"opt_g": json.loads(meta["opt_g_groups"]), "opt_d": json.loads(meta["opt_d_groups"])}
        else:
            groups = json.loads(meta["optimizers"])
        return Checkpoint(path, position, tensors, groups, version, meta.get("objective", ""))
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path} is not a readable checkpoint ({exc})") from None


def latest_checkpoint(run_dir: str | Path) -> Checkpoint | None:
    """The newest readable checkpoint (None if the run has none). A damaged newer one (a disk filled up, a copy
    cut short) is passed over for the one before it, and named in the result's `skipped`; if none is readable,
    the newest one's error is raised."""
    paths = checkpoint_paths(run_dir)
    skipped: list[str] = []
    first_error: UserError | None = None
    for path in reversed(paths):
        try:
            ckpt = load_checkpoint(path)
        except UserError as exc:
            first_error = first_error or exc
            skipped.append(str(exc))
            continue
        ckpt.skipped = skipped
        return ckpt
    if first_error is not None:
        raise first_error
    return None


def export_model(run_dir: str | Path, config: ModelConfig, ema, info: dict, half: bool = False,
                 prior=None) -> Path:
    """Write the EMA generator (and its `prior`, model/prior.py) as the run's model file (`RUN/model.safetensors`)."""
    return save_model(Path(run_dir) / MODEL_FILENAME, config, ema.state_dict(), info=info, half=half, prior=prior)


def init_states(source: str | Path, config: ModelConfig) -> dict[str, dict[str, torch.Tensor]]:
    """The states a new run starts from (`--init-from`): a model file's generator (for `generator` and `ema`), or
    a run folder's newest checkpoint's module slots (format 1's `discriminator` of a `glo` run named `codes`).
    The architecture and conditions must be this run's."""
    from ..fileio import read_json
    from ..model.files import load_model

    source = Path(source)
    if source.is_dir() and checkpoint_paths(source):
        ckpt = latest_checkpoint(source)
        saved = ModelConfig.from_dict(dict(read_json(source / "config.json").get("model", {})))
        if ckpt.version < 2 and ckpt.objective == "" and "codes" not in ckpt.slots():
            codes_run = read_json(source / "config.json").get("train", {}).get("objective") == "glo"
            ckpt = ckpt.renamed({"discriminator": "codes" if codes_run else "discriminator", "opt_g": "generator",
                                 "opt_d": "codes" if codes_run else "discriminator"})
        states = {name: ckpt.module_state(name) for name in ckpt.slots()}
    else:
        mf = load_model(source)
        saved = mf.config
        states = {"generator": mf.generator_state, "ema": mf.generator_state}
    if saved.to_dict() != config.to_dict():
        raise UserError(f"{source} has another architecture or other conditions than this run; --init-from needs "
                        f"the same preset and conditions")
    return states


def init_modules(states: Mapping[str, dict[str, torch.Tensor]], modules: Mapping[str, torch.nn.Module]) -> list[str]:
    """Load `init_states` into the modules of the same slot that they fit; returns the slots filled (a module of
    another objective with the same slot name but another shape is left as initialised)."""
    filled = []
    for name, state in states.items():
        if name not in modules:
            continue
        try:
            modules[name].load_state_dict(state)
        except RuntimeError as exc:
            if name in ("generator", "ema"):
                raise UserError(f"--init-from does not fit this run's generator: {str(exc).splitlines()[0]}") from None
            continue
        filled.append(name)
    return filled
