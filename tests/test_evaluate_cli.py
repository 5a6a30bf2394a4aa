"""train-classifier, evaluate and describe end to end on a tiny model and a small dataset of tones."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers import SPECTRAL, tone

from ganspacesynth.data.labels import Note
from ganspacesynth.data.shards import build_dataset
from ganspacesynth.evaluate.classifier import load_classifier
from ganspacesynth.evaluate.report import _fmt
from ganspacesynth.ganspace.components import Components
from ganspacesynth.interfaces.cli import main

PITCHES = (48, 55, 60, 67)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """8 instruments (2 families) × 4 pitches; the validation split holds whole instruments."""
    notes = []
    for i in range(8):
        for p in PITCHES:
            notes.append(Note(id=f"inst{i}-{p}", instrument=f"inst{i}", pitch=p, source=("array", tone(p, seed=10 * i + p,
                              decay=1.0 + i % 3)), velocity=100, instrument_family=("bass", "flute")[i % 2],
                              instrument_source="acoustic", qualities=[]))
    out = tmp_path_factory.mktemp("evalcli") / "ds"
    build_dataset(out, notes, SPECTRAL, built_from={"kind": "test"}, valid_fraction=0.25, workers=1, progress=False)
    return out


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.integration
@pytest.mark.slow
def test_train_classifier_evaluate_and_describe(dataset_dir, tiny_model_path, tmp_path):
    clf = tmp_path / "clf.safetensors"
    res = run("train-classifier", "--data", dataset_dir, "--steps", 30, "--batch-size", 8, "--out", clf)
    assert res.exit_code == 0, res.output
    # The file holds both heads and the held-out accuracies the command printed (8 held-out notes).
    saved = load_classifier(clf)
    assert [h.name for h in saved.config.heads] == ["pitch", "instrument_family"]
    assert saved.metrics["heldout_notes"] == 8
    for head in ("pitch", "instrument_family"):
        acc = saved.metrics["heldout_accuracy"][head]
        assert 0.0 <= acc <= 1.0
        assert f"held-out {head} accuracy: {acc:.3f} on 8 notes" in res.output

    report = tmp_path / "report"
    res = run("evaluate", "--model", tiny_model_path, "--data", dataset_dir, "--classifier", clf, "--count", 10,
              "--reference-count", 12, "--batch-size", 4, "--out", report)
    assert res.exit_code == 0, res.output
    metrics = json.loads((report / "metrics.json").read_text())
    for key in ("generated", "real"):
        m = metrics[key]
        assert 0.0 <= m["pitch_accuracy"] <= 1.0 and m["fid"] >= 0 and m["inception_score"] >= 1.0 - 1e-9
        assert set(m["condition_accuracy"]) == {"pitch", "instrument_family"}
        assert m["ndb"]["bins"] == metrics["setup"]["ndb_bins"]
    # Real notes: all 8 held-out ones (2 instruments × 4 pitches); generated notes cycle through their labels.
    assert metrics["generated"]["count"] == 10 and metrics["real"]["count"] == 8
    # The held-out notes are clean harmonic tones: the f0 tracker finds every pitch.
    assert metrics["real"]["f0"]["f0_accuracy"] == 1.0
    assert metrics["per_pitch"]["pitches"] == list(PITCHES)
    for name in ("examples.png", "accuracy_per_pitch.png"):
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert len(list((report / "audio").glob("*.wav"))) == 6 + 6
    # The report shows the numbers of metrics.json.
    text = (report / "report.md").read_text()
    g, r = metrics["generated"], metrics["real"]
    assert f"| pitch accuracy (classifier) ↑ | {_fmt(g['pitch_accuracy'])} | {_fmt(r['pitch_accuracy'])} |" in text
    assert f"| {_fmt(g['fid'], 2)} | {_fmt(r['fid'], 2)} |" in text
    # Timbre (tests/test_evaluate_timbre.py checks the numbers): in metrics.json, the report and the summary line.
    timbre = metrics["timbre"]
    assert timbre["generated"]["count"] == 10 and timbre["diversity"]["pitches"] == [48, 60]
    assert timbre["condition_effect"] is None  # the tiny model has pitch only
    assert "## Timbre" in text and "no categorical condition other than pitch" in text
    assert "timbre diversity" in res.output and "click median" in res.output

    res = run("evaluate", "--model", tiny_model_path, "--data", dataset_dir, "--classifier", clf, "--count", 4,
              "--out", report)
    assert res.exit_code == 1 and "already exists" in res.output and "Traceback" not in res.output

    comps_path = tmp_path / "comps.npz"
    res = run("ganspace", "--model", tiny_model_path, "--random-z-count", 64, "--components", 4, "--pitch", 60,
              "--out", comps_path)
    assert res.exit_code == 0, res.output
    res = run("describe", "--model", tiny_model_path, "--components", comps_path, "--top", 2, "--latents", 1,
              "--pitch", 60, "--values", "-2,0,2", "--overwrite", "--report", tmp_path / "describe")
    assert res.exit_code == 0, res.output
    comps = Components.load(comps_path)
    assert len(comps.descriptions) == 2
    for d in comps.descriptions:
        assert isinstance(d["label"], str) and d["values"] == [-2.0, 0.0, 2.0]
        assert set(d["stats"]) >= {"centroid_hz", "loudness_db", "sustain_s"}
        centroid = d["stats"]["centroid_hz"]["curve"]
        # one measured centroid per value, inside the audible band of a 16 kHz model
        assert len(centroid) == 3 and all(0 < c < 8000 for c in centroid), centroid
    for name in ("descriptor_curves.png", "variance_explained.png"):
        assert (tmp_path / "describe" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


@pytest.mark.heavy
def test_bad_inputs_are_one_line_errors(dataset_dir, tiny_model_path, tmp_path):
    res = run("train-classifier", "--data", dataset_dir, "--head", "qualities", "--out", tmp_path / "c.safetensors")
    assert res.exit_code == 1 and "qualities" in res.output and "Traceback" not in res.output
    res = run("evaluate", "--model", tiny_model_path, "--data", dataset_dir, "--classifier", tmp_path / "none.safetensors",
              "--out", tmp_path / "r")
    assert res.exit_code == 1 and "classifier file not found" in res.output
    assert not (tmp_path / "r").exists()
    res = run("describe", "--model", tiny_model_path, "--components", tmp_path / "none.npz", "--values", "1,2")
    assert res.exit_code == 1 and "at least 3" in res.output
