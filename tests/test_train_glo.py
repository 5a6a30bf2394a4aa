"""The reconstruction objectives (training/objectives/reconstruction.py: glo, glo+gan): they learn, resume exactly
(old format-1 runs included), and their notes follow the pitch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganspacesynth.model.config import PRESETS
from ganspacesynth.synth import Synth
from ganspacesynth.errors import UserError
from ganspacesynth.training.checkpoint import latest_checkpoint
from ganspacesynth.training.objectives.reconstruction import LatentCodes
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


def straight_and_split(tmp_path, data, cfg, stop: int):
    """The same run straight and stopped after `stop` steps then resumed: their newest checkpoints."""
    train(tmp_path / "straight", data, cfg, CONDITIONS, options=QUIET)
    train(tmp_path / "split", data, cfg, CONDITIONS, options=RunOptions(progress=False, tensorboard=False, threads=1,
                                                                        max_steps=stop))
    resumed = train(tmp_path / "split", data, None, resume=True, options=QUIET)
    assert resumed.finished
    return latest_checkpoint(tmp_path / "straight"), latest_checkpoint(tmp_path / "split")


def assert_same_states(a, b, prefixes) -> None:
    """Two checkpoints hold the same modules (to float rounding)."""
    for prefix in prefixes:
        for name, value in a.module_state(prefix).items():
            torch.testing.assert_close(b.module_state(prefix)[name], value, rtol=1e-4, atol=1e-6)


def glo(**settings):
    base = {"objective": "glo", "latent_code_learning_rate": 1e-2, "batch_size_schedule": [8], "log_every_steps": 1,
            "save_summaries_num_images": 0, "train_time_limit": None}
    return resolve_config("tiny", {**base, **settings})


def test_glo_resume_repeats_a_straight_run_codes_included(tmp_path, data):
    cfg = glo(stable_stage_num_images=48, transition_stage_num_images=48, total_num_images=128,
              latent_code_label="instrument", latent_code_dropout=0.5)
    a, b = straight_and_split(tmp_path, data, cfg, 9)
    assert a.position.step == 16
    codes = a.module_state("codes")
    assert codes["codes"].shape == (6, cfg.model.latent_vector_size)  # one per instrument
    assert torch.equal(codes["owner"], data.labels["instrument"])
    assert_same_states(a, b, ("generator", "codes", "ema"))
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
        return latest_checkpoint(tmp_path / name).module_state("codes")["codes"]

    initial = LatentCodes(data.labels["instrument"], PRESETS["tiny"].latent_vector_size, seed=0).codes.detach()
    assert torch.equal(codes_after(1.0, "all"), initial)
    assert (codes_after(0.0, "none") - initial).abs().max() > 1e-3


def test_code_dropout_outside_0_1_is_refused():
    with pytest.raises(UserError, match="latent_code_dropout"):
        glo(latent_code_dropout=1.5)


def test_gaussian_codes_resume_exactly_and_log_their_kl(tmp_path, data):
    cfg = glo(stable_stage_num_images=48, transition_stage_num_images=48, total_num_images=128,
              latent_code_label="instrument", latent_code_kl_weight=1e-2)
    a, b = straight_and_split(tmp_path, data, cfg, 7)
    codes = a.module_state("codes")
    assert codes["log_scale"].shape == codes["codes"].shape == (6, cfg.model.latent_vector_size)
    assert (codes["log_scale"] - (-1.0)).abs().max() > 1e-4  # the scales are learned
    assert_same_states(a, b, ("generator", "codes", "ema"))
    kl = [s["loss/latent_code_kl"] for s in read_stats(tmp_path / "straight")]
    # codes start as N(0, 1) draws with scale e^-1: KL ≈ 0.5·(1 + e^-2 − 1 + 2) ≈ 1.07 per dimension
    assert kl[0] == pytest.approx(1.07 * cfg.model.latent_vector_size, rel=0.3) and all(np.isfinite(kl))


@pytest.mark.heavy
def test_glo_gan_starts_its_discriminator_late_and_resumes_exactly(tmp_path, data):
    base = {"objective": "glo+gan", "latent_code_learning_rate": 1e-2, "batch_size_schedule": [8],
            "log_every_steps": 1, "save_summaries_num_images": 0, "train_time_limit": None,
            "stable_stage_num_images": 48, "transition_stage_num_images": 48, "total_num_images": 128,
            "latent_code_label": "instrument", "adversarial_start": 64, "adversarial_weight": 0.5}
    cfg = resolve_config("tiny", base)
    assert cfg.train.gan is not None and cfg.train.reconstruction is not None
    a, b = straight_and_split(tmp_path, data, cfg, 6)
    stats = read_stats(tmp_path / "straight")
    before = [s for s in stats if s["images"] <= 64]  # stats are logged after the step: images counts it
    after = [s for s in stats if s["images"] > 72]
    assert before and all("loss/d" not in s for s in before)
    assert after and all("loss/d" in s and "loss/reconstruction" in s for s in after)
    assert a.slots() == {"generator", "ema", "codes", "discriminator"}
    assert_same_states(a, b, ("generator", "codes", "discriminator", "ema"))


def _as_format_1(run):
    """Rewrite a glo run folder as the format-1 code wrote it: flat config, codes in the discriminator's slot."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from ganspacesynth.training.checkpoint import checkpoint_paths
    from ganspacesynth.training.config import GanSettings

    config = json.loads((run / "config.json").read_text())
    train_cfg = config["train"]
    flat = {k: v for k, v in train_cfg.items() if k not in ("gan", "reconstruction", "adversarial")}
    flat.update(train_cfg["reconstruction"])
    flat.update(GanSettings().__dict__)  # version 1 stored every objective's settings
    config.update(format_version=1, train=flat)
    (run / "config.json").write_text(json.dumps(config))
    for path in checkpoint_paths(run):
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
        groups = json.loads(meta.pop("optimizers"))
        meta.update(format_version="1", opt_g_groups=json.dumps(groups["generator"]),
                    opt_d_groups=json.dumps(groups["codes"]))
        meta.pop("objective")
        renamed = {}
        for key, value in load_file(str(path)).items():
            key = key.replace("opt.generator.", "opt_g.").replace("opt.codes.", "opt_d.")
            renamed["discriminator." + key[len("codes."):] if key.startswith("codes.") else key] = value
        save_file(renamed, str(path), metadata=meta)


def test_a_format_1_run_folder_resumes_exactly(tmp_path, data):
    cfg = glo(stable_stage_num_images=48, transition_stage_num_images=48, total_num_images=128,
              latent_code_label="instrument", latent_code_dropout=0.5)
    train(tmp_path / "straight", data, cfg, CONDITIONS, options=QUIET)
    train(tmp_path / "old", data, cfg, CONDITIONS, options=RunOptions(progress=False, tensorboard=False, threads=1,
                                                                      max_steps=9))
    _as_format_1(tmp_path / "old")
    assert latest_checkpoint(tmp_path / "old").version == 1
    resumed = train(tmp_path / "old", data, None, resume=True, options=QUIET)
    assert resumed.finished and resumed.position.step == 16
    a, b = latest_checkpoint(tmp_path / "straight"), latest_checkpoint(tmp_path / "old")
    assert b.version == 2 and b.slots() == {"generator", "ema", "codes"}
    assert_same_states(a, b, ("generator", "codes", "ema"))


def test_init_from_a_run_or_a_model_file(tmp_path, data):
    cfg = glo(stable_stage_num_images=48, transition_stage_num_images=48, total_num_images=64,
              latent_code_label="instrument")
    train(tmp_path / "glo", data, cfg, CONDITIONS, options=QUIET)
    source = latest_checkpoint(tmp_path / "glo")
    sharp = resolve_config("tiny", {"objective": "glo+gan", "batch_size_schedule": [8], "train_time_limit": None,
                                    "latent_code_label": "instrument", "save_summaries_num_images": 0})
    stopped = RunOptions(progress=False, tensorboard=False, threads=1, max_steps=0)
    train(tmp_path / "from-run", data, sharp, CONDITIONS, options=stopped, init_from=tmp_path / "glo")
    started = latest_checkpoint(tmp_path / "from-run")
    for prefix in ("generator", "ema", "codes"):  # the discriminator is new
        for name, value in source.module_state(prefix).items():
            torch.testing.assert_close(started.module_state(prefix)[name], value)
    train(tmp_path / "from-file", data, sharp, CONDITIONS, options=stopped, init_from=tmp_path / "glo" / "model.safetensors")
    started = latest_checkpoint(tmp_path / "from-file")
    for name, value in source.module_state("ema").items():
        torch.testing.assert_close(started.module_state("generator")[name], value)
    with pytest.raises(UserError, match="architecture"):
        train(tmp_path / "other", data, sharp, ["pitch"], options=stopped, init_from=tmp_path / "glo")
    assert not (tmp_path / "other").exists()


@pytest.mark.heavy
def test_a_critic_at_a_lower_resolution_judges_pooled_notes(tmp_path, data):
    """critic_num_blocks=1: the discriminator sees every note average-pooled to the first block's resolution, so
    only its first block (and heads) learn while the generator grows; the run resumes exactly."""
    base = {"objective": "glo+gan", "batch_size_schedule": [8], "log_every_steps": 1, "save_summaries_num_images": 0,
            "train_time_limit": None, "stable_stage_num_images": 32, "transition_stage_num_images": 32,
            "total_num_images": 96, "latent_code_label": "instrument", "critic_num_blocks": 1}
    cfg = resolve_config("tiny", base)
    a, b = straight_and_split(tmp_path, data, cfg, 7)
    assert a.position.stage_id == 2 and "loss/d" in read_stats(tmp_path / "straight")[-1]
    train(tmp_path / "initial", data, cfg, CONDITIONS, options=RunOptions(progress=False, tensorboard=False,
                                                                          threads=1, max_steps=0))
    initial = latest_checkpoint(tmp_path / "initial").module_state("discriminator")
    trained = a.module_state("discriminator")
    assert not torch.equal(trained["blocks.0.conv0.weight"], initial["blocks.0.conv0.weight"])
    assert torch.equal(trained["blocks.1.conv0.weight"], initial["blocks.1.conv0.weight"])  # never used
    assert_same_states(a, b, ("discriminator",))


@pytest.mark.heavy
def test_glo_gan_adds_the_profile_loss_at_full_weight(tmp_path, data):
    """The profile loss joins the reconstruction side of `glo+gan`, outside the adaptive weight that scales the
    critic's loss: with `adversarial_weight=0` it still moves the generator, and it is logged."""
    base = {"objective": "glo+gan", "batch_size_schedule": [8], "log_every_steps": 1, "save_summaries_num_images": 0,
            "train_time_limit": None, "stable_stage_num_images": 16, "transition_stage_num_images": 16,
            "total_num_images": 32, "train_progressive": False, "latent_code_label": "instrument",
            "adversarial_weight": 0.0}
    runs = {}
    for weight in (0.0, 1.0):
        cfg = resolve_config("tiny", {**base, "profile_loss_weight": weight})
        train(tmp_path / str(weight), data, cfg, CONDITIONS, options=QUIET)
        runs[weight] = latest_checkpoint(tmp_path / str(weight)).module_state("generator")
    stats = read_stats(tmp_path / "1.0")
    assert all(s["loss/profile"] > 0 for s in stats) and "loss/profile" not in read_stats(tmp_path / "0.0")[-1]
    changed = max((runs[1.0][k].float() - runs[0.0][k].float()).abs().max().item() for k in runs[0.0])
    assert changed > 1e-4


@pytest.mark.heavy
def test_the_profile_loss_can_leave_out_the_upper_band(tmp_path, data):
    """`profile_loss_max_hz`: the same first step's profile loss is taken over the bins below the cut only (a
    different value from all bins'), and the bins are those whose centre frequency lies below it."""
    from ganspacesynth.training.losses import bins_below

    base = {"objective": "glo+gan", "batch_size_schedule": [8], "log_every_steps": 1, "save_summaries_num_images": 0,
            "train_time_limit": None, "stable_stage_num_images": 16, "transition_stage_num_images": 16,
            "total_num_images": 16, "train_progressive": False, "latent_code_label": "instrument",
            "adversarial_weight": 0.0, "profile_loss_weight": 1.0}
    first = {}
    for cut in (None, 2000.0):
        cfg = resolve_config("tiny", {**base, "profile_loss_max_hz": cut})
        train(tmp_path / str(cut), data, cfg, CONDITIONS, options=QUIET)
        first[cut] = read_stats(tmp_path / str(cut))[0]["loss/profile"]
    assert first[None] > 0 and first[2000.0] > 0 and abs(first[None] - first[2000.0]) > 1e-6 * first[None]
    hertz = cfg.model.spectral.bin_hertz()
    full = bins_below(hertz, len(hertz), 2000.0)
    assert full.tolist() == (hertz < 2000.0).tolist() and 0 < int(full.sum()) < len(hertz)
    half = bins_below(hertz, len(hertz) // 2, 2000.0)
    assert half.tolist() == (hertz.reshape(-1, 2).mean(axis=1) < 2000.0).tolist()
    # A cut below every bin of the first (widest-binned) stage is refused before training starts.
    with pytest.raises(UserError, match="profile_loss_max_hz"):
        train(tmp_path / "low", data, resolve_config("tiny", {**base, "profile_loss_max_hz": 1.0}), CONDITIONS,
              options=QUIET)
    assert not (tmp_path / "low").exists() or not any((tmp_path / "low").iterdir())


def test_a_codes_prior_is_what_the_critic_judges_and_what_the_model_file_draws_from(tmp_path, data):
    """`latent_prior: codes`: the exported model draws random latents from the run's codes (plus the spread),
    the critic's fakes come from that prior, and a resumed run repeats a straight one."""
    from ganspacesynth.model.files import load_model

    base = {"objective": "glo+gan", "latent_code_learning_rate": 1e-2, "batch_size_schedule": [8],
            "log_every_steps": 1, "save_summaries_num_images": 0, "train_time_limit": None,
            "stable_stage_num_images": 48, "transition_stage_num_images": 48, "total_num_images": 128,
            "latent_code_label": "instrument", "adversarial_start": 64, "latent_prior": "codes",
            "latent_prior_spread": 0.1}
    cfg = resolve_config("tiny", base)
    a, b = straight_and_split(tmp_path, data, cfg, 10)
    assert_same_states(a, b, ("generator", "codes", "discriminator", "ema"))
    codes = a.module_state("codes")["codes"].numpy()
    prior = load_model(tmp_path / "straight").prior
    assert not prior.is_standard and prior.spread == 0.1
    np.testing.assert_array_equal(prior.centres, codes)  # the codes of the last checkpoint, exported with it
    z = Synth.load(tmp_path / "straight").random_z(600, seed=3)
    nearest = np.linalg.norm(z[:, None] - codes[None], axis=2).min(axis=1)
    rms = np.sqrt(np.mean(nearest ** 2) / z.shape[1])
    assert 0.08 < rms < 0.11  # every latent is a code plus N(0, 0.1²): distance to the nearest code ≈ 0.1·√L
    # and the critic trained against them: it has the discriminator's stats after the start
    assert any("loss/d" in s for s in read_stats(tmp_path / "straight"))


def test_normal_prior_runs_export_no_prior(tmp_path, data):
    from ganspacesynth.model.files import load_model

    cfg = glo(stable_stage_num_images=16, transition_stage_num_images=16, total_num_images=32,
              latent_code_label="instrument")
    train(tmp_path / "run", data, cfg, CONDITIONS, options=QUIET)
    assert load_model(tmp_path / "run").prior.is_standard
    with pytest.raises(UserError, match="latent_prior must be normal or codes"):
        glo(latent_prior="gauss")
