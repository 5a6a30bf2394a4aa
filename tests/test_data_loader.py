"""SpectrogramDataset, DeviceBatcher and condition specs over a small built dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import SPECTRAL, tone

from ganspacesynth.data.dataset import DeviceBatcher, SpectrogramDataset, condition_specs
from ganspacesynth.data.labels import Note
from ganspacesynth.data.shards import build_dataset
from ganspacesynth.errors import UserError
from ganspacesynth.model.conditions import ConditionSet


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """Unbalanced pitches: 12 notes at 60, 3 at 62, 3 at 64; 6 instruments; families and qualities."""
    notes = []
    pitches = [60] * 12 + [62] * 3 + [64] * 3
    for k, p in enumerate(pitches):
        inst = f"inst{k % 6}"
        notes.append(Note(id=f"{inst}-{k:02d}", instrument=inst, pitch=p, source=("array", tone(p, seed=k)),
                          velocity=100, instrument_family=("bass", "flute")[k % 2], instrument_source="acoustic",
                          qualities=["bright"] if k % 3 == 0 else []))
    out = tmp_path_factory.mktemp("loader") / "ds"
    build_dataset(out, notes, SPECTRAL, built_from={"kind": "test"}, valid_fraction=0.34, workers=1, shard_size=5,
                  chunk_size=2, progress=False)
    return out


@pytest.mark.heavy
def test_dataset_splits_labels_and_shards(dataset_dir):
    train, valid, full = (SpectrogramDataset(dataset_dir, s) for s in ("train", "valid", "all"))
    assert len(train) + len(valid) == len(full) == 18
    assert {e["instrument"] for e in train.examples}.isdisjoint({e["instrument"] for e in valid.examples})
    assert len(full.manifest["shards"]) >= 3  # shard_size 5 → several shards, rows gathered across them
    assert full.specs.shape == (18, 2, 128, 256) and full.specs.dtype == np.float16
    np.testing.assert_array_equal(np.asarray(valid.specs), np.asarray(full.specs)[len(train):])
    assert full.vocab["pitch"] == ["60", "61", "62", "63", "64"]
    assert full.labels["pitch"].tolist() == [full.vocab["pitch"].index(str(e["pitch"])) for e in full.examples]
    fam = full.labels["instrument_family"]
    assert [full.vocab["instrument_family"][i] for i in fam] == [e["instrument_family"] for e in full.examples]
    q = full.labels["qualities"]
    assert q.shape == (18, 10) and q[:, 0].tolist() == [int("bright" in e["qualities"]) for e in full.examples]
    spec, labels = full[3]
    assert spec.dtype == torch.float32 and labels["pitch"].item() == full.labels["pitch"][3]


def test_condition_specs_feed_condition_set(dataset_dir):
    ds = SpectrogramDataset(dataset_dir, "train")
    specs = condition_specs(ds, ["instrument_family", "qualities", "pitch"])
    assert [s.name for s in specs] == ["pitch", "instrument_family", "qualities"]
    assert specs[2].kind == "multilabel" and specs[0].classes == ("60", "61", "62", "63", "64")
    batcher = DeviceBatcher(ds, "cpu", batch_size=4, seed=1)
    _, labels = batcher.batch()
    vec = ConditionSet(specs).encode(labels)
    assert vec.shape == (4, 5 + 11 + 10)
    with pytest.raises(UserError, match="velocity"):
        condition_specs(ds, ["velocity"])


def test_batcher_epochs_balance_and_preload(dataset_dir):
    ds = SpectrogramDataset(dataset_dir, "all")
    b = DeviceBatcher(ds, "cpu", batch_size=4, seed=0, preload=False)
    rows = np.concatenate([b.next_indices() for _ in range(9)])  # 36 rows = two epochs of 18
    assert sorted(rows[:18]) == list(range(18)) and sorted(rows[18:]) == list(range(18))
    specs, labels = b.batch(np.array([5, 0, 17]))
    np.testing.assert_array_equal(specs.numpy(), np.asarray(ds.specs)[[5, 0, 17]].astype(np.float32))
    assert labels["pitch"].tolist() == ds.labels["pitch"][[5, 0, 17]].tolist()
    assert labels["qualities"].dtype == torch.float32 and "instrument" not in labels

    pre = DeviceBatcher(ds, "cpu", batch_size=4, seed=0, preload=True, dtype=torch.float16)
    assert pre.preloaded
    s2, _ = pre.batch(np.array([5, 0, 17]))
    assert s2.dtype == torch.float16 and torch.equal(s2.float(), specs)

    pitch = ds.labels["pitch"]
    plain = DeviceBatcher(ds, batch_size=300, seed=3)
    share = np.mean(pitch[plain.next_indices()] == 0)
    assert abs(share - 12 / 18) < 0.1  # follows the data: 2/3 of notes are pitch 60
    balanced = DeviceBatcher(ds, batch_size=300, balanced=True, seed=3)
    counts = np.bincount(pitch[balanced.next_indices()], minlength=5)
    assert counts[1] == counts[3] == 0 and all(abs(c / 300 - 1 / 3) < 0.08 for c in counts[[0, 2, 4]])


def test_spectral_mismatch_and_bad_paths(dataset_dir, tmp_path):
    ds = SpectrogramDataset(dataset_dir, "train")
    ds.check_spectral(SPECTRAL)
    from ganspacesynth.audio.spectral import SpectralConfig

    with pytest.raises(UserError, match="audio_length"):
        ds.check_spectral(SpectralConfig())
    with pytest.raises(UserError, match="not a dataset"):
        SpectrogramDataset(tmp_path)
    with pytest.raises(UserError, match="split"):
        SpectrogramDataset(dataset_dir, "test")


def test_building_in_process_keeps_the_callers_threads(tmp_path):
    # Worker processes run single-threaded; an in-process build (workers=1) must not leave the caller
    # (an evaluation or training that builds a set first) on one thread.
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        notes = [Note(id=f"t{i}", instrument=f"i{i % 2}", pitch=60, velocity=100, source=("array", tone(60 + i)))
                 for i in range(4)]
        build_dataset(tmp_path / "ds", notes, SPECTRAL, built_from={"kind": "test"}, valid_fraction=0.5, workers=1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
