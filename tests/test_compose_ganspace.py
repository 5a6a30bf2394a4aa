"""The GANSpace mode of hallucinate (Hallu step sequencer) and GANSpace-edited MIDI: renders equal the
edits API's notes mixed by hand; steps files, per-step pitch, round trip, CLI and refusals."""

from __future__ import annotations

import json

import mido
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from ganspacesynth.errors import UserError
from ganspacesynth.ganspace.components import Components
from ganspacesynth.ganspace.edits import synthesize
from ganspacesynth.compose.envelope import envelope_curve
from ganspacesynth.compose.hallucinate import (
    HallucinationSettings, Limits, load_score, plan_coefficients, plan_from_score, render, save_score,
)
from ganspacesynth.compose.midi import MidiNote, MidiParams, plan_midi, render_midi
from ganspacesynth.interfaces.cli import main

SHORT = dict(attack=0.05, sustain=0.2, release=0.1)
CURVE = envelope_curve(800, 3200, 1600)


def make_components(synth, k=4, with_z=True, seed=0) -> Components:
    """Orthonormal random directions around the real mean activation of conv0 (enough to test plumbing)."""
    rng = np.random.default_rng(seed)
    act = synth.activations(synth.random_z(64, 123), pitch=60, layer="conv0").reshape(64, -1).numpy()
    q, _ = np.linalg.qr(rng.standard_normal((act.shape[1], k)))
    zq, _ = np.linalg.qr(rng.standard_normal((synth.latent_size, k)))
    return Components(
        comp=q.T, stdev=np.array([2.0, 1.5, 1.0, 0.5][:k]), var_ratio=np.full(k, 0.1), mean=act.mean(0),
        layer="conv0", layer_shape=tuple(synth.generator.layer_shape("conv0")),
        z_comp=zq.T if with_z else None, z_mean=np.zeros(synth.latent_size) if with_z else None,
        meta={"model_fingerprint": synth.fingerprint},
    )


@pytest.fixture(scope="module")
def comps(tiny_synth):
    return make_components(tiny_synth)


def mix_by_hand(waves, spacing_samples):
    out = np.zeros(spacing_samples * (len(waves) - 1) + len(CURVE))
    for i, w in enumerate(waves):
        out[i * spacing_samples:i * spacing_samples + len(CURVE)] += w[:len(CURVE)] * CURVE
    return out


@pytest.mark.parametrize("mode", ["noz", "offset", "latent"])
@pytest.mark.heavy
def test_render_equals_edits_notes_mixed(tiny_synth, comps, mode):
    keys = [[0.0, 0.0, 0.0], [3.0, -2.0, 0.0], [0.0, 1.0, 2.5]]
    params = HallucinationSettings.make(steps=1, spacing=0.2, seed=4, **SHORT)
    plan = plan_coefficients(tiny_synth, keys, [50, 62, 62], params, mode)
    assert plan.pitches == [50, 50, 62, 62, 62]
    audio, score = render(tiny_synth, plan, comps, peak=None)
    coeffs = np.array([keys[0], [1.5, -1.0, 0.0], keys[1], [1.5, -0.5, 1.25], keys[2]])
    z = None if mode == "noz" else tiny_synth.random_z(1, 4)
    waves = synthesize(tiny_synth, comps, coeffs, [50, 50, 62, 62, 62], mode=mode, z=z)
    expected = mix_by_hand(waves, 3200)
    np.testing.assert_allclose(audio, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    assert score["mode"] == mode and [s["pitch"] for s in score["steps"]] == [50, 62, 62]
    assert score["components"]["n_components"] == 4 and score["components"]["layer"] == "conv0"
    assert ("z" in score) == (mode != "noz")


@pytest.mark.heavy
def test_coefficients_move_the_sound(tiny_synth, comps):
    params = HallucinationSettings.make(steps=0, spacing=0.5, seed=1, **SHORT)  # second note starts at sample 8000
    still, _ = render(tiny_synth, plan_coefficients(tiny_synth, [[0.0], [0.0]], None, params, "noz"), comps, peak=None)
    moved, _ = render(tiny_synth, plan_coefficients(tiny_synth, [[0.0], [4.0]], None, params, "noz"), comps, peak=None)
    np.testing.assert_array_equal(still[:8000], moved[:8000])  # the first note is the same
    assert np.abs(still[8000:] - moved[8000:]).max() > 0.05 * np.abs(still).max()


@pytest.mark.heavy
def test_steps_score_round_trip(tiny_synth, comps, tmp_path):
    steps = {"mode": "offset", "steps": [{"coeffs": [1.0, 0.0], "pitch": 60}, {"coeffs": [0.0, -2.0]}],
             "interpolation_steps": 2, "spacing": 0.1, "seed": 12, "pitch": 48, **SHORT}
    plan = plan_from_score(tiny_synth, steps)
    assert plan.pitches == [60, 60, 60, 48] and plan.count == 4
    audio, score = render(tiny_synth, plan, comps)
    again, score2 = render(tiny_synth, plan_from_score(tiny_synth, load_score(save_score(tmp_path / "s.json", score))),
                           comps)
    np.testing.assert_array_equal(again, audio)
    assert score2 == json.loads(json.dumps(score))
    np.testing.assert_array_equal(np.array(score["z"], np.float32), tiny_synth.random_z(1, 12)[0])


def test_refusals_before_generation(tiny_synth, comps):
    params = HallucinationSettings.make(steps=0, seed=1, **SHORT)
    plan = plan_coefficients(tiny_synth, [[0.0] * 5], None, params, "noz")
    with pytest.raises(UserError, match="5 coefficients but the components file has only 4"):
        render(tiny_synth, plan, comps)
    with pytest.raises(UserError, match="needs a components file"):
        render(tiny_synth, plan_coefficients(tiny_synth, [[0.0]], None, params, "noz"))
    no_z = make_components(tiny_synth, with_z=False)
    with pytest.raises(UserError, match="latent directions"):
        render(tiny_synth, plan_coefficients(tiny_synth, [[1.0]], None, params, "latent"), no_z)
    with pytest.raises(UserError, match="mode must be"):
        plan_coefficients(tiny_synth, [[1.0]], None, params, "z")
    with pytest.raises(UserError, match="limit is 8"):
        plan_coefficients(tiny_synth, [[1.0]] * 3, None, HallucinationSettings.make(steps=3, **SHORT), "noz",
                          Limits(max_notes=8))


@pytest.mark.heavy
def test_midi_with_coefficients_edits_each_note(tiny_synth, comps):
    notes = [MidiNote(60, 127, 0.0, 0.3), MidiNote(64, 127, 0.5, 0.8)]
    plan = plan_midi(tiny_synth, notes, MidiParams(seed=3))
    edited = render_midi(tiny_synth, plan, comps, [2.0, -1.0], "offset", peak=None)
    waves = synthesize(tiny_synth, comps, [[2.0, -1.0]] * 2, [60, 64], mode="offset", z=plan.z)
    expected = np.zeros(plan.length)
    for i in range(2):
        curve = envelope_curve(plan.attack, int(plan.sustains[i]), plan.release)
        expected[plan.onsets[i]:plan.onsets[i] + len(curve)] += waves[i, :len(curve)] * curve
    np.testing.assert_allclose(edited, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    with pytest.raises(UserError, match="offset or latent"):
        render_midi(tiny_synth, plan, comps, [1.0], "noz")
    with pytest.raises(UserError, match="only 4"):
        render_midi(tiny_synth, plan, comps, [1.0] * 6)


@pytest.mark.heavy
def test_cli_ganspace_mode(tiny_model_path, tiny_synth, comps, tmp_path):
    comps_path = comps.save(tmp_path / "comps.npz")
    steps = tmp_path / "steps.json"
    steps.write_text(json.dumps({"mode": "noz", "steps": [{"coeffs": [0, 1], "pitch": 60}, {"coeffs": [2, 0]}],
                                 "interpolation_steps": 1, "spacing": 0.3, "pitch": 40, **SHORT}))
    out = tmp_path / "hallu.wav"
    run = CliRunner().invoke
    res = run(main, ["hallucinate", "--model", str(tiny_model_path), "--components", str(comps_path),
                     "--score", str(steps), "--spacing", "0.2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    audio, sr = sf.read(out, dtype="float32")
    assert len(audio) == 2 * 3200 + len(CURVE)  # --spacing 0.2 given on the command line beats the file's 0.3
    score = load_score(tmp_path / "hallu.score.json")
    assert score["spacing"] == 0.2 and [s["pitch"] for s in score["steps"]] == [60, 40]
    res = run(main, ["hallucinate", "--model", str(tiny_model_path), "--components", str(comps_path),
                     "--from", str(tmp_path / "hallu.score.json"), "--out", str(tmp_path / "again.wav")])
    assert res.exit_code == 0, res.output
    assert out.read_bytes() == (tmp_path / "again.wav").read_bytes()
    # Without --model and --components the score's recorded files are used: still the same piece ...
    res = run(main, ["hallucinate", "--from", str(tmp_path / "hallu.score.json"), "--out", str(tmp_path / "z.wav")])
    assert res.exit_code == 0, res.output
    assert out.read_bytes() == (tmp_path / "z.wav").read_bytes()
    # ... and once the components file is gone, the refusal says what to give.
    comps_path.rename(tmp_path / "moved.npz")
    res = run(main, ["hallucinate", "--model", str(tiny_model_path), "--from", str(tmp_path / "hallu.score.json"),
                     "--out", str(tmp_path / "y.wav")])
    assert res.exit_code == 1 and "give its components file with --components" in res.output
    assert not (tmp_path / "y.wav").exists()
    (tmp_path / "moved.npz").rename(comps_path)
    res = run(main, ["hallucinate", "--model", str(tiny_model_path), "--components", str(comps_path),
                     "--score", str(steps), "--notes", "4", "--out", str(tmp_path / "x.wav")])
    assert res.exit_code == 1 and "drop --notes" in res.output
    assert not (tmp_path / "x.wav").exists()

    song = tmp_path / "song.mid"
    mid = mido.MidiFile()
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.extend([mido.Message("note_on", note=60, velocity=90, time=0), mido.Message("note_off", note=60, time=240)])
    mid.save(str(song))
    res = run(main, ["midi", "--model", str(tiny_model_path), "--components", str(comps_path), "--coeffs", "1,-1",
                     str(song), str(tmp_path / "song.wav")])
    assert res.exit_code == 0, res.output
    assert sf.info(str(tmp_path / "song.wav")).frames == 4000 + 4800  # 0.25 s note (120 bpm default) + release
