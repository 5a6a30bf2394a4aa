"""OSC addresses for playing a timbre (interfaces/osc_timbre.py): /condition, /keyboard, /save_preset and
/load_preset, over real UDP against a tiny model conditioned on an instrument family."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from helpers import Client, family_components

from ganspacesynth.interfaces.osc import OSCServer
from ganspacesynth.interfaces.session import Session


@pytest.fixture(scope="module")
def components_path(family_synth, tmp_path_factory):
    return family_components(family_synth, tmp_path_factory.mktemp("comps"))


@pytest.fixture
def served(family_synth, components_path, tmp_path):
    session = Session(family_synth, allowed_dirs=[components_path.parent], out_dir=tmp_path / "out")
    session.load_components(str(components_path))
    server = OSCServer(session, "127.0.0.1", 0).start()
    client = Client(server.address)
    yield session, client
    client.close()
    server.shutdown()
    session.close()


@pytest.mark.heavy
def test_condition_sets_and_clears_the_instrument_family(served):
    session, c = served
    assert c.ask("/condition", "id", 5, "instrument_family", "guitar") == ("/ok", ["/condition", 5])
    assert session.state.conditions == {"instrument_family": "guitar"}
    assert c.ask("/condition", "instrument_family", "none")[0] == "/ok"
    assert session.state.conditions == {}
    for args, needle in ((["instrument_family", "kazoo"], "not known to this model"),
                         (["timbre", "warm"], "no condition 'timbre'"), ([], "usage: /condition"),
                         ([3.0], "must be a string")):
        addr, reply = c.ask("/condition", *args)
        assert addr == "/error" and needle in reply[0], reply
    assert session.state.conditions == {}


def test_keyboard_writes_every_key_of_the_timbre_into_one_file(served, family_synth):
    from ganspacesynth.audio.levels import peak_safe
    from ganspacesynth.ganspace.edits import synthesize

    session, c = served
    c.ask("/condition", "instrument_family", "organ")
    c.ask("/coefficients", 1.0, -1.5)
    addr, (path, first, last, samples, rate, rid) = c.ask("/keyboard", "id", "kb")
    assert addr == "/keyboard" and rid == "kb"
    assert (first, last, samples, rate) == (24, 84, 16384, 16000)
    audio, sr = sf.read(path, dtype="float32")
    assert sr == 16000 and audio.shape == ((last - first + 1) * samples,)
    note = audio[(60 - first) * samples:(61 - first) * samples]
    alone = synthesize(family_synth, session.components, [1.0, -1.5], 60, mode="offset", z=session.z[None],
                       conditions={"instrument_family": "organ"})[0]
    np.testing.assert_allclose(note, peak_safe(alone), atol=2e-3)  # int16 file, batch vs one
    addr, reply = c.ask("/keyboard", "bogus")
    assert addr == "/error" and "unknown synthesis mode" in reply[0]


@pytest.mark.heavy
def test_hallucination_plays_the_session_conditions(served, family_synth):
    from ganspacesynth.compose.envelope import envelope_curve

    session, c = served
    assert c.ask("/condition", "instrument_family", "organ")[0] == "/ok"
    # notes 0.35 s long, 0.4 s apart: the first key note sounds alone
    for name, value in (("interp_steps", 1.0), ("sample_spacing", 0.4), ("attack", 0.05), ("sustain", 0.2),
                        ("release", 0.1)):
        assert c.ask(f"/{name}", value)[0] == "/ok"
    addr, args = c.ask("/hallucinate", "id", 8, 2.0, 5.0, 60.0)
    assert addr == "/hallucinated", args
    result = session.last
    assert result.score["conditions"] == {"instrument_family": "organ"}
    z0 = np.asarray(result.score["steps"][0]["z"], dtype=np.float32)[None]
    curve = envelope_curve(800, 3200, 1600)
    first = result.wave[:len(curve)].astype(np.float64)

    def misfit(family: str) -> float:
        """How far the first note is from the one Synth.generate makes with `family` (after the mix's scaling)."""
        note = family_synth.generate(z0, pitch=60, conditions={"instrument_family": family})[0][:len(curve)] * curve
        scale = float(first @ note / (note @ note))  # the mix is peak-normalised
        return float(np.abs(first - scale * note).max() / np.abs(first).max())

    assert misfit("organ") < 2e-3  # batched vs alone: float32 kernels differ slightly
    assert misfit("bass") > 0.05 and misfit("guitar") > 0.05
    # the GANSpace modes carry them too
    assert session.hallucination_request("noz").plan.conditions == {"instrument_family": "organ"}


def test_presets_are_saved_and_loaded_by_name_bit_for_bit(served):
    session, c = served
    c.ask("/randomize_z", 3.0)
    c.recv()
    c.ask("/coefficients", 0.123456789, -2.0)
    c.ask("/condition", "instrument_family", "bass")
    saved = session.preset("latent")
    addr, (path, rid) = c.ask("/save_preset", "id", 7, "warm-bass", "latent")
    assert addr == "/preset_saved" and rid == 7 and path.endswith("presets/warm-bass.json")
    assert json.loads(open(path).read()) == saved
    addr, reply = c.ask("/save_preset", "warm-bass")
    assert addr == "/error" and "exists" in reply[0]
    assert c.ask("/save_preset", "warm-bass", "latent", "overwrite")[0] == "/preset_saved"
    c.ask("/randomize_z", 4.0)
    c.recv()
    c.ask("/coefficients", 0.0)
    c.ask("/condition", "instrument_family")
    addr, z = c.ask("/load_preset", "warm-bass")
    assert addr == "/z" and np.float32(z).tobytes() == np.float32(saved["z"]).tobytes()
    addr, coeffs = c.recv()
    assert addr == "/coefficients" and len(coeffs) == 8 and np.float32(coeffs[1]) == np.float32(-2.0)
    addr, (loaded, mode, _) = c.recv()
    assert (addr, loaded, mode) == ("/preset_loaded", path, "latent")
    assert session.preset("latent") == saved  # z, coefficients, family: bit for bit


def test_bad_preset_names_and_files_are_refused(served, components_path):
    session, c = served
    other = components_path.parent / "other-model.json"
    other.write_text(json.dumps(dict(session.preset(), model_fingerprint="0" * 16)))
    (components_path.parent / "junk.json").write_text("{not json")
    for args, needle in ((["../escape"], "outside the allowed folders"), (["nothing-here"], "not found"),
                         ([str(other)], "made with another model"), (["junk.json"], "cannot read preset"),
                         ([], "usage: /load_preset")):
        addr, reply = c.ask("/load_preset", *args)
        assert addr == "/error" and needle in reply[0], (args, reply)
    for args, needle in ((["a/b"], "plain file name"), (["x", "bogus"], "unknown synthesis mode"),
                         (["x", "z", "again"], "usage: /save_preset")):
        addr, reply = c.ask("/save_preset", *args)
        assert addr == "/error" and needle in reply[0], (args, reply)


def test_every_address_is_in_the_docs_table(served):
    from pathlib import Path

    session, _ = served
    text = (Path(__file__).resolve().parents[1] / "docs" / "live.md").read_text()
    server = OSCServer(session, "127.0.0.1", 0)  # its address table only: never started
    server._udp.server_close()
    missing = [a for a in server.handlers if f"`{a}`" not in text]
    assert not missing, f"addresses missing from the OSC table of docs/live.md: {missing}"
