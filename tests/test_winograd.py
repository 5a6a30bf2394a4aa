"""Winograd F(6×6, 3×3): the float32 CPU generation route for wide 3×3 convs
(ganspacesynth/model/inference/winograd.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganspacesynth.model.inference import native, prepare, winograd


def _channels_last(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g).contiguous(memory_format=torch.channels_last)


def test_transforms_compute_the_correlation():
    # y = Aᵀ[(G g) ⊙ (Bᵀ d)] must be the 6-output correlation of an 8-sample signal with a 3-tap kernel.
    at, g, bt = winograd.transforms()
    assert (at.shape, g.shape, bt.shape) == ((6, 8), (8, 3), (8, 8))
    d, k = torch.randn(8, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    direct = torch.stack([(d[i:i + 3] * k).sum() for i in range(6)])
    torch.testing.assert_close(at @ ((g @ k) * (bt @ d)), direct, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("compiled", [False, True], ids=["pytorch-transforms", "compiled-transforms"])
@pytest.mark.parametrize("shape", [(1, 128, 8, 64), (2, 96, 13, 29), (1, 64, 6, 6), (3, 130, 9, 7), (1, 32, 6, 6)])
def test_matches_conv2d(shape, compiled):
    b, c, h, w = shape
    if compiled and (c % native.VECTOR or not native.available()):
        pytest.skip("the compiled transforms take multiples of 16 channels, with a C compiler")
    x = _channels_last(*shape)
    weight, bias = torch.randn(48, c, 3, 3), torch.randn(48)
    reference = F.conv2d(x.double(), weight.double(), bias.double(), padding=1)
    conv = native.conv3x3 if compiled else winograd.winograd_conv3x3
    with torch.inference_mode():
        ours = conv(x, winograd.kernel_transform(weight), bias)
        direct = F.conv2d(x, weight, bias, padding=1)
    assert ours.shape == (b, 48, h, w) and ours.is_contiguous(memory_format=torch.channels_last)
    scale = float(reference.abs().max())
    err, direct_err = float((ours - reference).abs().max()) / scale, float((direct - reference).abs().max()) / scale
    print(f"{shape}: Winograd {err:.1e}, direct {direct_err:.1e} of the output's range")
    assert err <= 5e-5  # docs: about 2e-5 (the direct conv: 2e-6)
    assert err > direct_err / 10  # not a silent fallback to the same direct conv


def test_batch_equals_one_by_one():
    x = _channels_last(3, 128, 10, 20, seed=1)
    u = winograd.kernel_transform(torch.randn(128, 128, 3, 3))
    with torch.inference_mode():
        batch = winograd.winograd_conv3x3(x, u)
        single = [winograd.winograd_conv3x3(x[i:i + 1], u) for i in range(3)]
    assert all(torch.equal(batch[i], single[i][0]) for i in range(3))


def test_only_where_it_pays(wide_tiny_generator):
    route = winograd.route
    # PyTorch transforms: from 128 channels, on maps at least 8 rows high
    assert route(128, 128, 16, compiled=False) == "pytorch"
    assert route(64, 64, 16, compiled=False) is None  # few channels: the transforms cost more
    assert route(128, 128, 4, compiled=False) is None  # tiny maps
    # compiled transforms: from 64 channels
    assert route(64, 64, 16, compiled=True) == "compiled" and route(128, 128, 16, compiled=True) == "compiled"
    assert route(48, 48, 16, compiled=True) is None  # 32-48 channels: slower than the direct conv
    assert route(128, 128, 4, compiled=True) is None
    # Chosen per layer when the model is prepared: float32, channels-last, on a CPU only.
    gen, _, _ = wide_tiny_generator(1024, 128)
    assert any(r.startswith("winograd") for r in prepare(gen).routes().values())
    assert not any(r.startswith("winograd") for r in prepare(gen, winograd=False).routes().values())
    assert not any(r.startswith("winograd") for r in prepare(gen, precision="bfloat16").routes().values())
    nchw = gen.to(memory_format=torch.contiguous_format)
    assert not any(r.startswith("winograd") for r in prepare(nchw).routes().values())


def test_generator_with_winograd_matches_the_direct_convs(monkeypatch, wide_tiny_generator):
    # A 128-channel tiny generator runs its wide convs through Winograd in generation; the direct convs give the
    # same notes to float32 rounding, and training (the reference network, autograd) keeps the direct convs.
    gen, z, cond = wide_tiny_generator(1024, 128)
    direct = prepare(gen, compiled=False, winograd=False)
    fast = prepare(gen, compiled=False, min_channels_pytorch=64, min_height=2)
    with torch.inference_mode():
        direct = direct(z, cond, stop_at="conv1_3")
    calls = []
    real = winograd.winograd_conv3x3
    monkeypatch.setattr(winograd, "winograd_conv3x3", lambda *a: calls.append(1) or real(*a))
    with torch.inference_mode():
        fast = fast(z, cond, stop_at="conv1_3")
    assert len(calls) >= 2
    torch.testing.assert_close(fast, direct, rtol=0, atol=2e-4)
    assert not torch.equal(fast, direct)
    calls.clear()
    gen(z, cond, stop_at="conv1_3").sum().backward()
    assert not calls
