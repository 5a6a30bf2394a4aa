"""OSC server: real UDP round trips against a tiny model (address space of docs/live.md)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from helpers import Client, default_sigint

from ganspacesynth.interfaces.osc import OSCServer
from ganspacesynth.interfaces.session import Session


@pytest.fixture
def served(tiny_synth, tiny_model_path, tmp_path):
    session = Session(tiny_synth, allowed_dirs=[tiny_model_path.parent], out_dir=tmp_path / "out", queue_size=4,
                      keep=3)
    server = OSCServer(session, "127.0.0.1", 0).start()
    client = Client(server.address)
    yield session, server, client
    client.close()
    server.shutdown()
    session.close()


def test_synthesize_writes_the_note_and_replies_with_its_path(served, tiny_synth):
    session, _, c = served
    z = tiny_synth.random_z(1, 7)
    assert c.ask("/randomize_z", 7.0)[0] == "/z"
    addr, args = c.recv()
    assert addr == "/ok" and args[0] == "/randomize_z" and isinstance(args[1], int)  # the server numbered it
    address, args = c.ask("/synthesize", "id", "note-a", 60.0)
    assert address == "/synthesized"
    path, samples, rate, rid = args
    assert (samples, rate, rid) == (16384, 16000, "note-a")
    audio, sr = sf.read(path, dtype="float32")
    assert sr == 16000 and audio.shape == (16384,)
    expected = tiny_synth.generate(z, pitch=60)[0]
    expected = expected * (0.99 / np.abs(expected).max()) if np.abs(expected).max() > 1 else expected
    np.testing.assert_allclose(audio, expected, atol=1.5 / 32767)  # int16 WAV
    assert np.abs(audio).max() > 1e-3
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"
    assert not [p for p in os.listdir(session.out_dir) if p.startswith(".")]  # no temporary files left


def test_z_messages_follow_the_latent_api(served, tiny_synth):
    _, _, c = served
    L = tiny_synth.latent_size
    addr, z = c.ask("/randomize_z", 3.0)
    assert addr == "/z" and len(z) == L
    np.testing.assert_allclose(z, tiny_synth.random_z(1, 3)[0], rtol=1e-6)
    c.recv()
    _, z0 = c.ask("/slerp_z", 0.0, 1.0, 2.0)
    c.recv()
    _, z1 = c.ask("/slerp_z", 1.0, 1.0, 2.0)
    c.recv()
    np.testing.assert_allclose(z0, tiny_synth.random_z(1, 1)[0], atol=1e-5)
    np.testing.assert_allclose(z1, tiny_synth.random_z(1, 2)[0], atol=1e-5)
    _, zh = c.ask("/slerp_z", 0.5, 1.0, 2.0)
    c.recv()
    assert np.linalg.norm(np.subtract(zh, z0)) > 0.1 and np.linalg.norm(np.subtract(zh, z1)) > 0.1
    wanted = [float(i) / L for i in range(L)]
    _, zs = c.ask("/set_z", *wanted)
    np.testing.assert_allclose(zs, wanted, rtol=1e-6)
    assert c.recv()[0] == "/ok"
    assert c.ask("/set_z", 1.0, 2.0)[0] == "/error"


@pytest.mark.parametrize("address,args,needle", [
    ("/synthesize", [61.5], "whole MIDI note"),
    ("/synthesize", [200.0], "outside this model's range"),
    ("/pitch", ["sixty"], "must be a number"),
    ("/pitch", [b"\x00\x01"], "must be a number"),
    ("/load", ["/etc/passwd"], "outside the allowed folders"),
    ("/load", ["../../../../etc/passwd"], "outside the allowed folders"),
    ("/load_ganspace_components", ["nope.safetensors"], "not found"),
    ("/set_z", [float("nan")] * 32, "finite"),
    ("/synthesize_noz", [60.0, 1.0], "no GANSpace components"),
    ("/synthesize", [60.0, 0.5], "no GANSpace components"),
    ("/save", ["../escape"], "plain file name"),
    ("/interp_steps", [1e9], "interp steps"),
    ("/attack", [-1.0], "between 0 and 60"),
    ("/no_such_thing", [], "unknown address"),
])
def test_bad_requests_get_an_error_reply_and_the_server_goes_on(served, address, args, needle):
    _, _, c = served
    addr, reply = c.ask(address, "id", 99, *args)
    assert addr == "/error", reply
    assert needle in reply[0] and reply[1] == 99
    assert c.ask("/ping")[0] == "/pong"


def test_hostile_datagrams(served):
    _, server, c = served
    for junk in (b"", b"garbage", b"/x\x00\x00,ff\x00\x00\x00", b"#bundle\x00" + b"\xff" * 40, os.urandom(3000)):
        if junk:
            c.sock.sendto(junk, server.address)
            addr, args = c.recv()
            assert addr == "/error" and "malformed" in args[0]
    # a datagram bigger than python-osc's default 8192-byte buffer is still read whole
    addr, args = c.ask("/coefficients", *([0.0] * 2500))
    assert addr == "/error" and "no GANSpace components" in args[0]
    assert c.ask("/ping")[0] == "/pong"


def test_burst_is_served_or_refused_and_every_request_gets_one_reply(served):
    session, _, c = served
    n = 40
    for i in range(n):
        c.send("/synthesize", "id", i, 60.0)
    replies = {}
    while len(replies) < n:
        addr, args = c.recv()
        replies.setdefault(args[-1], []).append((addr, args))
    assert sorted(replies) == list(range(n))
    assert all(len(v) == 1 for v in replies.values())
    kinds = [v[0][0] for v in replies.values()]
    busy = [v[0][1][0] for v in replies.values() if v[0][0] == "/error"]
    assert kinds.count("/synthesized") >= 4  # the queue (4) plus the one in flight are served
    assert busy and all(b.startswith("busy") for b in busy)
    assert c.ask("/ping")[0] == "/pong"
    wavs = [p for p in os.listdir(session.out_dir) if p.endswith(".wav")]
    assert len(wavs) == 3  # --keep 3: older notes were deleted


def test_hallucinate_in_z_renders_the_planned_length(served):
    session, _, c = served
    for name, value in (("interp_steps", 2.0), ("sample_spacing", 0.25), ("attack", 0.1), ("sustain", 0.2),
                        ("release", 0.1)):
        assert c.ask(f"/{name}", value)[0] == "/ok"
    addr, args = c.ask("/hallucinate", "id", 5, 3.0, 11.0, 48.0)
    assert addr == "/hallucinated", args
    notes = 3 + 2 * 2
    expected = round((notes - 1) * 0.25 * 16000) + round(0.1 * 16000) * 2 + round(0.2 * 16000)
    assert args[1:] == [expected, 16000, 5]
    audio, _ = sf.read(args[0], dtype="float32")
    assert audio.shape == (expected,) and 0.9 < np.abs(audio).max() <= 1.0
    addr, saved = c.ask("/save", "piece")
    assert addr == "/saved" and saved[0].endswith("saved/piece.wav")
    np.testing.assert_array_equal(sf.read(saved[0], dtype="int16")[0], sf.read(args[0], dtype="int16")[0])
    assert os.path.exists(saved[0].replace(".wav", ".score.json"))
    # an envelope longer than the model's ~1 s notes is refused before any generation
    c.ask("/sustain", 5.0)
    addr, args = c.ask("/hallucinate", 3.0)
    assert addr == "/error" and "longer than" in args[0]


def test_step_sequencer_state(served):
    _, _, c = served
    # each step message answers /step <index> <count> <coefficients…>, then /ok <address> <id>
    addr, args = c.ask("/add_step")
    assert addr == "/step" and args[:2] == [1, 2] and not any(args[2:])
    assert c.recv()[1][0] == "/add_step"
    assert c.ask("/prev_step") == ("/step", [0, 2, *args[2:]])
    assert c.recv()[1][0] == "/prev_step"
    assert c.ask("/prev_step")[1][:2] == [0, 2]  # clamped at the first step
    c.recv()
    addr, args = c.ask("/remove_step")
    assert addr == "/step" and args[:2] == [0, 1]
    assert c.recv()[1][0] == "/remove_step"
    addr, args = c.ask("/step", 1.0)
    assert addr == "/error" and "0..0" in args[0]


@pytest.mark.integration
def test_cli_serve_osc_starts_answers_and_stops(tiny_model_path, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "ganspacesynth", "serve-osc", "--model", str(tiny_model_path),
                             "--port", "0", "--out-dir", str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, preexec_fn=default_sigint)
    try:
        line = proc.stdout.readline()
        m = re.search(r"udp://127\.0\.0\.1:(\d+)", line)
        assert m, line + proc.stderr.read()
        c = Client(("127.0.0.1", int(m.group(1))))
        addr, args = c.ask("/info")
        assert addr == "/info" and args[1:4] == [32, 16000, 16384]
        addr, args = c.ask("/synthesize_z", 48.0)
        assert addr == "/synthesized" and args[0].startswith(str(tmp_path)) and args[1:3] == [16384, 16000]
        audio, rate = sf.read(args[0], dtype="float32")
        assert rate == 16000 and audio.shape == (16384,) and np.abs(audio).max() > 1e-3
        c.close()
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0


@pytest.mark.integration
def test_cli_refuses_a_busy_port(tiny_model_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "ganspacesynth", "serve-osc", "--model", str(tiny_model_path),
                              "--port", str(port)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "cannot listen" in out.stderr and "Traceback" not in out.stderr


@pytest.fixture(scope="module")
def components_path(tiny_synth, tmp_path_factory):
    from ganspacesynth.ganspace.fit import fit_components

    comps = fit_components(tiny_synth, "conv0", count=512, n_components=8, pitches=[60])
    return comps.save(tmp_path_factory.mktemp("comps") / "tiny_comps.npz")


@pytest.mark.heavy
def test_ganspace_modes_match_the_library(tiny_synth, tiny_model_path, components_path, tmp_path):
    from ganspacesynth.ganspace.components import Components
    from ganspacesynth.ganspace.edits import synthesize

    session = Session(tiny_synth, allowed_dirs=[tiny_model_path.parent, components_path.parent], out_dir=tmp_path)
    server = OSCServer(session, "127.0.0.1", 0).start()
    c = Client(server.address)
    try:
        addr, args = c.ask("/load_ganspace_components", components_path.name)
        assert addr == "/components_loaded" and args[1:3] == [8, "conv0"]
        comps = Components.load(components_path, tiny_synth)
        c.ask("/randomize_z", 9.0)
        c.recv()
        z = tiny_synth.random_z(1, 9)
        assert c.ask("/coefficients", 1.0, -2.0)[0] == "/ok"
        for address, mode in (("/synthesize", "offset"), ("/synthesize_latent", "latent"), ("/synthesize_noz", "noz")):
            addr, args = c.ask(address, 60.0)
            assert addr == "/synthesized", args
            audio, _ = sf.read(args[0], dtype="float32")
            wave = synthesize(tiny_synth, comps, [[1.0, -2.0]], 60, mode=mode, z=None if mode == "noz" else z)[0]
            wave = wave * (0.99 / np.abs(wave).max()) if np.abs(wave).max() > 1 else wave
            np.testing.assert_allclose(audio, wave, atol=1.5 / 32767)
        plain = sf.read(c.ask("/synthesize_z", 60.0)[1][0])[0]
        assert np.abs(plain - sf.read(c.ask("/synthesize", 60.0)[1][0])[0]).max() > 1e-3  # the offset is audible
        assert c.ask("/coefficient", 7.0, 0.5)[0] == "/ok"
        np.testing.assert_allclose(session.coeffs, [1, -2, 0, 0, 0, 0, 0, 0.5])
        assert c.ask("/coefficients", *([0.0] * 9))[0] == "/error"  # more than the file has
        # loading another model drops the components; loading is refused outside the allowed folders
        addr, args = c.ask("/load", tiny_model_path.name)
        assert addr == "/loaded" and args[1:4] == [32, 16000, 16384]
        assert session.num_components == 0
    finally:
        c.close()
        server.shutdown()
        session.close()


def test_servers_start_with_the_bundled_model_and_its_components(tmp_path):
    # No --model and no --components: the bundled default model with the components made for it (sliders work).
    from ganspacesynth.assets import default_components_path
    from ganspacesynth.interfaces.serving import ServeOptions, build_session

    session = build_session(ServeOptions(out_dir=tmp_path / "out", queue_size=4, keep=8, device="cpu"))
    try:
        from ganspacesynth.ganspace.components import Components

        assert default_components_path() is not None  # shipped in the package
        assert session.num_components == Components.load(default_components_path()).n_components > 0
    finally:
        session.close()
