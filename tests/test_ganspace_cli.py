"""The ganspace, edit and grid commands, run as a user would."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from ganspacesynth.ganspace.components import Components
from ganspacesynth.interfaces.cli import main

pytestmark = pytest.mark.heavy  # its tests take over about 1 s each: outside the quick tier (docs/DEVELOPING.md)


def library_note(synth, comps, coeffs, pitch, mode, z):
    """What `edit` should write: the library's edit, scaled like every written note, through 16-bit WAV."""
    from ganspacesynth.audio.levels import peak_safe
    from ganspacesynth.ganspace.edits import synthesize

    return peak_safe(synthesize(synth, comps, np.array(coeffs), pitch, mode, z))[0]


def invoke(*args, ok=True):
    res = CliRunner().invoke(main, [str(a) for a in args])
    if ok and res.exit_code != 0:
        raise AssertionError(res.output + repr(res.exception))
    return res


@pytest.fixture(scope="module")
def comps_path(tiny_model_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("comps") / "c.npz"
    res = invoke("ganspace", "--model", tiny_model_path, "--layer", "conv0", "--random-z-count", 600, "--pitch", 40,
                 "--batch-size", 128, "--seed", 1, "--quiet", "--out", out)
    # The default keeps 256 components (of 512), solved by LAPACK at this size.
    assert "256 components of conv0" in res.output and "orthonormality check" in res.output
    assert "eigensolver: top 256 of 512 by lapack-evr" in res.output
    return out


def test_ganspace_writes_components(comps_path, tiny_synth):
    comps = Components.load(comps_path, tiny_synth)
    assert comps.meta["sample_count"] == 600 and comps.meta["pitches"] == [40] and comps.z_comp is not None
    assert comps.n_components == 256 and comps.z_comp.shape == (256, 32)
    # principal components: orthonormal rows of the layer's size, variance ratios falling and summing to at most 1
    assert comps.comp.shape == (256, 512)
    np.testing.assert_allclose(comps.comp @ comps.comp.T, np.eye(256), atol=1e-4)
    assert np.all(np.diff(comps.var_ratio) <= 1e-7) and 0 < comps.var_ratio.sum() <= 1 + 1e-5


def test_ganspace_options(tiny_model_path, tmp_path, tiny_synth):
    res = invoke("ganspace", "--model", tiny_model_path, "--list-layers")
    rows = {line.split()[0]: line for line in res.output.splitlines()[1:]}
    assert list(rows)[0] == "conv0" and list(rows)[-1] == "conv1_6"
    # name, (C, H, W), its size, and size + 1 samples for a full-rank covariance
    assert rows["conv0"].split()[-2:] == ["512", "513"]
    assert str(tiny_synth.generator.layer_shape("conv0")) in rows["conv0"]
    out = tmp_path / "ipca.npz"
    invoke("ganspace", "--model", tiny_model_path, "--random-z-count", 300, "--estimator", "ipca", "--components", 8,
           "--pitches", "30,31", "--regression-samples", 0, "--quiet", "--out", out)
    comps = Components.load(out)
    assert comps.n_components == 8 and comps.z_comp is None and comps.meta["pitches"] == [30, 31]
    assert comps.meta["estimator"] == "ipca"
    bad = invoke("ganspace", "--model", tiny_model_path, "--random-z-count", 300, "--pitch", 3, "--out", out,
                 "--overwrite", ok=False)
    assert bad.exit_code == 1 and "outside this model's range" in bad.output
    bad = invoke("ganspace", "--model", tiny_model_path, "--regression-samples", 50, "--random-z-count", 100,
                 "--out", tmp_path / "x.npz", ok=False)
    assert bad.exit_code == 1 and "at least 10000" in bad.output and not (tmp_path / "x.npz").exists()
    bad = invoke("ganspace", "--model", tiny_model_path, "--layer", "conv9", "--out", out, "--overwrite", ok=False)
    assert bad.exit_code == 1 and "unknown layer" in bad.output
    out = tmp_path / "all.npz"
    invoke("ganspace", "--model", tiny_model_path, "--random-z-count", 600, "--components", "all",
           "--regression-samples", 0, "--quiet", "--out", out)
    assert Components.load(out).n_components == 512
    for bad_count in ("0", "many", "513"):
        bad = invoke("ganspace", "--model", tiny_model_path, "--random-z-count", 100, "--components", bad_count,
                     "--out", tmp_path / "x.npz", ok=False)
        assert bad.exit_code != 0 and "--components" in bad.output and not (tmp_path / "x.npz").exists()
    bad = invoke("ganspace", "--model", tiny_model_path, "--estimator", "ipca", "--components", 8, "--resume",
                 "--out", tmp_path / "x.npz", ok=False)
    assert bad.exit_code == 1 and "cov estimator" in bad.output


def test_edit_all_modes(tiny_model_path, comps_path, tmp_path, tiny_synth):
    comps = Components.load(comps_path, tiny_synth)
    coeffs = [1.5, -0.5, 0, 0.8]
    notes = {}
    for mode in ("noz", "offset", "latent"):
        out = tmp_path / f"{mode}.wav"
        invoke("edit", "--model", tiny_model_path, "--components", comps_path, "--coeffs", "1.5,-0.5,0,0.8",
               "--pitch", 60, "--mode", mode, "--seed", 2, "--out", out)
        data, rate = sf.read(out, dtype="float32")
        assert rate == 16000 and data.shape == (16384,)
        z = None if mode == "noz" else tiny_synth.random_z(1, 2)
        np.testing.assert_allclose(data, library_note(tiny_synth, comps, coeffs, 60, mode, z), atol=1.5 / 32767)
        notes[mode] = data
    assert np.abs(notes["offset"] - notes["latent"]).max() > 1e-3 and np.abs(notes["noz"] - notes["offset"]).max() > 1e-3
    # --z/--z-index pick a row of the file; the pitch defaults to the one the components were fitted at (40)
    z = np.random.default_rng(0).standard_normal((2, 32)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    invoke("edit", "--model", tiny_model_path, "--components", comps_path, "--coeffs", "0", "--mode", "offset",
           "--z", tmp_path / "z.npy", "--z-index", 1, "--out", tmp_path / "z.wav")
    np.testing.assert_allclose(sf.read(tmp_path / "z.wav", dtype="float32")[0],
                               library_note(tiny_synth, comps, [0.0], 40, "offset", z[1:2]), atol=1.5 / 32767)
    bad = invoke("edit", "--model", tiny_model_path, "--components", comps_path, "--coeffs", "1,x", "--out",
                 tmp_path / "bad.wav", ok=False)
    assert bad.exit_code == 1 and "comma-separated" in bad.output


def test_edit_refuses_components_of_another_model(comps_path, tmp_path):
    other = tmp_path / "other.safetensors"
    invoke("init", "--preset", "tiny", "--seed", 5, "--out", other)
    bad = invoke("edit", "--model", other, "--components", comps_path, "--coeffs", "1", "--out", tmp_path / "x.wav",
                 ok=False)
    assert bad.exit_code == 1 and "another model" in bad.output and not (tmp_path / "x.wav").exists()


def test_grid(tiny_model_path, comps_path, tmp_path, tiny_synth):
    out = tmp_path / "grid"
    invoke("grid", "--model", tiny_model_path, "--components", comps_path, "--x", 0, "--y", 2, "--range", -1, 1,
           "--steps", 3, "--pitch", 40, "--out", out)
    index = json.loads((out / "grid.json").read_text())
    assert index["values"] == [-1.0, 0.0, 1.0] and len(index["files"]) == 9
    assert sorted((item["x"], item["y"]) for item in index["files"]) == [(x, y) for x in (-1, 0, 1) for y in (-1, 0, 1)]
    # each note is the edit with component 0 at x and component 2 at y (mode noz by default)
    comps = Components.load(comps_path, tiny_synth)
    for item in index["files"]:
        if item["x"] != 0 and item["y"] != 0 or item["x"] == item["y"] == 0:
            audio = sf.read(out / item["file"], dtype="float32")[0]
            expected = library_note(tiny_synth, comps, [item["x"], 0.0, item["y"]], 40, "noz", None)
            # a batch of 9 inverts to waves within ~1e-4 of one note alone
            np.testing.assert_allclose(audio, expected, atol=5e-4, err_msg=item["file"])
    assert (out / "wave_-1.0,1.0.wav").is_file()
    assert (out / "grid.png").read_bytes()[:4] == b"\x89PNG"
    bad = invoke("grid", "--model", tiny_model_path, "--components", comps_path, "--x", 0, "--y", 0, "--out",
                 tmp_path / "g2", ok=False)
    assert bad.exit_code == 1 and "different" in bad.output and not (tmp_path / "g2").exists()
