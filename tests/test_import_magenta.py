"""Magenta GANSynth import: the TF checkpoint reader, the variable mapping, and numbers against Magenta itself.

The reference fixture (tests/fixtures/magenta) was produced by Magenta's own code; see its README.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ganspacesynth.errors import UserError
from ganspacesynth.imports import magenta, tfcheckpoint
from ganspacesynth.imports.magenta import EMA_SUFFIX, GENERATOR_SCOPE, import_magenta, import_magenta_to_file
from ganspacesynth.imports.tfcheckpoint import latest_checkpoint, list_variables, read_checkpoint

STEP = 11000000
STAGE = "stage_00012"
PREFIX_NAME = f"model.ckpt-{STEP}"
CHANNELS = [16, 16, 16, 16, 8, 4, 2]  # fixture: fmap_base 256, fmap_max 16


def rel_err(ours: np.ndarray, theirs: np.ndarray) -> float:
    """||ours − theirs|| / ||theirs||."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    return float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))


@pytest.fixture(scope="module")
def ckpt_dir(magenta_fixture_dir) -> Path:
    return magenta_fixture_dir / "ckpt"


@pytest.fixture(scope="module")
def expected(magenta_fixture_dir) -> dict[str, np.ndarray]:
    with np.load(magenta_fixture_dir / "expected.npz", allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def imported(ckpt_dir, tmp_path_factory):
    """(model path, seconds the import took)."""
    out = tmp_path_factory.mktemp("magenta") / "fixture.safetensors"
    start = time.perf_counter()
    import_magenta_to_file(ckpt_dir, out)
    return out, time.perf_counter() - start


@pytest.fixture(scope="module")
def synth(imported):
    from ganspacesynth.synth import Synth

    return Synth.load(imported[0], device="cpu")


def _copy_stage(ckpt_dir: Path, dest: Path) -> Path:
    """A writable copy of the fixture's checkpoint files; returns the checkpoint prefix."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in (ckpt_dir / STAGE).iterdir():
        shutil.copyfile(f, dest / f.name)
    return dest / PREFIX_NAME


def _variant(ckpt_dir: Path, dest: Path, stage: str = STAGE, **changes) -> Path:
    """A Magenta folder sharing the fixture's checkpoint, with experiment.json changed (None deletes a key)."""
    dest.mkdir(parents=True, exist_ok=True)
    experiment = json.loads((ckpt_dir / "experiment.json").read_text())
    for key, value in changes.items():
        if value is None:
            experiment.pop(key, None)
        else:
            experiment[key] = value
    (dest / "experiment.json").write_text(json.dumps(experiment))
    (dest / stage).symlink_to(ckpt_dir / STAGE, target_is_directory=True)
    return dest


# ------------------------------------------------------------------------------------------ reader

def test_reader_lists_generator_variables_and_shapes(ckpt_dir):
    variables = list_variables(ckpt_dir / STAGE / PREFIX_NAME)
    gen = {k: v for k, v in variables.items() if k.startswith("Generator/")}
    # 7 blocks × (conv0, conv1, to_rgb) × (kernel, bias) × (raw, EMA shadow)
    assert len(gen) == 7 * 3 * 2 * 2
    block1 = f"{GENERATOR_SCOPE}/progressive_gan_block_1"
    assert gen[f"{block1}/conv0/conv2d/kernel"] == ("float32", (2, 16, 256 + 61, 16))
    assert gen[f"{block1}/conv0/conv2d/kernel{EMA_SUFFIX}"] == ("float32", (2, 16, 256 + 61, 16))
    for k in range(2, 8):
        scope = f"{GENERATOR_SCOPE}/progressive_gan_block_{k}"
        assert gen[f"{scope}/conv0/conv2d/kernel"] == ("float32", (3, 3, CHANNELS[k - 2], CHANNELS[k - 1]))
        assert gen[f"{scope}/conv1/bias"] == ("float32", (CHANNELS[k - 1],))
        assert gen[f"{scope}/to_rgb/conv2d/kernel"] == ("float32", (1, 1, CHANNELS[k - 1], 2))
    assert variables["global_step"] == ("int64", ())
    assert any(k.startswith("Discriminator/") for k in variables)


def test_reader_values(ckpt_dir):
    prefix = ckpt_dir / STAGE / PREFIX_NAME
    arrays = read_checkpoint(prefix)
    assert set(arrays) == set(list_variables(prefix))
    assert int(arrays["global_step"]) == STEP  # the number in the file name
    # The tensors tile the data shard exactly: every byte read once.
    data_file = ckpt_dir / STAGE / f"{PREFIX_NAME}.data-00000-of-00001"
    assert sum(a.nbytes for a in arrays.values()) == data_file.stat().st_size
    # Weights as the fixture README describes them: kernels N(0, 1), biases N(0, 0.1²); EMA ≠ raw.
    kernel = arrays[f"{GENERATOR_SCOPE}/progressive_gan_block_1/conv0/conv2d/kernel"]
    bias = arrays[f"{GENERATOR_SCOPE}/progressive_gan_block_1/conv0/bias"]
    assert kernel.dtype == np.float32 and abs(kernel.std() - 1.0) < 0.02 and abs(kernel.mean()) < 0.02
    assert 0.05 < bias.std() < 0.2
    assert not np.allclose(kernel, arrays[f"{GENERATOR_SCOPE}/progressive_gan_block_1/conv0/conv2d/kernel{EMA_SUFFIX}"])
    # A subset read gives the same arrays.
    some = read_checkpoint(prefix, ["global_step", f"{GENERATOR_SCOPE}/progressive_gan_block_1/conv0/bias"])
    np.testing.assert_array_equal(some[f"{GENERATOR_SCOPE}/progressive_gan_block_1/conv0/bias"], bias)


def test_reader_data_checksums_match_index(ckpt_dir):
    # Checks the entry parsing and crc unmasking with the plain-Python crc32c on the small tensors
    # (the reader itself only checksums tensor data when a compiled crc32c is installed).
    prefix = ckpt_dir / STAGE / PREFIX_NAME
    entries, num_shards, big_endian = tfcheckpoint._read_index(prefix, tfcheckpoint._crc32c_small)
    assert (num_shards, big_endian) == (1, False)
    raw = (ckpt_dir / STAGE / f"{PREFIX_NAME}.data-00000-of-00001").read_bytes()
    small = [e for e in entries.values() if e.size <= 4096]
    assert len(small) > 100
    for e in small:
        assert tfcheckpoint._crc32c_small(raw[e.offset : e.offset + e.size]) == tfcheckpoint._unmask(e.crc32c), e.name
    assert tfcheckpoint._crc32c_small(b"123456789") == 0xE3069283  # the standard crc32c check value


def test_latest_checkpoint(ckpt_dir, tmp_path):
    assert latest_checkpoint(ckpt_dir / STAGE) == ckpt_dir / STAGE / PREFIX_NAME
    # Without a `checkpoint` file: the highest step wins.
    for step in (5, 20, 100):
        for suffix in (".index", ".data-00000-of-00001"):
            (tmp_path / f"model.ckpt-{step}{suffix}").write_bytes(b"")
    assert latest_checkpoint(tmp_path) == tmp_path / "model.ckpt-100"
    # A `checkpoint` file written on another machine (absolute path) still points beside itself.
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "/train/run/stage_00012/model.ckpt-20"\n')
    assert latest_checkpoint(tmp_path) == tmp_path / "model.ckpt-20"
    with pytest.raises(UserError, match="no TensorFlow checkpoint"):
        latest_checkpoint(ckpt_dir)  # the top folder holds stage folders, not checkpoints


def test_truncated_index_is_refused(ckpt_dir, tmp_path):
    prefix = _copy_stage(ckpt_dir, tmp_path)
    index = Path(f"{prefix}.index")
    data = index.read_bytes()
    index.write_bytes(data[: len(data) - 100])
    with pytest.raises(UserError, match="corrupt checkpoint index"):
        list_variables(prefix)
    index.write_bytes(data[:20])
    with pytest.raises(UserError, match="corrupt checkpoint index"):
        read_checkpoint(prefix)


def test_corrupt_index_is_refused(ckpt_dir, tmp_path):
    prefix = _copy_stage(ckpt_dir, tmp_path)
    index = Path(f"{prefix}.index")
    data = bytearray(index.read_bytes())
    name = b"progressive_gan_block_3/conv1"
    at = data.index(name)
    data[at + 3] ^= 0x20  # one flipped bit inside a key: the block checksum no longer matches
    index.write_bytes(bytes(data))
    with pytest.raises(UserError, match="checksum"):
        read_checkpoint(prefix)


def test_compressed_index_is_refused(ckpt_dir, tmp_path):
    prefix = _copy_stage(ckpt_dir, tmp_path)
    index = Path(f"{prefix}.index")
    data = bytearray(index.read_bytes())
    # Find the first data block's trailer through the footer and the index block, and mark it snappy.
    footer = bytes(data[-48:])
    _, _, pos = tfcheckpoint._block_handle(footer, 0, 40)
    index_offset, index_size, _ = tfcheckpoint._block_handle(footer, pos, 40)
    block = tfcheckpoint._read_block(bytes(data), index_offset, index_size, None)
    _, handle = tfcheckpoint._block_entries(block)[0]
    offset, size, _ = tfcheckpoint._block_handle(handle, 0, len(handle))
    data[offset + size] = 1
    index.write_bytes(bytes(data))
    with pytest.raises(UserError, match="snappy"):
        list_variables(prefix)


def test_missing_or_truncated_data_shard_is_refused(ckpt_dir, tmp_path):
    prefix = _copy_stage(ckpt_dir, tmp_path)
    shard = Path(f"{prefix}.data-00000-of-00001")
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="truncated"):
        read_checkpoint(prefix)
    shard.unlink()
    with pytest.raises(UserError, match="data shard not found"):
        read_checkpoint(prefix)
    assert list_variables(prefix)  # the index alone still lists the variables
    with pytest.raises(UserError, match="index not found"):
        read_checkpoint(tmp_path / "model.ckpt-1")


# ------------------------------------------------------------------------------------------ mapping

def test_config_from_experiment(ckpt_dir, expected):
    config, state = import_magenta(ckpt_dir)
    assert config.num_resolutions == 7 and (config.start_height, config.start_width) == (2, 16)
    assert (config.fmap_base, config.fmap_max, config.kernel_size) == (256, 16, 3)
    assert config.output_shape == (128, 1024)
    assert [config.num_filters(b) for b in range(1, 8)] == CHANNELS
    assert config.pitches == [int(p) for p in expected["pitch_classes"]]
    s = config.spectral
    assert (s.n_fft, s.hop_length, s.frames, s.audio_length, s.sample_rate, s.mel) == (2048, 512, 128, 64000, 16000, True)
    assert (s.mag_normalizer_a, s.mag_normalizer_b, s.p_normalizer_a) == (0.0661371661726, 0.113718730221, 0.8)
    assert len(state) == 7 * 3 * 2


def test_uses_ema_weights(ckpt_dir):
    _, state = import_magenta(ckpt_dir)
    arrays = read_checkpoint(ckpt_dir / STAGE)
    name = f"{GENERATOR_SCOPE}/progressive_gan_block_2/conv1/conv2d/kernel"
    ema = torch.from_numpy(arrays[name + EMA_SUFFIX].transpose(3, 2, 0, 1).copy())
    assert torch.equal(state["blocks.1.conv1.weight"], ema)
    assert not torch.allclose(state["blocks.1.conv1.weight"], torch.from_numpy(arrays[name].transpose(3, 2, 0, 1).copy()))


def test_falls_back_to_raw_weights_with_a_warning(ckpt_dir, monkeypatch):
    real = magenta.list_variables
    monkeypatch.setattr(magenta, "list_variables", lambda p: {k: v for k, v in real(p).items() if not k.endswith(EMA_SUFFIX)})
    with pytest.warns(UserWarning, match="no ExponentialMovingAverage"):
        _, state = import_magenta(ckpt_dir)
    raw = read_checkpoint(ckpt_dir / STAGE)[f"{GENERATOR_SCOPE}/progressive_gan_block_1/to_rgb/bias"]
    np.testing.assert_array_equal(state["blocks.0.to_rgb.bias"].numpy(), raw)


def test_every_variable_used_and_every_parameter_filled(ckpt_dir):
    config, _ = import_magenta(ckpt_dir)
    arrays = {k: v for k, v in read_checkpoint(ckpt_dir / STAGE).items()
              if k.startswith("Generator/") and not k.endswith(EMA_SUFFIX)}
    assert len(magenta._state_dict(arrays, config)) == len(arrays)
    extra = dict(arrays, **{f"{GENERATOR_SCOPE}/progressive_gan_block_1/extra/bias": np.zeros(2, np.float32)})
    with pytest.raises(UserError, match="extra/bias has no counterpart"):
        magenta._state_dict(extra, config)
    fewer = dict(arrays)
    del fewer[f"{GENERATOR_SCOPE}/progressive_gan_block_7/to_rgb/bias"]
    with pytest.raises(UserError, match="lacks .*block_7/to_rgb/bias"):
        magenta._state_dict(fewer, config)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"simple_arch": True}, "simple_arch"),
        ({"data_type": "wave"}, "data_type='wave'"),
        ({"scale_mode": "H"}, "scale_mode='H'"),
        ({"g_fn": "wave"}, "g_fn='wave'"),
        ({"data_normalizer": "specgrams_simple_normalizer"}, "data_normalizer"),
        ({"to_rgb_activation": "sigmoid"}, "to_rgb_activation"),
        ({"fmap_max": 32}, "shape mismatch"),
        ({"fmap_max": None}, "shape mismatch"),  # Magenta's default fmap_max is 128, not the fixture's 16
        ({"latent_vector_size": 128}, "label inputs"),
        ({"start_width": 12}, "unsupported Magenta configuration: n_fft must be a power of two"),
    ],
)
def test_unsupported_configurations_are_refused(ckpt_dir, tmp_path, changes, message):
    folder = _variant(ckpt_dir, tmp_path / "run", **changes)
    with pytest.raises(UserError, match=message):
        import_magenta(folder)


def test_linear_spectrogram_runs_import(ckpt_dir, tmp_path, expected):
    from ganspacesynth.model.files import ModelFile
    from ganspacesynth.synth import Synth

    config, state = import_magenta(_variant(ckpt_dir, tmp_path / "run", data_type="linear"))
    assert config.spectral.mel is False and config.spectral.ifreq is True
    synth = Synth.from_model_file(ModelFile(config, state), device="cpu")
    waves = synth.generate(expected["z"][:1], pitch=60)
    assert waves.shape == (1, 64000) and np.isfinite(waves).all()


def test_magenta_defaults_and_sweep_layout(ckpt_dir, tmp_path):
    _, reference = import_magenta(ckpt_dir)
    # Keys missing from experiment.json take Magenta's defaults (these two equal the fixture's values).
    _, state = import_magenta(_variant(ckpt_dir, tmp_path / "defaults", num_resolutions=None, kernel_size=None))
    assert all(torch.equal(state[k], reference[k]) for k in reference)
    # Magenta's internal sweeps: one experiment.json above the runs, {"jobs": {run name: flags}}.
    flags = json.loads((ckpt_dir / "experiment.json").read_text())
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "experiment.json").write_text(json.dumps({"jobs": {"other": {}, "run1": flags}}))
    (tmp_path / "sweep" / "run1").mkdir()
    (tmp_path / "sweep" / "run1" / STAGE).symlink_to(ckpt_dir / STAGE, target_is_directory=True)
    config, state = import_magenta(tmp_path / "sweep" / "run1")
    assert config.fmap_max == 16 and torch.equal(state["blocks.0.conv0.weight"], reference["blocks.0.conv0.weight"])


def test_unfinished_runs_and_wrong_folders_are_refused(ckpt_dir, tmp_path):
    with pytest.raises(UserError, match="stage_00005.*stage_00012"):
        import_magenta(_variant(ckpt_dir, tmp_path / "run", stage="stage_00005"))
    with pytest.raises(UserError, match="give the folder above it"):
        import_magenta(ckpt_dir / STAGE)
    with pytest.raises(UserError, match="no experiment.json"):
        import_magenta(tmp_path / "nothing.zip")


# ------------------------------------------------------------------------------------------ numbers

def test_activations_match_magenta(synth, expected):
    z, pitches = expected["z"], [int(p) for p in expected["pitches"]]
    for layer in ("conv0", "conv1"):
        ours = synth.activations(z, pitches, layer).permute(0, 2, 3, 1).numpy()  # NCHW → Magenta's NHWC
        assert ours.shape == expected[layer].shape
        assert rel_err(ours, expected[layer]) <= 1e-5


def test_spectrograms_match_magenta(synth, expected):
    specs = synth.generate_specgrams(expected["z"], [int(p) for p in expected["pitches"]])
    assert rel_err(specs.permute(0, 2, 3, 1).numpy(), expected["predictions"]) <= 1e-4
    denorm = synth.spectral.denormalize(specs[:1]).permute(0, 2, 3, 1).numpy()  # the fixture keeps one note of it
    assert rel_err(denorm, expected["specgram_denorm"]) <= 1e-4


def test_waves_match_magenta(synth, expected):
    # The spectral inverse alone, from Magenta's own spectrograms (raw: without the onset fade-in and output gain
    # every note gets afterwards, audio/levels.finish_notes, which Magenta does not have).
    theirs_specs = torch.from_numpy(expected["predictions"]).permute(0, 3, 1, 2)
    assert rel_err(synth.specgrams_to_waves(theirs_specs, raw=True), expected["waves"]) <= 1e-3
    # End to end. The fixture's last block has 2 channels, so pixel norm amplifies float32 rounding at
    # a few pixels, and integrating IF into phase carries those errors along time: different float32
    # runs of our own generator (memory format, thread count, conv path) differ from each other by
    # 0.7-1.1e-3, and a float64 run lands 1.4e-3 from Magenta's float32 waves (docs/importing.md).
    # Hence the wider bound here.
    waves = synth.generate(expected["z"], pitch=[int(p) for p in expected["pitches"]], raw=True)
    assert waves.shape == expected["waves"].shape
    assert rel_err(waves, expected["waves"]) <= 2e-3


# ------------------------------------------------------------------------------------------ CLI

def test_import_is_fast(imported):
    _, seconds = imported
    print(f"import-magenta on the fixture took {seconds:.2f} s")
    assert seconds < 20


@pytest.mark.integration
def test_cli_import_then_generate(ckpt_dir, tmp_path, synth):
    import soundfile as sf

    from ganspacesynth.interfaces.cli import main

    runner = CliRunner()
    out = tmp_path / "m.safetensors"
    result = runner.invoke(main, ["import-magenta", str(ckpt_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "ema weights" in result.output and out.is_file()
    result = runner.invoke(main, ["generate", "--model", str(out), "--pitch", "60", "--count", "2", "--seed", "3",
                                  "--out", str(tmp_path / "notes")])
    assert result.exit_code == 0, result.output
    audio, rate = sf.read(tmp_path / "notes" / "p60_001.wav", dtype="float32")
    assert rate == 16000 and audio.shape == (64000,)
    reference = synth.generate(synth.random_z(2, 3), pitch=60)[1]
    peak = np.abs(reference).max()
    # The CLI scales notes peaking over 1 down to 0.99 before writing 16-bit WAV.
    np.testing.assert_allclose(audio, reference * (0.99 / peak if peak > 1 else 1.0), atol=1e-3)

    result = runner.invoke(main, ["import-magenta", str(ckpt_dir / STAGE), "--out", str(tmp_path / "x.safetensors")])
    assert result.exit_code == 1 and "error:" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x.safetensors").exists()
