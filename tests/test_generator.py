"""The progressive generator: shapes, channel schedule, named layers, partial and resumed forwards."""

from __future__ import annotations

import pytest
import torch

from ganspacesynth.errors import UserError
from ganspacesynth.model.conditions import ConditionSet
from ganspacesynth.conditions import ConditionSpec
from ganspacesynth.model.config import preset
from ganspacesynth.model.generator import Generator
from ganspacesynth.model.inference import prepare


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    cfg = preset("tiny")
    return cfg, Generator(cfg).eval(), ConditionSet(cfg.conditions)


def _inputs(cfg, cs, n=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, cfg.latent_vector_size, generator=g)
    cond = cs.encode({"pitch": torch.arange(n) * 7})
    return z, cond


def test_mel_prog_hires_architecture_is_gansynth():
    cfg = preset("mel_prog_hires")
    assert [cfg.num_filters(b) for b in range(1, 8)] == [256, 256, 256, 256, 128, 64, 32]
    assert cfg.output_shape == (128, 1024)
    assert cfg.condition_dim == 61 and cfg.pitches[0] == 24 and cfg.pitches[-1] == 84
    gen = Generator(cfg)
    assert gen.layer_names()[:4] == ["conv0", "conv1", "conv0_2", "conv1_2"]
    assert gen.layer_shape("conv0") == (256, 2, 16)
    assert gen.layer_shape("conv1_7") == (32, 128, 1024)
    # Block 1's first conv sees z (256) + one-hot pitch (61) through a 2×16 kernel.
    assert tuple(gen.blocks[0].conv0.weight.shape) == (256, 317, 2, 16)


def test_output_shape_and_range(tiny):
    cfg, gen, cs = tiny
    z, cond = _inputs(cfg, cs)
    out = gen(z, cond)
    assert out.shape == (3, 2, 128, 256)
    assert float(out.abs().max()) <= 1.0  # tanh output


@pytest.mark.heavy
def test_partial_forward_equals_full_forward_at_layer(tiny):
    cfg, gen, cs = tiny
    z, cond = _inputs(cfg, cs)
    for layer in ("conv0", "conv1", "conv0_3", "conv1_4"):
        _, captured = gen(z, cond, capture=[layer])
        partial = gen(z, cond, stop_at=layer)
        assert partial.shape == (3, *gen.layer_shape(layer))
        assert torch.equal(partial, captured[layer])


@pytest.mark.heavy
def test_start_from_own_activation_reproduces_output(tiny):
    cfg, gen, cs = tiny
    z, cond = _inputs(cfg, cs)
    full = gen(z, cond)
    for layer in ("conv0", "conv1", "conv1_2", "conv0_5"):
        act = gen(z, cond, stop_at=layer)
        resumed = gen(None, None, start_at=layer, start_activation=act)
        torch.testing.assert_close(resumed, full, rtol=0, atol=1e-6)


@pytest.mark.heavy
def test_zero_offset_is_identity_and_offset_changes_output(tiny):
    cfg, gen, cs = tiny
    z, cond = _inputs(cfg, cs)
    full = gen(z, cond)
    shape = gen.layer_shape("conv0")
    same = gen(z, cond, offsets={"conv0": torch.zeros(shape)})
    assert torch.equal(same, full)
    moved = gen(z, cond, offsets={"conv0": torch.ones(shape)})
    assert float((moved - full).abs().mean()) > 1e-3


def test_condition_changes_output(tiny):
    cfg, gen, cs = tiny
    z, _ = _inputs(cfg, cs, n=1)
    a = gen(z, cs.encode({"pitch": torch.tensor([10])}))
    b = gen(z, cs.encode({"pitch": torch.tensor([40])}))
    assert float((a - b).abs().mean()) > 1e-3


@pytest.mark.heavy
def test_progressive_stages_and_fade_in(tiny):
    cfg, gen, cs = tiny
    z, cond = _inputs(cfg, cs)
    for k in range(1, cfg.num_resolutions + 1):
        assert gen(z, cond, num_blocks=k).shape[-2:] == cfg.resolution(k)
    # alpha=0 shows the previous block upsampled; alpha=1 the new block alone.
    prev = gen(z, cond, num_blocks=2)
    faded0 = gen(z, cond, num_blocks=3, alpha=0.0)
    torch.testing.assert_close(faded0, prev.repeat_interleave(2, 2).repeat_interleave(2, 3))
    torch.testing.assert_close(gen(z, cond, num_blocks=3, alpha=1.0), gen(z, cond, num_blocks=3))


def test_generic_conditions():
    cfg = preset("tiny").replace(conditions=(
        ConditionSpec("pitch", "categorical", [str(p) for p in range(24, 85)]),
        ConditionSpec("instrument_family", "categorical", ["bass", "guitar", "organ"]),
        ConditionSpec("qualities", "multilabel", ["bright", "dark", "percussive"]),
    ))
    cs = ConditionSet(cfg.conditions)
    assert cs.dim == 61 + 3 + 3 == cfg.condition_dim
    enc = cs.encode({"pitch": torch.tensor([0, 1]), "instrument_family": torch.tensor([2, 0]),
                     "qualities": torch.tensor([[1.0, 0, 1], [0, 0, 0]])})
    assert enc.shape == (2, 67)
    assert enc[0, 61 + 2] == 1 and enc[1, 61] == 1 and enc[0, 64] == 1 and enc[0, 66] == 1
    # Left out: a categorical condition is the mean of its classes (inside the trained inputs), a multilabel one
    # no qualities (zeros, also a trained input).
    pitch_only = cs.encode({"pitch": torch.tensor([5, 6])})
    torch.testing.assert_close(pitch_only[:, 61:64], torch.full((2, 3), 1 / 3))
    assert pitch_only[:, 64:].abs().max() == 0 and pitch_only[0, 5] == 1 and pitch_only[:, :61].sum() == 2
    gen = Generator(cfg)
    assert gen(torch.randn(2, cfg.latent_vector_size), enc).shape == (2, 2, 128, 256)
    with pytest.raises(UserError, match="out of|outside"):
        cs.index("pitch", 99)
    with pytest.raises(UserError, match="not known"):
        cs.index("instrument_family", "kazoo")


def test_unknown_layer_is_refused(tiny):
    cfg, gen, cs = tiny
    z, cond = _inputs(cfg, cs)
    with pytest.raises(UserError, match="unknown layer"):
        gen(z, cond, stop_at="conv9")


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.heavy
def test_channels_last_equals_nchw(grad):
    # Generation (the fast routes, cached kernels) and training (the reference network, autograd) both keep
    # channels-last through the sub-pixel upsampling convs; values and gradients must match the NCHW network.
    # 32 channels at every block so float rounding is not amplified by a 2-channel pixel norm.
    torch.manual_seed(0)
    cfg = preset("tiny").replace(fmap_base=1024, fmap_max=32)
    nchw = Generator(cfg).eval()
    cl = Generator(cfg).eval()
    cl.load_state_dict(nchw.state_dict())
    cl = cl.to(memory_format=torch.channels_last)
    z, cond = _inputs(cfg, ConditionSet(cfg.conditions))
    if not grad:
        fast_nchw, fast_cl = prepare(nchw), prepare(cl)
        with torch.inference_mode():
            a, b = fast_nchw(z, cond), fast_cl(z, cond)
            a2 = fast_cl(z, cond)  # second call: cached kernels
        assert b.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(b, a, rtol=0, atol=1e-4)
        assert torch.equal(a2, b)
        return
    outs = []
    for net in (nchw, cl):
        net.zero_grad()
        out = net(z, cond)
        (out.square().mean()).backward()
        outs.append((out.detach(), net.blocks[2].conv0.weight.grad.clone()))
    torch.testing.assert_close(outs[1][0], outs[0][0], rtol=0, atol=1e-4)
    torch.testing.assert_close(outs[1][1], outs[0][1], rtol=1e-3, atol=1e-5)


@pytest.mark.skipif(not __import__("ganspacesynth.synth").synth.cpu_runs_bfloat16(),
                    reason="this CPU cannot run bfloat16 convolutions (no AVX-512 BW/VL/DQ or AVX-NE-CONVERT)")
def test_bfloat16_path_is_within_the_stated_tolerance():
    # docs/BENCHMARKS.md states 0.008 mean absolute difference (random full-size weights); a 32-channel
    # tiny model must stay within 0.02 mean and 0.2 at the 99th percentile of the normalised [-1, 1] scale.
    from ganspacesynth.synth import Synth

    torch.manual_seed(0)
    cfg = preset("tiny").replace(fmap_base=1024, fmap_max=32)
    gen = Generator(cfg)
    fp32 = Synth(cfg, gen, precision="float32")
    z = fp32.random_z(4, seed=3)
    a = fp32.generate_specgrams(z, pitch=[40, 50, 60, 70])
    bf16 = Synth(cfg, gen, precision="bfloat16")
    b = bf16.generate_specgrams(z, pitch=[40, 50, 60, 70])
    assert b.dtype == torch.float32 and torch.isfinite(b).all()
    diff = (b - a).abs()
    assert 0 < float(diff.mean()) <= 0.02
    assert float(diff.flatten().kthvalue(int(0.99 * diff.numel())).values) <= 0.2
    # The cached (cast) kernels follow the weights: an in-place change reaches the next call.
    with torch.no_grad():
        gen.blocks[1].conv0.weight.mul_(-1)
    c = bf16.generate_specgrams(z, pitch=[40, 50, 60, 70])
    assert float((c - b).abs().mean()) > 0.01
    assert float((c - fp32.generate_specgrams(z, pitch=[40, 50, 60, 70])).abs().mean()) <= 0.02


def test_first_layer_matmul_equals_the_padded_conv():
    # GANSynth's first layer is a 2×16 conv over a 1×1 input padded by (1, 15): run as one matmul (in float64 in
    # generation), it must equal the conv (values in generation; values and gradients in training).
    import torch.nn.functional as F

    from ganspacesynth.model.inference.layers import LayerRoute
    from ganspacesynth.model.layers import EqualizedConv2d, leaky_relu, pixel_norm

    torch.manual_seed(0)
    conv = EqualizedConv2d(20, 8, (2, 16), padding=(1, 1, 15, 15))
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(5, 20, 1, 1)

    def reference(inp):
        return F.conv2d(F.pad(inp, conv.pad), conv.weight * conv.scale, conv.bias)

    route = LayerRoute(conv, "point", "pytorch")
    with torch.inference_mode():
        fast = route(x)
        slow = pixel_norm(leaky_relu(reference(x)))
    assert fast.shape == (5, 8, 2, 16)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ya, yb = conv(xa), reference(xb)
    torch.testing.assert_close(ya, yb, rtol=1e-5, atol=1e-6)
    ya.square().sum().backward()
    grad_w = conv.weight.grad.clone()
    conv.weight.grad = None
    yb.square().sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grad_w, conv.weight.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.heavy
def test_fused_conv_leaky_relu_matches_the_separate_ops(caplog, monkeypatch):
    # In channels-last generation on a CPU, oneDNN applies each conv's leaky ReLU inside the conv (plain and
    # transposed); the notes must match the conv-then-activation route, and with autograd the reference network
    # runs instead (with a warning).
    from ganspacesynth.model.inference import layers as routes
    from ganspacesynth.model.inference.layers import onednn_fusion_available

    monkeypatch.setattr(routes, "_warned", set())  # warnings come once per process
    if not onednn_fusion_available():
        pytest.skip("this PyTorch has no oneDNN fused conv")
    torch.manual_seed(0)
    cfg = preset("tiny").replace(fmap_base=1024, fmap_max=32)
    gen = Generator(cfg).eval().to(memory_format=torch.channels_last)
    z, cond = _inputs(cfg, ConditionSet(cfg.conditions))
    fused, separate = prepare(gen), prepare(gen, fuse_activation=False)
    assert sum("fused" in r for r in fused.routes().values()) >= 2 * cfg.num_resolutions - 1  # all but the first
    assert not any("fused" in r for r in separate.routes().values())
    with torch.inference_mode():
        torch.testing.assert_close(fused(z, cond), separate(z, cond), rtol=0, atol=1e-5)
    with caplog.at_level("WARNING"):
        out = fused(z, cond)
    assert out.requires_grad
    torch.testing.assert_close(out.detach(), gen(z, cond).detach(), rtol=0, atol=0)
    assert "falls back to the reference network" in caplog.text and "autograd" in caplog.text


def test_notes_side_by_side_on_one_thread_each_equal_the_threaded_passes(monkeypatch):
    # Full-size notes go one per pass on a CPU, and then side by side, one core each (synth.run_one_thread_each).
    # The notes must be bit for bit those of the threaded one-by-one passes, and torch's thread count restored.
    from ganspacesynth import synth as synth_module
    from ganspacesynth.synth import Synth

    torch.manual_seed(0)
    cfg = preset("tiny").replace(fmap_base=1024, fmap_max=32)
    s = Synth(cfg, Generator(cfg))
    monkeypatch.setattr(Synth, "_forward_batch", lambda self, batch_size, stop_at=None: 1)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        z = s.random_z(5, seed=4)
        used = []
        real = synth_module.run_one_thread_each
        monkeypatch.setattr(synth_module, "run_one_thread_each", lambda *a: used.append(a[2]) or real(*a))
        side_by_side = s.generate_specgrams(z, pitch=[40, 45, 50, 55, 60])
        assert used == [2] and torch.get_num_threads() == 2
        monkeypatch.setattr(synth_module, "run_one_thread_each", lambda fn, items, workers: [fn(i) for i in items])
        threaded = s.generate_specgrams(z, pitch=[40, 45, 50, 55, 60])
        assert torch.equal(side_by_side, threaded)
        assert torch.equal(s.generate_specgrams(z[2:3], pitch=50), threaded[2:3])  # and one note alone
    finally:
        torch.set_num_threads(threads)


def test_side_by_side_stops_at_the_first_error_and_restores_threads():
    from ganspacesynth.synth import run_one_thread_each

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    started = []

    def work(i):
        started.append(i)
        if i == 1:
            raise ValueError("bad note")
        import time

        time.sleep(0.05)
        return i

    try:
        assert run_one_thread_each(lambda i: i * 2, range(5), 2) == [0, 2, 4, 6, 8]
        with pytest.raises(ValueError, match="bad note"):
            run_one_thread_each(work, range(40), 2)
        assert len(started) < 40  # the notes not started yet were dropped
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


@pytest.mark.heavy
def test_last_pixel_norm_folded_into_to_rgb_matches(tiny):
    # Generation applies the last layer's pixel norm to to_rgb's 2 channels instead of the wide activation;
    # asking for that activation (capture) takes the plain route, and both give the same notes.
    cfg, gen, cs = tiny
    fast = prepare(gen.to(memory_format=torch.channels_last))
    z, cond = _inputs(cfg, cs, n=4)
    last = gen.layer_names()[-1]
    with torch.inference_mode():
        folded = fast(z, cond)
        plain, captured = fast(z, cond, capture=[last])
        at_layer = fast(z, cond, stop_at=last)
        unfolded = prepare(gen, fold_last_norm=False)(z, cond)
    torch.testing.assert_close(folded, plain, rtol=0, atol=2e-6)
    assert torch.equal(plain, unfolded)
    assert torch.equal(captured[last], at_layer)
    rms = captured[last].square().mean(dim=1)
    assert float((rms - 1).abs().median()) < 1e-5  # the captured one is normalised (eps shows at ~0 pixels)


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.heavy
def test_fast_routes_compute_the_reference_network(layout):
    # The generation routes (model/inference) against the reference network, through the whole forward
    # contract: stop, capture, offsets, start from a layer, progressive stages with fade-in. 32 channels at every
    # block so float rounding is not amplified by a 2-channel pixel norm.
    torch.manual_seed(0)
    cfg = preset("tiny").replace(fmap_base=1024, fmap_max=32)
    cs = ConditionSet(cfg.conditions)
    memory_format = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    gen = Generator(cfg).eval().to(memory_format=memory_format)
    fast = prepare(gen)
    assert prepare(gen, impl="reference") is gen
    z, cond = _inputs(cfg, cs)
    names = gen.layer_names()
    offsets = {names[2]: torch.full(gen.layer_shape(names[2]), 0.1)}
    calls = [dict(), dict(stop_at=names[3]), dict(capture=[names[1], names[-1]]), dict(offsets=offsets),
             dict(num_blocks=3, alpha=0.4), dict(num_blocks=2)]
    with torch.inference_mode():
        for kw in calls:
            ref, ours = gen(z, cond, **kw), fast(z, cond, **kw)
            if isinstance(ref, tuple):
                assert ref[1].keys() == ours[1].keys()
                for k in ref[1]:
                    torch.testing.assert_close(ours[1][k], ref[1][k], rtol=0, atol=1e-4)
                ref, ours = ref[0], ours[0]
            torch.testing.assert_close(ours, ref, rtol=0, atol=1e-4)
        act = fast(z, cond, stop_at=names[4])
        resumed = fast(None, None, start_at=names[4], start_activation=act.contiguous())  # any layout
        torch.testing.assert_close(resumed, gen(z, cond), rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="impl"):
        prepare(gen, impl="cuda")


def test_reference_network_never_imports_the_inference_routes():
    # model/inference builds on the reference modules; the reverse would tie training to the generation routes.
    import ast
    from pathlib import Path

    import ganspacesynth.model as model

    root = Path(model.__file__).parent
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            assert not any("inference" in n or n in ("native", "winograd") for n in names), (path.name, names)
