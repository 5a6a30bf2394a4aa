"""Compiled CPU kernels (ganspacesynth/model/native.py): Winograd tile transforms with the activation fused in,
the one-pass pixel norm and pixel-norm-plus-to_rgb, and the PyTorch fallback when nothing can be compiled.
The transforms' match with conv2d is in tests/test_winograd.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganspacesynth.model import native, winograd
from ganspacesynth.model.layers import pixel_norm


def _channels_last(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g).contiguous(memory_format=torch.channels_last)


needs_native = pytest.mark.skipif(not native.available(), reason="no C compiler for the Winograd transforms")


@needs_native
def test_compiled_transforms_fuse_leaky_relu_and_pixel_norm():
    x = _channels_last(2, 64, 12, 20, seed=3)
    weight, bias = torch.randn(64, 64, 3, 3) / 24, torch.randn(64)
    reference = F.leaky_relu(F.conv2d(x.double(), weight.double(), bias.double(), padding=1), 0.2)
    normed = reference * torch.rsqrt(reference.square().mean(dim=1, keepdim=True) + 1e-8)
    u = winograd.kernel_transform(weight)
    with torch.inference_mode():
        act = native.conv3x3(x, u, bias, lrelu_slope=0.2)
        both = native.conv3x3(x, u, bias, lrelu_slope=0.2, pixel_norm_eps=1e-8)
    assert float(act.min()) < 0 and float((act - reference).abs().max()) <= 5e-5 * float(reference.abs().max())
    torch.testing.assert_close(both.double(), normed, rtol=0, atol=1e-4)
    rms = both.double().square().mean(dim=1).sqrt()
    torch.testing.assert_close(rms, torch.ones_like(rms), rtol=0, atol=1e-5)  # each pixel: unit RMS


@needs_native
def test_compiled_batch_equals_one_by_one():
    x = _channels_last(3, 64, 10, 20, seed=1)
    u = winograd.kernel_transform(torch.randn(64, 64, 3, 3))
    with torch.inference_mode():
        batch = native.conv3x3(x, u, None, lrelu_slope=0.2, pixel_norm_eps=1e-8)
        single = [native.conv3x3(x[i:i + 1], u, None, lrelu_slope=0.2, pixel_norm_eps=1e-8) for i in range(3)]
    assert all(torch.equal(batch[i], single[i][0]) for i in range(3))


@needs_native
def test_generator_with_compiled_transforms_matches_the_direct_convs(monkeypatch, wide_tiny_generator):
    # 64-channel blocks go through the compiled transforms with the activation fused in; the direct convs give the
    # same notes to float32 rounding.
    gen, z, cond = wide_tiny_generator(512, 64)
    monkeypatch.setattr(native, "ENABLED", False)
    with torch.inference_mode():
        direct = gen(z, cond)
    monkeypatch.setattr(native, "ENABLED", True)
    monkeypatch.setattr(winograd, "MIN_HEIGHT", 2)
    calls = []
    real = native.conv3x3
    monkeypatch.setattr(native, "conv3x3", lambda *a, **k: calls.append(k) or real(*a, **k))
    with torch.inference_mode():
        fast = gen(z, cond)
    assert len(calls) >= 2 and all(k["pixel_norm_eps"] is not None for k in calls)
    # float32 rounding through several layers (pixel norms amplify it where an activation is near zero)
    torch.testing.assert_close(fast, direct, rtol=0, atol=1e-3)
    assert float((fast - direct).abs().mean()) <= 1e-5
    assert not torch.equal(fast, direct)


def test_without_a_compiler_the_pytorch_path_runs(monkeypatch, tmp_path):
    monkeypatch.setenv("GANSPACESYNTH_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    native._library.cache_clear()
    try:
        assert not native.available()
        x, weight = _channels_last(1, 64, 16, 32), torch.randn(64, 64, 3, 3)
        assert winograd.path(x, weight) is None and winograd.path(torch.cat([x, x], 1), torch.randn(128, 128, 3, 3)) == "torch"
        monkeypatch.setenv("CC", "false")  # a compiler that fails
        native._library.cache_clear()
        assert not native.available() and not list(tmp_path.iterdir())  # nothing half-built left behind
        monkeypatch.delenv("CC")
        monkeypatch.setenv("GANSPACESYNTH_NATIVE", "0")
        native._library.cache_clear()
        assert not native.available()
    finally:
        native._library.cache_clear()


@needs_native
def test_pixel_norm_in_one_pass():
    x = _channels_last(2, 48, 5, 7, seed=4) * 3
    x[0, :, 0, 0] = 0.0  # eps keeps an all-zero pixel finite
    expected = pixel_norm(x.double(), 1e-8)
    assert native.handles(x) and not native.handles(x.contiguous()) and not native.handles(x[:, :40])
    with torch.inference_mode():
        ours = native.pixel_norm_(x.clone(), 1e-8)
    torch.testing.assert_close(ours.double(), expected, rtol=1e-6, atol=1e-6)
    assert float(ours[0, :, 0, 0].abs().max()) == 0.0


@needs_native
def test_pixel_norm_then_to_rgb_in_one_pass():
    x = _channels_last(3, 32, 6, 10, seed=5)
    weight, bias = torch.randn(2, 32, 1, 1), torch.randn(2)
    expected = F.conv2d(pixel_norm(x.double(), 1e-8), weight.double(), bias.double())
    before = x.clone()
    with torch.inference_mode():
        ours = native.pixel_norm_project(x, weight, bias, 1e-8)
    assert ours.shape == (3, 2, 6, 10) and torch.equal(x, before)  # x itself is left as it was
    torch.testing.assert_close(ours.double(), expected, rtol=1e-5, atol=1e-5)


@needs_native
def test_generator_with_compiled_kernels_matches_pytorch(monkeypatch, wide_tiny_generator):
    # 32- and 64-channel layers: compiled pixel norms, and the last layer's norm and to_rgb in one pass.
    gen, z, cond = wide_tiny_generator(2048, 64, pitches=(1, 5, 9), seed=1)
    calls = []
    real = native.pixel_norm_project
    monkeypatch.setattr(native, "pixel_norm_project", lambda *a: calls.append(1) or real(*a))
    with torch.inference_mode():
        fast = gen(z, cond)
        monkeypatch.setattr(native, "ENABLED", False)
        plain = gen(z, cond)
    assert calls
    torch.testing.assert_close(fast, plain, rtol=0, atol=1e-4)


@needs_native
def test_a_damaged_cached_build_is_rebuilt(monkeypatch, tmp_path):
    monkeypatch.setenv("GANSPACESYNTH_CACHE_DIR", str(tmp_path))
    native._library.cache_clear()
    try:
        built = native._build()  # compiled, not loaded (overwriting a loaded library would crash this process)
        assert built is not None and built.parent == tmp_path
        built.write_bytes(b"not a shared library")
        native._library.cache_clear()
        assert native.available()  # rebuilt in place
        assert built.read_bytes()[:4] == b"\x7fELF"
    finally:
        native._library.cache_clear()
