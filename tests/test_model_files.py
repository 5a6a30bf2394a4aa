"""Model files: round trip, refusal of wrong/truncated/newer files, no code execution."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from ganspacesynth.errors import UserError
from ganspacesynth.model.files import MODEL_FORMAT_VERSION, load_model, save_model
from ganspacesynth.synth import Synth


@pytest.mark.heavy
def test_round_trip_preserves_output(tiny_model_path, tmp_path):
    a = Synth.load(tiny_model_path, device="cpu")
    mf = load_model(tiny_model_path)
    assert mf.config == a.config
    copy = tmp_path / "copy.safetensors"
    save_model(copy, mf.config, mf.generator_state, info={"note": "copy"})
    b = Synth.load(copy, device="cpu")
    assert b.fingerprint == a.fingerprint
    assert b.info == {"note": "copy"}
    z = a.random_z(2, seed=3)
    np.testing.assert_array_equal(a.generate(z, pitch=60), b.generate(z, pitch=60))


def test_half_precision_file_is_smaller_and_close(tiny_model_path, tmp_path):
    mf = load_model(tiny_model_path)
    half = tmp_path / "half.safetensors"
    save_model(half, mf.config, mf.generator_state, half=True)
    assert half.stat().st_size < 0.6 * tiny_model_path.stat().st_size
    a, b = Synth.load(tiny_model_path, device="cpu"), Synth.load(half, device="cpu")
    z = a.random_z(2, seed=0)
    sa, sb = a.generate_specgrams(z, pitch=48), b.generate_specgrams(z, pitch=48)
    # Mean error: a random network has a few chaotic pixels (pixel norm near zero activations).
    assert float((sa - sb).abs().mean()) < 0.01


def test_run_folder_means_its_export(tiny_model_path, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.safetensors").write_bytes(tiny_model_path.read_bytes())
    assert Synth.load(run, device="cpu").fingerprint == Synth.load(tiny_model_path, device="cpu").fingerprint
    with pytest.raises(UserError, match="without model.safetensors"):
        load_model(tmp_path)


def test_bad_files_are_refused(tiny_model_path, tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_model(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"this is not a model")
    with pytest.raises(UserError):
        load_model(junk)
    truncated = tmp_path / "truncated.safetensors"
    data = tiny_model_path.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError):
        load_model(truncated)
    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, str(other), metadata={"format": "something-else"})
    with pytest.raises(UserError, match="not a GANSpaceSynth model"):
        load_model(other)


def test_newer_version_is_refused(tiny_model_path, tmp_path):
    mf = load_model(tiny_model_path)
    newer = tmp_path / "newer.safetensors"
    tensors = {f"generator.{k}": v for k, v in mf.generator_state.items()}
    save_file(tensors, str(newer), metadata={"format": "ganspacesynth-model",
                                             "format_version": str(MODEL_FORMAT_VERSION + 1),
                                             "config": mf.config.to_json()})
    with pytest.raises(UserError, match="upgrade"):
        load_model(newer)


def test_mismatched_weights_are_refused(tiny_model_path, tmp_path):
    mf = load_model(tiny_model_path)
    bad = tmp_path / "bad.safetensors"
    cfg = json.loads(mf.config.to_json())
    cfg["fmap_max"] = 8  # weights no longer fit
    tensors = {f"generator.{k}": v for k, v in mf.generator_state.items()}
    save_file(tensors, str(bad), metadata={"format": "ganspacesynth-model", "format_version": "1",
                                           "config": json.dumps(cfg)})
    with pytest.raises(UserError, match="do not fit"):
        Synth.load(bad, device="cpu")
