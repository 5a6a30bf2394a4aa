"""What every training objective is to the loop: modules and optimisers it owns, under checkpoint slot names, and
one step. The loop (training/loop.py) owns the generator, its EMA copy, the schedule and the run folder; it does
not know which objective runs (the shape of stylegan3's `Loss`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch

from ...model.conditions import ConditionSet
from ...model.config import ModelConfig
from ...model.generator import Generator
from .. import distributed
from ..config import TrainConfig
from ..data import TrainingData
from ..schedule import StagePoint, real_at_stage


@dataclass
class ObjectiveContext:
    """What an objective needs from the run: the generator it trains and where and how it runs."""

    generator: Generator
    model_cfg: ModelConfig
    cfg: TrainConfig
    data: TrainingData
    conditions: ConditionSet
    info: distributed.DistInfo
    amp: Any  # autocast context (or nullcontext)
    memory_format: torch.memory_format
    message: Callable[[str], None] = print

    @property
    def device(self) -> torch.device:
        return self.info.device

    def real(self, rows: torch.Tensor, point: StagePoint) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Real spectrograms of dataset `rows` at the stage's resolution, and their labels."""
        real, labels = self.data.gather(rows)
        return real_at_stage(real.to(self.device), self.model_cfg, point).contiguous(memory_format=self.memory_format), labels

    def adam(self, params, lr: float) -> torch.optim.Adam:
        return torch.optim.Adam(params, lr=lr, betas=(self.cfg.adam_beta1, self.cfg.adam_beta2))


@dataclass
class StepClock:
    """Where the run is when a step starts: the step's index (draws are keyed by it), real images shown and
    seconds of training so far, and the schedule point."""

    step: int
    images: int
    seconds: float
    point: StagePoint


class Objective:
    """Base of the training objectives. Subclasses build their modules and optimisers in `__init__`."""

    name: ClassVar[str]
    #: Slot names of format-1 checkpoints, which had two fixed module slots (`generator`, `discriminator`) and
    #: two optimisers (`opt_g`, `opt_d`): {old name: this objective's slot}.
    legacy_slots: ClassVar[dict[str, str]] = {}

    def __init__(self, ctx: ObjectiveContext):
        self.ctx = ctx

    def modules(self) -> dict[str, torch.nn.Module]:
        """The modules this objective trains besides the generator (checkpoint slot → module)."""
        return {}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimiser, the generator's included (checkpoint slot → optimiser)."""
        raise NotImplementedError

    def step(self, clock: StepClock) -> dict[str, torch.Tensor]:
        """One update of everything this objective trains; returns detached statistics (names in stats.py)."""
        raise NotImplementedError

    def latent_prior(self):
        """Where the trained model's random latents come from (a model/prior.py `LatentPrior`, stored in the
        exported model file), or None: N(0, I)."""
        return None

    def new_stage(self) -> None:
        """A new progressive stage begins: fresh optimiser moments (Magenta starts each stage with new optimisers)."""
        for opt in self.optimizers().values():
            opt.state.clear()

    # -- helpers for subclasses -------------------------------------------------------------------------------
    def local(self, batch_size: int) -> slice:
        """This process's rows of a global batch."""
        return distributed.local_rows(batch_size, self.ctx.info)

    def apply(self, loss: torch.Tensor, *opts_and_modules: tuple[torch.optim.Optimizer, torch.nn.Module]) -> None:
        """Backward `loss` and step each (optimiser, module) pair, with gradients averaged over processes."""
        for opt, _ in opts_and_modules:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt, module in opts_and_modules:
            distributed.average_gradients(module.parameters(), self.ctx.info)
            opt.step()
