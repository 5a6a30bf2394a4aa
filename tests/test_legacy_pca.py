"""Original GANSpaceSynth PCA pickles: hostile files refused, NHWC ↔ NCHW conversion, round trips."""

from __future__ import annotations

import os
import pickle
import pickletools

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ganspacesynth.errors import UserError
from ganspacesynth.ganspace.components import Components
from ganspacesynth.ganspace.fit import fit_components
from ganspacesynth.imports.legacy import export_legacy, import_legacy, read_legacy_pickle
from ganspacesynth.interfaces.cli import main


@pytest.fixture(scope="module")
def comps(tiny_synth):
    return fit_components(tiny_synth, "conv0", 600, pitches=[32], seed=0, batch_size=300, n_components="all")


class Hostile:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


class HostileEval:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


def legacy(tiny_synth, **extra):
    """An original-layout dict built from real activations (TF NHWC order)."""
    c, h, w = tiny_synth.generator.layer_shape("conv0")
    rng = np.random.default_rng(0)
    comp = rng.standard_normal((6, h, w, c)).astype(np.float32)
    return {"layer": "conv0", "estimator": "ipca", "comp": comp, "stdev": np.arange(6, 0, -1, dtype=np.float32),
            "var_ratio": np.full(6, 0.1, np.float32), "global_mean": rng.standard_normal((h, w, c)).astype(np.float32),
            **extra}


@pytest.mark.parametrize("payload", [Hostile(), HostileEval(), {"layer": Hostile()}])
def test_hostile_pickles_are_refused(payload, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pickle"
    path.write_bytes(pickle.dumps(payload))
    with pytest.raises(UserError, match="refusing to load"):
        read_legacy_pickle(path)
    assert not (tmp_path / "pwned").exists()


def test_hostile_array_subclass_global_is_refused(tmp_path):
    # A pickle that names a numpy function outside the allow-list (np.load could read arbitrary pickles).
    evil = b"\x80\x03cnumpy\nload\nq\x00X\x05\x00\x00\x00x.npyq\x01\x85q\x02Rq\x03."
    path = tmp_path / "evil2.pickle"
    path.write_bytes(evil)
    with pytest.raises(UserError, match="refusing to load numpy.load"):
        read_legacy_pickle(path)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_original_layout_imports_with_nhwc_permuted(tiny_synth, tmp_path, protocol):
    data = legacy(tiny_synth)
    path = tmp_path / "pca.pickle"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    comps = import_legacy(path, tiny_synth)
    assert comps.layer == "conv0" and comps.n_components == 6 and comps.z_comp is None
    # Component 2 as an activation: NHWC [h, w, c] becomes NCHW [c, h, w].
    np.testing.assert_array_equal(comps.comp[2].reshape(comps.layer_shape), data["comp"][2].transpose(2, 0, 1))
    np.testing.assert_array_equal(comps.mean.reshape(comps.layer_shape), data["global_mean"].transpose(2, 0, 1))
    # A flattened (H·W·C) original array gives the same result.
    flat = dict(data, comp=data["comp"].reshape(6, -1), global_mean=data["global_mean"].reshape(-1))
    path.write_bytes(pickle.dumps(flat, protocol=protocol))
    np.testing.assert_array_equal(import_legacy(path, tiny_synth).comp, comps.comp)


def test_mean_activation_lands_on_the_layer(tiny_synth, tmp_path):
    """The original stored TF activations; an NHWC mean of our real activations imports as their NCHW mean."""
    z = tiny_synth.random_z(16, seed=0)
    act = tiny_synth.activations(z, 32, "conv0")  # [16, C, H, W]
    nhwc_mean = act.mean(0).permute(1, 2, 0).numpy()
    path = tmp_path / "pca.pickle"
    path.write_bytes(pickle.dumps(legacy(tiny_synth, global_mean=nhwc_mean)))
    comps = import_legacy(path, tiny_synth)
    torch.testing.assert_close(torch.from_numpy(comps.mean), act.mean(0).reshape(-1))


def test_shape_and_layout_errors(tiny_synth, tmp_path):
    path = tmp_path / "pca.pickle"
    data = legacy(tiny_synth)
    for bad, message in [
        (dict(data, layer="conv9"), "does not have"),
        (dict(data, comp=np.zeros((6, 100), np.float32)), "does not fit the layer"),
        (dict(data, version=2), "lacks z_comp"),
        (dict(data, version=2, z_comp=np.zeros((6, 5), np.float32), z_mean=np.zeros(5, np.float32)), "z_comp has shape"),
        ({k: v for k, v in data.items() if k != "stdev"}, "missing stdev"),
        ([1, 2, 3], "not the GANSpaceSynth PCA dict"),
    ]:
        path.write_bytes(pickle.dumps(bad))
        with pytest.raises(UserError, match=message):
            import_legacy(path, tiny_synth)
    path.write_bytes(b"garbage")
    with pytest.raises(UserError):
        read_legacy_pickle(path)


@pytest.mark.heavy
def test_export_import_round_trip(comps, tiny_synth, tmp_path):
    path = export_legacy(comps, tmp_path / "out.pickle")
    raw = path.read_bytes()
    globals_used = {arg for op, arg, _ in pickletools.genops(raw) if op.name == "GLOBAL"}
    assert not any("numpy._core" in g for g in globals_used)  # readable by numpy 1.x (the old Pd setup)
    data = pickle.loads(raw)
    c, h, w = comps.layer_shape
    assert data["version"] == 2 and data["comp"].shape == (512, h, w, c) and data["global_mean"].shape == (h, w, c)
    np.testing.assert_array_equal(data["global_mean"].transpose(2, 0, 1).reshape(-1), comps.mean)
    back = import_legacy(path, tiny_synth)
    for name in ("comp", "stdev", "var_ratio", "mean", "z_comp", "z_mean"):
        np.testing.assert_array_equal(getattr(back, name), getattr(comps, name))


def test_cli_needs_trust_and_round_trips(comps, tiny_model_path, tmp_path):
    src = comps.save(tmp_path / "c.npz")
    runner = CliRunner()
    res = runner.invoke(main, ["export-pca", str(src), "--out", str(tmp_path / "p.pickle")])
    assert res.exit_code == 0, res.output
    args = ["import-pca", str(tmp_path / "p.pickle"), "--model", str(tiny_model_path), "--out", str(tmp_path / "back.npz")]
    res = runner.invoke(main, args)
    assert res.exit_code == 1 and "--trust-pickle" in res.output and not (tmp_path / "back.npz").exists()
    res = runner.invoke(main, args + ["--trust-pickle"])
    assert res.exit_code == 0, res.output
    back = Components.load(tmp_path / "back.npz")
    np.testing.assert_array_equal(back.comp, comps.comp)
    np.testing.assert_array_equal(back.z_comp, comps.z_comp)
