"""OSC `/invert <file> [mode [pitch]]`: a sound file's first note becomes the session's state (`Session.invert_request`,
the same method the web page's drop uses), on the worker, with the refusals of every other command."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from helpers import Client, tone

from ganspacesynth import invert as inv
from ganspacesynth.audio.io import read_audio
from ganspacesynth.interfaces.osc import OSCServer
from ganspacesynth.interfaces.session import Session

#: One thread: the refinement's backward passes on two threads beside a busy core took 10x longer (test_invert.py).
pytestmark = pytest.mark.usefixtures("one_thread")

#: Every stage of the inversion, in well under a second a note of the tiny model.
QUICK = inv.InvertSettings(guesses=4, restarts=2, random_starts=1, steps=3, baseline=0)


@pytest.fixture(scope="module")
def sounds(tmp_path_factory):
    """The allowed folder: a 1 s note at MIDI 64 (E4, 22.05 kHz, stereo: the model's rate is 16 kHz) and bad input."""
    folder = tmp_path_factory.mktemp("sounds")
    wave = tone(64, sr=22050, seconds=1.0)
    sf.write(folder / "e4.wav", np.stack([wave, 0.5 * wave], axis=1), 22050)
    (folder / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + b"\x00" * 64)
    sf.write(folder / "silence.wav", np.zeros(16000, np.float32), 16000)
    sf.write(folder / "noise.wav", (0.3 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32), 16000)
    sf.write(folder / "long.wav", tone(64, sr=8000, seconds=31.0, decay=0.0), 8000)
    sf.write(folder / "blip.wav", tone(64, sr=16000, seconds=0.05), 16000)
    (folder / "sub").mkdir()
    return folder


@pytest.fixture
def served(tiny_synth, sounds, tmp_path):
    session = Session(tiny_synth, allowed_dirs=[sounds], out_dir=tmp_path / "out", queue_size=4,
                      invert_settings=QUICK)
    server = OSCServer(session, "127.0.0.1", 0).start()
    client = Client(server.address)
    client.sock.settimeout(180)  # a process's first inversion compiles pYIN (numba): ~25 s beside a busy core
    yield session, server, client
    client.close()
    server.shutdown()
    session.close()


def state(session) -> tuple:
    return session.pitch, session.z.tobytes(), session.coeffs.tobytes(), dict(session.state.conditions)


@pytest.mark.heavy  # two inversions; the first of a process also compiles pYIN
def test_invert_makes_the_note_the_state_and_names_it(served, tiny_synth, sounds):
    session, _, c = served
    before = session.z.copy()
    c.send("/invert", "id", "mine", "e4.wav")
    assert c.ask("/ping")[0] == "/pong"  # answered at once: the inversion runs on the worker
    addr, z = c.recv()
    assert addr == "/z" and len(z) == tiny_synth.latent_size
    assert c.recv() == ("/coefficients", [])  # no components loaded
    addr, args = c.recv()
    assert addr == "/inverted", args
    path, pitch, distance, conditions, rid = args
    assert (pitch, conditions, rid) == (64, "none", "mine")
    # the state is the note the library finds in the same file with the same settings
    audio, rate = read_audio(sounds / "e4.wav", sample_rate=None)
    (note,) = tiny_synth.invert(audio, rate, settings=QUICK).notes
    assert session.pitch == note.pitch == 64
    assert session.z.tobytes() == note.z.astype(np.float32).tobytes() and session.z.tobytes() != before.tobytes()
    np.testing.assert_allclose(z, note.z, rtol=1e-6)
    assert distance == pytest.approx(note.distance_db, abs=1e-3) and distance > 0
    # the reply's WAV is the note as /synthesize now plays it: the newest result
    wav, sr = sf.read(path, dtype="float32")
    assert sr == 16000 and wav.shape == (16384,) and session.last.path.name == path.rsplit("/", 1)[-1]
    assert c.ask("/synthesize_z")[0] == "/synthesized"
    np.testing.assert_allclose(sf.read(session.last.path, dtype="float32")[0], wav, atol=1.5 / 32767)


@pytest.mark.heavy
def test_noz_sets_the_notes_coefficients_and_offset_zeros(served, tiny_synth, sounds, tmp_path):
    from ganspacesynth.ganspace.components import Components
    from ganspacesynth.ganspace.fit import fit_components

    session, _, c = served
    comps = fit_components(tiny_synth, "conv0", count=256, n_components=4, pitches=[60])
    comps.save(sounds / "sub" / "comps.npz")
    assert c.ask("/load_ganspace_components", "sub/comps.npz")[0] == "/components_loaded"
    comps = Components.load(sounds / "sub" / "comps.npz", tiny_synth)
    audio, rate = read_audio(sounds / "e4.wav", sample_rate=None)
    (note,) = tiny_synth.invert(audio, rate, settings=QUICK, components=comps).notes
    assert c.ask("/coefficients", 1.0, 2.0)[0] == "/ok"
    c.send("/invert", "e4.wav", "noz")
    assert c.recv()[0] == "/z"
    addr, coeffs = c.recv()
    wanted = np.clip(note.coefficients, -10, 10)
    assert addr == "/coefficients" and np.abs(wanted).max() > 0
    np.testing.assert_allclose(coeffs, wanted, rtol=1e-6)
    assert c.recv()[0] == "/inverted"
    assert session.coeffs.tobytes() == wanted.astype(np.float32).tobytes()
    assert session.z.tobytes() == note.z.astype(np.float32).tobytes()
    c.send("/invert", "e4.wav")  # offset (the default): z is the note, the directions start at zero
    assert c.recv()[0] == "/z"
    assert c.recv() == ("/coefficients", [0.0] * 4)
    assert c.recv()[0] == "/inverted" and not session.coeffs.any()


@pytest.mark.parametrize("args,needle", [
    (["/etc/passwd"], "outside the allowed folders"),
    (["../../../../etc/hostname"], "outside the allowed folders"),
    (["missing.wav"], "not found in the allowed folders"),
    (["sub"], "sub is not a file"),
    (["broken.wav"], "cannot read broken.wav as a sound"),
    (["long.wav"], "31.0 s long; a live session inverts at most 30 s"),
    (["blip.wav"], "a note needs at least 0.1 s"),
    (["silence.wav"], "silence.wav is silent"),
    pytest.param(["noise.wav"], "noise.wav: no steady pitch found", marks=pytest.mark.heavy),  # pYIN
    (["e4.wav", "bogus"], "unknown synthesis mode"),
    (["e4.wav", "noz"], "no GANSpace components"),
    (["e4.wav", "offset", 200.0], "outside this model's range"),
    ([3.0], "sound file must be a string"),
    ([], "usage: /invert <sound file> [mode [pitch]]"),
])
def test_bad_sounds_get_one_error_line_and_change_nothing(served, args, needle):
    session, _, c = served
    before = state(session)
    addr, reply = c.ask("/invert", "id", 41, *args)
    assert addr == "/error" and needle in reply[0] and reply[1] == 41, reply
    assert "\n" not in reply[0]
    assert state(session) == before and session.last is None
    assert c.ask("/ping")[0] == "/pong"  # the server goes on


@pytest.mark.heavy
def test_a_given_pitch_inverts_an_unpitched_sound(served):
    session, _, c = served
    c.send("/invert", "noise.wav", "z", 50.0)
    assert c.recv()[0] == "/z" and c.recv()[0] == "/coefficients"
    addr, args = c.recv()
    assert addr == "/inverted" and args[1] == 50 and session.pitch == 50
