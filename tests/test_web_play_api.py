"""The web instrument's API (interfaces/web/play.py over interfaces/timbre.py): keyboard renders, conditions,
presets, morphs and MIDI files, with a tiny model conditioned on an instrument family."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

pytest.importorskip("flask", reason="the web extra is not installed (pip install -e '.[web]')")

import helpers  # noqa: E402
from helpers import FAMILIES, call  # noqa: E402

from ganspacesynth.interfaces.session import Session  # noqa: E402
from ganspacesynth.interfaces.web.app import WebServer  # noqa: E402


@pytest.fixture(scope="module")
def family_components(family_synth, tmp_path_factory):
    return helpers.family_components(family_synth, tmp_path_factory.mktemp("family-comps"), ["brighter"])


@pytest.fixture
def web(family_synth, family_components, tmp_path):
    session = Session(family_synth, allowed_dirs=[family_components.parent], out_dir=tmp_path / "out")
    session.load_components(str(family_components))
    server = WebServer(session, "127.0.0.1", 0).start()
    yield session, server
    server.shutdown()
    session.close()


def midi_bytes(notes=((60, 100), (64, 80), (67, 60)), seconds: float = 0.25) -> bytes:
    import mido

    mid = mido.MidiFile(ticks_per_beat=480)  # 120 bpm: 480 ticks = 0.5 s
    track = mido.MidiTrack()
    mid.tracks.append(track)
    for pitch, velocity in notes:
        track.append(mido.Message("note_on", note=pitch, velocity=velocity, time=0))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=int(seconds * 960)))
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def keyboard(server, data):
    status, body, headers = call(server, "/api/keyboard", data, headers=True)
    assert status == 200, body
    pitches = [int(p) for p in headers["X-Pitches"].split(",")]
    n = int(headers["X-Samples"])
    assert int(headers["X-Sample-Rate"]) == 16000 and len(body) == 4 * n * len(pitches)
    return pitches, np.frombuffer(body, dtype="<f4").reshape(len(pitches), n)


def test_state_offers_the_conditions_and_the_directions(web):
    _, server = web
    state = json.loads(call(server, "/api/state")[1])
    assert state["conditions"] == [{"name": "instrument_family", "kind": "categorical", "classes": list(FAMILIES)}]
    assert state["condition_values"] == {} and state["descriptions"][0] == "brighter"
    assert len(state["variance"]) == 8 and state["variance"][0] >= state["variance"][-1] > 0


@pytest.mark.heavy
def test_keyboard_renders_the_timbre_at_every_pitch_in_one_batch(web, family_synth):
    from ganspacesynth.audio.levels import peak_safe
    from ganspacesynth.ganspace.edits import synthesize

    session, server = web
    z = session.z.copy()
    pitches, waves = keyboard(server, {"mode": "offset", "coefficients": [1.5, -1.0],
                                       "conditions": {"instrument_family": "guitar"}, "pitches": [60, 48, 72, 60]})
    assert pitches == [48, 60, 72]
    comps = session.components
    for pitch, wave in zip(pitches, waves):  # each note is the one the model makes alone
        alone = synthesize(family_synth, comps, [1.5, -1.0], pitch, mode="offset", z=z[None],
                           conditions={"instrument_family": "guitar"})[0]
        np.testing.assert_allclose(wave, peak_safe(alone), atol=1e-3)  # scaled as a single note is, if it clips
    assert session.coeffs[:2].tolist() == [1.5, -1.0]  # what the keyboard plays is the state
    assert session.state.conditions == {"instrument_family": "guitar"}
    _, organ = keyboard(server, {"mode": "offset", "coefficients": [1.5, -1.0], "pitches": [60],
                                 "conditions": {"instrument_family": "organ"}})
    assert np.abs(organ[0] - waves[1]).max() > 1e-2  # the family changes the sound
    all_keys, _ = keyboard(server, {"mode": "noz"})  # default: the model's whole range
    assert all_keys == family_synth.pitches
    status, body = call(server, "/api/synthesize", {"pitch": 60, "mode": "offset"})  # notes use the conditions too
    assert status == 200
    import soundfile as sf

    note, _ = sf.read(session.out_dir / json.loads(body)["name"], dtype="float32")
    np.testing.assert_allclose(note, organ[0], atol=2 / 32767)


@pytest.mark.parametrize("data,needle", [
    ({"pitches": list(range(129))}, "at most 128 pitches"),
    ({"pitches": [200]}, "outside this model's range"),
    ({"pitches": "all"}, "non-empty list"),
    ({"pitches": []}, "non-empty list"),
    ({"conditions": {"instrument_family": "kazoo"}}, "not known to this model"),
    ({"conditions": {"timbre": "warm"}}, "no condition 'timbre'"),
    ({"conditions": {"pitch": "60"}}, "pitch comes with each note"),
    ({"conditions": ["guitar"]}, "must be an object"),
    ({"mode": "bogus"}, "unknown synthesis mode"),
    ({"coefficients": [1.0] * 9}, "coefficients"),
    ({"coefficients": "loud"}, "list of numbers"),
])
def test_keyboard_refuses_bad_requests_and_changes_nothing(web, data, needle):
    _, server = web
    state = call(server, "/api/state")
    status, body = call(server, "/api/keyboard", data)
    assert status == 400 and needle in json.loads(body)["error"], body
    assert call(server, "/api/state") == state


def test_conditions_are_set_and_refused_as_a_whole(web):
    session, server = web
    status, body = call(server, "/api/conditions", {"conditions": {"instrument_family": "bass"}})
    assert status == 200 and json.loads(body) == {"conditions": {"instrument_family": "bass"}}
    status, body = call(server, "/api/conditions", {"conditions": {"instrument_family": 3}})
    assert status == 400 and "one class name" in json.loads(body)["error"]
    assert session.state.conditions == {"instrument_family": "bass"}
    assert json.loads(call(server, "/api/conditions", {"conditions": {"instrument_family": None}})[1]) == \
        {"conditions": {}}


def get_preset(server, mode="offset") -> dict:
    status, body = call(server, f"/api/preset?mode={mode}")
    assert status == 200, body
    return json.loads(body)


def test_preset_round_trip_is_bit_exact(web):
    session, server = web
    session.randomize_z(3)
    session.set_coefficients([0.1234567, -2.5, 0.0, 1e-7])
    session.set_conditions({"instrument_family": "organ"})
    z, coeffs = session.z.copy(), session.coeffs.copy()
    preset = get_preset(server, "latent")
    assert preset["format"] == "ganspacesynth-timbre" and preset["format_version"] == 1
    assert preset["model_fingerprint"] == session.synth.fingerprint and preset["mode"] == "latent"
    assert preset["conditions"] == {"instrument_family": "organ"} and len(preset["coefficients"]) == 4
    assert preset["components"]["count"] == 8
    call(server, "/api/z", {})
    call(server, "/api/conditions", {"conditions": {}})
    session.set_coefficients([3.0])
    text = json.dumps({"preset": preset})  # as a file or a link carries it: JSON text
    status, body = call(server, "/api/preset", raw=text.encode())
    assert status == 200, body
    assert json.loads(body)["preset"] == preset
    assert session.z.tobytes() == z.tobytes() and session.coeffs.tobytes() == coeffs.tobytes()
    assert session.state.conditions == {"instrument_family": "organ"}
    assert get_preset(server, "latent") == preset


def other_components_digest(preset):
    return dict(preset, components=dict(preset["components"], digest="0" * 64))


@pytest.mark.parametrize("change,needle", [
    (lambda p: dict(p, model_fingerprint="0" * 16), "made with another model (fingerprint 000000000000"),
    (lambda p: dict(p, format="something-else"), "not a GANSpaceSynth timbre preset"),
    (lambda p: dict(p, format_version=2), "newer than this GANSpaceSynth reads"),
    (lambda p: dict(p, format_version="1"), "format_version"),
    (lambda p: dict(p, z=p["z"][:5]), "this model needs 32"),
    (lambda p: dict(p, z=["a"] * 32), "list of numbers"),
    (lambda p: dict(p, z=[1e9] * 32), "within"),
    (lambda p: dict(p, coefficients=[1.0] * 9), "coefficients"),
    (lambda p: dict(p, mode="bogus"), "unknown synthesis mode"),
    (lambda p: dict(p, conditions={"instrument_family": "kazoo"}), "not known to this model"),
    (other_components_digest, "belong to other GANSpace components"),
    (lambda p: [p], "must be a JSON object"),
])
def test_bad_presets_are_refused_with_a_clear_message_and_change_nothing(web, change, needle):
    session, server = web
    session.set_coefficients([1.0, 2.0])
    preset = get_preset(server)
    session.randomize_z(9)
    state = call(server, "/api/state")
    z = session.z.copy()
    status, body = call(server, "/api/preset", {"preset": change(preset)})
    assert status == 400 and needle in json.loads(body)["error"], body
    assert call(server, "/api/state") == state and session.z.tobytes() == z.tobytes()


def test_a_preset_of_another_model_names_both_fingerprints(web, tiny_synth, tmp_path):
    session, server = web
    other = Session(tiny_synth, out_dir=tmp_path / "other")
    try:
        preset = other.preset("z")
    finally:
        other.close()
    status, body = call(server, "/api/preset", {"preset": preset})
    error = json.loads(body)["error"]
    assert status == 400 and tiny_synth.fingerprint[:12] in error and session.synth.fingerprint[:12] in error


def test_morph_slerps_z_and_lerps_the_coefficients(web):
    from ganspacesynth.compose.interpolate import slerp

    session, server = web
    session.randomize_z(1)
    session.set_coefficients([2.0, 0.0, -1.0])
    session.set_conditions({"instrument_family": "bass"})
    a = get_preset(server)
    session.randomize_z(2)
    session.set_coefficients([0.0, 1.0])
    session.set_conditions({"instrument_family": "organ"})
    b = get_preset(server)
    status, body = call(server, "/api/morph", {"a": a, "b": b, "t": 0.25})
    assert status == 200, body
    expected = slerp(np.float32(a["z"]), np.float32(b["z"]), 0.25)
    assert session.z.tobytes() == expected.astype(np.float32).tobytes()
    np.testing.assert_allclose(session.coeffs[:3], [1.5, 0.25, -0.75], rtol=1e-6)
    assert session.state.conditions == {"instrument_family": "bass"}  # a's below the middle
    call(server, "/api/morph", {"a": a, "b": b, "t": 1})
    assert json.loads(call(server, "/api/preset")[1])["z"] == b["z"]
    for t in (1.5, -0.1, "half", True):
        status, body = call(server, "/api/morph", {"a": a, "b": b, "t": t})
        assert status == 400 and "morph amount" in json.loads(body)["error"]
    status, body = call(server, "/api/morph", {"a": a, "b": dict(b, model_fingerprint="x"), "t": 0.5})
    assert status == 400 and "another model" in json.loads(body)["error"]


def test_midi_file_plays_through_the_current_timbre(web, family_synth):
    import soundfile as sf

    from ganspacesynth.compose.midi import MidiParams, plan_midi, read_midi, render_midi

    session, server = web
    session.randomize_z(4)
    session.set_conditions({"instrument_family": "guitar"})
    data = midi_bytes()
    status, body = call(server, "/api/midi?mode=z", raw=data)
    assert status == 200, body
    r = json.loads(body)
    assert r["name"].startswith("midi-") and r["notes"] == 3 and r["audio"] == f"/audio/{r['name']}"
    assert call(server, r["audio"])[0] == 200 and call(server, r["spectrogram"])[0] == 200
    audio, rate = sf.read(session.out_dir / r["name"], dtype="float32")
    path = session.out_dir / "song.mid"
    path.write_bytes(data)
    plan = plan_midi(family_synth, read_midi(path), MidiParams(seed=0))
    plan.z = np.repeat(session.z[None], plan.count, axis=0)
    expected = render_midi(family_synth, plan, conditions={"instrument_family": "guitar"})
    assert rate == 16000 and audio.shape == expected.shape
    np.testing.assert_allclose(audio, expected, atol=2 / 32767)  # every note in the current timbre


@pytest.mark.parametrize("query,data,code,needle", [
    ("mode=z", b"\0" * (300 * 1024), 413, "at most 256 KB"),
    ("mode=z", b"\0" * (2 << 20), 413, "at most 256 KB"),
    ("mode=z", b"MThd garbage", 400, "cannot read MIDI file (the uploaded file)"),
    ("mode=z", b"", 400, "send a MIDI file"),
    ("mode=noz", midi_bytes(), 400, "not noz"),
    ("mode=z", midi_bytes(((10, 100),)), 400, "no playable notes"),
])
def test_midi_uploads_are_bounded_and_checked(web, query, data, code, needle):
    _, server = web
    status, body = call(server, f"/api/midi?{query}", raw=data)
    assert status == code and needle in json.loads(body)["error"], body


def test_any_body_over_the_limit_is_refused_with_json(web):
    _, server = web
    status, body = call(server, "/api/z", raw=b"{" + b" " * (2 << 20) + b"}")
    assert status == 413 and json.loads(body)["error"] == "request too large: at most 1024 KB"


def test_requests_are_counted_per_path(web):
    _, server = web
    call(server, "/api/state")
    keyboard(server, {"pitches": [60]})
    counts = server.app.extensions["ganspacesynth"]["requests"]
    assert counts["/api/keyboard"] == 1 and counts["/api/state"] >= 1


# -- starting from a sound (POST /api/invert: Session.invert_request, as OSC /invert) --------------------------------
def wav_bytes(wave, rate: int) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, wave, rate, format="WAV")
    return buf.getvalue()


#: Every stage of the inversion, in about a second a note of the tiny model.
QUICK_INVERT = dict(guesses=4, restarts=2, random_starts=1, steps=3, baseline=0)


@pytest.mark.heavy
def test_a_dropped_sound_becomes_the_state(web, family_synth):
    import soundfile as sf

    from ganspacesynth import invert as inv

    session, server = web
    session.invert_settings = inv.InvertSettings(**QUICK_INVERT)
    session.set_coefficients([2.0, -1.0])
    data = wav_bytes(helpers.tone(64, sr=22050, seconds=1.0), 22050)
    status, body = call(server, "/api/invert?mode=noz&name=my%20e4.wav", raw=data)
    assert status == 200, body
    r = json.loads(body)
    wave, rate = sf.read(io.BytesIO(data), dtype="float32")  # the file's 16-bit samples, as the server read them
    (note,) = family_synth.invert(wave, rate, settings=session.invert_settings, components=session.components).notes
    # the state is the note the library finds: pitch, z, the searched family and (noz) its coefficients
    assert r["pitch"] == session.pitch == note.pitch == 64
    assert session.z.tobytes() == note.z.astype(np.float32).tobytes()
    assert r["conditions"] == session.state.conditions == note.conditions and note.conditions["instrument_family"]
    wanted = np.clip(note.coefficients, -10, 10).astype(np.float32)
    assert session.coeffs.tobytes() == wanted.tobytes() and np.abs(wanted).max() > 0
    np.testing.assert_allclose(r["coefficients"], note.coefficients, rtol=1e-6)
    assert r["distance_db"] == pytest.approx(note.distance_db, abs=1e-3) and r["others"] == 0
    # the preset is the timbre now held; the note is the newest result, in the player
    assert r["preset"] == get_preset(server, "noz") and r["preset"]["mode"] == "noz"
    assert r["name"].startswith("note-") and call(server, r["audio"])[0] == 200
    assert call(server, r["spectrogram"])[0] == 200 and session.last.path.name == r["name"]
    # offset: z is the note, the directions start at zero
    status, body = call(server, "/api/invert?mode=offset", raw=data)
    assert status == 200 and not session.coeffs.any() and json.loads(body)["preset"]["coefficients"] == []


@pytest.mark.parametrize("query,data,code,needle", [
    ("", b"", 400, "send a sound file"),
    ("name=song.wav", b"RIFF\x10\x00\x00\x00WAVEjunk" + b"\0" * 64, 400, "cannot read song.wav as a sound"),
    ("", b"\0" * (9 << 20), 413, "at most 8 MB"),
    ("", wav_bytes(np.zeros(16000, np.float32), 16000), 400, "the uploaded file is silent"),
    ("", wav_bytes(np.zeros(8000 * 31, np.float32), 8000), 400, "a live session inverts at most 30 s"),
    ("mode=bogus", wav_bytes(helpers.tone(64), 16000), 400, "unknown synthesis mode"),
    ("pitch=high", wav_bytes(helpers.tone(64), 16000), 400, "pitch must be a MIDI note number"),
    pytest.param("name=hiss.wav", wav_bytes((0.3 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32),
                                            16000), 400, "hiss.wav: no steady pitch found", marks=pytest.mark.heavy),
])
def test_bad_sounds_are_refused_in_words_and_change_nothing(web, query, data, code, needle):
    session, server = web
    state = call(server, "/api/state")
    status, body = call(server, f"/api/invert?{query}", raw=data)
    assert status == code and needle in json.loads(body)["error"], body
    assert call(server, "/api/state") == state and session.last is None
