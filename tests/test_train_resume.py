"""Checkpoints hold the full state, are written atomically, and a resumed run repeats a straight one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open

from ganspacesynth.errors import UserError
from ganspacesynth.interfaces.cli import main
from ganspacesynth.model.config import PRESETS
from ganspacesynth.synth import Synth
from ganspacesynth.training import checkpoint as ckpt_mod
from ganspacesynth.training.checkpoint import checkpoint_paths, latest_checkpoint, load_checkpoint
from ganspacesynth.training.config import resolve_config
from ganspacesynth.training.data import TrainingData
from ganspacesynth.training.loop import RunOptions, train
from ganspacesynth.training.stats import read_stats
from ganspacesynth.training.synthetic import synthetic_data, write_synthetic_dataset

CONDITIONS = ["pitch", "instrument_family"]
# 6 steps per stage at batch 8: 16 steps go through stage 0, the 4×8 → 8×16 fade-in and into stage 2.
SETTINGS = {"stable_stage_num_images": 48, "transition_stage_num_images": 48, "total_num_images": 128,
            "batch_size_schedule": [8], "log_every_steps": 1, "save_summaries_num_images": 0}
QUIET = RunOptions(progress=False, tensorboard=False, threads=1)
LOSS_KEYS = ("loss/d", "loss/g", "loss/gradient_penalty", "loss/ac_real", "loss/ac_fake", "score/real", "score/fake")


pytestmark = pytest.mark.usefixtures("one_thread")  # the subprocess runs use one thread too: identical arithmetic


@pytest.fixture(scope="module")
def data():
    return synthetic_data(PRESETS["tiny"].spectral, per_class=2, seed=1)


def assert_same_stats(a: list[dict], b: list[dict], steps: range) -> None:
    by_a, by_b = {s["step"]: s for s in a}, {s["step"]: s for s in b}
    for step in steps:
        for key in LOSS_KEYS + ("alpha", "num_blocks", "images"):
            assert by_a[step][key] == pytest.approx(by_b[step][key], rel=1e-4, abs=1e-5), (step, key)


@pytest.mark.heavy
def test_resume_repeats_a_straight_run(tmp_path, data):
    cfg = resolve_config("tiny", SETTINGS)
    straight = train(tmp_path / "straight", data, cfg, CONDITIONS, options=QUIET)
    assert straight.finished and straight.position.step == 16

    half = train(tmp_path / "split", data, cfg, CONDITIONS, options=RunOptions(progress=False, tensorboard=False, threads=1,
                                                                               max_steps=9))
    assert not half.finished and half.position.step == 9  # stopped in the middle of the fade-in
    assert latest_checkpoint(tmp_path / "split").position.step == 9
    resumed = train(tmp_path / "split", data, None, resume=True, options=QUIET)
    assert resumed.finished and resumed.position.step == 16

    stats_a, stats_b = read_stats(tmp_path / "straight"), read_stats(tmp_path / "split")
    assert [s["step"] for s in stats_b] == list(range(1, 17))  # no step logged twice
    assert_same_stats(stats_a, stats_b, range(1, 17))
    a, b = latest_checkpoint(tmp_path / "straight"), latest_checkpoint(tmp_path / "split")
    for prefix in ("generator", "discriminator", "ema"):
        for name, value in a.module_state(prefix).items():
            torch.testing.assert_close(b.module_state(prefix)[name], value, rtol=1e-4, atol=1e-6)


def test_checkpoint_holds_the_full_state_without_pickles(tmp_path, data):
    cfg = resolve_config("tiny", {**SETTINGS, "checkpoint_every_images": 32, "keep_checkpoints": 2})
    train(tmp_path / "run", data, cfg, CONDITIONS, options=QUIET)
    paths = checkpoint_paths(tmp_path / "run")
    assert [p.name for p in paths] == ["ckpt-000000012.safetensors", "ckpt-000000016.safetensors"]  # last 2 kept
    with safe_open(str(paths[-1]), framework="pt") as f:
        meta = f.metadata()
        keys = set(f.keys())
    assert meta["format"] == "ganspacesynth-train-checkpoint" and meta["format_version"] == "2"
    assert json.loads(meta["position"]) == {"step": 16, "images": 128, "seconds": pytest.approx(
        json.loads(meta["position"])["seconds"]), "stage_id": 2}
    assert meta["objective"] == "gan" and set(json.loads(meta["optimizers"])) == {"generator", "discriminator"}
    for prefix in ("generator.", "discriminator.", "ema.", "opt.generator.", "opt.discriminator.", "rng.torch"):
        assert any(k.startswith(prefix) for k in keys), prefix
    assert any(k.endswith(".exp_avg_sq") for k in keys)
    # the run folder is a model: its export is the EMA generator
    synth = Synth.load(tmp_path / "run", device="cpu")
    ema = load_checkpoint(paths[-1]).module_state("ema")
    for name, value in synth.generator.state_dict().items():
        torch.testing.assert_close(value, ema[name])
    assert synth.info["trained_images"] == 128 and synth.config.condition("instrument_family") is not None
    result = CliRunner().invoke(main, ["info", "--model", str(tmp_path / "run")])
    assert result.exit_code == 0 and "instrument_family" in result.output


def test_a_failed_checkpoint_write_leaves_the_previous_one(tmp_path, data, monkeypatch):
    cfg = resolve_config("tiny", {**SETTINGS, "total_num_images": 32})
    train(tmp_path / "run", data, cfg, CONDITIONS, options=QUIET)
    before = checkpoint_paths(tmp_path / "run")
    real_save = ckpt_mod.save_file

    def crash_halfway(tensors, path, metadata=None):
        real_save(dict(list(tensors.items())[:3]), path, metadata=metadata)  # a partial file…
        raise OSError("disk full")  # …then the write fails

    monkeypatch.setattr(ckpt_mod, "save_file", crash_halfway)
    with pytest.raises(OSError, match="disk full"):
        train(tmp_path / "run", data, None, resume=True, overrides={"total_num_images": 64}, options=QUIET)
    monkeypatch.undo()
    assert checkpoint_paths(tmp_path / "run") == before
    assert [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()] == [before[0].name]  # no temp file
    assert load_checkpoint(before[0]).position.step == 4
    with pytest.raises(UserError, match="cannot change"):
        train(tmp_path / "run", data, None, resume=True, overrides={"fmap_max": 8}, options=QUIET)


@pytest.mark.integration
def test_sigterm_writes_a_checkpoint_and_resume_continues_exactly(tmp_path):
    dataset = tmp_path / "ds"
    write_synthetic_dataset(dataset, PRESETS["tiny"].spectral, per_class=2, seed=2)
    settings = {**SETTINGS, "total_num_images": 8 * 400}
    args = ["--preset", "tiny", "--conditions", ",".join(CONDITIONS), "--no-progress", "--no-tensorboard"]
    for key, value in settings.items():
        args += ["--set", f"{key}={json.dumps(value).replace(' ', '')}"]
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", "import torch, sys; torch.set_num_threads(1); from ganspacesynth.interfaces.cli "
           "import main; sys.exit(main())", "train", "--data", str(dataset), "--out", str(run)]
    proc = subprocess.Popen(cmd + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while len(read_stats(run)) < 6 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143, out.decode()
    killed_at = latest_checkpoint(run).position.step
    assert 6 <= killed_at < 400
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]

    # continue for 6 more steps, and compare with a straight in-process run of as many steps
    result = CliRunner().invoke(main, ["train", "--out", str(run), "--resume", "--max-steps", str(killed_at + 6),
                                       "--no-progress", "--no-tensorboard"])
    assert result.exit_code == 0, result.output
    data = TrainingData.from_folder(dataset, CONDITIONS)
    straight = train(tmp_path / "straight", data, resolve_config("tiny", settings), CONDITIONS,
                     options=RunOptions(progress=False, tensorboard=False, threads=1, max_steps=killed_at + 6))
    assert straight.position.step == killed_at + 6
    resumed_stats = read_stats(run)
    assert [s["step"] for s in resumed_stats] == list(range(1, killed_at + 7))
    assert_same_stats(read_stats(tmp_path / "straight"), resumed_stats, range(1, killed_at + 7))
    np.testing.assert_allclose(latest_checkpoint(run).module_state("ema")["blocks.0.conv0.weight"].numpy(),
                               latest_checkpoint(tmp_path / "straight").module_state("ema")["blocks.0.conv0.weight"].numpy(),
                               rtol=1e-4, atol=1e-6)


def test_lazy_gradient_penalty_runs_on_its_steps_and_resumes(tmp_path, data):
    # gradient_penalty_interval=3: the penalty on steps 0, 3, 6 (logged as 1, 4, 7), and a killed run resumes
    # onto the same steps.
    cfg = resolve_config("tiny", {**SETTINGS, "total_num_images": 64, "gradient_penalty_interval": 3})
    straight = train(tmp_path / "straight", data, cfg, CONDITIONS, options=QUIET)
    assert straight.finished and straight.position.step == 8
    train(tmp_path / "split", data, cfg, CONDITIONS, options=RunOptions(progress=False, tensorboard=False, threads=1, max_steps=5))
    train(tmp_path / "split", data, None, resume=True, options=QUIET)
    stats_a, stats_b = read_stats(tmp_path / "straight"), read_stats(tmp_path / "split")
    assert [s["step"] for s in stats_a if "loss/gradient_penalty" in s] == [1, 4, 7]
    assert [s["step"] for s in stats_b if "loss/gradient_penalty" in s] == [1, 4, 7]
    for a, b in zip(stats_a, stats_b):
        for key in set(LOSS_KEYS) & set(a):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), (a["step"], key)


@pytest.mark.heavy
def test_a_finished_timed_run_continued_with_a_longer_limit_stays_in_its_last_stage(tmp_path, data):
    """--resume --set train_time_limit=… extends the last stage; the earlier stage boundaries stay put."""
    cfg = resolve_config("tiny", {"train_time_limit": 2.0, "train_time_stage_multiplier": 1.0, "log_every_steps": 1,
                                  "save_summaries_num_images": 0, "batch_size_schedule": [4]})
    first = train(tmp_path / "run", data, cfg, CONDITIONS, options=QUIET)
    assert first.finished
    steps_before = first.position.step
    more = train(tmp_path / "run", data, None, resume=True, overrides={"train_time_limit": 3.0}, options=QUIET)
    assert more.finished and more.position.step > steps_before
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["train"]
    assert saved["train_time_limit"] == 3.0 and saved["train_time_schedule"] == 2.0
    # Laid over 3 s, stage 10 would start at 2.73 s: steps from 2 s on would go back to stages 8-9.
    after = [s for s in read_stats(tmp_path / "run") if s["step"] > steps_before]
    assert after and {s["stage"] for s in after} == {10} and all(s["num_blocks"] == 6 for s in after)


def test_a_damaged_newest_checkpoint_is_named_and_the_one_before_it_used(tmp_path, data, capsys):
    cfg = resolve_config("tiny", {**SETTINGS, "checkpoint_every_images": 32, "keep_checkpoints": 3})
    train(tmp_path / "run", data, cfg, CONDITIONS, options=RunOptions(progress=False, tensorboard=False, threads=1,
                                                                      max_steps=10))
    paths = checkpoint_paths(tmp_path / "run")
    assert [load_checkpoint(p).position.step for p in paths] == [4, 8, 10]
    paths[-1].write_bytes(paths[-1].read_bytes()[:1000])  # cut short, as a full disk would leave it
    assert latest_checkpoint(tmp_path / "run").position.step == 8
    capsys.readouterr()
    resumed = train(tmp_path / "run", data, None, resume=True, options=QUIET)
    out = capsys.readouterr().out
    assert "skipped" in out and paths[-1].name in out and "resuming from ckpt-000000008" in out
    assert resumed.finished and resumed.position.step == 16
    for path in checkpoint_paths(tmp_path / "run"):  # no readable checkpoint at all: the newest one's error
        path.write_bytes(b"junk")
    with pytest.raises(UserError, match="not a readable checkpoint"):
        latest_checkpoint(tmp_path / "run")
