"""`dataset make`: note folders, NSynth json/wav and TFRecords; validation that fails cleanly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner
from helpers import N, SPECTRAL, SR, nsynth_example, tf_example, tone, write_note_folder, write_tfrecord

from ganspacesynth.audio.spectral import MelIF
from ganspacesynth.data.dataset import SpectrogramDataset, read_manifest
from ganspacesynth.data.make import make_dataset
from ganspacesynth.data.nsynth import NSynthFilter
from ganspacesynth.data.validate import InputProblems
from ganspacesynth.interfaces.cli import main


@pytest.mark.heavy
def test_make_from_note_folder(tmp_path):
    paths = write_note_folder(tmp_path / "notes")
    out = tmp_path / "ds"
    header = make_dataset(tmp_path / "notes", out, spectral=SPECTRAL, workers=1, valid_fraction=0.34, progress=False)
    m = read_manifest(out)
    assert m["count"] == 9 and header["splits"] == {"train": 6, "valid": 3}
    # split by instrument: each instrument's three notes are all in one split
    splits = {}
    for e in m["examples"]:
        splits.setdefault(e["instrument"], set()).add(e["split"])
    assert all(len(s) == 1 for s in splits.values()) and sorted(splits) == ["bell", "flute", "horn"]
    assert m["vocab"]["pitch"] == [str(p) for p in range(48, 61)]
    assert "instrument_family" not in m["vocab"]  # folders carry no family labels
    assert m["spectral"] == SPECTRAL.to_dict()
    # the stored spectrograms are MelIF of the stored audio, which is the file's audio
    ds = SpectrogramDataset(out, split="all")
    for i, e in enumerate(ds.examples):
        wav, _ = sf.read(tmp_path / "notes" / f"{e['id']}.wav", dtype="int16")
        np.testing.assert_array_equal(ds.audio[i], wav)
        expected = MelIF(SPECTRAL).waves_to_specgrams(torch.from_numpy(wav[None].astype(np.float32) / 32768))[0]
        err = np.abs(ds.specs[i].astype(np.float32) - expected.numpy())
        assert err.max() < 4e-3  # float16 storage of values within about ±1
    assert len(paths) == 9


@pytest.mark.heavy
def test_make_parallel_equals_serial(tmp_path):
    write_note_folder(tmp_path / "notes", instruments=("a", "b"), pitches=tuple(range(40, 60, 2)))
    make_dataset(tmp_path / "notes", tmp_path / "one", spectral=SPECTRAL, workers=1, progress=False)
    make_dataset(tmp_path / "notes", tmp_path / "two", spectral=SPECTRAL, workers=2, progress=False)
    a, b = SpectrogramDataset(tmp_path / "one", "all"), SpectrogramDataset(tmp_path / "two", "all")
    assert [e["id"] for e in a.examples] == [e["id"] for e in b.examples]
    np.testing.assert_array_equal(np.asarray(a.specs), np.asarray(b.specs))


def _bad_folder(root):
    write_note_folder(root, instruments=("ok",), pitches=(60,))
    sf.write(root / "rate_60.wav", tone(60, n=N, sr=22050), 22050)
    sf.write(root / "short_60.wav", tone(60, n=N - 1), SR)
    sf.write(root / "stereo_60.wav", np.stack([tone(60)] * 2, 1), SR)
    sf.write(root / "eightbit_60.wav", tone(60), SR, subtype="PCM_U8")
    bad = tone(60)
    bad[100] = np.nan
    sf.write(root / "nan_60.wav", bad, SR, subtype="FLOAT")
    sf.write(root / "silent_60.wav", np.zeros(N, np.float32), SR)
    sf.write(root / "nopitch.wav", tone(60), SR)
    (root / "sub").mkdir()
    sf.write(root / "sub" / "ok_60.wav", tone(60), SR)  # same id as ok_60.wav
    (root / "broken_60.wav").write_bytes(b"RIFF\x00\x00garbage")
    return {"rate_60": "sample rate 22050", "short_60": f"length {N - 1}", "stereo_60": "2 channels",
            "eightbit_60": "PCM_U8", "nan_60": "NaN", "silent_60": "silent", "nopitch": "no pitch",
            "sub/ok_60": "duplicate id", "broken_60": "cannot read"}


def test_make_reports_every_problem_and_writes_nothing(tmp_path):
    expected = _bad_folder(tmp_path / "bad")
    out = tmp_path / "ds"
    with pytest.raises(InputProblems) as info:
        make_dataset(tmp_path / "bad", out, spectral=SPECTRAL, workers=1, progress=False)
    problems = info.value.problems
    assert len(problems) == len(expected)
    for name, what in expected.items():
        assert any(p.startswith(name) and what in p for p in problems), (name, problems)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["bad"]


def test_make_cli_lists_problems(tmp_path):
    _bad_folder(tmp_path / "bad")
    result = CliRunner().invoke(main, ["dataset", "make", str(tmp_path / "bad"), str(tmp_path / "ds"),
                                       "--preset", "tiny", "--workers", "1"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "nan_60.wav: contains NaN" in result.output and "9 problems" in result.output
    assert not (tmp_path / "ds").exists()


def _nsynth_notes():
    notes = []
    for inst, fam, src in (("guitar_acoustic_001", 3, 0), ("keyboard_electronic_002", 4, 1), ("flute_acoustic_003", 2, 0)):
        for pitch in (20, 50, 60, 90):
            q = [0] * 10
            q[pitch % 10] = 1
            notes.append((f"{inst}-{pitch:03d}-100", pitch, fam, src, q))
    return notes


def test_make_from_nsynth_json_release(tmp_path):
    root = tmp_path / "nsynth-test"
    (root / "audio").mkdir(parents=True)
    examples = {}
    for k, (note_id, pitch, fam, src, q) in enumerate(_nsynth_notes()):
        sf.write(root / "audio" / f"{note_id}.wav", tone(pitch, n=64000, seed=k), SR, subtype="PCM_16")
        examples[note_id] = {"note_str": note_id, "pitch": pitch, "velocity": 100, "instrument_str": note_id[:-8],
                             "instrument_family": fam, "instrument_source": src, "qualities": q, "sample_rate": SR}
    (root / "examples.json").write_text(json.dumps(examples))
    out = tmp_path / "ds"
    make_dataset(root, out, spectral=SPECTRAL, workers=1, valid_fraction=0.0, progress=False)
    m = read_manifest(out)
    # Magenta's defaults: pitches 24..84, acoustic only → 2 instruments × pitches 50, 60
    assert sorted(e["id"] for e in m["examples"]) == sorted(
        n[0] for n in _nsynth_notes() if 24 <= n[1] <= 84 and n[3] == 0)
    e = next(e for e in m["examples"] if e["id"] == "guitar_acoustic_001-060-100")
    assert (e["instrument_family"], e["instrument_source"], e["velocity"]) == ("guitar", "acoustic", 100)
    assert e["qualities"] == ["bright"] and e["instrument"] == "guitar_acoustic_001"
    ds = SpectrogramDataset(out, "train")
    assert ds.audio.shape == (4, N)  # cropped to the tiny length, as Magenta's crop_or_pad
    assert ds.labels["qualities"].shape == (4, 10) and ds.labels["qualities"].sum() == 4
    # a missing wav is reported, nothing written
    (root / "audio" / "flute_acoustic_003-050-100.wav").unlink()
    with pytest.raises(InputProblems, match="flute_acoustic_003-050-100.wav: missing"):
        make_dataset(root, tmp_path / "ds2", spectral=SPECTRAL, workers=1, progress=False)
    assert not (tmp_path / "ds2").exists()


def test_make_from_official_tfrecord_with_filters(tmp_path):
    records, audio = [], {}
    for k, (note_id, pitch, fam, src, q) in enumerate(_nsynth_notes()):
        audio[note_id] = tone(pitch, n=64000, seed=k)
        records.append(tf_example(nsynth_example(note_id, pitch, audio[note_id], fam, src, qualities=q)))
    write_tfrecord(tmp_path / "nsynth-valid.tfrecord", records)
    out = tmp_path / "ds"
    filt = NSynthFilter(min_pitch=24, max_pitch=84, sources=None, families=("guitar", "keyboard"))
    make_dataset(tmp_path / "nsynth-valid.tfrecord", out, spectral=SPECTRAL, nsynth_filter=filt, workers=1,
                 valid_fraction=0.5, progress=False)
    m = read_manifest(out)
    ids = sorted(e["id"] for e in m["examples"])
    assert ids == sorted(n[0] for n in _nsynth_notes() if 24 <= n[1] <= 84 and n[2] in (3, 4))
    assert m["built_from"]["filtered_out"] == 8
    ds = SpectrogramDataset(out, "all")
    for i, e in enumerate(ds.examples):
        expected = np.round(np.clip(audio[e["id"]][:N], -1, 1) * 32767).astype(np.int16)
        np.testing.assert_array_equal(ds.audio[i], expected)
    e = m["examples"][0]
    assert e["instrument_source"] in ("acoustic", "electronic") and e["velocity"] == 100


def test_make_from_course_tfrecord_and_meta(tmp_path):
    """The original course scripts' data.tfrecord + meta.json (placeholder family/source/qualities)."""
    root = tmp_path / "course-train"
    root.mkdir()
    meta, records = {}, []
    for k, (inst, pitch) in enumerate([("drone", 32), ("drone_b", 32), ("bell", 40)]):
        wave = tone(pitch, n=64000, seed=k)
        meta[f"{inst}_{pitch}"] = {"instrument_str": inst, "pitch": pitch, "instrument_source": 0,
                                   "instrument_family": 0, "qualities": [0] * 10}
        records.append(tf_example({"pitch": [pitch], "audio": wave, "qualities": [0] * 10,
                                   "instrument_source": [0], "instrument_family": [0]}))
    write_tfrecord(root / "data.tfrecord", records)
    (root / "meta.json").write_text(json.dumps(meta, indent=4))
    out = tmp_path / "ds"
    make_dataset(root, out, spectral=SPECTRAL, workers=1, valid_fraction=0.0, progress=False)
    m = read_manifest(out)
    assert [(e["id"], e["instrument"], e["pitch"]) for e in m["examples"]] == [
        ("drone_32", "drone", 32), ("drone_b_32", "drone_b", 32), ("bell_40", "bell", 40)]
    assert m["examples"][0]["instrument_family"] is None and "instrument_family" not in m["vocab"]
    # a meta.json that disagrees with the records is an error
    meta["drone_32"]["pitch"] = 33
    (root / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(InputProblems, match="differs from meta.json"):
        make_dataset(root, tmp_path / "ds2", spectral=SPECTRAL, workers=1, progress=False)


def test_make_refuses_corrupt_tfrecord(tmp_path):
    write_tfrecord(tmp_path / "x.tfrecord", [tf_example({"pitch": [60], "audio": tone(60)})])
    data = (tmp_path / "x.tfrecord").read_bytes()
    (tmp_path / "x.tfrecord").write_bytes(data[: len(data) // 2])
    result = CliRunner().invoke(main, ["dataset", "make", str(tmp_path / "x.tfrecord"), str(tmp_path / "ds"),
                                       "--preset", "tiny"])
    assert result.exit_code == 1 and "truncated" in result.output and not (tmp_path / "ds").exists()


@pytest.mark.heavy
def test_chop_then_make_keeps_sources_together(tmp_path):
    """chop → make: clips of one recording share a split; chop.json's pitch confidence reaches the manifest."""
    from ganspacesynth.data.folder import chop

    src = tmp_path / "rec"
    src.mkdir()
    for k, pitch in enumerate((50, 57, 64, 71)):
        sf.write(src / f"take{k}.wav", tone(pitch, n=4 * N, decay=0.05, seed=k), SR)
    chop(src, tmp_path / "clips", length=N, step=N // 2, sample_rate=SR, pitch=60)
    side = json.loads((tmp_path / "clips" / "chop.json").read_text())
    assert side["clips"][0]["pitch_confidence"] is None  # fixed pitch: no estimate
    side["clips"][0]["pitch_confidence"] = 0.75  # as --pitch auto would record it
    (tmp_path / "clips" / "chop.json").write_text(json.dumps(side))
    make_dataset(tmp_path / "clips", tmp_path / "ds", spectral=SPECTRAL, workers=1, valid_fraction=0.25,
                 progress=False)
    m = read_manifest(tmp_path / "ds")
    assert m["count"] == 4 * 7  # 4 N samples, step N/2 → 7 clips per take
    by_take = {}
    for e in m["examples"]:
        by_take.setdefault(e["id"].split("_")[0], set()).add(e["split"])
    assert all(len(s) == 1 for s in by_take.values()) and m["splits"]["valid"] == 7
    first = next(e for e in m["examples"] if e["id"] == "take0_1_60")
    assert first["pitch_confidence"] == 0.75
    # A clip's instrument is the recording it was cut from: 4 instruments, not 28.
    assert first["instrument"] == "take0" and sorted(m["vocab"]["instrument"]) == ["take0", "take1", "take2", "take3"]
    assert all("pitch_confidence" not in e for e in m["examples"] if e["id"] != "take0_1_60")


def test_make_cli_says_when_nothing_is_held_out(tmp_path):
    # One instrument (like the clips of one recording): a split by instrument holds nothing out; the user is told.
    (tmp_path / "clips").mkdir()
    for pitch in (48, 52, 55):
        sf.write(tmp_path / "clips" / f"guitar_{pitch}.wav", tone(pitch), SR, subtype="PCM_16")
    result = CliRunner().invoke(main, ["dataset", "make", str(tmp_path / "clips"), str(tmp_path / "ds"),
                                       "--preset", "tiny", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert read_manifest(tmp_path / "ds")["splits"] == {"train": 3, "valid": 0}
    assert "no notes are held out for validation" in result.output
