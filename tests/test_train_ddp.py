"""Two processes (torchrun, gloo) train exactly what one process trains with the same global batch; `train --nproc`
ends on Ctrl-C like one process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from ganspacesynth.model.config import PRESETS
from ganspacesynth.training.checkpoint import latest_checkpoint
from ganspacesynth.training.config import resolve_config
from ganspacesynth.training.data import TrainingData
from ganspacesynth.training.loop import RunOptions, train
from ganspacesynth.training.stats import read_stats
from ganspacesynth.training.synthetic import write_synthetic_dataset

CONDITIONS = ["pitch", "instrument_family"]
# global batch 16 → 8 rows per process; 10 steps cross into the first fade-in
SETTINGS = {"stable_stage_num_images": 96, "transition_stage_num_images": 96, "total_num_images": 160,
            "batch_size_schedule": [16], "log_every_steps": 1, "save_summaries_num_images": 0}


@pytest.mark.integration
@pytest.mark.slow
def test_two_gloo_processes_match_one(tmp_path):
    dataset = tmp_path / "ds"
    write_synthetic_dataset(dataset, PRESETS["tiny"].spectral, per_class=2, seed=3)
    args = ["--data", str(dataset), "--preset", "tiny", "--conditions", ",".join(CONDITIONS), "--device", "cpu",
            "--no-progress", "--no-tensorboard"]
    for key, value in SETTINGS.items():
        args += ["--set", f"{key}={json.dumps(value).replace(' ', '')}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "ganspacesynth.interfaces.cli", "train", "--out", str(tmp_path / "ddp")] + args
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    saved = json.loads((tmp_path / "ddp" / "config.json").read_text())
    assert saved["world_size"] == 2

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = TrainingData.from_folder(dataset, CONDITIONS)
        single = train(tmp_path / "one", data, resolve_config("tiny", SETTINGS), CONDITIONS,
                       options=RunOptions(progress=False, tensorboard=False, threads=1))
    finally:
        torch.set_num_threads(threads)
    assert single.finished and single.position.step == 10

    ddp_stats, one_stats = read_stats(tmp_path / "ddp"), read_stats(tmp_path / "one")
    assert [s["step"] for s in ddp_stats] == list(range(1, 11))
    for a, b in zip(ddp_stats, one_stats):
        for key in ("loss/d", "loss/g", "loss/gradient_penalty", "loss/ac_real", "accuracy/real_pitch", "alpha"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), (a["step"], key)
    ddp_ckpt, one_ckpt = latest_checkpoint(tmp_path / "ddp"), latest_checkpoint(tmp_path / "one")
    for prefix in ("generator", "discriminator", "ema"):
        one = one_ckpt.module_state(prefix)
        for name, value in ddp_ckpt.module_state(prefix).items():
            torch.testing.assert_close(value, one[name], rtol=1e-4, atol=1e-5)


@pytest.mark.integration
def test_ctrl_c_stops_every_process_with_a_checkpoint_and_no_traceback(tmp_path):
    dataset, run = tmp_path / "ds", tmp_path / "run"
    write_synthetic_dataset(dataset, PRESETS["tiny"].spectral, per_class=2, seed=3)
    cmd = [sys.executable, "-m", "ganspacesynth", "train", "--nproc", "2", "--data", str(dataset), "--out", str(run),
           "--preset", "tiny", "--device", "cpu", "--no-progress", "--no-tensorboard",
           "--set", "batch_size_schedule=[8]", "--set", "train_time_limit=none", "--set", "total_num_images=1e9"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while not (run / "stats.jsonl").is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
        os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C: the launcher's process group (not the ranks')
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err and "torch/distributed" not in err, err
    assert out.count("interrupted at step") == 1, out  # rank 0 reports for both
    step = int(out.split("interrupted at step ")[1].split(",")[0])
    assert latest_checkpoint(run).position.step == step >= 1
