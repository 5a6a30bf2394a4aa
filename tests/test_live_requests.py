"""Live requests and the checks every interface shares: one pitch check, one coefficient check, one rule for the
state a request carries (OSC and web alike), and the session's parts (state, worker, output folder)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest

from ganspacesynth.errors import UserError
from ganspacesynth.ganspace.coefficients import MAX_COEFFICIENT, check_coefficients
from ganspacesynth.interfaces.session import Session


@pytest.fixture(scope="module")
def components_path(tiny_synth, tmp_path_factory):
    from ganspacesynth.ganspace.fit import fit_components

    comps = fit_components(tiny_synth, "conv0", count=64, n_components=3, pitches=[60], regression_samples=0)
    return comps.save(tmp_path_factory.mktemp("comps") / "comps.npz")


@pytest.fixture
def session(tiny_synth, components_path, tmp_path):
    s = Session(tiny_synth, allowed_dirs=[components_path.parent], out_dir=tmp_path / "out", queue_size=1)
    s.load_components(components_path.name)
    yield s
    s.close()


# -- one pitch check ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, message", [
    (61.5, "whole MIDI note number"), ("sixty", "must be a number"), (float("nan"), "whole MIDI note number"),
    (True, "must be a number"), (200, "pitch 200 is outside this model's range 24..84"),
])
def test_synth_check_pitch_refuses(tiny_synth, value, message):
    with pytest.raises(UserError, match=message):
        tiny_synth.check_pitch(value)


def test_every_interface_uses_the_synth_pitch_check(tiny_synth, session):
    from ganspacesynth.compose.hallucinate import HallucinationSettings, plan_latent
    from ganspacesynth.compose.instrument import parse_pitches

    assert tiny_synth.check_pitch(60.0) == 60 and tiny_synth.check_pitch("48") == 48
    expected = "pitch 90 is outside this model's range 24..84"
    for refuse in (lambda: tiny_synth.conditions.index("pitch", 90), lambda: session.check_pitch(90.0),
                   lambda: plan_latent(tiny_synth, HallucinationSettings.make(pitch=90, attack=0.1, sustain=0.1,
                                                                              release=0.1))):
        with pytest.raises(UserError, match=expected):
            refuse()
    with pytest.raises(UserError, match="pitches 10-23,90 are outside this model's range 24..84"):
        parse_pitches("10-23,90", tiny_synth.pitches)


# -- one coefficient check ---------------------------------------------------------------------------------------
def test_check_coefficients_pads_once_and_refuses_bad_arrays():
    np.testing.assert_array_equal(check_coefficients([1.0, -2.0], 4), [[1.0, -2.0, 0.0, 0.0]])
    assert check_coefficients([[1.0], [2.0]], None).shape == (2, 1)
    for values, message in ((["a"], "must be numbers"), ([np.nan], "finite"), ([np.inf], "finite"),
                            ([MAX_COEFFICIENT * 2], "within"), ([1.0] * 5, "5 coefficients given but the components "
                                                                           "file has only 4")):
        with pytest.raises(UserError, match=message):
            check_coefficients(values, 4)


def test_the_session_checks_and_pads_coefficients_at_the_boundary(session):
    np.testing.assert_array_equal(session.set_coefficients([1.5]), [1.5, 0.0, 0.0])
    assert session.coeffs.dtype == np.float32 and session.steps[0].tolist() == [1.5, 0.0, 0.0]
    for bad in ([np.nan], [1.0] * 4, [2 * MAX_COEFFICIENT], ["x"]):
        with pytest.raises(UserError):
            session.set_coefficients(bad)
    assert session.coeffs.tolist() == [1.5, 0.0, 0.0]


# -- one rule for the state a request carries ---------------------------------------------------------------------
def _post(url, data):
    req = urllib.request.Request(url, method="POST", data=json.dumps(data).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_osc_and_web_synthesize_set_pitch_and_coefficients_alike(session):
    pytest.importorskip("flask", reason="the web extra is not installed")
    from helpers import Client

    from ganspacesynth.interfaces.osc import OSCServer
    from ganspacesynth.interfaces.web.app import WebServer

    osc = OSCServer(session, "127.0.0.1", 0).start()
    web = WebServer(session, "127.0.0.1", 0).start()
    client = Client(osc.address)
    try:
        addr, args = client.ask("/synthesize", 64.0, 1.0, -2.0)
        assert addr == "/synthesized", args
        assert session.pitch == 64 and session.coeffs.tolist() == [1.0, -2.0, 0.0]
        status, body = _post(web.url + "api/synthesize", {"pitch": 48, "coefficients": [0.5]})
        assert status == 200, body
        assert session.pitch == 48 and session.coeffs.tolist() == [0.5, 0.0, 0.0]
        # a refused request (bad pitch, too many coefficients) changes nothing, on either transport
        assert client.ask("/synthesize", 200.0, 3.0)[0] == "/error"
        assert _post(web.url + "api/synthesize", {"pitch": 60, "coefficients": [1.0] * 4})[0] == 400
        assert session.pitch == 48 and session.coeffs.tolist() == [0.5, 0.0, 0.0]
        # a request without arguments uses the state, and leaves it as it is
        assert client.ask("/synthesize_noz")[0] == "/synthesized"
        assert session.pitch == 48 and session.coeffs.tolist() == [0.5, 0.0, 0.0]
    finally:
        client.close()
        web.shutdown()
        osc.shutdown()


def _fill_queue(session) -> threading.Event:
    """Occupy the worker and its one-place queue; set the returned event to free them."""
    release, started = threading.Event(), threading.Event()
    session.submit(lambda: (started.set(), release.wait(30)))
    assert started.wait(30)
    session.submit(lambda: release.wait(30))
    return release


@pytest.mark.parametrize("extra", [
    {"velocity_layers": 9}, {"loop": "bogus"}, {"every": 0}, {"mode": "bogus"}, {"name": "../x"},
    {"pitches": "1-200"}, {"coefficients": [1.0] * 4}, "busy",
])
def test_web_instrument_refused_leaves_the_state_untouched(session, extra):
    pytest.importorskip("flask", reason="the web extra is not installed")
    from ganspacesynth.interfaces.web.app import WebServer

    web = WebServer(session, "127.0.0.1", 0).start()
    release = _fill_queue(session) if extra == "busy" else None
    try:
        data = {"name": "inst", "coefficients": [2.0, -1.0], **({} if extra == "busy" else extra)}
        if extra != "busy" and "coefficients" in extra:
            data["coefficients"] = extra["coefficients"]
        status, body = _post(web.url + "api/instrument", data)
        assert status == (503 if extra == "busy" else 400), body
        assert session.coeffs.tolist() == [0.0, 0.0, 0.0] and session.steps[0].tolist() == [0.0, 0.0, 0.0]
        assert not (session.out_dir / "instruments").exists()
    finally:
        if release is not None:
            release.set()
        web.shutdown()


# -- the session's parts -------------------------------------------------------------------------------------------
def test_output_folder_keeps_the_newest_files_and_removes_a_temporary_folder(tmp_path):
    from ganspacesynth.interfaces.output import OutputFolder

    out = OutputFolder(tmp_path / "live", keep=2, temporary=True)
    paths = [out.write(np.zeros(160, dtype=np.float32), "note", 16000) for _ in range(3)]
    assert [p.exists() for p in paths] == [False, True, True]
    saved = out.save(paths[-1], "keepme")
    with pytest.raises(UserError, match="already saved"):
        out.save(paths[-1], "keepme")
    assert out.close() == [saved.parent] and saved.exists() and not paths[-1].exists()


def test_performer_state_keeps_the_coefficients_on_the_selected_step(tiny_synth):
    from ganspacesynth.interfaces.performer import PerformerState, settings_dict, with_settings

    state = PerformerState.start(tiny_synth, 2)
    state.set_coefficients(np.array([1.0, 0.0]))
    state.add_step()
    state.set_coefficients(np.array([0.0, 2.0]))
    state.move_step(-1)
    assert state.coeffs.tolist() == [1.0, 0.0] and [s.tolist() for s in state.steps] == [[1, 0], [0, 2]]
    settings = with_settings(state.settings, {"attack": 0.1, "interp_steps": 2})
    assert settings.envelope.attack == 0.1 and settings.steps == 2
    assert settings_dict(settings) == {"interp_steps": 2, "sample_spacing": 0.2, "start_trim": 0.0, "attack": 0.1,
                                       "sustain": 0.3, "release": 0.3}
    with pytest.raises(UserError, match="between 0 and 60"):
        with_settings(settings, {"release": -1})


def test_a_job_that_fails_leaves_the_worker_running(session):
    def broken():
        raise RuntimeError("boom")

    with pytest.raises(UserError, match="internal error: RuntimeError: boom"):
        session.submit(broken).result(timeout=30)
    assert session.submit(session.note_request("z")).result(timeout=60).kind == "note"


def test_queued_notes_keep_the_model_they_were_requested_with(tiny_synth, tmp_path):
    """A model loaded while notes wait changes none of them: each WAV has the sample rate and the samples of the
    model that was current when it was requested (a request carries its snapshot, synth included)."""
    import dataclasses

    import soundfile as sf
    import torch

    from ganspacesynth.audio.levels import peak_safe
    from ganspacesynth.model.config import preset
    from ganspacesynth.model.files import save_model
    from ganspacesynth.model.generator import Generator

    cfg = preset("tiny")
    cfg = cfg.replace(spectral=dataclasses.replace(cfg.spectral, sample_rate=8000))
    torch.manual_seed(1)
    (tmp_path / "models").mkdir()
    save_model(tmp_path / "models" / "b.safetensors", cfg, Generator(cfg).state_dict())
    session = Session(tiny_synth, allowed_dirs=[tmp_path / "models"], out_dir=tmp_path / "out", queue_size=4)
    try:
        release, started = threading.Event(), threading.Event()
        session.submit(lambda: (started.set(), release.wait(30)))
        assert started.wait(30)
        waiting = [session.submit(session.note_request("z", pitch=p)) for p in (48, 60)]
        hallucination = session.submit(session.hallucination_request("z", pitch=60, count=2, seed=1))
        session.load_model("b.safetensors")
        model_b = session.synth
        assert model_b.sample_rate == 8000 != tiny_synth.sample_rate
        later = session.submit(session.note_request("z", pitch=60))
        release.set()
        for fut, synth, pitch in [(waiting[0], tiny_synth, 48), (waiting[1], tiny_synth, 60), (later, model_b, 60)]:
            result = fut.result(timeout=120)
            wave, rate = sf.read(result.path, dtype="float32")
            assert rate == result.sample_rate == synth.sample_rate
            expected = peak_safe(synth.generate(session.z[None], pitch=pitch)[0])  # both draw seed 0's z
            np.testing.assert_allclose(wave, expected, atol=1.5 / 32768)
        result = hallucination.result(timeout=120)
        assert sf.info(str(result.path)).samplerate == result.sample_rate == tiny_synth.sample_rate
    finally:
        session.close()


def test_the_demo_serves_the_model_it_already_loaded(tiny_synth, components_path, tmp_path):
    from ganspacesynth.ganspace.components import Components
    from ganspacesynth.interfaces.serving import ServeOptions, build_session

    comps = Components.load(components_path, tiny_synth)
    session = build_session(ServeOptions(out_dir=tmp_path / "out", queue_size=2, keep=4), synth=tiny_synth,
                            components=comps)
    try:
        assert session.synth is tiny_synth and session.components is comps and session.num_components == 3
        assert session.components_path == components_path.resolve()
        assert components_path.parent.resolve() in session.allowed_dirs
    finally:
        session.close()


# -- the command line's choices --------------------------------------------------------------------------------------
def test_choices_match_their_registries():
    from ganspacesynth import choices
    from ganspacesynth.ganspace.estimators import ESTIMATORS
    from ganspacesynth.synth import PRECISIONS

    assert choices.PRECISION_NAMES == ("auto", *PRECISIONS)
    assert tuple(ESTIMATORS) == choices.ESTIMATOR_NAMES


def test_help_does_not_import_torch():
    code = "import sys, ganspacesynth.interfaces.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
