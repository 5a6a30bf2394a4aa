"""Synthesis from coefficients: the identities of the three modes, batching, and the latent regression."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganspacesynth.errors import UserError
from ganspacesynth.ganspace.centring import conditional_mean
from ganspacesynth.ganspace.edits import layer_offsets, synthesize, synthesize_specgrams
from ganspacesynth.ganspace.estimators import Decomposition
from ganspacesynth.ganspace.fit import fit_components
from ganspacesynth.ganspace.regression import RegressionAccumulator


@pytest.fixture(scope="module")
def comps(tiny_synth):
    return fit_components(tiny_synth, "conv0", 700, pitches=[60], seed=0, batch_size=350, n_components="all")


@pytest.mark.heavy
def test_offset_mode_with_zero_coefficients_is_plain_generation(tiny_synth, comps):
    z = tiny_synth.random_z(3, seed=4)
    plain = tiny_synth.generate(z, pitch=60)
    edited = synthesize(tiny_synth, comps, np.zeros(5), 60, mode="offset", z=z)
    np.testing.assert_allclose(edited, plain, atol=1e-6)
    assert np.abs(plain).max() > 1e-3  # not a trivially silent comparison


def test_noz_mode_with_zero_coefficients_runs_from_the_conditional_mean(tiny_synth, comps):
    mean_act = torch.from_numpy(conditional_mean(tiny_synth, "conv0", 60).copy()).reshape(1, *comps.layer_shape)
    ref = tiny_synth.generate(None, pitch=60, start_at="conv0", start_activation=mean_act)
    np.testing.assert_allclose(synthesize(tiny_synth, comps, [0.0, 0.0], 60, mode="noz"), ref, atol=1e-6)


@pytest.mark.heavy
def test_nonzero_coefficients_follow_the_definitions(tiny_synth, comps):
    # Spectrograms, not waves: the inverse STFT integrates phase, which magnifies float32 rounding.
    c = np.array([1.5, -0.5, 0.0, 0.8])
    expected_offset = (c * comps.stdev[:4]) @ comps.comp[:4]
    torch.testing.assert_close(layer_offsets(comps, c).reshape(-1), torch.from_numpy(expected_offset.astype(np.float32)),
                               rtol=1e-5, atol=1e-6)
    offset = torch.from_numpy(expected_offset).float().reshape(1, *comps.layer_shape)
    act = torch.from_numpy(conditional_mean(tiny_synth, "conv0", 60).copy()).reshape(offset.shape) + offset
    noz = synthesize_specgrams(tiny_synth, comps, c, 60, mode="noz")
    ref = tiny_synth.generate_specgrams(None, 60, start_at="conv0", start_activation=act)
    torch.testing.assert_close(noz, ref, rtol=1e-4, atol=1e-5)
    z = tiny_synth.random_z(1, seed=9)
    off = synthesize_specgrams(tiny_synth, comps, c, 60, mode="offset", z=z)
    torch.testing.assert_close(off, tiny_synth.generate_specgrams(z, 60, offsets={"conv0": offset}), rtol=1e-4, atol=1e-5)
    lat = synthesize_specgrams(tiny_synth, comps, c, 60, mode="latent", z=z)
    ref = tiny_synth.generate_specgrams(z + (c @ comps.z_comp[:4]).astype(np.float32), 60)
    torch.testing.assert_close(lat, ref, rtol=1e-4, atol=1e-5)
    zero = synthesize_specgrams(tiny_synth, comps, [0.0], 60)
    assert (noz - zero).abs().max() > 1e-3  # the coefficients do change the sound


@pytest.mark.heavy
def test_batched_coefficients_equal_one_by_one(tiny_synth, comps):
    rows = np.array([[0.0, 1.0], [2.0, -1.0, 0.5], [-1.0]], dtype=object)
    padded = np.zeros((3, 3))
    for i, r in enumerate(rows):
        padded[i, :len(r)] = r
    z = tiny_synth.random_z(1, seed=2)
    for mode in ("noz", "offset", "latent"):
        batch = synthesize(tiny_synth, comps, padded, [50, 55, 60], mode=mode, z=z, batch_size=2)
        for i in range(3):
            single = synthesize(tiny_synth, comps, list(rows[i]), [50, 55, 60][i], mode=mode, z=z)
            np.testing.assert_allclose(batch[i], single[0], atol=1e-5)


def test_bad_edits_are_refused(tiny_synth, comps):
    with pytest.raises(UserError, match="only 512"):
        synthesize(tiny_synth, comps, np.zeros(513), 60)
    with pytest.raises(UserError, match="needs a latent"):
        synthesize(tiny_synth, comps, [1.0], 60, mode="offset")
    with pytest.raises(UserError, match="mode must be"):
        synthesize(tiny_synth, comps, [1.0], 60, mode="sideways")
    with pytest.raises(UserError, match="no latent directions"):
        no_z = comps.subset(4)
        no_z.z_comp = no_z.z_mean = None
        synthesize(tiny_synth, no_z, [1.0], 60, mode="latent", z=tiny_synth.random_z(1))
    with pytest.raises(UserError, match="2 latents for 3"):
        synthesize(tiny_synth, comps, np.zeros((3, 2)), 60, mode="offset", z=tiny_synth.random_z(2))


def test_regression_recovers_a_planted_latent_map():
    """Activations x = m + Σ_{i<4} sᵢ·z_{p(i)}·uᵢ: the regression must find z_comp[i] = e_{p(i)}."""
    rng = np.random.default_rng(0)
    latent, dim, k = 12, 40, 4
    basis, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    comp, stdev, perm = basis[:, :k].T, np.array([4.0, 3.0, 2.0, 1.0]), np.array([7, 2, 9, 0])
    mean = rng.standard_normal(dim)
    dec = Decomposition(comp.astype(np.float32), stdev.astype(np.float32), np.ones(k, np.float32) / k,
                        mean.astype(np.float32), 0)
    acc = RegressionAccumulator(dec, latent)
    for _ in range(10):
        z = rng.standard_normal((1000, latent)).astype(np.float32)
        x = mean + (z[:, perm] * stdev) @ comp
        acc.update(z, torch.from_numpy(x.astype(np.float32)))
    result = acc.solve()
    # Finite samples: other latents correlate with each coordinate at about 1/sqrt(10000) = 0.01.
    np.testing.assert_allclose(result.z_comp, np.eye(latent)[perm], atol=0.05)
    assert np.all(result.z_comp[np.arange(k), perm] > 0.995)
    assert result.report["r2"] == pytest.approx(k / latent, abs=0.02)
    assert result.report["samples"] == 10000
    assert np.abs(result.z_mean).max() < 0.05


def test_latent_directions_move_the_activation_along_their_component(tiny_synth, comps):
    """A step along z_comp[0] should move the layer activation mostly along comp[0] (the regression's purpose)."""
    z = tiny_synth.random_z(64, seed=11)
    base = tiny_synth.activations(z, 60, "conv0").reshape(64, -1).numpy()
    moved = tiny_synth.activations(z + 0.5 * comps.z_comp[0], 60, "conv0").reshape(64, -1).numpy()
    proj = (moved - base) @ comps.comp[:8].T
    assert np.mean(proj[:, 0]) > 0
    assert np.abs(proj[:, 0]).mean() > 2 * np.abs(proj[:, 1:]).mean()
