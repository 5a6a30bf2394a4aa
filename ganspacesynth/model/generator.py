"""GANSynth's progressive generator (Magenta `networks.generator` with `generator_fn_specgram`).

Layer names follow the original GANSpaceSynth: block 1 has `conv0`, `conv1`; block k has `conv0_k`, `conv1_k`.
The forward pass can stop at, capture, offset or start from any named layer (GANSpace needs all four).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from . import native
from .layers import (PIXEL_NORM_EPS, EqualizedConv2d, is_channels_last, no_autograd, pixel_norm, pixel_norm_scale,
                     upsample_conv3x3, upscale)


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

    @staticmethod
    def _conv_act(conv: EqualizedConv2d, x: torch.Tensor, upsample: bool, norm: bool = True) -> torch.Tensor:
        """conv (or 'upsample ×2, then conv' as one transposed conv), leaky ReLU, pixel norm (unless not `norm`)."""
        if upsample:
            return upsample_conv3x3(x, conv, lrelu=True, norm=norm)
        return conv(x, lrelu=True, norm=norm)

    def _to_rgb(self, block: GeneratorBlock, x: torch.Tensor, norm_pending: bool = False) -> torch.Tensor:
        """to_rgb and its activation. `norm_pending`: x is the last conv's output before its pixel norm, whose
        per-pixel scale (a 1×1 conv commutes with it) is applied to the 2-channel result instead: one pass over
        the largest activation less in generation (with the compiled kernel: norm and projection in one pass)."""
        conv = block.to_rgb
        if not norm_pending:
            y = conv(x)
        elif native.handles(x):
            y = native.pixel_norm_project(x, conv.scaled_kernel(), conv.bias, PIXEL_NORM_EPS)
        else:
            y = F.conv2d(x, conv.scaled_kernel(is_channels_last(x))).mul_(pixel_norm_scale(x))
            y = y.add_(conv.bias.to(y.dtype).view(1, -1, 1, 1))
        return torch.tanh(y) if self.config.to_rgb_activation == "tanh" else y

    # -- forward ---------------------------------------------------------------------------------
    def forward(
        self,
        z: torch.Tensor | None,
        cond: torch.Tensor | None = None,
        *,
        num_blocks: int | None = None,
        alpha: float = 1.0,
        stop_at: str | None = None,
        capture: Sequence[str] = (),
        offsets: Mapping[str, torch.Tensor] | None = None,
        start_at: str | None = None,
        start_activation: torch.Tensor | None = None,
    ):
        """See docs/DEVELOPING.md. Returns the output, the `stop_at` activation, or (output, captured)."""
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

        x = None
        prev_rgb_input = None
        last_idx = 2 * n_blocks - 1
        last_name = self._order[last_idx]
        # Generation folds the last layer's pixel norm into to_rgb when nothing needs that activation itself.
        fold_last_norm = (no_autograd() and last_idx != stop_idx and last_name not in capture
                          and last_name not in offsets and start_idx < last_idx)
        norm_pending = False
        if start_idx < 0:
            x = z if cond is None or cond.shape[1] == 0 else torch.cat([z, cond.to(z.dtype)], dim=1)
            x = pixel_norm(x[:, :, None, None])
        else:
            x = start_activation
        for b, block in enumerate(self.blocks[:n_blocks]):
            for c, conv in enumerate((block.conv0, block.conv1)):
                idx = 2 * b + c
                if idx <= start_idx:
                    continue
                if c == 0 and b > 0:
                    prev_rgb_input = x
                    if block.scale == 2 and self.config.kernel_size == 3:
                        x = self._conv_act(conv, x, upsample=True)
                    else:
                        x = self._conv_act(conv, upscale(x, block.scale), upsample=False)
                elif idx == last_idx and fold_last_norm and not conv.fuses_norm(x):
                    x = self._conv_act(conv, x, upsample=False, norm=False)
                    norm_pending = True
                else:
                    x = self._conv_act(conv, x, upsample=False)
                name = self._order[idx]
                if name in offsets:
                    x = x + offsets[name].to(x.dtype)
                if name in capture:
                    captured[name] = x
                if idx == stop_idx:
                    return x
        last = self.blocks[n_blocks - 1]
        out = self._to_rgb(last, x, norm_pending)
        if alpha < 1.0 and n_blocks > 1:
            if prev_rgb_input is None:
                raise ValueError("fade-in (alpha < 1) needs the previous block's activation; start earlier")
            prev = upscale(self._to_rgb(self.blocks[n_blocks - 2], prev_rgb_input), last.scale)
            out = prev + alpha * (out - prev)
        if capture:
            return out, captured
        return out
