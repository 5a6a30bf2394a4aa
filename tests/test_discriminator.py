"""The progressive discriminator mirrors the generator (Magenta's layout) and fades blocks in exactly."""

from __future__ import annotations

import pytest
import torch

from ganspacesynth.conditions import ConditionSpec
from ganspacesynth.model.config import pitch_condition, preset
from ganspacesynth.model.discriminator import Discriminator
from ganspacesynth.model.generator import Generator
from ganspacesynth.model.layers import downscale


@pytest.fixture(scope="module")
def cfg():
    return preset("tiny", conditions=(pitch_condition(range(40, 46)),
                                      ConditionSpec("qualities", "multilabel", ("bright", "dark", "percussive"))))


def test_layer_shapes_follow_magenta(cfg):
    d = Discriminator(cfg)
    nf = cfg.num_filters
    for i, block in enumerate(d.blocks):
        k = i + 1
        assert tuple(block.from_rgb.weight.shape) == (nf(k), 2, 1, 1)
        if k == 1:
            # minibatch stddev adds one map; the last conv uses the start resolution's kernel (VALID)
            assert tuple(block.conv0.weight.shape) == (nf(1), nf(1) + 1, 3, 3)
            assert tuple(block.conv1.weight.shape) == (nf(0), nf(1), cfg.start_height, cfg.start_width)
        else:
            assert tuple(block.conv0.weight.shape) == (nf(k), nf(k), 3, 3)
            assert tuple(block.conv1.weight.shape) == (nf(k - 1), nf(k), 3, 3)
    assert tuple(d.logits.weight.shape) == (1, nf(0), 1, 1)
    assert tuple(d.classifiers["pitch"].weight.shape) == (6, nf(0), 1, 1)
    assert tuple(d.classifiers["qualities"].weight.shape) == (3, nf(0), 1, 1)


@pytest.mark.heavy
def test_reads_generator_output_at_every_stage(cfg):
    torch.manual_seed(0)
    g, d = Generator(cfg), Discriminator(cfg)
    z = torch.randn(4, cfg.latent_vector_size)
    cond = torch.zeros(4, cfg.condition_dim)
    for k in range(1, cfg.num_resolutions + 1):
        x = g(z, cond, num_blocks=k, alpha=0.5)
        assert tuple(x.shape[-2:]) == cfg.resolution(k)
        score, logits = d(x, num_blocks=k, alpha=0.5)
        assert score.shape == (4,)
        assert logits["pitch"].shape == (4, 6) and logits["qualities"].shape == (4, 3)
        assert torch.isfinite(score).all()
    with pytest.raises(ValueError, match="expects"):
        d(torch.zeros(4, 2, 8, 8), num_blocks=2)


@pytest.mark.heavy
def test_fade_in_starts_at_the_previous_network(cfg):
    """alpha 0 at k blocks is the k-1 block network on the average-pooled input; alpha 1 ignores it."""
    torch.manual_seed(1)
    d = Discriminator(cfg)
    x = torch.randn(8, 2, *cfg.resolution(3))
    s0, l0 = d(x, num_blocks=3, alpha=0.0)
    s_prev, l_prev = d(downscale(x, 2), num_blocks=2, alpha=1.0)
    torch.testing.assert_close(s0, s_prev, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(l0["pitch"], l_prev["pitch"], rtol=1e-5, atol=1e-5)
    s1, _ = d(x, num_blocks=3, alpha=1.0)
    assert (s1 - s0).abs().max() > 1e-3  # the new block is in use at alpha 1


def test_minibatch_stddev_sees_the_batch(cfg):
    """The score of one example depends on the others in its group (mode-collapse signal)."""
    torch.manual_seed(2)
    d = Discriminator(cfg)
    x = torch.randn(4, 2, *cfg.resolution(1))
    with torch.no_grad():
        a, _ = d(x, num_blocks=1)
        y = x.clone()
        y[1:] = y[:1]  # the others become copies of the first: stddev collapses
        b, _ = d(y, num_blocks=1)
    assert abs(float(a[0] - b[0])) > 1e-4


def test_gradients_reach_only_the_blocks_in_use(cfg):
    d = Discriminator(cfg)
    x = torch.randn(4, 2, *cfg.resolution(2))
    score, logits = d(x, num_blocks=2, alpha=0.3)
    (score.sum() + logits["pitch"].sum()).backward()
    assert d.blocks[1].conv0.weight.grad is not None and d.blocks[0].from_rgb.weight.grad is not None
    assert d.blocks[2].conv0.weight.grad is None
