"""Headless Pure Data against the real OSC server and a tiny model (Debian `puredata-core`).

Test patches talk OSC with vanilla objects only ([netsend -u -b], [oscformat], [oscparse], [soundfiler]),
read each result into an array and print its sample count and peak; the shipped patches in pd/ are opened
and driven through their `gss-*` remote-control names. Pd runs in real time (-nogui -noaudio: -batch never
reads sockets) under an outer timeout and an in-patch watchdog.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from helpers import PD, PD_DIR, Patch, run_pd, watchdog

from ganspacesynth.interfaces.osc import OSCServer
from ganspacesynth.interfaces.session import Session

SHIPPED = sorted(PD_DIR.glob("*.pd"))
pytestmark = [pytest.mark.pd, pytest.mark.integration,
              pytest.mark.skipif(PD is None, reason="Pure Data not installed (apt-get install puredata-core)")]


def request_patch(path: Path, messages: str) -> Path:
    """Connect to the port given with -send "test-port N", send `messages` (a Pd message box, commas between
    messages, first word = OSC address), wait for /synthesized or /hallucinated, read the WAV into an array and
    print SAMPLES <n> <rate>, PEAK <max |x|>; an /error prints ERROR and quits 2."""
    p = Patch()
    watchdog(p, 15000)
    # sender: "address args" -> [oscformat] (address set with "set") -> [netsend -u -b]
    r, lst, t = p.obj("r $0-send"), p.obj("list"), p.obj("t a a")
    head, setm, trim, fmt = p.obj("list split 1"), p.obj("list prepend set"), p.obj("list trim"), p.obj("oscformat")
    rest, pre, trim2, ns = p.obj("list split 1"), p.obj("list prepend send"), p.obj("list trim"), p.obj("netsend -u -b")
    p.chain(r, lst, t)
    p.connect(t, 1, head)
    p.chain(head, setm, trim, fmt)
    p.connect(t, 0, rest)
    p.connect(rest, 1, fmt)
    p.chain(fmt, pre, trim2, ns)
    port, tp, con = p.obj("r test-port"), p.obj("t b f"), p.msg("connect 127.0.0.1 $1")
    go, send = p.msg(messages), p.obj("s $0-send")
    p.chain(port, tp)
    p.connect(tp, 1, con)
    p.connect(con, 0, ns)
    p.connect(tp, 0, go)
    p.connect(go, 0, send)
    # replies
    parse, trim3, route = p.obj("oscparse"), p.obj("list trim"), p.obj("route synthesized hallucinated error")
    p.connect(ns, 1, parse)
    p.chain(parse, trim3, route)
    tolist, unpack, pk, fz, lb = p.obj("list"), p.obj("unpack s f f"), p.obj("pack s f"), p.obj("f $0"), p.obj("loadbang")
    read, sfiler, arr = p.msg("read -resize $1 $2-snd"), p.obj("soundfiler"), p.obj("array define $0-snd")
    p.connect(route, 0, tolist)
    p.connect(route, 1, tolist)
    p.chain(tolist, unpack)
    p.connect(unpack, 0, pk)
    p.chain(lb, fz)
    p.connect(fz, 0, pk, 1)
    p.chain(pk, read, sfiler)
    t2, pk2, prs = p.obj("t b f"), p.obj("pack f f"), p.obj("print SAMPLES")
    amax, amin, expr, prp = p.obj("array max $0-snd"), p.obj("array min $0-snd"), p.obj("expr max($f1, -$f2)"), p.obj("print PEAK")
    t3, quit0 = p.obj("t b b"), p.msg("; pd quit 0")
    p.connect(sfiler, 0, t2)
    p.connect(t2, 1, pk2)
    p.connect(unpack, 2, pk2, 1)  # the rate arrives (right to left) before the path is read
    p.chain(pk2, prs)
    p.connect(t2, 0, t3)
    p.connect(t3, 1, amin)
    p.connect(amin, 0, expr, 1)
    p.connect(t3, 0, amax)
    p.connect(amax, 0, expr)
    p.chain(expr, prp)
    p.connect(t3, 0, quit0)
    perr, quit2 = p.obj("print ERROR"), p.msg("; pd quit 2")
    p.connect(route, 2, perr)
    p.connect(route, 2, quit2)
    return p.write(path)


def printed(stderr: str, tag: str) -> list[float]:
    m = re.search(rf"^{tag}: (.*)$", stderr, re.M)
    assert m, stderr
    return [float(v) for v in m.group(1).split()]


@pytest.fixture
def server(tiny_synth, tiny_model_path, tmp_path):
    session = Session(tiny_synth, allowed_dirs=[tiny_model_path.parent], out_dir=tmp_path / "out")
    srv = OSCServer(session, "127.0.0.1", 0).start()  # listening before Pd starts (UDP loses early messages)
    yield session, srv.address[1]
    srv.shutdown()
    session.close()


@pytest.mark.parametrize("patch", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_patch_opens_without_errors(patch):
    out = run_pd("-send", "pd quit", str(patch))
    assert out.returncode == 0
    assert "couldn't create" not in out.stderr and "error" not in out.stderr.lower(), out.stderr
    assert "connection failed" not in out.stderr


def test_the_open_check_does_catch_a_broken_patch(tmp_path):
    p = Patch()
    p.obj("no_such_external_object")
    out = run_pd("-send", "pd quit", str(p.write(tmp_path / "broken.pd")))
    assert "couldn't create" in out.stderr


def test_expected_patches_are_shipped():
    assert {p.name for p in SHIPPED} >= {"ganspacesynth.pd", "ganspacesynth_noz.pd", "hallu.pd"}


def test_pd_synthesizes_a_note_and_reads_it(server, tmp_path, tiny_synth):
    session, port = server
    patch = request_patch(tmp_path / "synth.pd", "randomize_z 4, pitch 48, synthesize")
    out = run_pd("-send", f"test-port {port}", str(patch))
    assert out.returncode == 0, out.stderr
    assert printed(out.stderr, "SAMPLES") == [16384, 16000]
    peak = printed(out.stderr, "PEAK")[0]
    expected = np.abs(tiny_synth.generate(tiny_synth.random_z(1, 4), pitch=48)[0]).max()
    assert 1e-3 < peak and abs(peak - min(expected, 0.99)) < 1e-3  # the note Pd read is the one the model made


def test_pd_hallucinates_and_reads_the_piece(server, tmp_path):
    _, port = server
    patch = request_patch(tmp_path / "hallu.pd",
                          "interp_steps 1, sample_spacing 0.25, attack 0.1, sustain 0.2, release 0.1, hallucinate 3 2")
    out = run_pd("-send", f"test-port {port}", str(patch))
    assert out.returncode == 0, out.stderr
    notes = 3 + 2 * 1
    expected = round((notes - 1) * 0.25 * 16000) + 1600 + 3200 + 1600
    assert printed(out.stderr, "SAMPLES") == [expected, 16000]
    assert 0.9 < printed(out.stderr, "PEAK")[0] <= 1.0  # normalised mix, not silence


def test_pd_gets_error_replies(server, tmp_path):
    _, port = server
    patch = request_patch(tmp_path / "err.pd", "synthesize 200")
    out = run_pd("-send", f"test-port {port}", str(patch))
    assert out.returncode == 2, out.stderr
    assert "outside this model's range" in out.stderr


def harness(path: Path, trigger: str, notify: str) -> Path:
    """Drive a shipped patch through its remote-control names: connect, bang `trigger`, print what `notify`
    and gss-playing report, then quit."""
    p = Patch()
    watchdog(p, 15000)
    port, tp, con, scon = p.obj("r harness-port"), p.obj("t b f"), p.msg("list 127.0.0.1 $1"), p.obj("s gss-connect")
    p.chain(port, tp)
    p.connect(tp, 1, con)
    p.connect(con, 0, scon)
    d, bang, trig = p.obj("delay 100"), p.msg("bang"), p.obj(f"s {trigger}")
    p.connect(tp, 0, d)
    p.chain(d, bang, trig)
    rs, prs = p.obj(f"r {notify}"), p.obj("print SOUND")
    p.chain(rs, prs)
    rp, tq, prp, d2, q = p.obj("r gss-playing"), p.obj("t b a"), p.obj("print PLAYING"), p.obj("delay 50"), p.msg("; pd quit 0")
    p.chain(rp, tq)
    p.connect(tq, 1, prp)
    p.connect(tq, 0, d2)
    p.connect(d2, 0, q)
    return p.write(path)


@pytest.mark.parametrize("rate", [44100, 48000])
def test_shipped_main_patch_synthesizes_and_plays_at_the_files_rate(server, tmp_path, rate):
    _, port = server
    h = harness(tmp_path / "harness.pd", "gss-synthesize", "gss-sound")
    out = run_pd("-r", str(rate), "-send", f"harness-port {port}", "-open", str(PD_DIR / "ganspacesynth.pd"), str(h))
    assert out.returncode == 0, out.stderr
    assert printed(out.stderr, "SOUND") == [16384, 16000]
    samples, ms = printed(out.stderr, "PLAYING")
    assert samples == 16384 and ms == pytest.approx(1024.0)  # 16384 samples at 16 kHz, whatever Pd's rate


@pytest.fixture(scope="module")
def components_path(tiny_synth, tmp_path_factory):
    from ganspacesynth.ganspace.fit import fit_components

    comps = fit_components(tiny_synth, "conv0", count=512, n_components=8, pitches=[60])
    return comps.save(tmp_path_factory.mktemp("comps") / "tiny_comps.npz")


@pytest.fixture
def ganspace_server(tiny_synth, components_path, tmp_path):
    session = Session(tiny_synth, allowed_dirs=[components_path.parent], out_dir=tmp_path / "out")
    srv = OSCServer(session, "127.0.0.1", 0).start()
    yield session, srv.address[1]
    srv.shutdown()
    session.close()


@pytest.mark.parametrize("messages", [
    "load_ganspace_components tiny_comps.npz, coefficients 1.5 -1, synthesize_noz 60",
    "load_ganspace_components tiny_comps.npz, synthesize_noz 60 1.5 -1",
])
def test_pd_sets_coefficients_and_synthesizes_without_z(ganspace_server, tmp_path, tiny_synth, components_path,
                                                        messages):
    from ganspacesynth.ganspace.components import Components
    from ganspacesynth.ganspace.edits import synthesize

    _, port = ganspace_server
    out = run_pd("-send", f"test-port {port}", str(request_patch(tmp_path / "noz.pd", messages)))
    assert out.returncode == 0, out.stderr
    assert printed(out.stderr, "SAMPLES") == [16384, 16000]
    wave = synthesize(tiny_synth, Components.load(components_path, tiny_synth), [1.5, -1.0], 60, mode="noz")[0]
    assert abs(printed(out.stderr, "PEAK")[0] - min(np.abs(wave).max(), 0.99)) < 1e-3


def test_pd_hallucinates_from_a_step_sequence(ganspace_server, tmp_path):
    _, port = ganspace_server
    patch = request_patch(tmp_path / "seq.pd", "load_ganspace_components tiny_comps.npz, coefficients -1, add_step, "
                          "coefficients 2 1, add_step, coefficients 0 -2, interp_steps 2, sample_spacing 0.1, "
                          "attack 0.05, sustain 0.1, release 0.05, hallucinate_noz 60")
    out = run_pd("-send", f"test-port {port}", str(patch))
    assert out.returncode == 0, out.stderr
    notes = 3 + 2 * 2
    assert printed(out.stderr, "SAMPLES") == [round((notes - 1) * 0.1 * 16000) + 800 + 1600 + 800, 16000]
    assert 0.9 < printed(out.stderr, "PEAK")[0] <= 1.0


def test_shipped_noz_patch_synthesizes(ganspace_server, tmp_path, components_path):
    session, port = ganspace_server
    session.load_components(str(components_path))
    h = harness(tmp_path / "harness.pd", "gss-synthesize", "gss-sound")
    out = run_pd("-send", f"harness-port {port}", "-open", str(PD_DIR / "ganspacesynth_noz.pd"), str(h))
    assert out.returncode == 0, out.stderr
    assert printed(out.stderr, "SOUND") == [16384, 16000]


def test_shipped_hallu_patch_generates_with_its_settings(ganspace_server, tmp_path, components_path):
    session, port = ganspace_server
    session.load_components(str(components_path))
    session.add_step()
    h = harness(tmp_path / "harness.pd", "gss-generate", "gss-hallucinated")
    out = run_pd("-r", "48000", "-send", f"harness-port {port}", "-open", str(PD_DIR / "hallu.pd"), str(h))
    assert out.returncode == 0, out.stderr
    # two steps, the patch's defaults: 4 interpolation steps, 0.2 s spacing, envelope 0.05 + 0.3 + 0.3 s
    samples = round(5 * 0.2 * 16000) + 800 + 4800 + 4800
    assert printed(out.stderr, "SOUND") == [samples, 16000]
    assert printed(out.stderr, "PLAYING") == [samples, pytest.approx(samples / 16.0)]


@pytest.fixture
def family_server(tmp_path):
    from helpers import family_model

    from ganspacesynth.synth import Synth

    synth = Synth.load(family_model(tmp_path / "family.safetensors"))
    session = Session(synth, allowed_dirs=[tmp_path], out_dir=tmp_path / "out")
    srv = OSCServer(session, "127.0.0.1", 0).start()
    yield session, srv.address[1]
    srv.shutdown()
    session.close()


def keyboard_harness(path: Path) -> Path:
    """Drive the main patch's keyboard: once the keyboard is loaded play [s gss-note] 60 100, choose the family
    guitar, and once it is loaded again save the preset pd-test and load it back; print READY, VOICE and PRESET."""
    p = Patch()
    watchdog(p, 25000)
    port, tp, con, scon = p.obj("r harness-port"), p.obj("t b f"), p.msg("list 127.0.0.1 $1"), p.obj("s gss-connect")
    p.chain(port, tp)
    p.connect(tp, 1, con)
    p.connect(con, 0, scon)
    ready, tr, prr, count, inc, sel = (p.obj("r gss-keyboard-ready"), p.obj("t b a"), p.obj("print READY"),
                                       p.obj("f"), p.obj("+ 1"), p.obj("sel 1 2"))
    p.chain(ready, tr)
    p.connect(tr, 1, prr)
    p.connect(tr, 0, count)
    p.connect(count, 0, inc)
    p.connect(inc, 0, count, 1)
    p.connect(inc, 0, sel)
    note, wait, family = p.msg("; gss-note 60 100"), p.obj("delay 100"), p.msg("; gss-family guitar")
    p.connect(sel, 0, note)
    p.connect(sel, 0, wait)
    p.connect(wait, 0, family)
    p.connect(sel, 1, p.msg("; gss-save-preset pd-test"))
    rv, pv = p.obj("r gss-voice-note"), p.obj("print VOICE")
    p.chain(rv, pv)
    rp, tp2, prp, c2, inc2, sel2 = (p.obj("r gss-preset"), p.obj("t b a"), p.obj("print PRESET"), p.obj("f"),
                                    p.obj("+ 1"), p.obj("sel 1 2"))
    p.chain(rp, tp2)
    p.connect(tp2, 1, prp)
    p.connect(tp2, 0, c2)
    p.connect(c2, 0, inc2)
    p.connect(inc2, 0, c2, 1)
    p.connect(inc2, 0, sel2)
    p.connect(sel2, 0, p.msg("; gss-load-preset pd-test"))
    end, quit0 = p.obj("delay 100"), p.msg("; pd quit 0")
    p.connect(sel2, 1, end)
    p.connect(end, 0, quit0)
    return p.write(path)


def test_shipped_main_patch_plays_notes_from_its_keyboard_with_family_and_presets(family_server, tmp_path):
    session, port = family_server
    h = keyboard_harness(tmp_path / "harness.pd")
    out = run_pd("-send", f"harness-port {port}", "-open", str(PD_DIR / "ganspacesynth.pd"), str(h), timeout=60)
    assert out.returncode == 0, out.stderr
    ready = re.findall(r"^READY: (.*)$", out.stderr, re.M)
    assert len(ready) >= 2 and ready[0].split() == ["24", "84", "16384", "16000"], out.stderr
    played = re.search(r"^VOICE: (.*)$", out.stderr, re.M)
    assert played, out.stderr
    voice = [float(v) for v in played.group(1).split()]
    start = (60 - 24) * 16384  # the note's place in the keyboard file
    assert voice == [1, start, start + 16384, pytest.approx(1024.0)]
    presets = re.findall(r"^PRESET: (?:list )?(\S+)", out.stderr, re.M)
    saved = session.out_dir / "presets" / "pd-test.json"
    assert presets == [str(saved), str(saved)] and saved.is_file()
    assert session.state.conditions == {"instrument_family": "guitar"}
    assert "ganspacesynth-error" not in out.stderr, out.stderr


# the sustain test's timeline, in ms after the first keyboard is loaded (pitch, velocity; pedal 1 down / 0 up)
SUSTAIN_EVENTS = [
    (0, "gss-sustain 1"), (0, "gss-note 60 100"), (200, "gss-note 60 0"), (500, "gss-sustain 0"),  # held, then let go
    (1000, "gss-note 60 100"), (1200, "gss-note 60 0"),  # the same note without the pedal
    (2000, "gss-sustain 1"), (2000, "gss-note 62 100"), (2100, "gss-note 62 0"),  # held ...
    (2200, "gss-note 62 100"), (2300, "gss-sustain 0"), (2500, "gss-note 62 0"),  # ... played again, pedal up
]
SUSTAIN_RECORD_MS = 2800


def sustain_harness(path: Path) -> Path:
    """Drive the main patch's sustain pedal: once the keyboard is loaded, record [r~ gss-out] into an array while
    sending SUSTAIN_EVENTS to the patch's remote names, then write the array as a float WAV to the path given with
    -send "harness-wav PATH" and quit; print VOICE for each voice that starts."""
    p = Patch()
    watchdog(p, 15000)
    lb, dsp = p.obj("loadbang"), p.msg("; pd dsp 1")
    p.chain(lb, dsp)
    port, tp, con, scon = p.obj("r harness-port"), p.obj("t b f"), p.msg("list 127.0.0.1 $1"), p.obj("s gss-connect")
    p.chain(port, tp)
    p.connect(tp, 1, con)
    p.connect(con, 0, scon)
    ready, once, tb, close = p.obj("r gss-keyboard-ready"), p.obj("spigot 1"), p.obj("t b b"), p.msg("0")
    p.chain(ready, once, tb)
    p.connect(tb, 1, close)
    p.connect(close, 0, once, 1)
    rec = p.obj("tabwrite~ gss-test-rec")
    p.chain(p.obj("r~ gss-out"), rec)
    p.obj(f"array define gss-test-rec {SUSTAIN_RECORD_MS * 48 + 4800}")
    p.connect(tb, 0, rec)
    for ms, message in SUSTAIN_EVENTS:
        d, m = p.obj(f"delay {ms}"), p.msg(f"; {message}")
        p.connect(tb, 0, d)
        p.connect(d, 0, m)
    wav, sym = p.obj("r harness-wav"), p.obj("symbol")
    p.connect(wav, 0, sym, 1)
    end, write, sf, q = (p.obj(f"delay {SUSTAIN_RECORD_MS}"), p.msg("write -wave -bytes 4 $1 gss-test-rec"),
                         p.obj("soundfiler"), p.msg("; pd quit 0"))
    p.connect(tb, 0, end)
    p.chain(end, sym, write, sf, q)
    rv, pv = p.obj("r gss-voice-note"), p.obj("print VOICE")
    p.chain(rv, pv)
    return p.write(path)


def test_shipped_main_patch_sustain_pedal_holds_released_notes(family_server, tmp_path):
    import soundfile as sf

    _, port = family_server
    wav = tmp_path / "rec.wav"
    h = sustain_harness(tmp_path / "harness.pd")
    out = run_pd("-r", "48000", "-send", f"harness-port {port}", "-send", f"harness-wav symbol {wav}",
                 "-open", str(PD_DIR / "ganspacesynth.pd"), str(h), timeout=60)
    assert out.returncode == 0, out.stderr
    x, rate = sf.read(wav)
    assert rate == 48000

    def rms(a: float, b: float) -> float:  # the output level between a and b ms after the first note
        return float(np.sqrt(np.mean(x[round(a * 48):round(b * 48)] ** 2)))

    def end(a: float, b: float) -> float:  # ms after the first note when the output between a and b falls silent
        loud = np.flatnonzero(np.abs(x[round(a * 48):round(b * 48)]) > 1e-6)
        assert loud.size, (a, b)
        return a + (loud[-1] + 1) / 48

    # pedal down, key up at 200 ms: the note keeps sounding long after its 80 ms release would have ended it
    # (measured: RMS 0.049 at 300-480 ms, 0.029 while its key was down at 0-180 ms) ...
    assert rms(300, 480) > 0.5 * rms(0, 180) > 0.005
    # ... and ends with the pedal (up at 500 ms) after the 80 ms release (abs=3: the recording lags by one
    # 64-sample block, 1.3 ms)
    assert end(0, 1000) == pytest.approx(500 + 80, abs=3)
    # the same note without the pedal ends 80 ms after its key-up at 1200 ms, silent where the held one sounded
    assert end(1000, 2000) == pytest.approx(1200 + 80, abs=3)
    assert rms(1300, 1480) == 0.0
    # held (key up at 2100 ms), played again at 2200: a normal note, which pedal up at 2300 does not end; its key
    # up at 2500 does
    assert end(2000, SUSTAIN_RECORD_MS) == pytest.approx(2500 + 80, abs=3)
    assert rms(2400, 2480) > 0.005
    # ... and once the held voice's 80 ms release is over only the new one sounds: the note from 80 ms on again
    assert np.allclose(x[round(2285 * 48):round(2385 * 48)], x[round(2085 * 48):round(2185 * 48)], atol=1e-6)
    voices = re.findall(r"^VOICE: (\S+) (\S+)", out.stderr, re.M)
    assert [float(start) / 16384 + 24 for _, start in voices] == [60, 60, 62, 62]  # 62 played again: a new voice
    assert "ganspacesynth-error" not in out.stderr and "error" not in out.stderr.lower(), out.stderr
