"""Magenta's progressive-growing schedule: stable and transition stages, batch size per resolution.

Stage 0 trains block 1 alone; odd stages fade block k+1 in (alpha 0 → 1), even stages train k+1 blocks
at alpha 1: 2·num_resolutions − 1 stages in all, the last one running until `total_num_images`.
Magenta counts images shown (`current_image_id`); with `train_time_limit` it times the stages
instead (stage i gets a share ∝ train_time_stage_multiplier^i of the limit, or of a shorter
`train_time_schedule`: the last stage then runs on to the limit). Networks here run at the
current stage's resolution (the generator stops at block k, real data are average-pooled to it);
Magenta runs at full resolution and up-samples, which gives the same values at far higher cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..model.config import ModelConfig
from ..model.layers import downscale, upscale
from .config import TrainConfig


def schedule_span(train: TrainConfig) -> float:
    """Seconds a timed run's stages are laid out over: `train_time_schedule`, but never beyond the limit (a
    shorter `train_time_limit` lays the stages over itself, so every stage still runs)."""
    limit = float(train.train_time_limit)
    return min(float(train.train_time_schedule), limit) if train.train_time_schedule else limit


@dataclass(frozen=True)
class StagePoint:
    """Where training is: stage, blocks in use, fade-in alpha and the stage's batch size."""

    stage_id: int
    num_blocks: int
    alpha: float
    batch_size: int

    @property
    def transition(self) -> bool:
        return self.stage_id % 2 == 1

    def describe(self, model: ModelConfig) -> str:
        h, w = model.resolution(self.num_blocks)
        kind = f"fade-in {self.alpha:.2f}" if self.transition else "stable"
        return f"stage {self.stage_id} ({h}x{w}, {kind})"


class Schedule:
    """Maps (images shown, seconds trained) to a StagePoint and says when training is done."""

    def __init__(self, train: TrainConfig, model: ModelConfig):
        self.train = train
        self.model = model
        self.num_resolutions = model.num_resolutions
        self.num_stages = 2 * self.num_resolutions - 1 if train.train_progressive else 1
        self.timed = train.train_time_limit is not None
        if self.timed:
            weights = [train.train_time_stage_multiplier**i for i in range(self.num_stages)]
            total = sum(weights)
            span = schedule_span(train)
            ends, acc = [], 0.0
            for w in weights:
                acc += w / total * span
                ends.append(acc)
            self.ends = ends
        else:
            self.ends = [self.stage_end_images(s) for s in range(self.num_stages)]

    def stage_end_images(self, stage_id: int) -> int:
        """Magenta's `get_stage_info`: images shown when stage `stage_id` ends."""
        t = self.train
        if stage_id >= self.num_stages - 1:
            return t.total_num_images
        n = (stage_id // 2 + 1) * t.stable_stage_num_images + ((stage_id + 1) // 2) * t.transition_stage_num_images
        return min(n, t.total_num_images)

    def num_blocks(self, stage_id: int) -> int:
        if not self.train.train_progressive:
            return self.num_resolutions
        return (stage_id + 1) // 2 + 1

    def _clock(self, images: int, seconds: float) -> float:
        return seconds if self.timed else float(images)

    def at(self, images: int, seconds: float = 0.0) -> StagePoint:
        """The stage point after `images` images shown and `seconds` of training."""
        x = self._clock(images, seconds)
        stage = next((s for s, end in enumerate(self.ends) if x < end), self.num_stages - 1)
        alpha = 1.0
        if stage % 2 == 1 and self.train.train_progressive:
            start = self.ends[stage - 1]
            length = (self.ends[stage] - start) if self.timed else self.train.transition_stage_num_images
            alpha = min(max((x - start) / length, 0.0), 1.0)
        blocks = self.num_blocks(stage)
        return StagePoint(stage, blocks, float(alpha), self.train.batch_size(blocks, self.num_resolutions))

    def done(self, images: int, seconds: float = 0.0) -> bool:
        if self.timed:
            return seconds >= float(self.train.train_time_limit)
        return images >= self.train.total_num_images

    def fraction(self, images: int, seconds: float = 0.0) -> float:
        """How far training is, 0..1 (for progress bars and ETAs)."""
        if self.timed:
            return min(seconds / float(self.train.train_time_limit), 1.0)
        return min(images / self.train.total_num_images, 1.0)


def real_at_stage(specs: torch.Tensor, model: ModelConfig, point: StagePoint) -> torch.Tensor:
    """Full-resolution spectrograms → the stage's resolution (Magenta's `blend_images`).

    Average-pool to block `num_blocks`'s resolution; during a fade-in, blend with the previous
    resolution (pooled once more, then nearest-upsampled) by alpha, as the generator's output is.
    """
    factor = model.scale_base ** (model.num_resolutions - point.num_blocks)
    x = downscale(specs, factor)
    if point.alpha < 1.0 and point.num_blocks > 1:
        low = upscale(downscale(x, model.scale_base), model.scale_base)
        x = low + point.alpha * (x - low)
    return x


def profile_at_stage(profiles: torch.Tensor, model: ModelConfig, point: StagePoint) -> torch.Tensor:
    """Time-averaged full-resolution spectrograms `[B, C, W]` → the time average of `real_at_stage`'s
    output: the same pooling and fade-in blend along frequency (pooling over time commutes with the mean)."""
    factor = model.scale_base ** (model.num_resolutions - point.num_blocks)
    x = torch.nn.functional.avg_pool1d(profiles, factor) if factor > 1 else profiles
    if point.alpha < 1.0 and point.num_blocks > 1:
        base = model.scale_base
        low = torch.nn.functional.avg_pool1d(x, base).repeat_interleave(base, dim=-1)
        x = low + point.alpha * (x - low)
    return x
