"""Timbre measures (evaluate/timbre.py) on notes with known answers, and inside the evaluation end to end."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import SPECTRAL, tone

from ganspacesynth.conditions import ConditionSpec
from ganspacesynth.data.dataset import SpectrogramDataset
from ganspacesynth.data.labels import Note
from ganspacesynth.data.shards import build_dataset
from ganspacesynth.evaluate.timbre import (TimbreSettings, band_accuracy, clamp_pitches, condition_effect, diversity,
                                           level_dbfs, log_mel_db, mean_pairwise_distance, note_measures,
                                           start_click, start_spike, summarise_notes, upper_band_share_db)
from ganspacesynth.model.conditions import ConditionSet
from ganspacesynth.model.config import pitch_condition

SR = 16000
N = 16384
FAMILIES = ("bass", "flute")


def instrument(i: int, decay: float = 2.0) -> dict:
    """helpers.tone's keywords for instrument i's notes: its harmonic envelope (a different slope and a few boosted
    harmonics), a 10 ms fade-in, an exponential decay, no noise."""
    rng = np.random.default_rng(100 + i)
    amps = (np.arange(1, 13) ** -(0.3 + 0.25 * i)) * rng.uniform(0.2, 1.0, 12)
    return dict(n=N, sr=SR, partials=amps, decay=decay, noise=0.0)


# -- distances -------------------------------------------------------------------------------------------------------
def test_log_mel_shape_and_level_independence():
    wave = tone(60, **instrument(0))
    mels = log_mel_db(np.stack([wave, 0.1 * wave]), SR)
    assert mels.shape == (2, 80, N // 256 + 1)
    assert mels.max() == pytest.approx(0.0) and mels.min() >= -80.0 - 1e-4  # ref=np.max, top_db=80, per note
    assert mean_pairwise_distance(mels) < 1e-3  # a level change is no timbre change


def test_diversity_of_identical_notes_is_zero_and_of_distinct_tones_is_large():
    same = np.stack([tone(60, **instrument(0))] * 30)
    assert mean_pairwise_distance(log_mel_db(same, SR)) < 1e-4  # 0 up to rounding
    distinct = np.stack([tone(60, **instrument(i, decay=1.0 + 0.2 * i)) for i in range(30)])
    assert mean_pairwise_distance(log_mel_db(distinct, SR)) > 5.0
    assert math.isnan(mean_pairwise_distance(log_mel_db(same[:1], SR)))


def test_mean_pairwise_distance_is_the_mean_over_pairs():
    x = np.zeros((3, 2, 2))
    x[1] += 3.0  # distances: 0–1 3 dB, 0–2 4 dB, 1–2 1 dB (RMS of a constant difference is that constant)
    x[2] += 4.0
    assert mean_pairwise_distance(x) == pytest.approx((3 + 4 + 1) / 3)


# -- per-note measures -----------------------------------------------------------------------------------------------
def test_level_of_a_sine_and_of_silence():
    t = np.arange(16000) / SR
    for a in (0.5, 0.01):
        sine = a * np.sin(2 * np.pi * 440 * t)
        assert abs(level_dbfs(sine)[0] - 20 * np.log10(a / np.sqrt(2))) < 0.1
    assert level_dbfs(np.zeros(100))[0] == pytest.approx(-200.0)


def test_start_click_and_spike():
    t = np.arange(N) / SR
    faded = tone(48, **instrument(1))  # 10 ms fade-in
    at_peak = (0.8 * np.cos(2 * np.pi * 110 * t) * np.exp(-3 * t)).astype(np.float32)  # starts at its peak, smoothly
    spiked = faded.copy()
    spiked[1] = 0.2  # one sample at 2/3 of the note's peak, in a quiet start
    clicks = start_click(np.stack([faded, at_peak, spiked]))
    assert clicks[0] < 0.03 and clicks[1] == pytest.approx(1.0) and clicks[2] == pytest.approx(0.2 / 0.3, rel=1e-3)
    np.testing.assert_array_equal(start_spike(np.stack([faded, at_peak, spiked])), [False, False, True])
    # A spike must stand out from samples 4..63: the same value followed by as loud a start is no spike.
    loud_start = spiked.copy()
    loud_start[4:64] = 0.1
    assert not start_spike(loud_start)[0]
    assert math.isnan(start_click(np.zeros((1, 64)))[0]) and not start_spike(np.zeros((1, 64)))[0]


def test_upper_band_share_of_a_low_sine_and_of_noise():
    t = np.arange(N) / SR
    sine = 0.5 * np.sin(2 * np.pi * 220 * t)
    noise = np.random.default_rng(0).standard_normal(N) * 0.1
    shares = upper_band_share_db(np.stack([sine, noise]), SR)
    assert abs(shares[1] - 10 * np.log10(3 / 8)) < 0.5  # white noise: 5–8 kHz is 3/8 of 0–8 kHz
    assert shares[0] < shares[1] - 60
    # Attack → after: noise only in the first 0.1 s reads a large drop, a steady noise none.
    burst = sine.copy()
    burst[:1600] += noise[:1600]
    m = note_measures(np.stack([burst, noise]), SR)
    assert m["upper_band_change_db"][0] < -40 and abs(m["upper_band_change_db"][1]) < 0.5
    assert math.isnan(upper_band_share_db(np.zeros((1, N)), SR)[0])


def test_band_accuracy_and_summary():
    requested = np.array([24, 30, 40, 50, 55, 60, 84])
    tracked = np.array([24, 42, 40, 62, 55, -1, 84])
    acc = band_accuracy(tracked, requested)
    assert acc == {"24-35": {"accuracy": 0.5, "count": 2}, "36-47": {"accuracy": 1.0, "count": 1},
                   "48-59": {"accuracy": 0.5, "count": 2}, "60-71": {"accuracy": 0.0, "count": 1},
                   "72-84": {"accuracy": 1.0, "count": 1}}
    assert band_accuracy(np.array([60]), np.array([60]))["24-35"] == {"accuracy": None, "count": 0}

    t = np.arange(N) / SR
    waves = np.stack([tone(48, **instrument(0)), (0.8 * np.cos(2 * np.pi * 110 * t)).astype(np.float32),
                      1e-4 * tone(48, **instrument(0))])
    s = summarise_notes(note_measures(waves, SR), tracked[:3], requested[:3])
    assert s["count"] == 3 and s["click_over_threshold"] == 1 and s["start_spikes"] == 0 and s["quiet_notes"] == 1
    assert s["f0_band_accuracy"]["24-35"] == {"accuracy": 0.5, "count": 2}
    assert "f0_band_accuracy" not in summarise_notes(note_measures(waves, SR))


def test_clamp_pitches():
    assert clamp_pitches([48, 60], list(range(24, 85))) == [48, 60]
    assert clamp_pitches([10, 60, 100], [50, 55, 60]) == [50, 60]  # 100 → 60, already there
    assert clamp_pitches([48], []) == [48]


# -- measures that generate notes --------------------------------------------------------------------------------------
PITCHES = (48, 60)
INSTRUMENTS = 10


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """10 instruments (2 families) × pitches 48, 60; held-out split: whole instruments."""
    notes = [Note(id=f"inst{i}-{p}", instrument=f"inst{i}", pitch=p, velocity=100, instrument_family=FAMILIES[i % 2],
                  instrument_source="acoustic", qualities=[],
                  source=("array", tone(p, **instrument(i, decay=1.0 + 0.3 * i))))
             for i in range(INSTRUMENTS) for p in PITCHES]
    out = tmp_path_factory.mktemp("timbre") / "ds"
    build_dataset(out, notes, SPECTRAL, built_from={"kind": "test"}, valid_fraction=0.3, workers=1, progress=False)
    return SpectrogramDataset(out, "train"), SpectrogramDataset(out, "valid")


class PlaysRealNotes:
    """A stand-in synth: latent row k plays instrument k's real note at the requested pitch, whatever the class."""

    def __init__(self, train_ds, valid_ds, conditions=(pitch_condition(PITCHES),)):
        self.notes = {}
        for ds in (train_ds, valid_ds):
            for row, e in enumerate(ds.examples):
                wave = ds.audio.take([row])[0].astype(np.float32) / 32767.0  # as the evaluation reads real notes
                self.notes[(int(e["instrument"][4:]), e["pitch"])] = wave
        self.config = SimpleNamespace(conditions=tuple(conditions))
        self.conditions = ConditionSet(self.config.conditions)
        self.pitches = list(PITCHES)
        self.sample_rate = SR

    def random_z(self, count, seed=0):
        return np.arange(count, dtype=np.float32)[:, None] % INSTRUMENTS

    def generate_specgrams(self, z, pitch=None, conditions=None, batch_size=8):
        return torch.from_numpy(np.stack([self.notes[(int(k), pitch)] for k in z[:, 0]]).astype(np.float32))

    def specgrams_to_waves(self, specs):
        return specs.numpy()


@pytest.mark.heavy
def test_diversity_ratio_of_the_real_notes_against_themselves_is_one(dataset):
    train_ds, valid_ds = dataset
    synth = PlaysRealNotes(train_ds, valid_ds)
    d = diversity(synth, train_ds, valid_ds, TimbreSettings(pitches=(48, 60), count=INSTRUMENTS), seed=0)
    assert d["ratio"] == pytest.approx(1.0, abs=1e-9)
    for p in ("48", "60"):
        v = d["per_pitch"][p]
        assert v["real_count"] == INSTRUMENTS and v["real_heldout"] == 3 and v["real_pitches"] == [int(p)]
        assert v["generated_db"] == pytest.approx(v["real_db"]) and v["real_db"] > 3.0
    # Fewer notes: held-out instruments come first.
    d = diversity(synth, train_ds, valid_ds, TimbreSettings(pitches=(60,), count=3), seed=1)
    assert d["per_pitch"]["60"]["real_heldout"] == 3


def test_condition_effect_of_a_model_ignoring_its_condition_is_zero(dataset):
    train_ds, valid_ds = dataset
    family = ConditionSpec("instrument_family", "categorical", FAMILIES)
    synth = PlaysRealNotes(train_ds, valid_ds, (pitch_condition(PITCHES), family))
    e = condition_effect(synth, train_ds, valid_ds, "instrument_family", TimbreSettings(latents=4), seed=0)
    assert e["classes"] == 2 and e["real_classes"] == 2 and e["pitches"] == [48, 60]
    assert e["generated_db"] < 1e-4 and e["ratio"] < 1e-5  # the class changes nothing (0 up to rounding)
    assert e["within_class_db"] > 3.0 and e["real_db"] > 3.0  # the latent does; real families differ


@pytest.fixture(scope="module")
def family_model(tmp_path_factory):
    """An untrained tiny model conditioned on pitch and instrument_family."""
    from ganspacesynth.model.config import preset
    from ganspacesynth.model.files import save_model
    from ganspacesynth.model.generator import Generator

    torch.manual_seed(0)
    cfg = preset("tiny", conditions=(pitch_condition(), ConditionSpec("instrument_family", "categorical", FAMILIES)))
    path = tmp_path_factory.mktemp("models") / "tiny-family.safetensors"
    save_model(path, cfg, Generator(cfg).state_dict())
    return path


@pytest.mark.heavy
def test_evaluation_has_a_timbre_block(dataset, family_model):
    from ganspacesynth.evaluate.classifier import Classifier, ClassifierConfig, SpectrogramClassifier
    from ganspacesynth.evaluate.evaluation import evaluate_model
    from ganspacesynth.evaluate.report import _clean, evaluation_markdown
    from ganspacesynth.evaluate.timbre import curve_summary
    from ganspacesynth.synth import Synth

    train_ds, valid_ds = dataset
    torch.manual_seed(0)
    heads = (ConditionSpec("pitch", "categorical", tuple(train_ds.vocab["pitch"])),)
    clf = Classifier(SpectrogramClassifier(ClassifierConfig(heads=heads, spectral=train_ds.spectral)))
    synth = Synth.load(family_model, device="cpu")
    settings = TimbreSettings(pitches=(48, 60), count=4, latents=2)
    metrics, _ = evaluate_model(synth, clf, train_ds, valid_ds, count=6, reference_count=8, batch_size=4,
                                timbre=settings)
    timbre = _clean(metrics["timbre"])
    for key in ("generated", "real"):
        notes = timbre[key]
        for name in ("upper_band_db", "upper_band_change_db", "click_median", "level_dbfs"):
            assert isinstance(notes[name], float) and math.isfinite(notes[name]), (key, name)
        assert notes["count"] == metrics[key]["count"]
        assert sum(v["count"] for v in notes["f0_band_accuracy"].values()) == notes["count"]
    assert timbre["real"]["click_median"] < 0.03 and timbre["real"]["start_spikes"] == 0  # faded-in tones
    # the real notes are all 6 held-out ones here
    valid_waves = valid_ds.audio.take(np.arange(len(valid_ds))).astype(np.float32) / 32767.0
    assert timbre["real"]["level_dbfs"] == pytest.approx(float(np.median(level_dbfs(valid_waves))), abs=1e-6)
    div = timbre["diversity"]
    assert div["pitches"] == [48, 60] and all(math.isfinite(div[k]) for k in ("generated_db", "real_db", "ratio"))
    effect = timbre["condition_effect"]["instrument_family"]
    assert all(math.isfinite(effect[k]) for k in ("generated_db", "real_db", "ratio", "within_class_db"))
    json.dumps(timbre)  # JSON-safe
    summary = curve_summary(timbre)
    assert summary["diversity_ratio"] == div["ratio"] and summary["family_effect_ratio"] == effect["ratio"]
    assert curve_summary(timbre, "real")["diversity_ratio"] == 1.0
    text = evaluation_markdown(_clean(metrics))
    assert "## Timbre" in text and f"| {_fmt_ratio(div['ratio'])} | 1 |" in text
    # Deterministic given the seed; skipping the generated measures leaves the other numbers alone.
    again, _ = evaluate_model(synth, clf, train_ds, valid_ds, count=6, reference_count=8, batch_size=4, timbre=None,
                              f0=None)
    assert again["timbre"]["diversity"] is None and again["timbre"]["condition_effect"] is None
    assert again["timbre"]["generated"] == {k: v for k, v in metrics["timbre"]["generated"].items()
                                            if k != "f0_band_accuracy"}
    assert again["generated"]["fid"] == metrics["generated"]["fid"]
    assert diversity(synth, train_ds, valid_ds, settings, seed=0, batch_size=4) == metrics["timbre"]["diversity"]
    assert "not measured" in evaluation_markdown(_clean(again))


def _fmt_ratio(x: float) -> str:
    return f"{x:.2f}"
