"""The promises of docs/reliability.md, rule by rule: nothing lost, nothing misleading (the bad-input table of
every subcommand is test_bad_input.py; the cases both share with scripts/sweep_bad_input.py are in
bad_input_cases.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from ganspacesynth.errors import UserError
from ganspacesynth.interfaces.cli import main
from bad_input_cases import BAD_SEEDS, BUNDLE, HOSTILE_BODIES, MALFORMED_BUNDLES
from helpers import call, default_sigint, osc_message, tone

OUTPUT_MARKER = ".ganspacesynth-output.json"

REPO = Path(__file__).resolve().parents[1]


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], prog_name="ganspacesynth")


#: A decaying sine (helpers.tone): one partial at 0.5, decaying by e per second, no fade-in and no noise.
SINE = dict(sr=16000, partials=(1.0,), amp=0.5, decay=1.0, attack=0.0, normalize=False, noise=0.0)


# -- never delete a user's files -------------------------------------------------------------------------------------
def test_output_folders_replace_only_what_the_command_wrote(tmp_path, monkeypatch):
    from ganspacesynth.fileio import atomic_directory, check_output_folder

    out = tmp_path / "M"
    out.mkdir()
    (out / "a").write_text("x")
    with pytest.raises(UserError, match=r"M already exists and is not empty: it holds files no GANSpaceSynth"):
        with atomic_directory(out, overwrite=True, owner="demo"):
            pass
    assert (out / "a").read_text() == "x"
    (out / "a").unlink()
    with atomic_directory(out, overwrite=True, owner="demo") as tmp:  # empty: fine
        (tmp / "one.txt").write_text("1")
    with atomic_directory(out, overwrite=True, owner="demo") as tmp:  # its own output: replaced
        (tmp / "two.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == [OUTPUT_MARKER, "two.txt"]
    with pytest.raises(UserError, match="output of `ganspacesynth demo`"):  # another command's output
        check_output_folder(out, owner="generate", overwrite=True)
    (out / "sub").mkdir()
    (out / "sub" / "mine.txt").write_text("user")  # the user adds a file: no longer replaceable
    with pytest.raises(UserError, match=r"sub/mine\.txt"):
        check_output_folder(out, owner="demo", overwrite=True)
    monkeypatch.chdir(out)
    with pytest.raises(UserError, match="current folder"):
        check_output_folder(".", owner="demo", overwrite=True)
    with pytest.raises(UserError, match="current folder"):
        check_output_folder("..", owner="demo", overwrite=True)


def test_demo_into_a_users_folder_deletes_nothing(tmp_path, monkeypatch):
    (tmp_path / "M").mkdir()
    (tmp_path / "M" / "a").write_text("x")
    (tmp_path / "keep.txt").write_text("y")
    monkeypatch.chdir(tmp_path)
    for out in ("M", "."):
        res = cli("demo", "--out", out)
        assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.output
        assert "error:" in res.stderr and res.stderr.count("\n") == 1
    assert (tmp_path / "M" / "a").read_text() == "x" and (tmp_path / "keep.txt").read_text() == "y"


def test_describe_report_refuses_a_users_folder_before_any_work(tiny_model_path, tmp_path):
    report = tmp_path / "report"
    report.mkdir()
    (report / "notes.md").write_text("mine")
    res = cli("describe", "--model", tiny_model_path, "--components", tmp_path / "missing.npz", "--report", report)
    assert res.exit_code == 1 and "holds files no GANSpaceSynth command wrote there" in res.stderr
    assert (report / "notes.md").read_text() == "mine"


@pytest.mark.heavy
def test_generate_again_leaves_no_stale_notes(tiny_model_path, tmp_path):
    out = tmp_path / "notes"
    assert cli("generate", "--model", tiny_model_path, "--pitch", 60, "--count", 3, "--out", out).exit_code == 0
    res = cli("generate", "--model", tiny_model_path, "--pitch", 60, "--count", 1, "--seed", 5, "--out", out)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir() if p.name != OUTPUT_MARKER) == ["latents.npy", "p60_000.wav"]
    assert np.load(out / "latents.npy").shape[0] == 1


def test_pad_fills_the_folder_chop_filled_and_overwrite_keeps_the_other(tmp_path):
    from ganspacesynth.data.folder import chop, pad

    rec, shots = tmp_path / "recordings", tmp_path / "one-shots"
    rec.mkdir()
    shots.mkdir()
    sf.write(rec / "long.wav", tone(57, seconds=3.0, **SINE), 16000)  # 220 Hz
    sf.write(shots / "hit.wav", tone(69, seconds=0.5, **SINE), 16000)  # 440 Hz
    clips = tmp_path / "clips"
    chop(rec, clips, length=16000, step=16000, pitch=57)
    chopped = sorted(p.name for p in clips.glob("*.wav"))
    pad(shots, clips, length=16000, pitch=69)  # the user guide's §1: into the folder chop filled
    assert sorted(p.name for p in clips.glob("*.wav")) == sorted(chopped + ["hit_69.wav"])
    with pytest.raises(UserError, match="earlier `ganspacesynth dataset pad`"):
        pad(shots, clips, length=16000, pitch=69)
    pad(shots, clips, length=16000, pitch=70, overwrite=True)  # replaces its own clip, keeps chop's
    assert sorted(p.name for p in clips.glob("*.wav")) == sorted(chopped + ["hit_70.wav"])
    assert (clips / "chop.json").is_file() and (clips / "pad.json").is_file()


# -- a single-file output never replaces a user's file ---------------------------------------------------------------
@pytest.fixture(scope="module")
def small_comps(tmp_path_factory, tiny_model_path):
    from ganspacesynth.ganspace.fit import fit_components
    from ganspacesynth.synth import Synth

    path = tmp_path_factory.mktemp("comps") / "comps.npz"
    fit_components(Synth.load(tiny_model_path, device="cpu"), "conv0", count=256, n_components=4,
                   pitches=[60]).save(path)
    return path


def _write_midi(path: Path) -> Path:
    import mido

    mid = mido.MidiFile()
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track += [mido.Message("note_on", note=60, velocity=100, time=0), mido.Message("note_off", note=60, time=240)]
    mid.save(str(path))
    return path


M_ = ["--model", "{model}"]
#: (id, arguments, the user's files the command would write over: the output, or a side file it did not name)
SINGLE_FILE_OUTPUTS = [
    ("init", ["init", "--out", "mine.safetensors"], ["mine.safetensors"]),
    ("edit", ["edit", *M_, "--components", "{comps}", "--coeffs", "1", "--out", "take.wav"], ["take.wav"]),
    ("hallucinate over a text file", ["hallucinate", *M_, "--seed", "1", "--notes", "2", "--steps", "0", "--out",
                                      "README-mine.txt"], ["README-mine.txt"]),
    ("hallucinate's score", ["hallucinate", *M_, "--seed", "1", "--notes", "2", "--steps", "0", "--out", "piece.wav"],
     ["piece.score.json"]),
    ("midi", ["midi", *M_, "--seed", "1", "{midi}", "take.wav"], ["take.wav"]),
    ("export-pca", ["export-pca", "{comps}", "--out", "README-mine.txt"], ["README-mine.txt"]),
    ("ganspace", ["ganspace", *M_, "--random-z-count", "64", "--components", "2", "--regression-samples", "0",
                  "--quiet", "--out", "mine.npz"], ["mine.npz"]),
    ("describe --out", ["describe", *M_, "--components", "{comps}", "--top", "1", "--latents", "1", "--pitch", "60",
                        "--values=-1,0,1", "--out", "mine.npz"], ["mine.npz"]),
    ("instrument", ["instrument", *M_, "--pitches", "60", "--out", "mine.sf2"], ["mine.sf2"]),
    ("instrument's sfz", ["instrument", *M_, "--pitches", "60", "--sfz", "--out", "pad.sf2"], ["pad.sfz"]),
]


def _snapshot(folder: Path) -> dict:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("args, names", [c[1:] for c in SINGLE_FILE_OUTPUTS], ids=[c[0] for c in SINGLE_FILE_OUTPUTS])
@pytest.mark.heavy
def test_single_file_outputs_replace_a_users_file_only_with_overwrite(tiny_model_path, small_comps, tmp_path,
                                                                      monkeypatch, args, names):
    work = tmp_path / "work"
    work.mkdir()
    for name in names:
        (work / name).write_bytes(f"the user's {name}, not GANSpaceSynth's\n".encode())
    values = {"model": tiny_model_path, "comps": small_comps, "midi": _write_midi(tmp_path / "song.mid")}
    argv = [a.format(**values) for a in args]
    monkeypatch.chdir(work)
    before = _snapshot(work)
    res = cli(*argv)
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.output
    assert res.stderr.count("\n") == 1 and f"{names[0]} already exists; add --overwrite" in res.stderr, res.stderr
    assert _snapshot(work) == before, "a refused command changed or added files"  # byte for byte, nothing new
    res = cli(*argv, "--overwrite")
    assert res.exit_code == 0, res.output
    for name in names:
        assert (work / name).read_bytes() != before[name][0], f"--overwrite left {name} as it was"


def test_describe_writes_into_a_components_file_only_with_overwrite(tiny_model_path, small_comps, tmp_path):
    from ganspacesynth.ganspace.components import Components

    mine = tmp_path / "mine.npz"
    mine.write_bytes(small_comps.read_bytes())
    before = _snapshot(tmp_path)
    args = ["describe", "--model", tiny_model_path, "--components", mine, "--top", "1", "--latents", "1", "--pitch",
            "60", "--values=-1,0,1"]
    for extra in ([], ["--out", mine]):  # in place, spelled either way
        res = cli(*args, *extra)
        assert res.exit_code == 1 and "mine.npz already exists; without --out, describe writes" in res.stderr
        assert _snapshot(tmp_path) == before
    res = cli(*args, "--overwrite")
    assert res.exit_code == 0, res.output
    assert Components.load(mine).descriptions is not None
    res = cli("describe", "--model", tiny_model_path, "--components", mine, "--top", "5", "--out", tmp_path / "o.npz")
    # more than the file holds: refused, not quietly fewer
    assert res.exit_code == 1 and "--top 5" in res.stderr and "holds 4 components" in res.stderr


def test_the_commands_own_input_is_never_an_output(tiny_model_path, small_comps, tmp_path):
    song = _write_midi(tmp_path / "song.mid")
    score = tmp_path / "piece.score.json"  # re-rendering a score beside itself would replace it
    score.write_text('{"steps": []}')
    link = tmp_path / "link.npz"
    os.link(small_comps, link)  # the same file under another name
    before = {p: p.read_bytes() for p in (song, small_comps, score)}
    for args in (["midi", "--model", tiny_model_path, "--seed", "1", "--overwrite", song, song],
                 ["export-pca", small_comps, "--overwrite", "--out", link],
                 ["edit", "--model", tiny_model_path, "--components", small_comps, "--coeffs", "1", "--overwrite",
                  "--out", small_comps],
                 ["hallucinate", "--model", tiny_model_path, "--from", score, "--overwrite", "--out",
                  score.parent / "piece.wav"]):
        res = cli(*args)
        assert res.exit_code == 1 and "is also this command's input" in res.stderr, (args, res.output)
    assert {p: p.read_bytes() for p in before} == before


def test_the_packages_bundled_files_are_never_written(tiny_model_path, tmp_path):
    from ganspacesynth.assets import ASSETS, DEFAULT_COMPONENTS, DEFAULT_MODEL

    if not DEFAULT_COMPONENTS.is_file():
        pytest.skip("no bundled components installed")
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(ASSETS.iterdir()) if p.is_file()}
    cases = [["describe", "--components", DEFAULT_COMPONENTS, "--top", "10000", "--report", tmp_path / "r"],
             ["describe", "--components", DEFAULT_COMPONENTS, "--overwrite", "--out", DEFAULT_COMPONENTS],
             ["edit", "--coeffs", "1", "--overwrite", "--out", DEFAULT_COMPONENTS],
             ["init", "--overwrite", "--out", ASSETS / "new.safetensors"],
             ["generate", "--model", tiny_model_path, "--pitch", "60", "--out", ASSETS / "notes"]]
    if DEFAULT_MODEL.is_file():
        cases.append(["calibrate", DEFAULT_MODEL, "--data", tmp_path / "data", "--overwrite"])
    for args in cases:
        res = cli(*args)
        assert res.exit_code == 1 and "inside the installed ganspacesynth package" in res.stderr, (args, res.output)
        assert res.stderr.count("\n") == 1
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(ASSETS.iterdir()) if p.is_file()}
    assert after == before and not (ASSETS / "notes").exists()


# -- non-finite models and outputs -----------------------------------------------------------------------------------
def _model_with(tiny_model_path, tmp_path, change):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    state = load_file(str(tiny_model_path))
    with safe_open(str(tiny_model_path), framework="pt") as f:
        meta = f.metadata()
    name = change(state)
    path = tmp_path / "changed.safetensors"
    save_file(state, str(path), metadata=meta)
    return path, name


def test_a_model_with_nan_weights_is_refused_naming_the_tensor(tiny_model_path, tmp_path):
    def poison(state):
        name = "generator.blocks.1.conv1.weight"
        state[name] = state[name].clone()
        state[name].view(-1)[3] = float("inf")
        return name

    path, name = _model_with(tiny_model_path, tmp_path, poison)
    res = cli("generate", "--model", path, "--pitch", 60, "--out", tmp_path / "notes")
    assert res.exit_code == 1 and "blocks.1.conv1.weight holds NaN or infinite values" in res.stderr
    assert not (tmp_path / "notes").exists()


@pytest.mark.heavy
def test_non_finite_audio_is_never_written(tiny_model_path, tmp_path):
    def blow_up(state):
        name = "generator.blocks.2.conv0.weight"
        state[name] = state[name].clone().fill_(3e38)  # finite weights whose sums overflow to inf, then NaN
        return name

    path, _ = _model_with(tiny_model_path, tmp_path, blow_up)
    res = cli("generate", "--model", path, "--pitch", 60, "--count", 2, "--out", tmp_path / "notes")
    assert res.exit_code == 1 and "NaN or infinite audio" in res.stderr, res.output
    assert not (tmp_path / "notes").exists()
    res = cli("hallucinate", "--model", path, "--seed", 1, "--out", tmp_path / "p.wav")
    assert res.exit_code == 1 and "NaN or infinite" in res.stderr and not (tmp_path / "p.wav").exists()


def test_constant_notes_are_refused():
    from ganspacesynth.synth import check_waves

    good = np.random.default_rng(0).standard_normal((2, 100)).astype(np.float32)
    assert check_waves(good) is good
    dc = good.copy()
    dc[1] = 0.7
    with pytest.raises(UserError, match="constant note .note 1"):
        check_waves(dc)


def test_a_crafted_config_is_refused_before_any_allocation():
    import resource

    from ganspacesynth.model.config import PRESETS

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for changes, field in [({"fmap_base": 2**20, "fmap_max": 4096}, "too large|generator weights"),
                           ({"fmap_base": 2**20, "fmap_max": 2048, "num_resolutions": 3}, "generator weights"),
                           ({"fmap_base": 1e9}, "fmap_base"), ({"latent_vector_size": 10**9}, "latent_vector_size"),
                           ({"num_resolutions": 40}, "num_resolutions")]:
        with pytest.raises(ValueError, match=field):
            PRESETS["mel_prog_hires"].replace(**changes).validate()
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # kB: nothing big was allocated
    for preset in PRESETS.values():
        preset.validate()


# -- interrupted writing leaves a whole result or none ---------------------------------------------------------------
@pytest.mark.timeout(300)
@pytest.mark.integration
def test_ctrl_c_while_generating_leaves_nothing(tiny_model_path, tmp_path):
    out = tmp_path / "many"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ganspacesynth", "generate", "--model", str(tiny_model_path),
                             "--pitch", "60", "--pitch", "62", "--pitch", "64", "--count", "10000",  # far more than it
                             "--batch-size", "8", "--out", str(out)],  # can finish before the interrupt, even on a busy machine
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=default_sigint)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        partial = [p for p in tmp_path.glob(".many.*.tmp") if len(list(p.glob("*.wav"))) >= 40]
        if partial:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "removed" in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.iterdir())  # no notes, no temporary folder


@pytest.mark.integration
def test_generate_shows_a_progress_bar_on_a_terminal_only(tiny_model_path, tmp_path):
    import fcntl
    import pty
    import termios

    def run(*extra):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal 100 columns wide
        proc = subprocess.Popen([sys.executable, "-m", "ganspacesynth", "generate", "--model", str(tiny_model_path),
                                 "--pitch", "60", "--count", "40", *extra, "--out", str(tmp_path / f"n{len(extra)}")],
                                stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        os.close(master)
        assert proc.wait(timeout=300) == 0
        return b"".join(chunks).decode(errors="replace")

    assert re.search(r"generate: .*/40 \[", run())
    assert "generate" not in run("--no-progress")
    piped = subprocess.run([sys.executable, "-m", "ganspacesynth", "generate", "--model", str(tiny_model_path),
                            "--pitch", "60", "--count", "3", "--out", str(tmp_path / "piped")],
                           capture_output=True, text=True, timeout=300)
    assert piped.returncode == 0 and piped.stderr == ""


# -- web API: validate the whole request, then apply it --------------------------------------------------------------
@pytest.fixture(scope="module")
def components_path(tiny_synth, tmp_path_factory):
    from ganspacesynth.ganspace.fit import fit_components

    comps = fit_components(tiny_synth, "conv0", count=256, n_components=4, pitches=[60])
    return comps.save(tmp_path_factory.mktemp("comps") / "tiny_comps.npz")


@pytest.fixture
def web(tiny_synth, components_path, tmp_path):
    pytest.importorskip("flask")
    from ganspacesynth.interfaces.session import Session
    from ganspacesynth.interfaces.web.app import WebServer

    session = Session(tiny_synth, allowed_dirs=[components_path.parent], out_dir=tmp_path / "out")
    session.load_components(str(components_path))
    server = WebServer(session, "127.0.0.1", 0).start()
    yield session, server
    server.shutdown()
    session.close()


def state(server) -> dict:
    return json.loads(call(server, "/api/state")[1])


@pytest.mark.heavy
def test_web_refused_requests_change_nothing(web):
    session, server = web
    before = state(server)
    refused = [
        ("/api/synthesize", {"pitch": 72, "mode": "bogus"}),
        ("/api/synthesize", {"pitch": 72, "coefficients": [1.0] * 9}),
        ("/api/hallucinate", {"mode": "noz", "pitch": 72, "steps": [[1.0], [2.0]],
                              "settings": {"sample_spacing": 60, "interp_steps": 20, "attack": 0.05}}),  # too long
        ("/api/hallucinate", {"mode": "noz", "pitch": 72, "steps": [[1.0], "x"], "settings": {"attack": 0.01}}),
        ("/api/hallucinate", {"mode": "z", "pitch": 72, "count": 3, "seed": -1, "settings": {"attack": 0.01}}),
    ]
    for path, data in refused:
        status, body = call(server, path, data)
        assert status == 400, (path, data, body)
        assert state(server) == before, (path, data)
    # and the next request works: the refused one left nothing behind
    status, body = call(server, "/api/hallucinate", {"mode": "z", "count": 2})
    assert status == 200, body
    status, body = call(server, "/api/synthesize", {"pitch": 72})
    assert status == 200 and state(server)["pitch"] == 72


@pytest.mark.parametrize("raw", [json.dumps(seed).encode() for _, seed in BAD_SEEDS] + [b for _, b in HOSTILE_BODIES],
                         ids=[name for name, _ in BAD_SEEDS + HOSTILE_BODIES])
def test_web_hostile_bodies_are_400_not_500(web, raw):
    _, server = web
    status, body = call(server, "/api/z", raw=raw)
    assert status == 400, body
    assert call(server, "/api/state")[0] == 200


def test_serve_web_has_the_option_its_advice_names():
    res = cli("serve-web", "--help")
    assert "--max-seconds" in res.output and "--max-notes" in res.output


# -- OSC details -----------------------------------------------------------------------------------------------------
@pytest.fixture
def osc(tiny_synth, tmp_path):
    from ganspacesynth.interfaces.osc import OSCServer
    from ganspacesynth.interfaces.session import Session

    session = Session(tiny_synth, out_dir=tmp_path / "out")
    server = OSCServer(session, "127.0.0.1", 0).start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(20)
    yield session, server, sock
    sock.close()
    server.shutdown()
    session.close()


def _ask(server, sock, data: bytes):
    from pythonosc.osc_message import OscMessage

    sock.sendto(data, server.address)
    reply, _ = sock.recvfrom(65535)
    msg = OscMessage(reply)
    return msg.address, list(msg.params)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("data", [d for _, d in MALFORMED_BUNDLES], ids=[name for name, _ in MALFORMED_BUNDLES])
def test_malformed_bundles_get_an_error_with_id_0(osc, data):
    _, server, sock = osc
    address, args = _ask(server, sock, data)
    assert address == "/error" and args[-1] == 0 and "malformed" in args[0]
    assert _ask(server, sock, osc_message("/ping", "id", 5)) == ("/pong", [5])  # and the server goes on


def test_a_valid_bundle_is_served(osc):
    _, server, sock = osc
    ping = osc_message("/ping", "id", 7)
    address, args = _ask(server, sock, BUNDLE + struct.pack(">i", len(ping)) + ping)
    assert (address, args) == ("/pong", [7])


def test_save_names_and_overwrite(osc):
    session, server, sock = osc
    assert _ask(server, sock, osc_message("/synthesize_z", "id", 1))[0] == "/synthesized"
    for bad, needle in [("a\tb", "control characters"), ("new\nline", "control characters"),
                        ("x" * 300, "too long"), ("é" * 130, "too long"), ("../up", "plain file name")]:
        address, args = _ask(server, sock, osc_message("/save", bad))
        assert address == "/error" and needle in args[0], (bad, args)
    assert _ask(server, sock, osc_message("/save", "take1"))[0] == "/saved"
    first = (session.out_dir / "saved" / "take1.wav").read_bytes()
    assert _ask(server, sock, osc_message("/synthesize_z", 64))[0] == "/synthesized"
    address, args = _ask(server, sock, osc_message("/save", "take1"))
    assert address == "/error" and "overwrite" in args[0]
    assert (session.out_dir / "saved" / "take1.wav").read_bytes() == first
    assert _ask(server, sock, osc_message("/save", "take1", "overwrite"))[0] == "/saved"
    assert (session.out_dir / "saved" / "take1.wav").read_bytes() != first
    assert _ask(server, sock, osc_message("/save", "x" * 200))[0] == "/saved"  # long names that fit are fine


def test_a_temporary_output_folder_is_removed_on_close(tiny_synth, tmp_path):
    from ganspacesynth.interfaces.session import Session

    plain = Session(tiny_synth, out_dir=tmp_path / "plain", remove_out_dir=True)
    plain.submit(plain.note_request("z")).result(timeout=60)
    assert plain.close() == [] and not (tmp_path / "plain").exists()
    saving = Session(tiny_synth, out_dir=tmp_path / "saving", remove_out_dir=True)
    saving.submit(saving.note_request("z")).result(timeout=60)
    saving.save_last("keep")
    assert saving.close() == [tmp_path / "saving" / "saved"]
    assert [p.name for p in (tmp_path / "saving").iterdir()] == ["saved"]  # what the client saved survives
    user = Session(tiny_synth, out_dir=tmp_path / "user")  # --out-dir given: never removed
    user.close()
    assert (tmp_path / "user").is_dir()


@pytest.mark.timeout(300)
@pytest.mark.integration
def test_serve_osc_removes_its_temporary_folder_on_exit(tiny_model_path, tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "ganspacesynth", "serve-osc", "--model", str(tiny_model_path),
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=default_sigint)
    line = proc.stdout.readline()
    folder = Path(re.search(r"writing to (\S+?)\)", line).group(1))
    assert folder.is_dir() and folder.name.startswith("ganspacesynth-live-")
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert not folder.exists() and not list(tmp_path.glob("ganspacesynth-live-*"))


# -- precision that fits the CPU -------------------------------------------------------------------------------------
def test_auto_precision_reads_the_cpu_flags(monkeypatch, tiny_model_path, capsys):
    from ganspacesynth import runtime
    from ganspacesynth.synth import Synth

    monkeypatch.delenv(runtime.AUTO_PRECISION_ENV, raising=False)  # the suite pins auto to float32 (conftest.py)
    monkeypatch.setattr(runtime, "_precision_warned", set())
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2", "fma"}))  # AVX2 only: no bfloat16 convs
    assert Synth.load(tiny_model_path, device="cpu", precision="auto").precision == "float32"
    with pytest.raises(UserError, match="cannot run bfloat16 convolutions"):
        Synth.load(tiny_model_path, device="cpu", precision="bfloat16")
    assert capsys.readouterr().err == ""
    ice_lake = frozenset({"avx2", "avx512f", "avx512bw", "avx512vl", "avx512dq"})  # AVX-512 without BF16
    monkeypatch.setattr(runtime, "cpu_flags", lambda: ice_lake)
    assert Synth.load(tiny_model_path, device="cpu", precision="auto").precision == "float32"
    s = Synth.load(tiny_model_path, device="cpu", precision="bfloat16")  # explicit: kept, with one warning
    Synth.load(tiny_model_path, device="cpu", precision="bfloat16")
    err = capsys.readouterr().err
    assert s.precision == "bfloat16" and err.count("\n") == 1 and "no native bfloat16" in err
    monkeypatch.setattr(runtime, "cpu_flags", lambda: ice_lake | {"amx_bf16", "avx512_bf16"})  # Sapphire Rapids
    monkeypatch.setattr(runtime, "_precision_warned", set())
    assert Synth.load(tiny_model_path, device="cpu", precision="auto").precision == "bfloat16"
    Synth.load(tiny_model_path, device="cpu", precision="bfloat16")
    assert capsys.readouterr().err == ""
    # training resolves through the same function: refused on the AVX2-only CPU, silent on its other ranks
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    with pytest.raises(UserError, match="cannot run bfloat16 convolutions"):
        runtime.resolve_precision("bfloat16", "cpu", warn=False)
    monkeypatch.setattr(runtime, "cpu_flags", lambda: ice_lake)
    monkeypatch.setattr(runtime, "_precision_warned", set())
    assert runtime.resolve_precision("bfloat16", "cpu", warn=False) == "bfloat16"
    assert capsys.readouterr().err == ""
    res = cli("generate", "--help")
    assert "auto" in res.output


def test_benchmarks_name_their_cpu():
    text = (REPO / "docs" / "BENCHMARKS.md").read_text()
    assert "CPU model" in text or "cpu_model" in text
    assert re.search(r"AMX", text)


# -- defaults that work on the model in hand -------------------------------------------------------------------------
def test_hallucinate_defaults_fit_the_models_note_length(tiny_model_path, tmp_path):
    res = cli("hallucinate", "--model", tiny_model_path, "--seed", 3, "--out", tmp_path / "p.wav")
    assert res.exit_code == 0, res.output
    score = json.loads((tmp_path / "p.score.json").read_text())
    assert score["attack"] + score["sustain"] + score["release"] <= 16384 / 16000
    assert score["steps"][0]["pitch"] == 32


def test_default_pitch_is_in_the_models_range(tmp_path):
    import torch

    from ganspacesynth.model.config import pitch_condition, preset
    from ganspacesynth.model.files import save_model
    from ganspacesynth.model.generator import Generator

    torch.manual_seed(0)
    cfg = preset("tiny", conditions=(pitch_condition(range(60, 73)),))
    model = save_model(tmp_path / "m.safetensors", cfg, Generator(cfg).state_dict())
    res = cli("hallucinate", "--model", model, "--seed", 1, "--out", tmp_path / "p.wav")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "p.score.json").read_text())["steps"][0]["pitch"] == 66


# -- messages that tell the truth ------------------------------------------------------------------------------------
def test_garbage_arrays_do_not_suggest_unpickling(tiny_model_path, tmp_path):
    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"this is not an array" * 4)
    for res in (cli("generate", "--model", tiny_model_path, "--pitch", 60, "--z", junk, "--out", tmp_path / "o"),
                cli("edit", "--model", tiny_model_path, "--components", junk, "--coeffs", "1", "--out", tmp_path / "x.wav"),
                cli("export-pca", junk, "--out", tmp_path / "p.pickle")):
        assert res.exit_code == 1 and "allow_pickle" not in res.stderr and "pickle" not in res.stderr.lower(), res.stderr


def test_a_latent_steps_file_needs_no_components(tiny_model_path, tmp_path):
    z = np.random.default_rng(0).standard_normal((2, 32)).tolist()
    steps = tmp_path / "steps.json"
    steps.write_text(json.dumps({"steps": [{"z": z[0]}, {"z": z[1], "pitch": 48}], "attack": 0.05, "sustain": 0.2,
                                 "release": 0.2, "spacing": 0.2}))
    res = cli("hallucinate", "--model", tiny_model_path, "--score", steps, "--steps", 1, "--out", tmp_path / "h.wav")
    assert res.exit_code == 0, res.output
    assert "mode z" in res.output and "coefficient" not in res.output
    steps.write_text(json.dumps({"steps": [{"coeffs": [1.0]}, {"coeffs": [0.0]}]}))
    res = cli("hallucinate", "--model", tiny_model_path, "--score", steps, "--out", tmp_path / "c.wav")
    assert res.exit_code == 1 and "coefficient steps: give the components file with --components" in res.stderr


def test_note_names_sort_past_999():
    from ganspacesynth.interfaces.cli_core import note_names

    assert note_names([60], 3) == ["p60_000.wav", "p60_001.wav", "p60_002.wav"]
    names = note_names([60], 1500)
    assert names == sorted(names) and names[1000] == "p60_1000.wav" and names[7] == "p60_0007.wav"


# -- README and install ----------------------------------------------------------------------------------------------
def test_readme_starts_with_a_virtual_environment():
    text = (REPO / "README.md").read_text()
    first = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    assert "python3 -m venv" in first and first.index("venv") < first.index("install.sh")


@pytest.mark.integration
def test_install_never_pulls_the_cuda_build(tmp_path):
    """Without torch and without the local CPU wheel, install.sh stops with the CPU index command, before pip."""
    log = tmp_path / "calls.log"
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\ncase \"$*\" in *'import torch'*) exit 1;; esac\nexit 0\n")
    fake.chmod(0o755)
    proc = subprocess.run(["bash", str(REPO / "scripts" / "install.sh")], capture_output=True, text=True,
                          env={**os.environ, "PYTHON": str(fake), "WHEEL_DIR": str(tmp_path / "no-wheels")})
    assert proc.returncode != 0
    assert "--index-url https://download.pytorch.org/whl/cpu" in proc.stderr
    calls = log.read_text().splitlines()
    assert calls == ["-c import torch"], calls  # pip was never run


def test_readme_api_example_matches_the_bundled_model():
    from ganspacesynth.assets import default_model_path

    if default_model_path() is None:
        pytest.skip("no bundled model in this checkout")
    text = (REPO / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    code = block.replace('Synth.load("model.safetensors")', "Synth.load(None)")
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    shape = re.search(r"numpy \((\d+), (\d+)\)", block)
    assert shape, "the README states the shape"
    assert scope["waves"].shape == (int(shape.group(1)), int(shape.group(2)))


def test_benchmarks_end_on_ctrl_c_with_one_line(capsys):
    """Every benchmark's `__main__` goes through `_common.run`: Ctrl-C ends it with `interrupted`, exit 130."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from _common import run
    finally:
        sys.path.pop(0)

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exc:
        run(interrupted)
    assert exc.value.code == 130 and capsys.readouterr().err == "interrupted\n"
    for script in sorted((REPO / "benchmarks").glob("*.py")):
        text = script.read_text()
        if script.name != "_common.py" and "__main__" in text:
            assert "run(main)" in text, script.name
