"""Training objectives behind one interface (base.py): `gan` (gan.py), `glo` and `glo+gan` (reconstruction.py)."""

from __future__ import annotations

from .base import Objective, ObjectiveContext, StepClock
from .gan import GanObjective
from .reconstruction import ReconstructionGanObjective, ReconstructionObjective

#: Objective classes by the name `TrainConfig.objective` holds (training/config.py OBJECTIVE_BLOCKS).
OBJECTIVE_CLASSES: dict[str, type[Objective]] = {
    cls.name: cls for cls in (GanObjective, ReconstructionObjective, ReconstructionGanObjective)}


def make_objective(ctx: ObjectiveContext) -> Objective:
    return OBJECTIVE_CLASSES[ctx.cfg.objective](ctx)


__all__ = ["Objective", "ObjectiveContext", "StepClock", "make_objective", "OBJECTIVE_CLASSES"]
