"""The generator for generation: `prepare(generator, impl=...)` picks every layer's route once, when a model loads.

    engine = prepare(generator, impl="fast", precision="float32")   # or impl="reference": the network itself
    with torch.inference_mode():
        out = engine(z, cond, stop_at=..., capture=..., offsets=..., start_at=..., num_blocks=..., alpha=...)

`FastGenerator` keeps the reference generator's forward contract (it runs `Generator.progressive` with its own
layers) and shares its parameters: an in-place change to the weights reaches the next call.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from ..generator import Generator
from ..layers import is_channels_last
from . import native, winograd
from .layers import LayerRoute, ToRgbRoute, onednn_fusion_available, warn_once
from .winograd import MIN_CHANNELS_COMPILED, MIN_CHANNELS_PYTORCH, MIN_HEIGHT

IMPLS = ("reference", "fast")
PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class FastOptions:
    """Which generation routes `prepare` may choose (tests and benchmarks turn them off to compare)."""

    compiled: bool = True  # the C kernels (native.py), where they build; GANSPACESYNTH_NATIVE=0 turns them off
    winograd: bool = True  # Winograd for wide float32 3×3 convs on CPUs
    fuse_activation: bool = True  # oneDNN conv + leaky ReLU in one op (channels-last CPU)
    fold_last_norm: bool = True  # the last pixel norm applied to to_rgb's 2 channels when nothing reads the layer
    min_channels_compiled: int = MIN_CHANNELS_COMPILED
    min_channels_pytorch: int = MIN_CHANNELS_PYTORCH
    min_height: int = MIN_HEIGHT


@dataclass(frozen=True)
class Context:
    """What the routes were chosen for: the weights' device and memory format and the arithmetic dtype."""

    device: torch.device
    dtype: torch.dtype
    channels_last: bool


def _context(generator: Generator, dtype: torch.dtype | None = None) -> Context:
    weight = generator.blocks[0].conv1.weight
    if dtype is None:  # as the generator runs now: autocast's dtype, else the weights'
        dtype = weight.dtype
        if torch.is_autocast_enabled(weight.device.type):
            dtype = torch.get_autocast_dtype(weight.device.type)
    return Context(weight.device, dtype, is_channels_last(weight))


def _plan(generator: Generator, ctx: Context, opts: FastOptions) -> tuple[list[LayerRoute], list[ToRgbRoute]]:
    """Each layer's route and each block's to_rgb route for `ctx`."""
    config = generator.config
    cpu = ctx.device.type == "cpu"
    compiled = opts.compiled and cpu and native.available()
    fuse = opts.fuse_activation and cpu and ctx.channels_last and onednn_fusion_available()

    def norm_route(channels: int, out_dtype: torch.dtype) -> str:
        ok = compiled and ctx.channels_last and out_dtype == torch.float32 and channels % native.VECTOR == 0
        return "compiled" if ok else "pytorch"

    layers = []
    for idx in range(2 * config.num_resolutions):
        block = generator.blocks[idx // 2]
        conv = block.conv1 if idx % 2 else block.conv0
        out_channels, in_channels = conv.weight.shape[:2]
        if idx == 0 and conv.is_point_conv():
            # float64 product rounded to float32, whatever autocast says
            layers.append(LayerRoute(conv, "point", norm_route(out_channels, torch.float32)))
            continue
        upscale = 1
        if idx % 2 == 0 and idx > 0:
            if block.scale == 2 and config.kernel_size == 3:
                layers.append(LayerRoute(conv, "upsample", norm_route(out_channels, ctx.dtype), fuse))
                continue
            upscale = block.scale
        route = None
        padding, pre_pad = conv.conv_padding()
        if (opts.winograd and cpu and ctx.channels_last and ctx.dtype == torch.float32 and padding == (1, 1)
                and pre_pad is None and tuple(conv.weight.shape[2:]) == (3, 3)):
            route = winograd.route(in_channels, out_channels, config.resolution(idx // 2 + 1)[0],
                                   compiled=compiled and native.supports(in_channels, out_channels),
                                   min_channels_compiled=opts.min_channels_compiled,
                                   min_channels_pytorch=opts.min_channels_pytorch, min_height=opts.min_height)
        if route == "compiled":
            layers.append(LayerRoute(conv, "winograd-compiled", "in-conv", upscale=upscale))
        elif route == "pytorch":
            layers.append(LayerRoute(conv, "winograd-pytorch", norm_route(out_channels, ctx.dtype), upscale=upscale))
        else:
            layers.append(LayerRoute(conv, "direct", norm_route(out_channels, ctx.dtype), fuse, upscale))
    tanh = config.to_rgb_activation == "tanh"
    rgb = [ToRgbRoute(block.to_rgb, norm_route(block.conv1.weight.shape[0], ctx.dtype), tanh)
           for block in generator.blocks]
    return layers, rgb


class FastGenerator(nn.Module):
    """The reference generator's function by the generation routes (no autograd; see `prepare`)."""

    def __init__(self, generator: Generator, dtype: torch.dtype | None = None, options: FastOptions = FastOptions()):
        super().__init__()
        self.generator = generator
        self.options = options
        self.context = _context(generator, dtype)
        self.layers, self.rgb = _plan(generator, self.context, options)

    # Everything but the forward pass is the reference generator's.
    @property
    def config(self):
        return self.generator.config

    def layer_names(self) -> list[str]:
        return self.generator.layer_names()

    def layer_shape(self, name: str) -> tuple[int, int, int]:
        return self.generator.layer_shape(name)

    def routes(self) -> dict[str, str]:
        """{layer name: "conv route + norm route"}, as chosen for this model (for tests and benchmarks)."""
        return {name: f"{r.conv}{'+fused-lrelu' if r.fuse_activation else ''}, norm {r.norm}"
                for name, r in zip(self.generator.layer_names(), self.layers)}

    def _fallback_reason(self) -> str | None:
        if torch.is_grad_enabled() and not torch.is_inference_mode_enabled():
            return "autograd is on (the generation routes work in place)"
        now = _context(self.generator)
        if now != self.context:
            return f"the generator now runs as {now}, but its routes were chosen for {self.context}"
        return None

    def forward(self, z: torch.Tensor | None, cond: torch.Tensor | None = None, **contract):
        """`Generator.forward`'s contract and results (up to float rounding; see docs/DEVELOPING.md)."""
        gen = self.generator
        reason = self._fallback_reason()
        if reason is not None:
            warn_once(f"engine:{reason}", f"fast generation falls back to the reference network: {reason}")
            return gen(z, cond, **contract)
        n_blocks = contract.get("num_blocks") or gen.config.num_resolutions
        last = 2 * n_blocks - 1
        # The last pixel norm goes to to_rgb when nothing else reads that layer's activation.
        last_name = gen.layer_names()[last]
        start_at, start_activation = contract.get("start_at"), contract.get("start_activation")
        fold = (self.options.fold_last_norm and self.layers[last].norm_can_wait and last_name != contract.get("stop_at")
                and last_name not in contract.get("capture", ()) and last_name not in (contract.get("offsets") or {})
                and (start_at is None or gen.layer_names().index(start_at) < last))
        if start_activation is not None and self.context.channels_last:
            # Routes see the layout they were chosen for, whatever layout the caller's activation has.
            contract["start_activation"] = start_activation.contiguous(memory_format=torch.channels_last)

        def layer(index: int, x: torch.Tensor) -> torch.Tensor:
            return self.layers[index](x, norm=not (fold and index == last))

        def to_rgb(block_index: int, x: torch.Tensor) -> torch.Tensor:
            return self.rgb[block_index](x, pending_norm=fold and block_index == n_blocks - 1)

        return gen.progressive(z, cond, layer, to_rgb, **contract)


def prepare(generator: Generator, impl: str = "fast", *, precision: str | torch.dtype | None = None,
            **options) -> nn.Module:
    """The generator to run for generation, with each layer's route chosen now.

    `impl`: "reference" returns `generator` itself (plain PyTorch, what training runs); "fast" a `FastGenerator`
    sharing its weights. `precision`: the arithmetic generation will run in ("float32", "bfloat16" under autocast;
    None: the weights' dtype). `options`: `FastOptions` fields. Prepare after moving the generator to its device and
    memory format; run it without autograd (otherwise, and under another precision, it falls back to the reference
    network with a warning).
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {', '.join(IMPLS)}, not {impl!r}")
    if impl == "reference":
        return generator
    dtype = PRECISIONS[precision] if isinstance(precision, str) else precision
    return FastGenerator(generator, dtype, replace(FastOptions(), **options))
