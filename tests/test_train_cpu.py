"""CPU training choices: precision by CPU flags, thread count by timing, and the profile loss."""

from __future__ import annotations

import pytest
import torch

from ganspacesynth import runtime
from ganspacesynth.model.config import PRESETS
from ganspacesynth.training.data import in_memory
from ganspacesynth.training.losses import fine_structure, profile_loss
from ganspacesynth.training.schedule import StagePoint, profile_at_stage, real_at_stage
from ganspacesynth.training.threads import ThreadTuner, make_tuner

ICE_LAKE = frozenset("fpu sse avx2 avx512f avx512bw avx512_vnni".split())
SAPPHIRE_RAPIDS = ICE_LAKE | {"amx_bf16", "amx_tile", "avx512_bf16"}
ZEN4 = ICE_LAKE | {"avx512_bf16"}


def test_auto_precision_follows_native_bfloat16():
    assert runtime.auto_precision("cpu", ICE_LAKE) == "float32"
    assert runtime.auto_precision("cpu", SAPPHIRE_RAPIDS) == "bfloat16"
    assert runtime.auto_precision("cpu", ZEN4) == "bfloat16"
    assert runtime.auto_precision("cuda", frozenset()) == "bfloat16"
    assert runtime.bfloat16_warning("cpu", SAPPHIRE_RAPIDS) is None
    warning = runtime.bfloat16_warning("cpu", ICE_LAKE)
    assert warning is not None and "\n" not in warning and "float32" in warning


def test_cpu_flags_are_read_from_this_machine():
    flags = runtime.cpu_flags()
    assert runtime.cpu_bfloat16_native() == any(f in flags for f in runtime.BF16_NATIVE_FLAGS)
    assert runtime.cpu_model()


def _run(tuner: ThreadTuner, seconds_at: dict[int, float], steps: int, key=0) -> list[int]:
    used, messages = [], []
    for _ in range(steps):
        used.append(tuner.before_step(key))
        message = tuner.after_step(seconds_at[used[-1]])
        if message:
            messages.append(message)
    return used, messages


def test_tuner_keeps_the_faster_thread_count():
    before = torch.get_num_threads()
    try:
        tuner = ThreadTuner((2, 1), trial_steps=2)
        used, messages = _run(tuner, {2: 0.01, 1: 0.5}, 10)
        assert used[:6] == [2, 2, 2, 1, 1, 1] and used[6:] == [2] * 4
        assert tuner.chosen == 2 and len(messages) == 1 and messages[0].startswith("threads: 2")
        # A busy machine: one thread wins, from the next stage on.
        used, _ = _run(tuner, {2: 0.9, 1: 0.1}, 10, key=1)
        assert used[6:] == [1] * 4 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_tuner_first_step_of_each_count_is_not_timed():
    tuner = ThreadTuner((2, 1), trial_steps=1)
    before = torch.get_num_threads()
    try:
        # Each count's first step is slow (warm-up); only the second counts.
        times = iter([9.0, 0.2, 9.0, 0.1])
        for _ in range(4):
            tuner.before_step(0)
            tuner.after_step(next(times))
        assert tuner.chosen == 1
    finally:
        torch.set_num_threads(before)


def test_fixed_threads_never_tune():
    tuner = make_tuner("cpu", 1)
    assert not tuner.tuning and tuner.before_step(0) == 1 and tuner.after_step(1.0) is None


def test_fine_structure_removes_smooth_envelopes_and_keeps_combs():
    w = torch.arange(256, dtype=torch.float32)
    envelope = (-w / 256).reshape(1, 1, -1)  # a smooth tilt (brightness)
    comb = torch.zeros(1, 1, 256)
    comb[..., ::16] = 1.0  # harmonics every 16 bins
    assert fine_structure(envelope)[..., 8:-8].abs().max() < 1e-6
    assert fine_structure(comb + envelope)[..., 16:-16].sub(fine_structure(comb)[..., 16:-16]).abs().max() < 1e-5
    # The loss sees a moved comb and ignores a changed envelope.
    fake = (comb + 0.5 * envelope).unsqueeze(2).expand(1, 1, 8, 256).expand(1, 2, 8, 256)
    assert profile_loss(fake, (comb + envelope).expand(1, 2, 256)) < 0.01
    shifted = torch.roll(comb, 5, dims=-1).unsqueeze(2).expand(1, 2, 8, 256)
    assert profile_loss(shifted, comb.expand(1, 2, 256)) > 0.05



def test_profile_loss_on_the_if_channel_ignores_how_loud_each_harmonic_is():
    """`channels="if"`: harmonics of other loudness in the magnitude channel cost nothing; a moved harmonic in the
    instantaneous-frequency channel still does."""
    comb = torch.zeros(1, 1, 256)
    comb[..., ::16] = 1.0
    louder_odd = comb.clone()
    louder_odd[..., 16::32] = 3.0  # another timbre: every other harmonic louder
    target = torch.cat([comb, comb], dim=1)
    fake = torch.cat([louder_odd, comb], dim=1).unsqueeze(2).expand(1, 2, 8, 256)
    assert profile_loss(fake, target, "all") > 0.05 and profile_loss(fake, target, "if") < 1e-6
    moved = torch.cat([comb, torch.roll(comb, 5, dims=-1)], dim=1).unsqueeze(2).expand(1, 2, 8, 256)
    assert profile_loss(moved, target, "if") > 0.05

def test_profile_at_stage_is_the_time_average_of_the_stage_images():
    model = PRESETS["tiny"]
    specs = torch.randn(3, 2, *model.output_shape)
    for point in (StagePoint(4, 3, 1.0, 3), StagePoint(5, 4, 0.3, 3), StagePoint(10, 6, 1.0, 3), StagePoint(1, 2, 0.5, 3)):
        expected = real_at_stage(specs, model, point).mean(dim=2)
        got = profile_at_stage(specs.mean(dim=2), model, point)
        assert got.shape == expected.shape
        assert torch.allclose(got, expected, atol=1e-5)


def test_label_mean_profiles_average_rows_with_the_same_labels():
    model = PRESETS["tiny"]
    specs = torch.randn(6, 2, *model.output_shape)
    pitch = [0, 0, 1, 1, 1, 0]
    family = [0, 1, 0, 0, 0, 1]
    data = in_memory(specs, {"pitch": pitch, "instrument_family": family}, {"pitch": ["60", "61"], "instrument_family": ["a", "b"]},
                     model.spectral)
    profiles = data.label_mean_profiles(["pitch", "instrument_family"])
    rows = specs.mean(dim=2)
    assert torch.allclose(profiles[0], rows[0], atol=1e-6)
    assert torch.allclose(profiles[1], (rows[1] + rows[5]) / 2, atol=1e-6)
    assert torch.allclose(profiles[2], (rows[2] + rows[3] + rows[4]) / 3, atol=1e-6)
    by_pitch = data.label_mean_profiles(["pitch"])
    assert torch.allclose(by_pitch[5], (rows[0] + rows[1] + rows[5]) / 3, atol=1e-6)


def test_preset_choices_match_the_registries():
    from ganspacesynth.choices import PRESET_NAMES
    from ganspacesynth.model.config import PRESETS as MODEL_PRESETS
    from ganspacesynth.training.config import TRAIN_PRESETS

    assert set(PRESET_NAMES) == set(MODEL_PRESETS) == set(TRAIN_PRESETS)


def test_cpu_preset_keeps_gansynth_layers_and_frequency_resolution_for_one_second():
    from ganspacesynth.model.generator import Generator
    from ganspacesynth.training.config import resolve_config

    cfg = resolve_config("cpu")
    spectral = cfg.model.spectral
    assert cfg.model.output_shape == (32, 1024) and spectral.audio_length == 16384
    # GANSynth's nfft and hop (mel_prog_hires), a quarter of its length: MIDI 24's harmonics lie 4 bins apart.
    assert (spectral.n_fft, spectral.hop_length) == (PRESETS["mel_prog_hires"].spectral.n_fft,
                                                     PRESETS["mel_prog_hires"].spectral.hop_length)
    assert 32.7 / (spectral.sample_rate / spectral.n_fft) > 4
    assert [cfg.model.num_filters(b) for b in range(1, 7)] == [32, 32, 32, 32, 16, 8]
    g = Generator(cfg.model)
    assert g.layer_names()[:2] == ["conv0", "conv1"] and g.layer_shape("conv0") == (32, 1, 32)
    train = cfg.train
    # The whole make_cpu_default.sh must fit 180 minutes on 2 cores: training, plus about 4 minutes of rendering and
    # bundle steps (the classifier trains beside it), with room to spare.
    assert train.train_time_limit <= 165 * 60 and train.objective == "glo+gan" and train.train_time_stage_multiplier > 1
    # The critic joins in the last stage (on a generator the reconstruction has taken to full resolution),
    # early enough to have 40 minutes.
    from ganspacesynth.training.schedule import Schedule

    schedule = Schedule(train, cfg.model)
    start = train.adversarial.adversarial_start
    assert schedule.at(0, start).stage_id == schedule.num_stages - 1 and schedule.ends[-2] < start
    assert train.train_time_limit - start >= 40 * 60


def test_omp_num_threads_fixes_the_count(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert not make_tuner("cpu", None).tuning
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr("ganspacesynth.training.threads.usable_cores", lambda: 2)
    assert make_tuner("cpu", None).candidates == (2, 1)
    assert make_tuner("cpu", 3).candidates == (3,)


def test_auto_precision_can_be_fixed_for_this_machine(monkeypatch):
    """$GANSPACESYNTH_AUTO_PRECISION decides `auto` on this machine (the suite sets float32: same arithmetic on every
    CPU); an explicit set of CPU flags is still judged by its flags, and an unknown value is ignored."""
    monkeypatch.setenv(runtime.AUTO_PRECISION_ENV, "float32")
    monkeypatch.setattr(runtime, "cpu_flags", lambda: ZEN4)
    assert runtime.auto_precision("cpu") == "float32"
    assert runtime.auto_precision("cpu", ZEN4) == "bfloat16"
    monkeypatch.setenv(runtime.AUTO_PRECISION_ENV, "half")
    assert runtime.auto_precision("cpu") == "bfloat16"


def test_profile_loss_compares_only_the_kept_bins():
    """`keep`: a harmonic moved above the cut costs nothing; one moved below it costs as much as without a mask.
    The fine structure is taken before the mask, so the kept bins see the same moving average."""
    comb = torch.zeros(1, 1, 256)
    comb[..., ::16] = 1.0
    target = torch.cat([comb, comb], dim=1)
    keep = torch.arange(256) < 128
    high, low = target.clone(), target.clone()
    high[..., 192], high[..., 197] = 0.0, 1.0  # a harmonic moved in the upper half
    low[..., 64], low[..., 69] = 0.0, 1.0  # one moved in the lower half
    as_fake = lambda x: x.unsqueeze(2).expand(1, 2, 4, 256)
    assert float(profile_loss(as_fake(high), target, keep=keep)) < 1e-6 < float(profile_loss(as_fake(high), target))
    whole = float(profile_loss(as_fake(low), target))
    assert float(profile_loss(as_fake(low), target, keep=keep)) == pytest.approx(2 * whole, rel=1e-5)  # half the bins


def test_profile_loss_max_hz_is_checked():
    from ganspacesynth.errors import UserError
    from ganspacesynth.training.config import resolve_config

    for bad in (0, -100.0):
        with pytest.raises(UserError, match="profile_loss_max_hz"):
            resolve_config("tiny", {"profile_loss_max_hz": bad})
    assert resolve_config("tiny", {"profile_loss_max_hz": 5000}).train.gan.profile_loss_max_hz == 5000
