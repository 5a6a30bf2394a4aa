"""`ganspacesynth train` on a dataset folder: run folder contents, TensorBoard logs, errors, dry run."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from ganspacesynth.interfaces.cli import main
from ganspacesynth.model.config import PRESETS
from ganspacesynth.model.files import load_model
from ganspacesynth.training.stats import read_stats
from ganspacesynth.training.synthetic import write_synthetic_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("ds") / "ds"
    write_synthetic_dataset(path, PRESETS["tiny"].spectral, per_class=2, seed=4)
    return path


pytestmark = pytest.mark.usefixtures("one_thread")


def run(*args):
    return CliRunner().invoke(main, ["train", *map(str, args)], catch_exceptions=False)


@pytest.mark.heavy
def test_dry_run_prints_the_resolved_config(dataset):
    result = run("--data", dataset, "--set", "total_num_images=5e4", "--set", "adam_beta2=0.9",
                 "--conditions", "pitch,instrument_family", "--dry-run")
    assert result.exit_code == 0, result.output
    cfg = json.loads(result.output)
    assert cfg["preset"] == "tiny"  # chosen from the dataset's spectrogram shape (128 × 256)
    assert cfg["train"]["total_num_images"] == 50_000 and cfg["train"]["adam_beta2"] == 0.9
    assert [c["name"] for c in cfg["model"]["conditions"]] == ["pitch", "instrument_family"]
    assert cfg["model"]["conditions"][0]["classes"][:2] == ["36", "37"]


def test_bad_input_gets_one_line_errors(dataset, tmp_path):
    cases = [
        (["--data", dataset, "--out", tmp_path / "a", "--conditions", "pitch,velocity_class"], "no 'velocity_class'"),
        (["--data", dataset, "--out", tmp_path / "b", "--set", "learning_rate=1"], "unknown setting"),
        (["--data", dataset, "--out", tmp_path / "c", "--preset", "fast"], "choose the preset"),
        (["--out", tmp_path / "missing", "--resume"], "not a training run"),
    ]
    for args, message in cases:
        result = run(*args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output


@pytest.mark.integration
def test_train_writes_the_run_folder_and_resumes(dataset, tmp_path):
    out = tmp_path / "run"
    common = ["--no-progress", "--preset", "tiny", "--set", "batch_size_schedule=[8]", "--set", "stable_stage_num_images=40",
              "--set", "transition_stage_num_images=40", "--set", "save_summaries_num_images=40",
              "--set", "log_every_steps=2"]
    result = run("--data", dataset, "--out", out, "--conditions", "pitch,instrument_family",
                 "--set", "total_num_images=96", *common)
    assert result.exit_code == 0, result.output
    assert "finished at step 12, 96 images" in result.output
    # the run's settings, and its EMA generator as a model file at the last step
    saved = json.loads((out / "config.json").read_text())
    assert saved["train"]["total_num_images"] == 96 and saved["train"]["batch_size_schedule"] == [8]
    model = load_model(out / "model.safetensors")
    assert [c.name for c in model.config.conditions] == ["pitch", "instrument_family"]
    assert (model.info["step"], model.info["trained_images"]) == (12, 96)
    # a finished run's model carries its output gain, measured against its data (calibration.py)
    calibration = model.info["calibration"]
    assert calibration["count"] == 128 and calibration["real_notes"] > 0
    assert model.info["output_gain_db"] == pytest.approx(calibration["target_rms_dbfs"] - calibration["raw_rms_dbfs"],
                                                         abs=0.02)
    assert "output gain" in result.output
    stats = read_stats(out)
    assert [s["step"] for s in stats] == [2, 4, 6, 8, 10, 12]
    assert stats[-1]["num_blocks"] == 2 and stats[-1]["images_per_s"] > 0
    assert {"accuracy/real_pitch", "accuracy/fake_instrument_family", "loss/gradient_penalty"} <= set(stats[-1])

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0, "audio": 0}).Reload()
    tags = events.Tags()
    assert {"loss/d", "loss/g", "loss/gradient_penalty", "accuracy/real_pitch", "images_per_s"} <= set(tags["scalars"])
    assert "samples/spectrograms" in tags["images"] and "samples/audio" in tags["audio"]
    assert len(events.Images("samples/spectrograms")) >= 2  # at step 1 and every 40 images

    again = run("--data", dataset, "--out", out, "--set", "total_num_images=96")
    assert again.exit_code == 1 and "--resume" in again.output
    more = run("--out", out, "--resume", "--set", "total_num_images=128", "--no-progress")
    assert more.exit_code == 0, more.output
    assert "finished at step 16, 128 images" in more.output
    assert read_stats(out)[-1]["step"] == 16
    assert load_model(out / "model.safetensors").info["step"] == 16  # the model file follows the resumed run


@pytest.mark.parametrize("device, message", [("tpu", "unknown device 'tpu'"), ("cuda:x", "unknown device")])
def test_an_unknown_device_is_one_line_before_any_work(dataset, tmp_path, device, message):
    # the same device check as every other command: a usage error, never a traceback from torch
    result = CliRunner().invoke(main, ["train", "--data", str(dataset), "--out", str(tmp_path / "run"),
                                       "--device", device])
    assert result.exit_code == 2 and message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()
