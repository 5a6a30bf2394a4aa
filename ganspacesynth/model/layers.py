"""Building blocks of the progressive GAN (Karras et al. 2018), as in Magenta's `progressive_gan/layers.py`."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import native, winograd


PIXEL_NORM_EPS = 1e-8


def pixel_norm(x: torch.Tensor, eps: float = PIXEL_NORM_EPS) -> torch.Tensor:
    """Normalise each pixel's feature vector to unit RMS (over channels, dim 1)."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


def is_channels_last(x: torch.Tensor) -> bool:
    """True for a 4-d tensor laid out NHWC (and not also plain NCHW, as 1×1 or one-channel maps are)."""
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def no_autograd() -> bool:
    return torch.is_inference_mode_enabled() or not torch.is_grad_enabled()


LEAKY_RELU_SLOPE = 0.2  # GANSynth's activation after every conv


def _lrelu(y: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU; in place when no gradient is recorded."""
    return F.leaky_relu_(y, LEAKY_RELU_SLOPE) if no_autograd() else F.leaky_relu(y, LEAKY_RELU_SLOPE)


def scale_bias(y: torch.Tensor, conv: "EqualizedConv2d") -> torch.Tensor:
    """`y * scale + bias` in Magenta's order, in place and in one pass (generation only: no autograd)."""
    bias = conv.bias.to(y.dtype).view(1, -1, 1, 1)
    return torch.add(bias, y, alpha=conv.scale, out=y)


def lrelu_pixel_norm(x: torch.Tensor, eps: float = PIXEL_NORM_EPS, lrelu_done: bool = False) -> torch.Tensor:
    """Leaky ReLU (0.2) then pixel norm: the activation after every generator conv.

    Without autograd it works in place, which matters at GANSynth's 128 × 1024 resolution on a CPU: in one
    compiled pass where `native.handles(x)` (float32, channels-last); otherwise, in channels-last memory,
    `vector_norm`'s fused reduction (3–5× faster than square + mean there; NCHW keeps square + mean). `lrelu_done`: the
    conv already applied the leaky ReLU (`EqualizedConv2d.forward(x, lrelu=True)`).
    """
    if not lrelu_done:
        x = _lrelu(x)
    if not no_autograd():
        return pixel_norm(x, eps)
    if native.handles(x):  # one pass instead of three
        return native.pixel_norm_(x, eps)
    return x.mul_(pixel_norm_scale(x, eps))


def pixel_norm_scale(x: torch.Tensor, eps: float = PIXEL_NORM_EPS) -> torch.Tensor:
    """`1 / sqrt(mean over channels of x² + eps)`, `[B, 1, H, W]` (generation: no autograd)."""
    if is_channels_last(x):
        ms = torch.linalg.vector_norm(x, 2, dim=1, keepdim=True).square_().div_(x.shape[1])
    else:
        ms = x.square().mean(dim=1, keepdim=True)
    return ms.add_(eps).rsqrt_()


def upscale(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Nearest-neighbour upsampling by an integer factor."""
    if scale == 1:
        return x
    return F.interpolate(x, scale_factor=scale, mode="nearest")


def _phase_kernels(weight: torch.Tensor) -> list[list[torch.Tensor]]:
    """Split a 3×3 kernel into the four 2×2 kernels of 'upsample ×2 (nearest), then conv 3×3'.

    Output pixel (2i+p, 2j+q) of the upsampled conv only ever sees input rows {i-1, i} (p=0) or {i, i+1}
    (p=1), with the kernel rows that land on the same input row summed; likewise for columns.
    """
    def split(w: torch.Tensor, dim: int) -> list[torch.Tensor]:
        a, b, c = w.unbind(dim)
        return [torch.stack([a, b + c], dim), torch.stack([a + b, c], dim)]

    return [split(rows, 3) for rows in split(weight, 2)]


def _transposed_kernel(weight: torch.Tensor) -> torch.Tensor:
    """The [in, out, 4, 4] kernel of a stride-2 transposed conv equal to 'upsample ×2 (nearest), then conv 3×3'.

    Output row 2m+p sums phase kernel row a of input row m+p-1+a; a stride-2 transposed conv with padding 1
    places input row i at output rows 2i-1+k, so phase p's row a is tap k = 3-p-2a (likewise for columns).
    """
    phases = _phase_kernels(weight)
    taps = [(1 - k // 2, (k + 1) % 2) for k in range(4)]  # tap k -> (row a, phase p)
    rows = [torch.stack([phases[p][q][:, :, a, b] for b, q in taps], -1) for a, p in taps]
    return torch.stack(rows, -2).transpose(0, 1)


def _fused_lrelu_ok(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether oneDNN can run this generation conv with its leaky ReLU fused in (one pass over the output
    instead of two: 1.4 ms less per 32 × 128 × 1024 layer on a 2-core CPU; the same values up to float32
    rounding, as oneDNN may pick another kernel for the fused op). These are the ops PyTorch's inductor uses."""
    return (no_autograd() and x.device.type == "cpu" and is_channels_last(x) and x.dtype == weight.dtype
            and torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise"))


def upsample_conv3x3(x: torch.Tensor, conv: "EqualizedConv2d", lrelu: bool = False, norm: bool = False) -> torch.Tensor:
    """`conv(upscale(x, 2))` for a 3×3 'same' conv, computed at the input's resolution.

    The same arithmetic as upsampling first (up to float rounding), as one stride-2 transposed conv whose
    4×4 kernel holds the four 2×2 sub-pixel kernels: 16 instead of 36 multiply-adds per 2×2 output group, so
    the first conv of every block gets 2.25× cheaper (most of GANSynth's cost), and the phases land
    interleaved in the output, in the input's memory format, with no copy. `lrelu`: apply the leaky ReLU too;
    `norm` (with `lrelu`): then the pixel norm.
    """
    kernel = conv.transposed_kernel(is_channels_last(x))
    if lrelu and _fused_lrelu_ok(x, kernel):
        y = torch.ops.mkldnn._convolution_transpose_pointwise(
            x, kernel, conv.bias.to(kernel.dtype), [1, 1], [0, 0], [2, 2], [1, 1], 1,  # padding, output pad., stride
            "leaky_relu", [LEAKY_RELU_SLOPE], "")
    else:
        y = F.conv_transpose2d(x, kernel, conv.bias, stride=2, padding=1)
        y = _lrelu(y) if lrelu else y
    return lrelu_pixel_norm(y, lrelu_done=True) if norm else y


def downscale(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Average pooling by an integer factor (Magenta's `layers.downscale`)."""
    if scale == 1:
        return x
    return F.avg_pool2d(x, scale)


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

    def _inference_weight(self, kind: str, channels_last: bool, build, dtype: torch.dtype | None = None) -> torch.Tensor:
        """`build()`'s kernel as the conv will use it: cast to the autocast dtype, in the input's memory format.

        Without autograd (generation) the result is cached while the weights are unchanged, so a bfloat16
        or channels-last run does not cast and reorder every kernel on every forward pass.
        """
        if not no_autograd():
            return build()
        if dtype is None:
            dtype = self.weight.dtype
            if torch.is_autocast_enabled(self.weight.device.type):
                dtype = torch.get_autocast_dtype(self.weight.device.type)
        key = (kind, self.weight._version, self.weight.data_ptr(), self.weight.device, dtype, channels_last)
        cache = self.__dict__.setdefault("_weight_cache", {})
        if kind not in cache or cache[kind][0] != key:
            with torch.no_grad():
                w = build().to(dtype)  # built in the weights' own precision, then rounded once
                if channels_last:
                    w = w.contiguous(memory_format=torch.channels_last)
            cache[kind] = (key, w)
        return cache[kind][1]

    def scaled_kernel(self, channels_last: bool = False) -> torch.Tensor:
        """The kernel with the equalised-lr scale applied ([out, in, kh, kw]), as the conv uses it."""
        return self._inference_weight("scaled", channels_last, lambda: self.weight * self.scale)

    def transposed_kernel(self, channels_last: bool = False) -> torch.Tensor:
        """The scaled 4×4 stride-2 transposed-conv kernel of `upsample_conv3x3` ([in, out, 4, 4])."""
        return self._inference_weight("transposed", channels_last, lambda: _transposed_kernel(self.weight) * self.scale)

    def _dense_from_point(self, x: torch.Tensor) -> torch.Tensor:
        """The conv of a 1×1 input padded by the kernel size minus one (GANSynth's first layer) as one matmul.

        Output pixel (i, j) sees only kernel tap (kh-1-i, kw-1-j): `[B, C] @ [C, O·kh·kw]`. The padded conv took
        oneDNN's slow generic path (5 ms per note; most of GANSpace's sampling time at conv0). Generation runs the
        product in float64 and rounds once: a float32 GEMM rounds differently with the batch size, and batched
        generation must equal one-by-one (tests/test_ganspace_edits.py).
        """
        b, c = x.shape[:2]
        o, _, kh, kw = self.weight.shape

        def build():  # [C, O·kh·kw], taps flipped
            return self.weight.flip(2, 3).permute(1, 0, 2, 3).reshape(c, o * kh * kw)

        if not no_autograd():
            y = (x.reshape(b, c) @ (build() * self.scale)).view(b, o, kh, kw) + self.bias.view(1, -1, 1, 1)
        else:
            w64 = self._inference_weight("dense", False, build, dtype=torch.float64)
            y = scale_bias((x.reshape(b, c).double() @ w64).float().view(b, o, kh, kw), self)
        if is_channels_last(self.weight):  # the network's memory format, for the next conv
            y = y.contiguous(memory_format=torch.channels_last)
        return y

    def forward(self, x: torch.Tensor, lrelu: bool = False, norm: bool = False) -> torch.Tensor:
        """The conv; with `lrelu`, followed by a leaky ReLU (0.2), and with `norm` too, by the pixel norm: fused
        into the conv where oneDNN or the compiled Winograd transforms can."""
        if norm and not lrelu:
            raise ValueError("norm follows the leaky ReLU")
        y, applied = self._conv(x, lrelu, norm)
        if lrelu and applied < 1:
            y = _lrelu(y)
        if norm and applied < 2:
            y = lrelu_pixel_norm(y, lrelu_done=True)
        return y

    def _winograd_path(self, x: torch.Tensor, padding) -> str | None:
        if no_autograd() and padding == (1, 1) and is_channels_last(x):
            return winograd.path(x, self.weight)
        return None

    def fuses_norm(self, x: torch.Tensor) -> bool:
        """Whether `forward(x, lrelu=True, norm=True)` applies the pixel norm inside the conv (no extra pass)."""
        padding, pre_pad = self._padding_for(x)
        return pre_pad is None and self._winograd_path(x, padding) == "native"

    def _padding_for(self, x: torch.Tensor):
        """(conv padding, or 0, and the F.pad tuple to apply first, or None)."""
        if not any(self.pad):
            return 0, None
        if self.pad[0] == self.pad[1] and self.pad[2] == self.pad[3]:
            return (self.pad[2], self.pad[0]), None
        return 0, self.pad

    def _conv(self, x: torch.Tensor, lrelu: bool, norm: bool) -> tuple[torch.Tensor, int]:
        """(output, how many of leaky ReLU and pixel norm it already has): fused only when asked and possible."""
        kh, kw = self.weight.shape[2:]
        if x.shape[2:] == (1, 1) and self.pad == (kw - 1, kw - 1, kh - 1, kh - 1) and (kh, kw) != (1, 1):
            return self._dense_from_point(x), 0
        padding, pre_pad = self._padding_for(x)
        if pre_pad is not None:
            x = F.pad(x, pre_pad)
        wino = self._winograd_path(x, padding)
        if wino is not None:
            u = self._inference_weight("winograd", False, lambda: winograd.kernel_transform(self.weight * self.scale))
            if wino == "native":
                y = native.conv3x3(x, u, self.bias, lrelu_slope=LEAKY_RELU_SLOPE if lrelu else None,
                                   pixel_norm_eps=PIXEL_NORM_EPS if norm else None)
                return y, 2 if norm else int(lrelu)
            return winograd.winograd_conv3x3(x, u, self.bias), 0
        # The (small) kernel is scaled and the conv adds the bias, instead of two more passes over the activation
        # (and, in training, its gradient).
        weight = self.scaled_kernel(is_channels_last(x))
        if not (lrelu and _fused_lrelu_ok(x, weight)):
            return F.conv2d(x, weight, self.bias, padding=padding), 0
        padding = [padding, padding] if isinstance(padding, int) else list(padding)
        y = torch.ops.mkldnn._convolution_pointwise(x, weight, self.bias.to(weight.dtype), padding, [1, 1], [1, 1], 1,
                                                    "leaky_relu", [LEAKY_RELU_SLOPE], "")
        return y, 1


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
