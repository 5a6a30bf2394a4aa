"""The reconstruction objective (training/glo.py): it learns, it resumes exactly, and its notes follow the pitch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganspacesynth.model.config import PRESETS
from ganspacesynth.synth import Synth
from ganspacesynth.errors import UserError
from ganspacesynth.training.checkpoint import latest_checkpoint
from ganspacesynth.training.glo import LatentCodes
from ganspacesynth.training.config import resolve_config
from ganspacesynth.training.loop import RunOptions, train
from ganspacesynth.training.stats import read_stats
from ganspacesynth.training.synthetic import synthetic_data

CONDITIONS = ["pitch", "instrument_family"]
QUIET = RunOptions(progress=False, tensorboard=False, threads=1)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data():
    """Synthetic tones; every (family, copy) is one 'instrument' played at all pitches."""
    d = synthetic_data(PRESETS["tiny"].spectral, per_class=2, seed=4)
    copy = torch.arange(len(d)) % 2  # synthetic_data lists the copies of a (pitch, family) next to each other
    d.labels["instrument"] = d.labels["instrument_family"] * 2 + copy
    return d


def glo(**settings):
    base = {"objective": "glo", "latent_code_learning_rate": 1e-2, "batch_size_schedule": [8], "log_every_steps": 1,
            "save_summaries_num_images": 0, "train_time_limit": None}
    return resolve_config("tiny", {**base, **settings})


def test_glo_resume_repeats_a_straight_run_codes_included(tmp_path, data):
    cfg = glo(stable_stage_num_images=48, transition_stage_num_images=48, total_num_images=128,
              latent_code_label="instrument", latent_code_dropout=0.5)
    straight = train(tmp_path / "straight", data, cfg, CONDITIONS, options=QUIET)
    assert straight.finished and straight.position.step == 16
    train(tmp_path / "split", data, cfg, CONDITIONS, options=RunOptions(progress=False, tensorboard=False, threads=1,
                                                                        max_steps=9))
    resumed = train(tmp_path / "split", data, None, resume=True, options=QUIET)
    assert resumed.finished
    a, b = latest_checkpoint(tmp_path / "straight"), latest_checkpoint(tmp_path / "split")
    codes = a.module_state("discriminator")
    assert codes["codes"].shape == (6, cfg.model.latent_vector_size)  # one per instrument
    assert torch.equal(codes["owner"], data.labels["instrument"])
    for prefix in ("generator", "discriminator", "ema"):
        for name, value in a.module_state(prefix).items():
            torch.testing.assert_close(b.module_state(prefix)[name], value, rtol=1e-4, atol=1e-6)
    losses = [s["loss/reconstruction"] for s in read_stats(tmp_path / "split")]
    assert len(losses) == 16 and all(np.isfinite(losses)) and "loss/d" not in read_stats(tmp_path / "split")[-1]


def test_glo_loss_falls_and_the_run_folder_is_a_model(tmp_path, data):
    cfg = glo(stable_stage_num_images=400, transition_stage_num_images=160, total_num_images=560)
    train(tmp_path / "run", data, cfg, CONDITIONS, options=QUIET)
    losses = [s["loss/reconstruction"] for s in read_stats(tmp_path / "run") if s["stage"] == 0]
    assert np.mean(losses[-5:]) < 0.65 * np.mean(losses[:3])  # measured: 0.60 -> 0.35
    synth = Synth.load(tmp_path / "run")
    waves = synth.generate(synth.random_z(2, seed=1), pitch=48, conditions={"instrument_family": "sine"})
    assert waves.shape == (2, synth.config.spectral.audio_length) and np.isfinite(waves).all()


def test_code_dropout_replaces_codes_with_the_steps_random_latents(tmp_path, data):
    """With every code dropped the codes get no gradient (they stay at their initial draws); with none they move."""
    def codes_after(dropout, name):
        cfg = glo(stable_stage_num_images=64, transition_stage_num_images=64, total_num_images=64,
                  latent_code_label="instrument", latent_code_dropout=dropout)
        train(tmp_path / name, data, cfg, CONDITIONS, options=QUIET)
        return latest_checkpoint(tmp_path / name).module_state("discriminator")["codes"]

    initial = LatentCodes(data.labels["instrument"], PRESETS["tiny"].latent_vector_size, seed=0).codes.detach()
    assert torch.equal(codes_after(1.0, "all"), initial)
    assert (codes_after(0.0, "none") - initial).abs().max() > 1e-3


def test_code_dropout_outside_0_1_is_refused():
    with pytest.raises(UserError, match="latent_code_dropout"):
        glo(latent_code_dropout=1.5)
