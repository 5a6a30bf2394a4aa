"""The hallucinate and midi commands as a user runs them: outputs, exact re-rendering, one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from ganspacesynth.interfaces.cli import main

ENV = ["--attack", "0.05", "--sustain", "0.2", "--release", "0.1"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.heavy
def test_hallucinate_writes_wav_and_score_and_rerenders_exactly(tiny_model_path, tmp_path):
    out = tmp_path / "piece.wav"
    res = invoke("hallucinate", "--model", tiny_model_path, "--out", out, "--notes", 3, "--steps", 2,
                 "--spacing", 0.25, "--pitch", 48, "--seed", 9, *ENV)
    assert res.exit_code == 0, res.output
    audio, sr = sf.read(out, dtype="float32")
    assert sr == 16000 and len(audio) == round(6 * 0.25 * sr) + 800 + 3200 + 1600
    score = json.loads((tmp_path / "piece.score.json").read_text())
    assert score["seed"] == 9 and score["note_count"] == 7 and len(score["steps"]) == 3
    assert score["steps"][0]["pitch"] == 48
    res = invoke("hallucinate", "--model", tiny_model_path, "--from", tmp_path / "piece.score.json",
                 "--out", tmp_path / "again.wav")
    assert res.exit_code == 0, res.output
    np.testing.assert_array_equal(sf.read(tmp_path / "again.wav", dtype="float32")[0], audio)
    assert (tmp_path / "piece.wav").read_bytes() == (tmp_path / "again.wav").read_bytes()
    # Without --model the score's own model file is used (not the bundled default), so it still re-renders.
    assert score["model"]["path"] == str(Path(tiny_model_path).resolve())
    res = invoke("hallucinate", "--from", tmp_path / "piece.score.json", "--out", tmp_path / "third.wav")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "third.wav").read_bytes() == (tmp_path / "piece.wav").read_bytes()


@pytest.mark.parametrize("args,message", [
    (["--attack", 0.5, "--sustain", 0.5, "--release", 0.5], "is longer than this model's notes"),  # 1.5 s > 1.024 s
    (["--notes", 40, "--steps", 30, *ENV], "1210 notes requested; the limit is 1024"),
    (["--notes", 3, "--spacing", 100, "--max-seconds", 60, *ENV], "limit is 60 s"),
    (["--pitch", 90, *ENV], "outside this model's range 24..84"),
    (["--components", "c.npz", *ENV], "--components is for the GANSpace mode"),
    (["--score", "s.json", *ENV], "score file not found: s.json"),
    (["--from", "x.json", "--seed", 3], "do not combine it with --seed"),
    (["--from", "missing.score.json"], "score file not found"),
    (["--condition", "instrument_family=guitar", *ENV], "this model has no condition 'instrument_family' (it has: pitch)"),
    (["--condition", "guitar", *ENV], "--condition expects name=value"),
    (["--from", "x.json", "--condition", "instrument_family=guitar"], "do not combine it with --condition"),
])
def test_hallucinate_refusals_are_one_line(tiny_model_path, tmp_path, args, message):
    out = tmp_path / "x.wav"
    res = invoke("hallucinate", "--model", tiny_model_path, "--out", out, *args)
    assert res.exit_code == 1, res.output
    assert message in res.output and "Traceback" not in res.output
    assert res.output.strip().count("\n") == 0
    assert not out.exists() and not (tmp_path / "x.score.json").exists()


FAMILY_PIECE = ["--notes", 2, "--steps", 1, "--spacing", 0.2, "--pitch", 60, "--seed", 3, *ENV]


@pytest.mark.heavy
def test_hallucinate_plays_every_note_with_the_condition_given(family_synth, tmp_path):
    from ganspacesynth.compose.hallucinate import HallucinationSettings, plan_latent, render

    model = family_synth.path
    audio = {}
    for family in ("bass", "guitar"):
        out = tmp_path / f"{family}.wav"
        res = invoke("hallucinate", "--model", model, "--out", out, *FAMILY_PIECE,
                     "--condition", f"instrument_family={family}")
        assert res.exit_code == 0, res.output
        assert f"instrument_family={family}" in res.output
        score = json.loads((tmp_path / f"{family}.score.json").read_text())
        assert score["conditions"] == {"instrument_family": family} and score["format_version"] == 1
        audio[family], sr = sf.read(out, dtype="float32")
        # the notes the library plays with that family (the WAV is 16-bit)
        params = HallucinationSettings.make(notes=2, steps=1, spacing=0.2, pitch=60, seed=3, attack=0.05,
                                            sustain=0.2, release=0.1)
        expected, _ = render(family_synth, plan_latent(family_synth, params,
                                                       conditions={"instrument_family": family}))
        np.testing.assert_allclose(audio[family], expected, atol=2 / 32768)
    assert np.abs(audio["bass"] - audio["guitar"]).max() > 0.1  # the same seed, another family
    # --from replays the conditions bit for bit
    res = invoke("hallucinate", "--model", model, "--from", tmp_path / "guitar.score.json", "--out", tmp_path / "again.wav")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "again.wav").read_bytes() == (tmp_path / "guitar.wav").read_bytes()
    # a steps file's conditions, overridden name by name by --condition
    steps = json.loads((tmp_path / "guitar.score.json").read_text())
    steps = {"steps": steps["steps"], "conditions": {"instrument_family": "organ"}}
    (tmp_path / "steps.json").write_text(json.dumps(steps))
    for extra, family in (([], "organ"), (["--condition", "instrument_family=guitar"], "guitar")):
        out = tmp_path / f"steps-{family}.wav"
        res = invoke("hallucinate", "--model", model, "--score", tmp_path / "steps.json", "--out", out,
                     "--steps", 1, "--spacing", 0.2, *ENV, *extra)
        assert res.exit_code == 0, res.output
        assert json.loads(out.with_suffix(".score.json").read_text())["conditions"] == {"instrument_family": family}
    assert (tmp_path / "steps-guitar.wav").read_bytes() == (tmp_path / "guitar.wav").read_bytes()


@pytest.mark.parametrize("condition,message", [
    ("instrument_family=kazoo", "instrument_family='kazoo' is not known to this model (choose from: bass, guitar, organ)"),
    ("timbre=warm", "this model has no condition 'timbre' (it has: pitch, instrument_family)"),
    ("pitch=60", "the pitch is not one of the conditions"),
])
def test_hallucinate_bad_condition_is_one_line_and_writes_nothing(family_synth, tmp_path, condition, message):
    out = tmp_path / "x.wav"
    res = invoke("hallucinate", "--model", family_synth.path, "--out", out, *FAMILY_PIECE, "--condition", condition)
    assert res.exit_code == 1, res.output
    assert message in res.output and "Traceback" not in res.output
    assert res.output.strip().count("\n") == 0
    assert not out.exists() and not (tmp_path / "x.score.json").exists()


def test_limit_refused_before_loading_the_model(tmp_path):
    res = invoke("hallucinate", "--model", tmp_path / "does-not-exist.safetensors", "--out", tmp_path / "x.wav",
                 "--notes", 5, "--max-notes", 4, *ENV)
    assert res.exit_code == 1 and "limit is 4" in res.output


def _song(path):
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=500_000))
    tr.append(mido.Message("note_on", note=60, velocity=100, time=240))   # 0.25 s
    tr.append(mido.Message("note_on", note=110, velocity=100, time=0))   # out of range
    tr.append(mido.Message("note_off", note=60, time=480))               # 0.75 s
    tr.append(mido.Message("note_off", note=110, time=0))
    tr.append(mido.Message("note_on", note=67, velocity=60, time=0))
    tr.append(mido.Message("note_on", note=67, velocity=0, time=240))    # velocity 0 = off, at 1.0 s
    mid.save(str(path))
    return path


@pytest.mark.heavy
def test_midi_command(tiny_model_path, tmp_path):
    song = _song(tmp_path / "song.mid")
    out = tmp_path / "song.wav"
    res = invoke("midi", "--model", tiny_model_path, "--seed", 2, song, out)
    assert res.exit_code == 0, res.output
    assert "skipped 1 of 3 notes outside the model's pitch range 24..84" in res.output
    audio, sr = sf.read(out, dtype="float32")
    onset_60 = 4000
    assert not audio[:onset_60 + 1].any() and audio[onset_60 + 1: onset_60 + 40].any()
    assert len(audio) == 12000 + 160 + (4000 - 160) + 4800  # last note: onset 0.75 s, 0.25 s long, release
    res2 = invoke("midi", "--model", tiny_model_path, "--seed", 2, song, tmp_path / "again.wav")
    assert res2.exit_code == 0
    assert out.read_bytes() == (tmp_path / "again.wav").read_bytes()


def test_midi_refusals(tiny_model_path, tmp_path):
    song = _song(tmp_path / "song.mid")
    res = invoke("midi", "--model", tiny_model_path, "--max-notes", 1, song, tmp_path / "o.wav")
    assert res.exit_code == 1 and "2 notes requested; the limit is 1" in res.output
    res = invoke("midi", "--model", tiny_model_path, "--coeffs", "1,2", song, tmp_path / "o.wav")
    assert res.exit_code == 1 and "--components and --coeffs go together" in res.output
    res = invoke("midi", "--model", tiny_model_path, tmp_path / "none.mid", tmp_path / "o.wav")
    assert res.exit_code == 1 and "MIDI file not found" in res.output
    assert not (tmp_path / "o.wav").exists()
