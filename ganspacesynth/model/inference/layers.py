"""Generation routes for the reference layers (model/layers.py): the same function without autograd, faster.

What they do that the reference does not: kernels scaled, cast and reordered once and cached while the weights
are unchanged; activations updated in place; oneDNN's conv with the leaky ReLU fused in; the first layer as a
float64 matrix product (batch-invariant); Winograd F(6×6, 3×3) for wide float32 3×3 convs (winograd.py, or the
compiled transforms of native.py with bias, leaky ReLU and pixel norm fused in); a one-pass compiled pixel norm;
and, for the last layer, the pixel norm applied to to_rgb's 2 channels instead of the wide activation.
Which of these a layer takes is decided once, by `generator.prepare`; the checks left here are the
preconditions of a route on the tensor it is given.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from ..layers import (LEAKY_RELU_SLOPE, PIXEL_NORM_EPS, EqualizedConv2d, is_channels_last, point_kernel,
                      transposed_kernel)
from . import native, winograd

log = logging.getLogger(__name__)
_warned: set[str] = set()


def warn_once(key: str, message: str) -> None:
    """Log a fallback of the fast routes once per process."""
    if key not in _warned:
        _warned.add(key)
        log.warning(message)


def onednn_fusion_available() -> bool:
    """Whether this PyTorch has oneDNN's conv + pointwise ops (the ones PyTorch's inductor uses)."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


class KernelCache:
    """Kernels derived from one conv's weights, each rebuilt only when the weights change (in place or replaced)
    or the dtype or memory format asked for does, so a bfloat16 or channels-last run does not cast and reorder
    every kernel on every forward pass."""

    def __init__(self, conv: EqualizedConv2d):
        self.conv = conv
        self._entries: dict[str, tuple[tuple, torch.Tensor]] = {}

    def get(self, kind: str, build: Callable[[], torch.Tensor], channels_last: bool = False,
            dtype: torch.dtype | None = None) -> torch.Tensor:
        """`build()`'s kernel cast to `dtype` (default: the autocast dtype, else the weights'), in the memory format
        asked for."""
        weight = self.conv.weight
        if dtype is None:
            dtype = weight.dtype
            if torch.is_autocast_enabled(weight.device.type):
                dtype = torch.get_autocast_dtype(weight.device.type)
        key = (weight._version, weight.data_ptr(), weight.device, dtype, channels_last)
        entry = self._entries.get(kind)
        if entry is None or entry[0] != key:
            with torch.no_grad():
                w = build().to(dtype)  # built in the weights' own precision, then rounded once
                if channels_last:
                    w = w.contiguous(memory_format=torch.channels_last)
            entry = (key, w)
            self._entries[kind] = entry
        return entry[1]

    def scaled(self, channels_last: bool) -> torch.Tensor:
        """The kernel with the equalised-lr scale applied ([out, in, kh, kw])."""
        return self.get("scaled", lambda: self.conv.weight * self.conv.scale, channels_last)

    def transposed(self, channels_last: bool) -> torch.Tensor:
        """The scaled 4×4 stride-2 transposed-conv kernel of `upsample_conv3x3` ([in, out, 4, 4])."""
        return self.get("transposed", lambda: transposed_kernel(self.conv.weight) * self.conv.scale, channels_last)

    def point(self) -> torch.Tensor:
        """`point_kernel` in float64, unscaled (the scale rides on the bias addition)."""
        return self.get("point", lambda: point_kernel(self.conv.weight), dtype=torch.float64)

    def winograd(self) -> torch.Tensor:
        """The Winograd-transformed scaled kernel `[64, in, out]`."""
        return self.get("winograd", lambda: winograd.kernel_transform(self.conv.weight * self.conv.scale))


def leaky_relu_(y: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu_(y, LEAKY_RELU_SLOPE)


def scale_bias_(y: torch.Tensor, conv: EqualizedConv2d) -> torch.Tensor:
    """`y * scale + bias` in Magenta's order, in place and in one pass."""
    bias = conv.bias.to(y.dtype).view(1, -1, 1, 1)
    return torch.add(bias, y, alpha=conv.scale, out=y)


def pixel_norm_scale(x: torch.Tensor, eps: float = PIXEL_NORM_EPS) -> torch.Tensor:
    """`1 / sqrt(mean over channels of x² + eps)`, `[B, 1, H, W]`. In channels-last memory `vector_norm`'s fused
    reduction (3–5× faster than square + mean there; NCHW keeps square + mean)."""
    if is_channels_last(x):
        ms = torch.linalg.vector_norm(x, 2, dim=1, keepdim=True).square_().div_(x.shape[1])
    else:
        ms = x.square().mean(dim=1, keepdim=True)
    return ms.add_(eps).rsqrt_()


def pixel_norm_(x: torch.Tensor, compiled: bool) -> torch.Tensor:
    """The pixel norm in place: one compiled pass where `compiled` (the route chosen for this layer), else
    PyTorch's."""
    if compiled:
        if native.accepts(x):
            return native.pixel_norm_(x, PIXEL_NORM_EPS)
        warn_once("pixel_norm", f"compiled pixel norm: unexpected activation {x.dtype} {list(x.shape)} "
                                f"(not channels-last float32); using PyTorch's")
    return x.mul_(pixel_norm_scale(x))


@dataclass
class LayerRoute:
    """How one generator layer (conv, leaky ReLU, pixel norm) runs in generation.

    `conv`: "point" (1×1 input as a float64 matrix product), "upsample" (nearest ×2 + 3×3 as one stride-2
    transposed conv), "winograd-compiled", "winograd-pytorch" or "direct"; `upscale`: nearest upsampling
    before the conv (blocks that do not double, or kernels other than 3×3). `fuse_activation`: oneDNN applies
    the leaky ReLU inside the conv (when the input is channels-last in the kernel's dtype). `norm`: "in-conv"
    (the compiled Winograd output transform applies it), "compiled" or "pytorch".
    """

    module: EqualizedConv2d
    conv: str
    norm: str
    fuse_activation: bool = False
    upscale: int = 1
    kernels: KernelCache = field(init=False, repr=False)

    def __post_init__(self):
        self.kernels = KernelCache(self.module)

    @property
    def norm_can_wait(self) -> bool:
        """Whether the pixel norm can be left to to_rgb (not when the conv itself applies it)."""
        return self.norm != "in-conv"

    def __call__(self, x: torch.Tensor, norm: bool = True) -> torch.Tensor:
        """The layer's activation; without `norm`, before its pixel norm (which to_rgb then applies)."""
        conv = self.module
        if self.upscale > 1:
            x = F.interpolate(x, scale_factor=self.upscale, mode="nearest")
        if self.conv == "point":
            y = self._point(x)
        elif self.conv == "upsample":
            y = self._upsample(x)
        elif self.conv == "winograd-compiled":
            return native.conv3x3(x, self.kernels.winograd(), conv.bias, lrelu_slope=LEAKY_RELU_SLOPE,
                                  pixel_norm_eps=PIXEL_NORM_EPS)
        elif self.conv == "winograd-pytorch":
            y = leaky_relu_(winograd.winograd_conv3x3(x, self.kernels.winograd(), conv.bias))
        else:
            y = self._direct(x)
        return pixel_norm_(y, self.norm == "compiled") if norm else y

    def _point(self, x: torch.Tensor) -> torch.Tensor:
        """`[B, C] @ [C, O·kh·kw]` in float64, rounded once: a float32 GEMM rounds differently with the batch size,
        and batched generation must equal one-by-one (tests/test_ganspace_edits.py)."""
        conv = self.module
        b, c = x.shape[:2]
        o, _, kh, kw = conv.weight.shape
        y = scale_bias_((x.reshape(b, c).double() @ self.kernels.point()).float().view(b, o, kh, kw), conv)
        if is_channels_last(conv.weight):  # the network's memory format, for the next conv
            y = y.contiguous(memory_format=torch.channels_last)
        return leaky_relu_(y)

    def _fuse(self, x: torch.Tensor, kernel: torch.Tensor) -> bool:
        # The activation entering the network in float32 under bfloat16 autocast takes the unfused op.
        return self.fuse_activation and x.dtype == kernel.dtype and is_channels_last(x)

    def _upsample(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.module
        kernel = self.kernels.transposed(is_channels_last(x))
        if self._fuse(x, kernel):
            return torch.ops.mkldnn._convolution_transpose_pointwise(
                x, kernel, conv.bias.to(kernel.dtype), [1, 1], [0, 0], [2, 2], [1, 1], 1,  # padding, output pad., stride
                "leaky_relu", [LEAKY_RELU_SLOPE], "")
        return leaky_relu_(F.conv_transpose2d(x, kernel, conv.bias, stride=2, padding=1))

    def _direct(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.module
        padding, pre_pad = conv.conv_padding()
        if pre_pad is not None:
            x = F.pad(x, pre_pad)
        weight = self.kernels.scaled(is_channels_last(x))
        if not self._fuse(x, weight):
            return leaky_relu_(F.conv2d(x, weight, conv.bias, padding=padding))
        padding = [padding, padding] if isinstance(padding, int) else list(padding)
        return torch.ops.mkldnn._convolution_pointwise(x, weight, conv.bias.to(weight.dtype), padding, [1, 1], [1, 1],
                                                       1, "leaky_relu", [LEAKY_RELU_SLOPE], "")


@dataclass
class ToRgbRoute:
    """A block's to_rgb in generation. `project`: how it applies the last layer's pixel norm when that was left
    to it ("compiled": norm and projection in one pass over the activation; "pytorch": the per-pixel scale
    applied to the 2-channel result, as a 1×1 conv commutes with it)."""

    module: EqualizedConv2d
    project: str
    tanh: bool
    kernels: KernelCache = field(init=False, repr=False)

    def __post_init__(self):
        self.kernels = KernelCache(self.module)

    def __call__(self, x: torch.Tensor, pending_norm: bool = False) -> torch.Tensor:
        conv = self.module
        if not pending_norm:
            y = F.conv2d(x, self.kernels.scaled(is_channels_last(x)), conv.bias)
        elif self.project == "compiled" and native.accepts(x):
            y = native.pixel_norm_project(x, self.kernels.scaled(False), conv.bias, PIXEL_NORM_EPS)
        else:
            if self.project == "compiled":
                warn_once("pixel_norm_project", f"compiled pixel norm + to_rgb: unexpected activation {x.dtype} "
                                                f"{list(x.shape)}; using PyTorch's")
            y = F.conv2d(x, self.kernels.scaled(is_channels_last(x))).mul_(pixel_norm_scale(x))
            y = y.add_(conv.bias.to(y.dtype).view(1, -1, 1, 1))
        return torch.tanh(y) if self.tanh else y
