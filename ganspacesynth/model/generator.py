"""GANSynth's progressive generator (Magenta `networks.generator` with `generator_fn_specgram`).

Layer names follow the original GANSpaceSynth: block 1 has `conv0`, `conv1`; block k has `conv0_k`, `conv1_k`.
The forward pass can stop at, capture, offset or start from any named layer (GANSpace needs all four).
This is the reference network, plain PyTorch: training runs it; generation runs `model.inference.prepare(...)`,
which computes the same function by faster routes through the same `progressive` contract.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch
from torch import nn

from .config import ModelConfig
from .layers import EqualizedConv2d, leaky_relu, pixel_norm, upsample_conv3x3, upscale

#: `layer(index, x)`: the activation of layer `index` (in `layer_names()` order) from the one before it.
LayerFn = Callable[[int, torch.Tensor], torch.Tensor]
#: `to_rgb(block_index, x)`: block `block_index`'s (0-based) output spectrogram from its last activation.
ToRgbFn = Callable[[int, torch.Tensor], torch.Tensor]


def layer_name(conv: int, block_id: int) -> str:
    """`conv0`/`conv1` for block 1, `conv0_k`/`conv1_k` for block k (1-based)."""
    return f"conv{conv}" if block_id == 1 else f"conv{conv}_{block_id}"


class GeneratorBlock(nn.Module):
    def __init__(self, config: ModelConfig, block_id: int, in_channels: int):
        super().__init__()
        out = config.num_filters(block_id)
        if block_id == 1:
            # Magenta pads the 1×1 input to (2h-1)×(2w-1) and applies an h×w VALID conv: a dense layer
            # whose kernel positions become the output pixels.
            h, w = config.start_height, config.start_width
            self.conv0 = EqualizedConv2d(in_channels, out, (h, w), padding=(h - 1, h - 1, w - 1, w - 1))
        else:
            self.conv0 = EqualizedConv2d(in_channels, out, config.kernel_size)
        self.conv1 = EqualizedConv2d(out, out, config.kernel_size)
        self.to_rgb = EqualizedConv2d(out, 2, 1, he_slope=1.0)
        self.block_id = block_id
        self.scale = config.scale_base


class Generator(nn.Module):
    """Maps (z, condition vector) to a normalised spectrogram `[B, 2, T, F]`."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        config.validate()
        self.config = config
        blocks = []
        in_channels = config.latent_vector_size + config.condition_dim
        for block_id in range(1, config.num_resolutions + 1):
            blocks.append(GeneratorBlock(config, block_id, in_channels))
            in_channels = config.num_filters(block_id)
        self.blocks = nn.ModuleList(blocks)
        self._order = [layer_name(c, b) for b in range(1, config.num_resolutions + 1) for c in (0, 1)]

    # -- introspection ---------------------------------------------------------------------------
    def layer_names(self) -> list[str]:
        return list(self._order)

    def layer_shape(self, name: str) -> tuple[int, int, int]:
        """(channels, height, width) of a named activation."""
        idx = self._index(name)
        block_id = idx // 2 + 1
        h, w = self.config.resolution(block_id)
        return (self.config.num_filters(block_id), h, w)

    def _index(self, name: str) -> int:
        try:
            return self._order.index(name)
        except ValueError:
            from ..errors import UserError

            raise UserError(f"unknown layer {name!r}; layers are {', '.join(self._order)}") from None

    # -- the network -----------------------------------------------------------------------------
    def latent_input(self, z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """The 1×1 input of the first conv: z and the condition vector, pixel-normalised together."""
        x = z if cond is None or cond.shape[1] == 0 else torch.cat([z, cond.to(z.dtype)], dim=1)
        return pixel_norm(x[:, :, None, None])

    def layer(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """One named layer: conv (a block's first conv upsamples first), leaky ReLU, pixel norm."""
        block = self.blocks[index // 2]
        if index % 2 == 1:
            x = block.conv1(x)
        elif index == 0:
            x = block.conv0(x)
        elif block.scale == 2 and self.config.kernel_size == 3:
            x = upsample_conv3x3(x, block.conv0)  # = block.conv0(upscale(x, 2)), 2.25× cheaper
        else:
            x = block.conv0(upscale(x, block.scale))
        return pixel_norm(leaky_relu(x))

    def to_rgb(self, block_index: int, x: torch.Tensor) -> torch.Tensor:
        """Block `block_index`'s (0-based) spectrogram: a 1×1 conv to 2 channels, then tanh if configured."""
        y = self.blocks[block_index].to_rgb(x)
        return torch.tanh(y) if self.config.to_rgb_activation == "tanh" else y

    # -- forward ---------------------------------------------------------------------------------
    def forward(self, z: torch.Tensor | None, cond: torch.Tensor | None = None, **contract):
        """The forward contract (keywords of `progressive`, docs/DEVELOPING.md) over this network's own layers.
        Returns the output, the `stop_at` activation, or (output, captured)."""
        return self.progressive(z, cond, self.layer, self.to_rgb, **contract)

    def progressive(
        self,
        z: torch.Tensor | None,
        cond: torch.Tensor | None,
        layer: LayerFn,
        to_rgb: ToRgbFn,
        *,
        num_blocks: int | None = None,
        alpha: float = 1.0,
        stop_at: str | None = None,
        capture: Sequence[str] = (),
        offsets: Mapping[str, torch.Tensor] | None = None,
        start_at: str | None = None,
        start_activation: torch.Tensor | None = None,
    ):
        """The forward contract (stages, fade-in, stop/capture/offset/start at a layer) over `layer` and `to_rgb`:
        this network's own, or a generation route's (model/inference) computing the same function."""
        n_blocks = num_blocks or self.config.num_resolutions
        offsets = offsets or {}
        captured: dict[str, torch.Tensor] = {}
        start_idx = -1
        if start_at is not None:
            start_idx = self._index(start_at)
            if start_activation is None:
                raise ValueError("start_at needs start_activation")
        stop_idx = self._index(stop_at) if stop_at is not None else None
        for name in list(capture) + list(offsets):
            self._index(name)

        x = self.latent_input(z, cond) if start_idx < 0 else start_activation
        prev_rgb_input = None
        for idx in range(start_idx + 1, 2 * n_blocks):
            if idx % 2 == 0 and idx > 0:
                prev_rgb_input = x  # the previous block's output, for the fade-in
            x = layer(idx, x)
            name = self._order[idx]
            if name in offsets:
                x = x + offsets[name].to(x.dtype)
            if name in capture:
                captured[name] = x
            if idx == stop_idx:
                return x
        out = to_rgb(n_blocks - 1, x)
        if alpha < 1.0 and n_blocks > 1:
            if prev_rgb_input is None:
                raise ValueError("fade-in (alpha < 1) needs the previous block's activation; start earlier")
            prev = upscale(to_rgb(n_blocks - 2, prev_rgb_input), self.blocks[n_blocks - 1].scale)
            out = prev + alpha * (out - prev)
        if capture:
            return out, captured
        return out
