"""The evaluation classifier: learns pitch from spectrograms, falls to chance on labels without information,
round-trips through its safetensors file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from ganspacesynth.audio.spectral import MelIF
from ganspacesynth.errors import UserError
from ganspacesynth.evaluate.classifier import ClassifierConfig, evaluate_heads, heads_for_dataset, load_classifier, \
    save_classifier, train_classifier
from ganspacesynth.conditions import ConditionSpec
from ganspacesynth.model.config import tiny_spectral

pytestmark = pytest.mark.heavy  # its tests take over about 1 s each: outside the quick tier (docs/DEVELOPING.md)

SPECTRAL = tiny_spectral()
PITCHES = (48, 55, 60, 67)


def notes(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic notes with random timbre and decay; pitch class i % 4."""
    rng = np.random.default_rng(seed)
    sr, n = SPECTRAL.sample_rate, SPECTRAL.audio_length
    t = np.arange(n) / sr
    waves, labels = [], []
    for i in range(count):
        k = i % len(PITCHES)
        f0 = 440 * 2 ** ((PITCHES[k] - 69) / 12)
        amps = rng.uniform(0, 1, 12)
        w = sum(a * np.sin(2 * np.pi * f0 * (h + 1) * t + rng.uniform(0, 6)) for h, a in enumerate(amps))
        w = w * np.exp(-rng.uniform(0.5, 4) * t) * np.minimum(1, t / 0.01)
        waves.append(0.3 * w / np.abs(w).max() + rng.normal(0, 1e-3, n))
        labels.append(k)
    specs = MelIF(SPECTRAL).waves_to_specgrams(np.array(waves, np.float32)).numpy().astype(np.float16)
    return specs, np.array(labels)


@pytest.fixture(scope="module")
def data():
    return notes(96, 0), notes(64, 1)


def small_config() -> ClassifierConfig:
    head = ConditionSpec("pitch", "categorical", tuple(str(p) for p in PITCHES))
    return ClassifierConfig(heads=(head,), spectral=SPECTRAL, channels=(8, 16, 32, 32), embedding=32)


@pytest.mark.slow
def test_learns_pitch_and_round_trips(data, tmp_path):
    (xtr, ytr), (xva, yva) = data
    clf = train_classifier(small_config(), xtr, {"pitch": ytr}, xva, {"pitch": yva}, steps=50, batch_size=16, lr=3e-3)
    assert clf.metrics["heldout_accuracy"]["pitch"] >= 0.9
    assert clf.metrics["chance_accuracy"]["pitch"] == pytest.approx(0.25)
    path = save_classifier(tmp_path / "clf.safetensors", clf)
    loaded = load_classifier(path)
    assert loaded.config == clf.config and loaded.metrics == clf.metrics
    a, b = clf.predict(xva[:8]), loaded.predict(xva[:8])
    np.testing.assert_array_equal(a["pitch"], b["pitch"])
    assert a["embedding"].shape == (8, 32)
    np.testing.assert_allclose(a["pitch"].sum(1), 1.0, rtol=1e-5)
    assert evaluate_heads(loaded, xva, {"pitch": yva})["pitch"] == clf.metrics["heldout_accuracy"]["pitch"]


@pytest.mark.slow
def test_labels_without_information_give_chance_accuracy(data):
    """Each pitch gets every training label equally often, so nothing in the audio predicts the label."""
    (xtr, ytr), (xva, yva) = data
    rng = np.random.default_rng(3)
    shuffled = ytr.copy()
    for k in range(len(PITCHES)):
        rows = np.flatnonzero(ytr == k)
        shuffled[rows] = rng.permutation(np.arange(len(rows)) % len(PITCHES))
    clf = train_classifier(small_config(), xtr, {"pitch": shuffled}, xva, {"pitch": yva}, steps=50, batch_size=16,
                           lr=3e-3)
    # 64 held-out notes at chance 0.25: binomial sd 0.054; 3.5 sd either side.
    assert abs(clf.metrics["heldout_accuracy"]["pitch"] - 0.25) < 0.19


def test_bad_files_and_heads_are_refused(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_classifier(tmp_path / "missing.safetensors")
    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, str(other), metadata={"format": "something-else"})
    with pytest.raises(UserError, match="not a GANSpaceSynth classifier"):
        load_classifier(other)
    newer = tmp_path / "newer.safetensors"
    save_file({"x": torch.zeros(2)}, str(newer), metadata={"format": "ganspacesynth-classifier", "format_version": "99",
                                                           "config": json.dumps(small_config().to_dict())})
    with pytest.raises(UserError, match="version 99"):
        load_classifier(newer)
    vocab = {"pitch": ["60", "61"], "instrument_family": ["bass"], "qualities": ["bright"]}
    assert [h.name for h in heads_for_dataset(vocab, ["instrument_family", "pitch"])] == ["pitch", "instrument_family"]
    with pytest.raises(UserError, match="qualities"):
        heads_for_dataset(vocab, ["qualities"])


@pytest.mark.parametrize("steps", [1, 3, 10, 19])
def test_short_runs_train(data, steps):
    # Very short runs (a first try of `train-classifier --steps 10`) must train, not crash in the LR schedule.
    (xtr, ytr), (xva, yva) = data
    clf = train_classifier(small_config(), xtr, {"pitch": ytr}, xva, {"pitch": yva}, steps=steps, batch_size=8)
    assert clf.metrics["steps"] == steps
