"""Schedule, configuration and losses of the training loop, against Magenta's definitions."""

from __future__ import annotations

import dataclasses
import json

import numpy as np

import pytest
import torch

from ganspacesynth.errors import UserError
from ganspacesynth.conditions import ConditionSpec
from ganspacesynth.model.config import preset
from ganspacesynth.model.layers import downscale, upscale
from ganspacesynth.training.config import TRAIN_PRESETS, GanSettings, TrainConfig, parse_overrides, resolve_config
from ganspacesynth.training.losses import (auxiliary_losses, classification_loss, discriminator_loss,
                                           gradient_penalty)
from ganspacesynth.training.schedule import Schedule, StagePoint, real_at_stage


def magenta_progress(image_id, stable, transition, num_blocks):
    """Magenta's networks.compute_progress, transcribed."""
    capped = min(image_id, num_blocks * stable + (num_blocks - 1) * transition - 1)
    stage = stable + transition
    return capped // stage + max(0.0, ((capped % stage) - stable) / transition)


def test_stage_boundaries_match_magenta():
    cfg = resolve_config("mel_prog_hires")
    s = Schedule(cfg.train, cfg.model)
    assert s.num_stages == 13
    # Magenta get_stage_info: (num_blocks, images at the end of the stage)
    assert [s.stage_end_images(i) for i in (0, 1, 2, 11)] == [800_000, 1_600_000, 2_400_000, 9_600_000]
    assert s.stage_end_images(12) == 11_000_000
    assert [s.num_blocks(i) for i in range(13)] == [1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7]
    for images in (0, 799_992, 800_000, 1_000_000, 1_599_992, 1_600_000, 5_200_000, 9_000_000, 10_999_992):
        p = s.at(images)
        progress = magenta_progress(images, 800_000, 800_000, 7)
        # Our (num_blocks, alpha) is Magenta's progress: blocks - 1 - (1 - alpha) during a fade-in
        expected = (p.num_blocks - 1) - (1.0 - p.alpha) if p.transition else p.num_blocks - 1
        assert expected == pytest.approx(progress, abs=1e-9), images
        assert p.batch_size == 8
    assert not s.done(10_999_992) and s.done(11_000_000)


def test_batch_size_schedule_is_padded_at_the_front():
    cfg = resolve_config("mel_prog_hires", {"batch_size_schedule": [64, 32, 16]})
    sizes = [cfg.train.batch_size(k, 7) for k in range(1, 8)]
    assert sizes == [64, 64, 64, 64, 64, 32, 16]
    s = Schedule(cfg.train, cfg.model)
    assert s.at(10_000_000).batch_size == 16 and s.at(0).batch_size == 64


def test_timed_schedule_follows_magentas_stage_times():
    cfg = resolve_config("tiny", {"train_time_limit": 110, "train_time_stage_multiplier": 1.5})
    s = Schedule(cfg.train, cfg.model)
    weights = [1.5**i for i in range(11)]
    ends = [sum(weights[: i + 1]) / sum(weights) * 110 for i in range(11)]
    assert s.ends == pytest.approx(ends)
    mid = (ends[0] + ends[1]) / 2  # halfway through the first fade-in
    p = s.at(images=0, seconds=mid)
    assert (p.stage_id, p.num_blocks) == (1, 2) and p.alpha == pytest.approx(0.5)
    assert s.at(0, 109.0).num_blocks == 6 and s.done(0, 110.0) and not s.done(10**9, 100.0)


def test_a_schedule_span_keeps_the_stages_and_lengthens_the_last():
    laid = Schedule(resolve_config("tiny", {"train_time_limit": 110}).train, preset("tiny"))
    longer = Schedule(resolve_config("tiny", {"train_time_limit": 200, "train_time_schedule": 110}).train,
                      preset("tiny"))
    assert longer.ends == pytest.approx(laid.ends)
    assert [longer.at(0, t) for t in (5.0, 50.0, 105.0)] == [laid.at(0, t) for t in (5.0, 50.0, 105.0)]
    assert longer.at(0, 150.0).stage_id == 10 and not longer.done(0, 150.0) and longer.done(0, 200.0)
    # A limit below the span lays the stages over the limit: every stage still runs.
    shorter = Schedule(resolve_config("tiny", {"train_time_limit": 50, "train_time_schedule": 110}).train,
                       preset("tiny"))
    assert shorter.ends[-1] == pytest.approx(50) and shorter.at(0, 49.0).stage_id == 10
    cpu = resolve_config("cpu", {"train_time_limit": 3600}).train  # the user guide's one-hour run
    assert Schedule(cpu, preset("cpu")).ends[-1] == pytest.approx(3600)
    with pytest.raises(UserError, match="train_time_schedule"):
        resolve_config("tiny", {"train_time_schedule": 0}).train.validate(6)


def test_real_data_blend_equals_magentas_full_resolution_blend():
    """Magenta blends at full resolution (pool then upsample); we blend at the stage's resolution."""
    model = preset("tiny")
    torch.manual_seed(0)
    x = torch.randn(3, 2, *model.output_shape)
    alpha = 0.3
    point = StagePoint(stage_id=3, num_blocks=3, alpha=alpha, batch_size=3)
    ours = real_at_stage(x, model, point)
    assert tuple(ours.shape[-2:]) == model.resolution(3)
    s2, s3 = 2 ** (6 - 2), 2 ** (6 - 3)
    magenta = (1 - alpha) * upscale(downscale(x, s2), s2) + alpha * upscale(downscale(x, s3), s3)
    torch.testing.assert_close(upscale(ours, s3), magenta, rtol=1e-5, atol=1e-6)


def test_magenta_experiment_json_maps_one_to_one(magenta_fixture_dir, tmp_path):
    path = magenta_fixture_dir / "ckpt" / "experiment.json"
    magenta = json.loads(path.read_text())
    cfg = resolve_config("mel_prog_hires", config_file=path)
    for key in ("stable_stage_num_images", "transition_stage_num_images", "total_num_images",
                "generator_learning_rate", "discriminator_learning_rate", "gradient_penalty_weight",
                "gradient_penalty_target", "real_score_penalty_weight", "generator_ac_loss_weight",
                "discriminator_ac_loss_weight", "adam_beta1", "adam_beta2"):
        assert cfg.train.setting(key) == magenta[key], key
    assert list(cfg.train.batch_size_schedule) == magenta["batch_size_schedule"]
    assert (cfg.model.fmap_base, cfg.model.fmap_max) == (magenta["fmap_base"], magenta["fmap_max"])
    assert cfg.spectral_checks["mag_normalizer_a"] == magenta["mag_normalizer_a"]
    # our own resolved config round-trips through a file
    ours = tmp_path / "cfg.json"
    ours.write_text(json.dumps(cfg.to_dict()))
    again = resolve_config("tiny", config_file=ours)
    assert again.train == cfg.train and again.preset == "mel_prog_hires"


def test_overrides_are_typed_and_checked():
    cfg = resolve_config("fast", parse_overrides(["total_num_images=1e6", "batch_size_schedule=16,8",
                                                  "train_time_limit=none", "fmap_max=64"]))
    assert cfg.train.total_num_images == 1_000_000 and cfg.train.batch_size_schedule == (16, 8)
    assert cfg.train.train_time_limit is None and cfg.model.fmap_max == 64
    with pytest.raises(UserError, match="unknown setting"):
        resolve_config("tiny", {"learning_rate": 1})
    with pytest.raises(UserError, match="expected int"):
        resolve_config("tiny", {"total_num_images": "many"})
    with pytest.raises(UserError, match="not supported"):
        resolve_config("tiny", {"simple_arch": True})
    assert TRAIN_PRESETS["mel_prog_hires"].batch_size_schedule == (8,)


def test_gradient_penalty_of_a_linear_critic():
    """D(x) = <w, x> has gradient w everywhere: the penalty is (|w| - target)² / target²."""
    w = torch.randn(2, 4, 8)
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.randn(5, 2, 4, 8), torch.randn(5, 2, 4, 8)
    for target in (1.0, 2.0):
        gp = gradient_penalty(critic, real, fake, torch.rand(5), target)
        assert float(gp) == pytest.approx(((w.norm() - target) ** 2 / target**2).item(), rel=1e-5)


def test_discriminator_loss_terms():
    cfg = GanSettings()
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, -2.0])
    loss, parts = discriminator_loss(real, fake, torch.tensor(0.5), torch.tensor(0.2), cfg)
    # (mean fake - mean real) + 10 * gp + 0.001 * mean(real²) + 10 * ac
    assert float(loss) == pytest.approx((-1 - 2) + 5 + 0.001 * 5 + 2)
    assert float(parts["drift"]) == pytest.approx(5.0) and float(parts["gradient_penalty"]) == 0.5
    # A lazy penalty (every 4th step) weighs 4× on its steps and is absent from the others.
    lazy = dataclasses.replace(cfg, gradient_penalty_interval=4)
    loss, _ = discriminator_loss(real, fake, torch.tensor(0.5), torch.tensor(0.2), lazy)
    assert float(loss) == pytest.approx((-1 - 2) + 4 * 5 + 0.001 * 5 + 2)
    loss, parts = discriminator_loss(real, fake, None, torch.tensor(0.2), lazy)
    assert float(loss) == pytest.approx((-1 - 2) + 0.001 * 5 + 2) and "gradient_penalty" not in parts
    with pytest.raises(UserError, match="gradient_penalty_interval"):
        dataclasses.replace(cfg, gradient_penalty_interval=0).validate()


def test_auxiliary_losses_categorical_and_multilabel():
    specs = (ConditionSpec("pitch", "categorical", ("40", "41", "42")),
             ConditionSpec("qualities", "multilabel", ("bright", "dark")))
    logits = {"pitch": torch.tensor([[5.0, 0.0, 0.0], [0.0, 0.0, 5.0]]),
              "qualities": torch.tensor([[3.0, -3.0], [3.0, 3.0]])}
    labels = {"pitch": torch.tensor([0, 1]), "qualities": torch.tensor([[1.0, 0.0], [0.0, 1.0]])}
    total, acc = auxiliary_losses(specs, logits, labels)
    expected = (torch.nn.functional.cross_entropy(logits["pitch"], labels["pitch"])
                + torch.nn.functional.binary_cross_entropy_with_logits(logits["qualities"], labels["qualities"]))
    assert float(total) == pytest.approx(float(expected))
    assert float(acc["pitch"]) == 0.5 and float(acc["qualities"]) == 0.75
    assert float(classification_loss(specs[1], logits["qualities"], labels["qualities"])) > 0


def test_fake_labels_follow_the_data_distribution_and_batches_are_reproducible():
    from ganspacesynth.training.draws import real_rows
    from ganspacesynth.training.objectives.gan import draw_gan as draw_batch

    labels = torch.tensor([0] * 90 + [1] * 10)
    fake = torch.cat([labels[draw_batch(0, s, 0, 32, 100, 4).fake_rows_d] for s in range(100)])
    assert float((fake == 1).float().mean()) == pytest.approx(0.10, abs=0.02)
    a, b = draw_batch(7, 3, 64, 16, 100, 4), draw_batch(7, 3, 64, 16, 100, 4)
    assert torch.equal(a.z_g, b.z_g) and not torch.equal(a.z_g, draw_batch(7, 4, 64, 16, 100, 4).z_g)
    # real rows: every note once per epoch, whatever the batch boundaries
    rows = torch.cat([real_rows(7, start, 25, 100) for start in range(0, 200, 25)])
    assert sorted(rows[:100].tolist()) == list(range(100)) and sorted(rows[100:].tolist()) == list(range(100))
    assert torch.equal(real_rows(7, 30, 40, 100), rows[30:70])


def test_a_multilabel_condition_trains(tmp_path):
    from ganspacesynth.training.data import in_memory
    from ganspacesynth.training.loop import RunOptions, train
    from ganspacesynth.training.stats import read_stats

    model = preset("tiny")
    g = torch.Generator().manual_seed(0)
    specs = torch.rand(8, 2, *model.output_shape, generator=g) * 2 - 1
    qualities = (torch.rand(8, 3, generator=g) > 0.5).float()
    data = in_memory(specs, {"pitch": [0, 1] * 4, "qualities": qualities},
                     {"pitch": ["60", "61"], "qualities": ["bright", "dark", "percussive"]}, model.spectral)
    cfg = resolve_config("tiny", {"total_num_images": 24, "batch_size_schedule": [8], "log_every_steps": 1})
    result = train(tmp_path / "run", data, cfg, ["qualities", "pitch"], options=RunOptions(progress=False,
                                                                                          tensorboard=False))
    assert result.finished
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert [(c["name"], c["kind"]) for c in saved["model"]["conditions"]] == [("pitch", "categorical"),
                                                                            ("qualities", "multilabel")]
    last = read_stats(tmp_path / "run")[-1]
    assert 0.0 <= last["accuracy/real_qualities"] <= 1.0 and np.isfinite(last["loss/ac_real"])


def test_a_config_with_unknown_block_settings_is_refused_in_one_line():
    from ganspacesynth.errors import UserError
    from ganspacesynth.training.config import ResolvedConfig

    data = resolve_config("tiny").to_dict()
    data["train"]["gan"]["from_the_future"] = 1
    with pytest.raises(UserError, match=r"gan\.from_the_future"):
        ResolvedConfig.from_dict(data)
