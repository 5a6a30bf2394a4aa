"""Latent priors (model/prior.py): N(0, I) draws exactly what it always drew; a prior of learned codes is stored in
the model file, checked when loaded, and every random latent of the package comes from it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganspacesynth.errors import UserError
from ganspacesynth.ganspace.sampling import latent_rows
from ganspacesynth.model.files import load_model, save_model, set_model_info
from ganspacesynth.model.prior import CENTRES_TENSOR, LatentPrior, sample_mixture
from ganspacesynth.synth import Synth


def test_the_standard_prior_is_plain_standard_normal(tiny_synth):
    assert tiny_synth.prior.is_standard
    expected = np.random.default_rng(7).standard_normal((5, tiny_synth.latent_size), dtype=np.float32)
    np.testing.assert_array_equal(tiny_synth.random_z(5, seed=7), expected)


def test_mixture_picks_every_code_equally_and_adds_the_spread():
    centres = np.arange(4 * 3, dtype=np.float32).reshape(4, 3) * 10
    prior = LatentPrior(3, centres, 0.5)
    z = prior.draw(np.random.default_rng(0), 40000)
    nearest = np.argmin(np.linalg.norm(z[:, None] - centres[None], axis=2), axis=1)
    share = np.bincount(nearest, minlength=4) / len(z)
    np.testing.assert_allclose(share, 0.25, atol=0.01)
    offsets = z - centres[nearest]
    assert abs(offsets.std() - 0.5) < 0.01 and abs(offsets.mean()) < 0.01
    # row i depends only on its own noise: a prefix of a bigger draw is the smaller draw
    np.testing.assert_array_equal(prior.draw(np.random.default_rng(0), 10), z[:10])
    # the torch function training uses is the same map
    noise = np.random.default_rng(1).standard_normal((6, 4), dtype=np.float32)
    np.testing.assert_array_equal(prior.sample(noise), sample_mixture(torch.from_numpy(centres), 0.5,
                                                                      torch.from_numpy(noise)).numpy())


@pytest.mark.parametrize("centres,spread,match", [
    (np.zeros((2, 5)), 0.1, r"1 to 65536 codes of size 4"),
    (np.full((2, 4), np.nan), 0.1, "not all finite"),
    (np.zeros((2, 4)), -1.0, "spread must be a number in"),
    (np.zeros((2, 4)), float("inf"), "spread must be a number in"),
])
def test_bad_priors_are_refused(centres, spread, match):
    with pytest.raises(UserError, match=match):
        LatentPrior(4, centres, spread)


def test_a_model_file_keeps_its_prior_and_everything_draws_from_it(tmp_path, tiny_synth):
    mf = load_model(tiny_synth.path)
    latent = tiny_synth.latent_size
    centres = np.random.default_rng(2).standard_normal((3, latent)).astype(np.float32) * 4
    path = save_model(tmp_path / "m.safetensors", mf.config, mf.generator_state, info={"x": 1},
                      prior=LatentPrior(latent, centres, 0.05))
    again = load_model(path)
    assert again.fingerprint == mf.fingerprint  # the weights are the same model
    np.testing.assert_array_equal(again.prior.centres, centres)
    assert again.prior.spread == 0.05 and again.info["x"] == 1
    synth = Synth.load(path)
    for z in (synth.random_z(200, seed=1), latent_rows(0, 200, synth.prior, seed=1)):
        nearest = np.linalg.norm(z[:, None] - centres[None], axis=2).min(axis=1)
        assert nearest.max() < 0.05 * np.sqrt(latent) * 2  # all near a code: none from N(0, I) (|z| ≈ √L)
    # metadata rewrites keep it (calibration does them)
    assert not load_model(set_model_info(path, {"output_gain_db": 3.0})).prior.is_standard


def test_a_damaged_prior_is_refused_in_one_line(tmp_path, tiny_synth):
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    mf = load_model(tiny_synth.path)
    path = save_model(tmp_path / "m.safetensors", mf.config, mf.generator_state,
                      prior=LatentPrior(tiny_synth.latent_size, np.zeros((2, tiny_synth.latent_size)), 0.1))
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    tensors[CENTRES_TENSOR] = torch.zeros(2, tiny_synth.latent_size + 1)
    save_file(tensors, str(tmp_path / "wrong.safetensors"), metadata=meta)
    with pytest.raises(UserError, match="wrong.safetensors: a latent prior needs") as info:
        load_model(tmp_path / "wrong.safetensors")
    assert "\n" not in str(info.value)
    del tensors[CENTRES_TENSOR]
    save_file(tensors, str(tmp_path / "half.safetensors"), metadata=meta)
    with pytest.raises(UserError, match="damaged latent prior"):
        load_model(tmp_path / "half.safetensors")


def test_a_copy_keeps_the_prior_only_when_it_is_given(tmp_path, tiny_synth):
    """Copying a model (e.g. to half precision, as the bundle script does) with `prior=mf.prior` keeps it; without
    it the copy draws from N(0, I) and carries no stale prior entry in its info."""
    mf = load_model(tiny_synth.path)
    src = save_model(tmp_path / "a.safetensors", mf.config, mf.generator_state,
                     prior=LatentPrior(tiny_synth.latent_size, np.ones((2, tiny_synth.latent_size)), 0.1))
    a = load_model(src)
    kept = load_model(save_model(tmp_path / "b.safetensors", a.config, a.generator_state, info=a.info, half=True,
                                 prior=a.prior))
    np.testing.assert_array_equal(kept.prior.centres, a.prior.centres)
    dropped = load_model(save_model(tmp_path / "c.safetensors", a.config, a.generator_state, info=a.info))
    assert dropped.prior.is_standard and "latent_prior" not in dropped.info
