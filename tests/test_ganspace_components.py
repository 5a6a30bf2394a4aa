"""Components files: round trips, descriptions, refusal of other models / layer shapes / damaged files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ganspacesynth.errors import UserError
from ganspacesynth.ganspace.components import Components
from ganspacesynth.ganspace.fit import fit_components, list_layers
from ganspacesynth.synth import Synth


@pytest.fixture(scope="module")
def comps(tiny_synth):
    return fit_components(tiny_synth, "conv0", 600, pitches=[30, 50], seed=3, batch_size=200, n_components="all")


def other_model(tmp_path, **changes):
    from ganspacesynth.model.config import preset
    from ganspacesynth.model.files import save_model
    from ganspacesynth.model.generator import Generator

    torch.manual_seed(1)
    cfg = preset("tiny").replace(**changes)
    path = tmp_path / "other.safetensors"
    save_model(path, cfg, Generator(cfg).state_dict())
    return Synth.load(path, device="cpu")


@pytest.mark.heavy
def test_round_trip_keeps_everything(comps, tiny_synth, tmp_path):
    path = comps.save(tmp_path / "c.npz")
    back = Components.load(path, tiny_synth)
    for name in ("comp", "stdev", "var_ratio", "mean", "z_comp", "z_mean"):
        np.testing.assert_array_equal(getattr(back, name), getattr(comps, name))
    assert back.layer == "conv0" and back.layer_shape == (16, 4, 8)
    assert back.meta["pitches"] == [30, 50] and back.meta["seed"] == 3 and back.meta["sample_count"] == 600
    assert back.meta["estimator"] == "cov" and back.meta["model_fingerprint"] == tiny_synth.fingerprint
    assert back.meta["format_version"] == 1 and back.descriptions is None
    assert back.z_comp.shape == (512, tiny_synth.latent_size)
    assert back.meta["regression"]["samples"] == 10000
    assert back.meta["orthonormality_error"] < 1e-5


def test_descriptions_round_trip_and_validation(comps, tmp_path):
    desc = [{"label": "brighter", "stats": {"centroid_hz_per_unit": 120.5}}, {"label": "louder", "stats": {}}]
    described = comps.with_descriptions(desc)
    assert comps.descriptions is None  # a copy, not a mutation
    back = Components.load(described.save(tmp_path / "d.npz"))
    assert back.descriptions == desc
    assert back.subset(1).descriptions == desc[:1] and back.subset(1).comp.shape == (1, 512)
    with pytest.raises(UserError, match="label"):
        comps.with_descriptions([{"stats": {}}])
    with pytest.raises(UserError, match="at most"):
        comps.subset(1).with_descriptions(desc)


def test_other_model_is_refused(comps, tmp_path):
    path = comps.save(tmp_path / "c.npz")
    other = other_model(tmp_path)
    with pytest.raises(UserError, match="another model"):
        Components.load(path, other)
    Components.load(path, other, check_fingerprint=False)  # same architecture: allowed when asked


def test_layer_of_another_shape_is_refused(comps, tmp_path):
    path = comps.save(tmp_path / "c.npz")
    narrow = other_model(tmp_path, fmap_max=8)  # conv0 becomes (8, 4, 8)
    with pytest.raises(UserError, match=r"shape \(16, 4, 8\).*\(8, 4, 8\)"):
        Components.load(path, narrow, check_fingerprint=False)


def test_bad_files_are_refused(comps, tmp_path, monkeypatch):
    with pytest.raises(UserError, match="not found"):
        Components.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(UserError, match="not a readable components file"):
        Components.load(junk)
    plain = tmp_path / "plain.npz"
    np.savez(plain, comp=np.zeros((2, 3)))
    with pytest.raises(UserError, match="not a GANSpaceSynth components file"):
        Components.load(plain)
    # a newer format version
    data = dict(np.load(comps.save(tmp_path / "c.npz")))
    meta = json.loads(str(data["meta"]))
    meta["format_version"] = 99
    data["meta"] = np.array(json.dumps(meta))
    with open(tmp_path / "new.npz", "wb") as f:
        np.savez(f, **data)
    with pytest.raises(UserError, match="version 99"):
        Components.load(tmp_path / "new.npz")
    # inconsistent arrays
    data["meta"] = np.array(json.dumps({**meta, "format_version": 1}))
    data["stdev"] = data["stdev"][:3]
    with open(tmp_path / "bad.npz", "wb") as f:
        np.savez(f, **data)
    with pytest.raises(UserError, match="stdev has shape"):
        Components.load(tmp_path / "bad.npz")
    # the bundled default resolves like the model's: UserError when none is installed
    import ganspacesynth.assets as assets

    monkeypatch.setattr(assets, "default_components_path", lambda: None)
    with pytest.raises(UserError, match="no bundled default components"):
        Components.load(None)
    monkeypatch.setattr(assets, "default_components_path", lambda: tmp_path / "c.npz")
    assert Components.load(None).n_components == 512


def test_list_layers(tiny_synth):
    layers = {info["name"]: info for info in list_layers(tiny_synth)}
    assert layers["conv0"]["shape"] == (16, 4, 8) and layers["conv0"]["size"] == 512
    assert layers["conv0_2"]["min_samples_full_pca"] == 16 * 8 * 16 + 1
