"""Compiled CPU kernels (ganspacesynth/model/inference/native.py, kernels.c): Winograd tile transforms with the
activation fused in, the one-pass pixel norm and pixel-norm-plus-to_rgb, the checks at their raw-pointer entry
points, and the PyTorch routes when nothing can be compiled. The transforms' match with conv2d is in
tests/test_winograd.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganspacesynth.model.inference import native, prepare, winograd
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
@pytest.mark.heavy
def test_generator_with_compiled_transforms_matches_the_direct_convs(monkeypatch, wide_tiny_generator):
    # 64-channel blocks go through the compiled transforms with the activation fused in; the direct convs give the
    # same notes to float32 rounding.
    gen, z, cond = wide_tiny_generator(512, 64)
    with torch.inference_mode():
        direct = prepare(gen, compiled=False)(z, cond)
    fast = prepare(gen, min_height=2)
    assert sum(r.startswith("winograd-compiled") for r in fast.routes().values()) >= 2
    calls = []
    real = native.conv3x3
    monkeypatch.setattr(native, "conv3x3", lambda *a, **k: calls.append(k) or real(*a, **k))
    with torch.inference_mode():
        fast = fast(z, cond)
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
        assert not native.available() and not native.supports(64, 64)
        assert winograd.route(64, 64, 16, compiled=native.supports(64, 64)) is None
        assert winograd.route(128, 128, 16, compiled=native.supports(128, 128)) == "pytorch"
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
    assert native.accepts(x) and not native.accepts(x.contiguous()) and not native.accepts(x[:, :40])
    with torch.inference_mode():
        ours = native.pixel_norm_(x.clone(), 1e-8)
        with pytest.raises(ValueError, match="channels-last"):
            native.pixel_norm_(x.contiguous(), 1e-8)  # C would read NCHW memory as NHWC
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
@pytest.mark.heavy
def test_generator_with_compiled_kernels_matches_pytorch(monkeypatch, wide_tiny_generator):
    # 32- and 64-channel layers: compiled pixel norms, and the last layer's norm and to_rgb in one pass.
    gen, z, cond = wide_tiny_generator(2048, 64, pitches=(1, 5, 9), seed=1)
    calls = []
    real = native.pixel_norm_project
    monkeypatch.setattr(native, "pixel_norm_project", lambda *a: calls.append(1) or real(*a))
    with torch.inference_mode():
        fast = prepare(gen)(z, cond)
        plain = prepare(gen, compiled=False)(z, cond)
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


@needs_native
def test_entry_points_refuse_what_c_cannot_read():
    # The kernels get raw pointers: wrong dtypes, shapes or layouts must stop in Python, not corrupt memory.
    x = _channels_last(1, 32, 6, 8)
    u = winograd.kernel_transform(torch.randn(32, 32, 3, 3))
    with torch.inference_mode():
        native.conv3x3(x, u, torch.zeros(32))  # accepted
        with pytest.raises(ValueError, match="float32"):
            native.conv3x3(x.double(), u, None)
        with pytest.raises(ValueError, match="u must be"):
            native.conv3x3(x, u[:, :16], None)
        with pytest.raises(ValueError, match="u must be"):
            native.conv3x3(x, u.double(), None)
        with pytest.raises(ValueError, match="bias"):
            native.conv3x3(x, u, torch.zeros(16))
        with pytest.raises(ValueError, match="multiple of 16"):
            native.conv3x3(x[:, :24], winograd.kernel_transform(torch.randn(32, 24, 3, 3)), None)
        with pytest.raises(ValueError, match="channels-last"):
            native.pixel_norm_project(x.contiguous(), torch.randn(2, 32), torch.zeros(2), 1e-8)
        with pytest.raises(ValueError, match="bias"):
            native.pixel_norm_project(x, torch.randn(2, 32), torch.zeros(3), 1e-8)


def test_native_off_keeps_the_pytorch_routes(monkeypatch, wide_tiny_generator):
    # GANSPACESYNTH_NATIVE=0 (the user's override) leaves the compiled kernels out of every route.
    monkeypatch.setenv("GANSPACESYNTH_NATIVE", "0")
    native._library.cache_clear()
    try:
        gen, z, cond = wide_tiny_generator(512, 64)
        routes = prepare(gen, min_height=2).routes().values()
        assert not any("compiled" in r for r in routes) and any("direct" in r for r in routes)
    finally:
        native._library.cache_clear()
