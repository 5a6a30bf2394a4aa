"""Building blocks of the progressive GAN (Karras et al. 2018), as in Magenta's `progressive_gan/layers.py`.

This is the reference network: plain PyTorch, what training runs and what the generation routes of
model/inference/ are tested against.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

PIXEL_NORM_EPS = 1e-8
LEAKY_RELU_SLOPE = 0.2  # GANSynth's activation after every conv


def pixel_norm(x: torch.Tensor, eps: float = PIXEL_NORM_EPS) -> torch.Tensor:
    """Normalise each pixel's feature vector to unit RMS (over channels, dim 1)."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


def leaky_relu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, LEAKY_RELU_SLOPE)


def is_channels_last(x: torch.Tensor) -> bool:
    """True for a 4-d tensor laid out NHWC (and not also plain NCHW, as 1×1 or one-channel maps are)."""
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def upscale(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Nearest-neighbour upsampling by an integer factor."""
    if scale == 1:
        return x
    return F.interpolate(x, scale_factor=scale, mode="nearest")


def downscale(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Average pooling by an integer factor (Magenta's `layers.downscale`)."""
    if scale == 1:
        return x
    return F.avg_pool2d(x, scale)


def phase_kernels(weight: torch.Tensor) -> list[list[torch.Tensor]]:
    """Split a 3×3 kernel into the four 2×2 kernels of 'upsample ×2 (nearest), then conv 3×3'.

    Output pixel (2i+p, 2j+q) of the upsampled conv only ever sees input rows {i-1, i} (p=0) or {i, i+1}
    (p=1), with the kernel rows that land on the same input row summed; likewise for columns.
    """
    def split(w: torch.Tensor, dim: int) -> list[torch.Tensor]:
        a, b, c = w.unbind(dim)
        return [torch.stack([a, b + c], dim), torch.stack([a + b, c], dim)]

    return [split(rows, 3) for rows in split(weight, 2)]


def transposed_kernel(weight: torch.Tensor) -> torch.Tensor:
    """The [in, out, 4, 4] kernel of a stride-2 transposed conv equal to 'upsample ×2 (nearest), then conv 3×3'.

    Output row 2m+p sums phase kernel row a of input row m+p-1+a; a stride-2 transposed conv with padding 1
    places input row i at output rows 2i-1+k, so phase p's row a is tap k = 3-p-2a (likewise for columns).
    """
    phases = phase_kernels(weight)
    taps = [(1 - k // 2, (k + 1) % 2) for k in range(4)]  # tap k -> (row a, phase p)
    rows = [torch.stack([phases[p][q][:, :, a, b] for b, q in taps], -1) for a, p in taps]
    return torch.stack(rows, -2).transpose(0, 1)


def point_kernel(weight: torch.Tensor) -> torch.Tensor:
    """`[C, O·kh·kw]`: the conv of a 1×1 input padded by the kernel size minus one as a matrix. Output pixel
    (i, j) sees only kernel tap (kh-1-i, kw-1-j), so the taps are flipped."""
    o, c, kh, kw = weight.shape
    return weight.flip(2, 3).permute(1, 0, 2, 3).reshape(c, o * kh * kw)


class EqualizedConv2d(nn.Module):
    """Conv2d with equalised learning rate: weights ~ N(0, 1), He's scale applied at run time.

    `he_slope` is Magenta's `he_initializer_slope`: 0 for convs followed by leaky ReLU (gain √2),
    1 for to_rgb (gain 1). `padding` is 'same' or an explicit (top, bottom, left, right) tuple.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, he_slope: float = 0.0, padding="same"):
        super().__init__()
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kh, kw))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        fan_in = in_channels * kh * kw
        self.scale = math.sqrt(2.0 / ((1.0 + he_slope**2) * fan_in))
        if padding == "same":
            # TF 'SAME' for stride 1: the extra pad of an even kernel goes at the end.
            ph, pw = kh - 1, kw - 1
            padding = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
        else:
            top, bottom, left, right = padding
            padding = (left, right, top, bottom)
        self.pad = tuple(int(p) for p in padding)  # F.pad order: left, right, top, bottom

    def conv_padding(self) -> tuple[int | tuple[int, int], tuple[int, ...] | None]:
        """(conv2d's padding, or 0, and the F.pad tuple to apply first where the padding is uneven, or None)."""
        if not any(self.pad):
            return 0, None
        if self.pad[0] == self.pad[1] and self.pad[2] == self.pad[3]:
            return (self.pad[2], self.pad[0]), None
        return 0, self.pad

    def is_point_conv(self) -> bool:
        """Whether a 1×1 input is padded by the kernel size minus one (GANSynth's first layer): a dense layer."""
        kh, kw = self.weight.shape[2:]
        return self.pad == (kw - 1, kw - 1, kh - 1, kh - 1) and (kh, kw) != (1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2:] == (1, 1) and self.is_point_conv():
            # One matmul instead of the padded conv, which took oneDNN's slow generic path.
            b, c = x.shape[:2]
            o, _, kh, kw = self.weight.shape
            y = (x.reshape(b, c) @ (point_kernel(self.weight) * self.scale)).view(b, o, kh, kw)
            y = y + self.bias.view(1, -1, 1, 1)
            if is_channels_last(self.weight):  # the network's memory format, for the next conv
                y = y.contiguous(memory_format=torch.channels_last)
            return y
        padding, pre_pad = self.conv_padding()
        if pre_pad is not None:
            x = F.pad(x, pre_pad)
        # The (small) kernel is scaled and the conv adds the bias, instead of two more passes over the activation.
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=padding)


def upsample_conv3x3(x: torch.Tensor, conv: EqualizedConv2d) -> torch.Tensor:
    """`conv(upscale(x, 2))` for a 3×3 'same' conv, computed at the input's resolution.

    The same arithmetic as upsampling first (up to float rounding), as one stride-2 transposed conv whose
    4×4 kernel holds the four 2×2 sub-pixel kernels: 16 instead of 36 multiply-adds per 2×2 output group, so
    the first conv of every block gets 2.25× cheaper (most of GANSynth's cost), and the phases land
    interleaved in the output, in the input's memory format, with no copy.
    """
    kernel = transposed_kernel(conv.weight) * conv.scale
    return F.conv_transpose2d(x, kernel, conv.bias, stride=2, padding=1)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """Append the mean standard deviation over minibatch groups as one extra feature map."""
    b, c, h, w = x.shape
    g = min(group_size, b)
    if b % g:
        g = 1
    y = x.reshape(g, -1, c, h, w).float()
    y = y - y.mean(dim=0, keepdim=True)
    y = (y.square().mean(dim=0) + 1e-8).sqrt()
    y = y.mean(dim=(1, 2, 3), keepdim=True).to(x.dtype)  # [B/g, 1, 1, 1]
    y = y.repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)
