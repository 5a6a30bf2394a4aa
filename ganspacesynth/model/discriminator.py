"""GANSynth's progressive discriminator (Magenta `networks.discriminator`) with AC-GAN heads.

The mirror of the generator: block k (k > 1) reads block k's resolution with a 1×1 `from_rgb`, applies
two 3×3 convs (channels `num_filters(k)` then `num_filters(k-1)`) and halves the resolution by average
pooling; block 1 appends the minibatch standard deviation, applies a 3×3 conv and a conv with the start
resolution's kernel (VALID) that leaves a `[B, num_filters(0), 1, 1]` vector. A dense critic output
(`logits`) and one dense classifier per condition (`classifiers.<name>`, logits of `spec.size`) read
that vector, as GANSynth's `discriminator_fn_specgram` does for pitch.

`forward(x, num_blocks=k, alpha=a)` takes spectrograms at block k's resolution, the resolution
`Generator.forward(..., num_blocks=k, alpha=a)` produces; during a transition (alpha < 1) block k's
output is faded in over `from_rgb` of the input average-pooled to block k-1's resolution.
Parameters: `blocks.{i}.from_rgb.*`, `blocks.{i}.conv0.*`, `blocks.{i}.conv1.*` (i from 0),
`logits.*`, `classifiers.<condition>.*`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .layers import LEAKY_RELU_SLOPE, EqualizedConv2d, downscale, minibatch_stddev


class DiscriminatorBlock(nn.Module):
    def __init__(self, config: ModelConfig, block_id: int):
        super().__init__()
        nf = config.num_filters
        self.from_rgb = EqualizedConv2d(2, nf(block_id), 1)
        if block_id == 1:
            h, w = config.start_height, config.start_width
            self.conv0 = EqualizedConv2d(nf(1) + 1, nf(1), config.kernel_size)  # +1: minibatch stddev map
            self.conv1 = EqualizedConv2d(nf(1), nf(0), (h, w), padding=(0, 0, 0, 0))  # VALID → 1×1
        else:
            self.conv0 = EqualizedConv2d(nf(block_id), nf(block_id), config.kernel_size)
            self.conv1 = EqualizedConv2d(nf(block_id), nf(block_id - 1), config.kernel_size)


class Discriminator(nn.Module):
    """Maps spectrograms `[B, 2, H, W]` to (critic score `[B]`, {condition: logits `[B, size]`})."""

    def __init__(self, config: ModelConfig, minibatch_group_size: int = 4):
        super().__init__()
        config.validate()
        self.config = config
        self.group_size = minibatch_group_size
        self.blocks = nn.ModuleList(DiscriminatorBlock(config, b) for b in range(1, config.num_resolutions + 1))
        width = config.num_filters(0)
        # Magenta's custom_dense (he_initializer_slope 1) on the flattened 1×1 vector is a 1×1 conv.
        self.logits = EqualizedConv2d(width, 1, 1, he_slope=1.0)
        self.classifiers = nn.ModuleDict(
            {spec.name: EqualizedConv2d(width, spec.size, 1, he_slope=1.0) for spec in config.conditions}
        )

    @staticmethod
    def _act(x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, LEAKY_RELU_SLOPE)

    def forward(self, x: torch.Tensor, num_blocks: int | None = None,
                alpha: float = 1.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        n = num_blocks or self.config.num_resolutions
        if not 1 <= n <= self.config.num_resolutions:
            raise ValueError(f"num_blocks must be in 1..{self.config.num_resolutions}, not {n}")
        expected = self.config.resolution(n)
        if tuple(x.shape[-2:]) != expected or x.shape[1] != 2:
            raise ValueError(f"discriminator at {n} blocks expects [B, 2, {expected[0]}, {expected[1]}], "
                             f"got {list(x.shape)}")
        scale = self.config.scale_base
        h = self._act(self.blocks[n - 1].from_rgb(x))
        for block_id in range(n, 1, -1):
            block = self.blocks[block_id - 1]
            h = self._act(block.conv0(h))
            h = self._act(block.conv1(h))
            h = downscale(h, scale)
            if block_id == n and alpha < 1.0:
                lod = self._act(self.blocks[block_id - 2].from_rgb(downscale(x, scale)))
                h = lod + alpha * (h - lod)
        first = self.blocks[0]
        h = minibatch_stddev(h, self.group_size)
        h = self._act(first.conv0(h))
        h = self._act(first.conv1(h))  # [B, num_filters(0), 1, 1]
        critic = self.logits(h).flatten(1)[:, 0]
        classes = {name: head(h).flatten(1) for name, head in self.classifiers.items()}
        return critic, classes
