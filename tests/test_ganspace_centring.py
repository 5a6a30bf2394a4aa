"""Conditional means (ganspace/centring.py) on the tiny model: deterministic, per pitch and conditions, cached;
fits centred per condition record it; noz starts from them, for new and old components files; refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ganspacesynth.conditions import ConditionSpec
from ganspacesynth.errors import UserError
from ganspacesynth.ganspace import centring
from ganspacesynth.ganspace.centring import (CENTRE_LATENTS, clear_cache, conditional_mean, conditional_means,
                                             condition_keys)
from ganspacesynth.ganspace.components import Components
from ganspacesynth.ganspace.edits import synthesize_specgrams
from ganspacesynth.ganspace.fit import fit_components
from ganspacesynth.ganspace.sampling import STREAM_CENTRE, ActivationSampler, latent_rows


@pytest.fixture(scope="module")
def conditioned_synth():
    """The tiny architecture with a family and a multi-label condition besides pitch (untrained, in memory)."""
    from ganspacesynth.model.config import pitch_condition, preset
    from ganspacesynth.model.generator import Generator
    from ganspacesynth.synth import Synth

    torch.manual_seed(3)
    cfg = preset("tiny", (pitch_condition(), ConditionSpec("instrument_family", "categorical", ("bass", "organ")),
                          ConditionSpec("qualities", "multilabel", ("bright", "dark"))))
    return Synth(cfg, Generator(cfg))


@pytest.fixture(scope="module")
def centred(tiny_synth):
    return fit_components(tiny_synth, "conv0", 600, pitches=[40, 52, 64], seed=2, batch_size=200, n_components=16)


def test_conditional_mean_is_deterministic_and_depends_on_the_pitch(tiny_synth):
    clear_cache(tiny_synth)
    m36 = conditional_mean(tiny_synth, "conv0", 36)
    assert m36.shape == (int(np.prod(tiny_synth.generator.layer_shape("conv0"))),) and m36.dtype == np.float32
    assert conditional_mean(tiny_synth, "conv0", 36) is m36  # cached
    clear_cache(tiny_synth)
    again = conditional_mean(tiny_synth, "conv0", 36)
    assert again is not m36
    np.testing.assert_array_equal(again, m36)  # recomputed: the same bits
    # By definition: the mean over the fixed seeded latents, all at that pitch.
    z = latent_rows(0, CENTRE_LATENTS, tiny_synth.latent_size, 0, STREAM_CENTRE)
    direct = tiny_synth.activations(z, 36, "conv0", batch_size=CENTRE_LATENTS).reshape(CENTRE_LATENTS, -1)
    np.testing.assert_allclose(m36, direct.double().mean(0).numpy(), rtol=0, atol=1e-6)
    m72 = conditional_mean(tiny_synth, "conv0", 72)
    assert np.abs(m72 - m36).max() > 10 * np.abs(m36).max() * 1e-3  # another pitch, another mean
    assert not np.allclose(conditional_mean(tiny_synth, "conv0", 36, latents=64), m36)  # fewer latents: an estimate


def test_per_note_means_follow_each_notes_pitch_and_conditions(conditioned_synth):
    s = conditioned_synth
    rows = conditional_means(s, "conv1", [40, 60, 40], {"instrument_family": ["bass", "bass", "organ"],
                                                       "qualities": [["bright"], [], ["bright", "dark"]]}, 3)
    assert tuple(rows.shape) == (3, *s.generator.layer_shape("conv1"))
    for i, (p, fam, q) in enumerate([(40, "bass", ["bright"]), (60, "bass", []), (40, "organ", ["bright", "dark"])]):
        one = conditional_mean(s, "conv1", p, {"instrument_family": fam, "qualities": [q]})
        np.testing.assert_array_equal(rows[i].reshape(-1).numpy(), one)
    flat = rows.reshape(3, -1)
    assert (flat[0] - flat[2]).abs().max() > 1e-4  # the family and qualities change the mean at one pitch
    no_family = conditional_mean(s, "conv1", 40)  # a family left out: the mean of the classes, as generate
    assert np.abs(no_family - flat[0].numpy()).max() > 1e-4
    keys = condition_keys(s, 2, [40.0, "40"], {"instrument_family": "bass"})
    assert keys[0] == keys[1] == (("instrument_family", 0), ("pitch", 16))


def test_noz_starts_from_the_conditional_mean_of_every_note(conditioned_synth):
    s = conditioned_synth
    comps = fit_components(s, "conv0", 300, pitches=[40, 60], seed=0, batch_size=150, n_components=8,
                           regression_samples=0)
    coeffs = np.array([[1.0, 0.0], [0.0, -1.0]])
    conds = {"instrument_family": ["organ", "bass"]}
    got = synthesize_specgrams(s, comps, coeffs, [60, 40], "noz", conditions=conds)
    act = conditional_means(s, "conv0", [60, 40], conds, 2) + torch.from_numpy(
        (coeffs * comps.stdev[:2]) @ comps.comp[:2]).float().reshape(2, *comps.layer_shape)
    want = s.generate_specgrams(None, [60, 40], conds, start_at="conv0", start_activation=act)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.heavy
def test_centred_fit_records_its_centring_and_keeps_the_global_mean(tiny_synth, centred, tmp_path):
    meta = centred.meta
    assert meta["centring"] == "per-condition" and meta["centre_latents"] == CENTRE_LATENTS
    assert meta["centre_seed"] == 0
    raw = fit_components(tiny_synth, "conv0", 600, pitches=[40, 52, 64], seed=2, batch_size=200, n_components=16,
                         centring="none")
    assert raw.meta["centring"] == "none"
    # `mean` is the raw samples' mean either way (older readers start noz there).
    np.testing.assert_allclose(centred.mean, raw.mean, rtol=0, atol=1e-5 * np.abs(raw.mean).max())
    # By definition: PCA of each sample minus the conditional mean of its pitch (sample i at pitches[i % 3]).
    _, x = ActivationSampler(tiny_synth, "conv0", [40, 52, 64], seed=2, batch_size=600).batch(0, 600)
    means = np.stack([conditional_mean(tiny_synth, "conv0", p) for p in (40, 52, 64)])
    x = x.double().numpy() - means[np.arange(600) % 3]
    var, vec = np.linalg.eigh(np.cov(x, rowvar=False))
    np.testing.assert_allclose(centred.stdev[:4], np.sqrt(var[::-1][:4]), rtol=1e-4)
    cos = np.abs(np.sum(centred.comp[:4] * vec[:, ::-1][:, :4].T, axis=1))
    assert np.all(cos > 1 - 1e-4), cos
    assert not np.allclose(raw.stdev[:4], centred.stdev[:4], rtol=1e-3)  # the raw fit sees the pitches' spread too
    saved = Components.load(centred.save(tmp_path / "c.npz"), tiny_synth)
    assert saved.meta["centring"] == "per-condition" and saved.meta["format_version"] == 1


def test_centring_is_part_of_a_checkpoints_identity(tiny_synth, tmp_path):
    ckpt = tmp_path / "c.ckpt.npz"
    fit_components(tiny_synth, "conv0", 300, pitches=[40], n_components=4, regression_samples=0, batch_size=100,
                   checkpoint=ckpt, checkpoint_every=1e-9, centring="none")
    with pytest.raises(UserError, match="belongs to another fit.*centring"):
        fit_components(tiny_synth, "conv0", 300, pitches=[40], n_components=4, regression_samples=0,
                       batch_size=100, checkpoint=ckpt, resume=True)


def test_old_components_files_play_noz_at_the_pitch_asked_for(tiny_synth, centred, tmp_path):
    """A file written before centring (no `centring` in its metadata) loads and plays noz from the conditional
    mean of the pitch asked for, not from its stored mean."""
    old = Components(comp=centred.comp, stdev=centred.stdev, var_ratio=centred.var_ratio, mean=centred.mean,
                     layer="conv0", layer_shape=centred.layer_shape,
                     meta={k: v for k, v in centred.meta.items() if not k.startswith("centr")})
    path = old.save(tmp_path / "old.npz")
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
    assert "centring" not in meta and meta["format_version"] == 1
    loaded = Components.load(path, tiny_synth)
    a, b = (synthesize_specgrams(tiny_synth, loaded, [1.0], p, "noz") for p in (36, 72))
    assert (a - b).abs().max() > 1e-3
    want = tiny_synth.generate_specgrams(None, 72, start_at="conv0", start_activation=torch.from_numpy(
        conditional_mean(tiny_synth, "conv0", 72) + loaded.stdev[0] * loaded.comp[0]).reshape(1, *old.layer_shape))
    torch.testing.assert_close(b, want, rtol=1e-5, atol=1e-6)


def test_requests_that_cannot_be_honoured_are_refused(tiny_synth, centred, conditioned_synth):
    def refused(match, fn, *args, **kw):
        with pytest.raises(UserError, match=match) as info:
            fn(*args, **kw)
        assert "\n" not in str(info.value)

    refused("a pitch is required", synthesize_specgrams, tiny_synth, centred, [1.0], None, "noz")
    refused("outside", synthesize_specgrams, tiny_synth, centred, [1.0], 200, "noz")
    refused("no condition 'timbre'", synthesize_specgrams, tiny_synth, centred, [1.0], 60, "noz",
            conditions={"timbre": "warm"})
    refused("not known to this model", synthesize_specgrams, conditioned_synth,
            fit_components(conditioned_synth, "conv0", 200, n_components=2, regression_samples=0), [1.0], 60, "noz",
            conditions={"instrument_family": "kazoo"})
    refused("3 values for pitch but 2 notes", synthesize_specgrams, tiny_synth, centred, [[1.0], [0.0]], [40, 50, 60],
            "noz")
    refused("no layer 'conv9'", conditional_mean, tiny_synth, "conv9", 60)
    refused("1..65536 latents", conditional_mean, tiny_synth, "conv0", 60, latents=0)
    refused("one pitch", conditional_mean, tiny_synth, "conv0", [60, 61])
    refused("centring must be one of", fit_components, tiny_synth, "conv0", 100, centring="sideways")
    future = Components(**{**{k: getattr(centred, k) for k in ("comp", "stdev", "var_ratio", "mean", "layer",
                                                                "layer_shape")},
                           "meta": {**centred.meta, "centring": "per-timbre"}})
    refused("centred by 'per-timbre'", synthesize_specgrams, tiny_synth, future, [1.0], 60, "noz")
    broken = Components(**{**{k: getattr(centred, k) for k in ("comp", "stdev", "var_ratio", "mean", "layer",
                                                                "layer_shape")},
                           "meta": {**centred.meta, "centre_latents": -5}})
    refused("unusable conditional mean", synthesize_specgrams, tiny_synth, broken, [1.0], 60, "noz")


def test_the_cache_is_bounded(tiny_synth, monkeypatch):
    clear_cache(tiny_synth)
    size = conditional_mean(tiny_synth, "conv0", 40).nbytes
    monkeypatch.setattr(centring, "CACHE_BYTES", 3 * size)
    for p in (41, 42, 43, 44):
        conditional_mean(tiny_synth, "conv0", p)
    table = centring._CACHE[tiny_synth]
    assert len(table) == 3 and [k[1] for k in table] == [(("pitch", p - 24),) for p in (42, 43, 44)]
