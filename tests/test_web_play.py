"""The web instrument in headless Chromium (Selenium): the computer keyboard, a fake Web MIDI input injected before
the page's scripts, the on-screen keys, the XY pad, presets through a link and a file, morph and undo, and a MIDI
file, each checked by the Web Audio sources the page starts (its window.gss.play hook) and the server's requests."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flask", reason="the web extra is not installed (pip install -e '.[web]')")

from helpers import chromium, family_components, wait_for  # noqa: E402

from ganspacesynth.interfaces.session import Session  # noqa: E402
from ganspacesynth.interfaces.web.app import WebServer  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.integration]

#: A Web MIDI input the page finds through navigator.requestMIDIAccess; tests play it with window.__fakeMidi.send.
FAKE_MIDI = """
(() => {
  const input = { id: "fake", name: "Fake MIDI keyboard", manufacturer: "tests", type: "input", state: "connected",
                  onmidimessage: null };
  const access = { inputs: new Map([["fake", input]]), outputs: new Map(), sysexEnabled: false, onstatechange: null };
  window.__fakeMidi = { send: (bytes) => input.onmidimessage &&
                                         input.onmidimessage({ data: Uint8Array.from(bytes), timeStamp: performance.now() }) };
  Object.defineProperty(Navigator.prototype, "requestMIDIAccess",
                        { value: () => Promise.resolve(access), configurable: true, writable: true });
})();
"""
READY = "return window.gss && window.gss.play && window.gss.play.version > 0 && !window.gss.play.rendering"


@pytest.fixture(scope="module")
def components_path(family_synth, tmp_path_factory):
    return family_components(family_synth, tmp_path_factory.mktemp("comps"), ["brighter", "noisier"])


@pytest.fixture
def web(family_synth, components_path, tmp_path):
    session = Session(family_synth, allowed_dirs=[components_path.parent], out_dir=tmp_path / "out")
    session.load_components(str(components_path))
    server = WebServer(session, "127.0.0.1", 0).start()
    yield session, server
    server.shutdown()
    session.close()


@pytest.fixture
def page(web):
    profile = Path(tempfile.mkdtemp(prefix="gss-chromium-"))
    driver = chromium(profile, FAKE_MIDI)
    if driver is None:
        pytest.skip("chromium, chromium-driver or selenium missing (apt-get install chromium chromium-driver)")
    driver.get(web[1].url)
    wait_for(driver, READY)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def requests(server, path: str) -> int:
    return server.app.extensions["ganspacesynth"]["requests"][path]


def log(page) -> list[dict]:
    return page.execute_script("return window.gss.play.log")


def rendered_after(page, version: int) -> int:
    """Wait for a keyboard render newer than `version` with nothing more pending; returns its version."""
    wait_for(page, "const p = window.gss.play; return p.version > arguments[0] && !p.rendering && !p.again "
                   "&& p.pendingSince === null".replace("arguments[0]", str(version)))
    return page.execute_script("return window.gss.play.version")


def digest(page, pitch: int = 60) -> dict:
    return page.execute_script(f"return window.gss.play.digest({pitch})")


def test_computer_keys_play_chords_in_any_octave_without_asking_the_server(web, page):
    from selenium.webdriver.common.action_chains import ActionChains

    _, server = web
    before = requests(server, "/api/keyboard")
    ActionChains(page).key_down("a").key_down("d").key_down("g").perform()  # C E G
    wait_for(page, "return window.gss.play.active() === 3")
    assert [(e["pitch"], e["velocity"]) for e in log(page)] == [(60, 100), (64, 100), (67, 100)]
    wait_for(page, "return window.gss.play.level > -60")  # the meter sees the chord
    ActionChains(page).key_up("a").key_up("d").key_up("g").perform()
    wait_for(page, "return window.gss.play.active() === 0")  # a short release, then silence
    ActionChains(page).send_keys("x").key_down("k").key_up("k").send_keys("zz").key_down("w").key_up("w").perform()
    assert [e["pitch"] for e in log(page)][3:] == [84, 49]  # X: an octave up (K = C6); Z Z: two down (W = C#3)
    assert page.execute_script("return window.gss.play.starts") == 5
    page.find_element("css selector", '#keyboard [data-pitch="62"]').click()  # the on-screen keys
    assert log(page)[-1]["pitch"] == 62 and 40 <= log(page)[-1]["velocity"] <= 127
    assert requests(server, "/api/keyboard") == before  # playing never waits for the server
    assert all(e["state"] == "running" for e in log(page))
    from selenium.webdriver.support.ui import Select

    Select(page.find_element("id", "cond-instrument_family")).select_by_value("bass")
    ActionChains(page).key_down("j").key_up("j").perform()  # the list gave the keys back
    assert log(page)[-1]["pitch"] == 59  # octave 3 (Z Z above): J = B3


def test_web_midi_plays_with_velocity_and_the_sustain_pedal(web, page):
    assert "Fake MIDI keyboard" in page.find_element("id", "midi-status").text
    send = "window.__fakeMidi.send(arguments[0])"
    page.execute_script(send, [0x90, 62, 64])  # note on, velocity 64
    entry = log(page)[-1]
    assert (entry["pitch"], entry["velocity"]) == (62, 64) and entry["gain"] == pytest.approx(64 / 127, abs=1e-6)
    page.execute_script(send, [0xB0, 64, 127])  # sustain pedal down
    page.execute_script(send, [0x80, 62, 0])  # note off: held by the pedal
    page.execute_script(send, [0x91, 65, 127])  # another channel, full velocity
    page.execute_script(send, [0x91, 65, 0])  # note on with velocity 0 = note off
    assert page.execute_script("return window.gss.play.active()") == 2
    page.execute_script(send, [0xB0, 64, 0])  # pedal up: both released
    wait_for(page, "return window.gss.play.active() === 0")
    page.execute_script(send, [0x90, 127, 100])  # beyond the model's keys: no sound, a message
    assert page.execute_script("return window.gss.play.starts") == 2
    assert "outside this keyboard" in page.find_element("id", "kb-status").text


def test_pad_moves_rerender_the_keyboard_in_the_background(web, page):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import Select

    session, server = web
    x, y = Select(page.find_element("id", "pad-x")), Select(page.find_element("id", "pad-y"))
    assert x.first_selected_option.text == "direction 0: brighter"  # numbered from 0, with the descriptions
    assert y.first_selected_option.text == "direction 1: noisier"
    x.select_by_value("2")
    y.select_by_value("5")
    version, before, sounds = page.execute_script("return window.gss.play.version"), digest(page), \
        requests(server, "/api/keyboard")
    pad = page.find_element("id", "pad")
    drag = ActionChains(page, duration=0).move_to_element_with_offset(pad, 20, -20).click_and_hold()
    for _ in range(8):
        drag.move_by_offset(6, -6)
    drag.release().perform()
    version = rendered_after(page, version)
    coeffs = page.execute_script("return coefficients()")
    assert coeffs[2] > 2 and coeffs[5] > 2 and coeffs[0] == coeffs[1] == 0
    np.testing.assert_array_equal(session.coeffs[:6], np.float32(coeffs[:6]))  # the render set the state
    renders = requests(server, "/api/keyboard") - sounds
    moves = page.execute_script("return window.gss.play.padMoves")
    assert 1 <= renders < moves  # debounced: a drag is not a render per move
    assert digest(page)["sum"] != before["sum"]
    page.execute_script("window.__fakeMidi.send([0x90, 60, 100])")
    assert log(page)[-1]["version"] == version  # the new sound
    slider = float(page.find_element("id", "c2").get_attribute("value"))
    assert slider == pytest.approx(coeffs[2], abs=0.025 + 1e-6)  # the slider follows, to its 0.05 step
    # A change schedules a render; a key played in the same moment sounds at once, from the old buffers.
    pending, played = page.execute_script(
        "window.gss.play.setDirection(2, 0.5); window.__fakeMidi.send([0x90, 62, 100]);"
        "return [window.gss.play.pendingSince !== null, window.gss.play.log.at(-1).version]")
    assert pending and played == version
    assert rendered_after(page, version) == version + 1


def test_a_preset_link_and_file_bring_the_timbre_back_bit_for_bit(web, page, tmp_path):
    from selenium.webdriver.support.ui import Select

    session, server = web
    version = page.execute_script("return window.gss.play.version")
    Select(page.find_element("id", "cond-instrument_family")).select_by_value("organ")
    page.execute_script("window.gss.play.setDirection(1, 1.75); window.gss.play.setDirection(6, -2.5)")
    version = rendered_after(page, version)
    saved, sound = session.preset("offset"), digest(page)
    assert saved["conditions"] == {"instrument_family": "organ"} and saved["coefficients"][6] == -2.5
    page.find_element("id", "preset-link").click()
    url = wait_for(page, "return document.getElementById('preset-url').value")
    assert "#preset=" in url and page.current_url == url
    page.find_element("id", "random-timbre").click()
    version = rendered_after(page, version)
    assert session.z.tobytes() != np.float32(saved["z"]).tobytes() and digest(page) != sound
    page.get("about:blank")
    page.get(url)  # a fresh page from the link
    wait_for(page, "return document.body.dataset.preset === 'loaded'")
    wait_for(page, "const d = window.gss.play.digest(60); return d && d.sum === arguments[0]".replace(
        "arguments[0]", repr(sound["sum"])))
    assert digest(page) == sound  # the same notes
    assert session.preset("offset") == saved  # z, coefficients and family, bit for bit
    assert Select(page.find_element("id", "cond-instrument_family")).first_selected_option.text == "organ"
    assert float(page.find_element("id", "c1").get_attribute("value")) == 1.75
    # the same preset as a file
    page.find_element("id", "random-timbre").click()
    wait_for(page, "return document.getElementById('status').textContent.startsWith('a random timbre')")
    path = tmp_path / "timbre.json"
    path.write_text(json.dumps(saved))
    page.execute_script("document.body.dataset.preset = ''")
    page.find_element("id", "preset-file").send_keys(str(path))
    wait_for(page, "return document.body.dataset.preset === 'loaded'")
    assert session.preset("offset") == saved
    assert page.execute_script("return document.querySelectorAll('#recent li').length") >= 1
    # another model's preset is refused with the reason
    bad = page.execute_script("return window.gss.play.encodePreset(arguments[0])", dict(saved, model_fingerprint="0" * 16))
    page.get(url.split("#")[0] + "#preset=" + bad)
    wait_for(page, "return document.body.dataset.preset === 'refused'")
    assert "made with another model" in page.find_element("id", "status").text
    assert session.preset("offset") == saved


def test_morph_between_two_timbres_and_undo(web, page):
    from ganspacesynth.compose.interpolate import slerp

    session, _ = web
    page.find_element("id", "set-a").click()
    wait_for(page, "return window.gss.play.morphEnds.a !== null")
    a = page.execute_script("return window.gss.play.morphEnds.a")
    version = page.execute_script("return window.gss.play.version")
    page.find_element("id", "random-timbre").click()
    version = rendered_after(page, version)
    page.find_element("id", "set-b").click()
    wait_for(page, "return window.gss.play.morphEnds.b !== null")
    b = page.execute_script("return window.gss.play.morphEnds.b")
    assert a["z"] != b["z"]
    page.execute_script("const m = document.getElementById('morph'); m.value = 0.5; "
                        "m.dispatchEvent(new Event('input'))")
    version = rendered_after(page, version)
    expected = slerp(np.float32(a["z"]), np.float32(b["z"]), 0.5).astype(np.float32)
    assert session.z.tobytes() == expected.tobytes()
    wait_for(page, "return window.gss.play.undo.length >= 2")  # the first timbre, then b
    page.find_element("id", "undo").click()  # back to b
    rendered_after(page, version)
    assert session.preset("offset")["z"] == b["z"]


def test_a_midi_file_plays_through_the_timbre_in_the_page(web, page, tmp_path):
    import mido

    session, server = web
    mid = mido.MidiFile()
    track = mido.MidiTrack()
    mid.tracks.append(track)
    for note in (60, 64, 67):
        track += [mido.Message("note_on", note=note, velocity=90, time=0),
                  mido.Message("note_off", note=note, velocity=0, time=240)]
    path = tmp_path / "tune.mid"
    mid.save(str(path))
    page.find_element("id", "midi-file").send_keys(str(path))
    wait_for(page, "return window.gss.results > 0")
    src = page.execute_script("return document.getElementById('player').src")
    assert "/audio/midi-" in src and requests(server, "/api/midi") == 1
    assert "3 notes" in page.find_element("id", "status").text
    big = tmp_path / "big.mid"
    big.write_bytes(b"\0" * (300 * 1024))
    page.find_element("id", "midi-file").send_keys(str(big))
    wait_for(page, "return document.getElementById('status').textContent.includes('at most 256 KB')")
    assert requests(server, "/api/midi") == 1  # refused in the page, before any upload


def test_a_sound_file_becomes_the_pages_timbre(web, page, tmp_path):
    import soundfile as sf
    from helpers import tone
    from selenium.webdriver.support.ui import Select

    from ganspacesynth.invert import InvertSettings

    session, server = web
    session.invert_settings = InvertSettings(guesses=4, restarts=2, random_starts=1, steps=3, baseline=0)
    Select(page.find_element("id", "mode")).select_by_value("noz")
    version = rendered_after(page, page.execute_script("return window.gss.play.version"))
    assert not any(float(page.find_element("id", f"c{i}").get_attribute("value")) for i in range(8))
    path = tmp_path / "my e4.wav"
    sf.write(path, tone(64, sr=22050, seconds=1.0), 22050)
    page.find_element("id", "sound-file").send_keys(str(path))
    wait_for(page, "return document.body.dataset.invert === 'done'", timeout=180)
    # the page holds what the server holds: the note's pitch, family and (noz) coefficients on the sliders
    assert requests(server, "/api/invert") == 1 and session.pitch == 64
    assert page.find_element("id", "pitch").get_attribute("value") == "64"
    family = session.state.conditions["instrument_family"]
    assert page.find_element("id", "cond-instrument_family").get_attribute("value") == family
    sliders = [float(page.find_element("id", f"c{i}").get_attribute("value")) for i in range(8)]
    assert any(sliders)  # moved from zero, to the note's coefficients (to the sliders' 0.05 steps, within ±4)
    np.testing.assert_allclose(sliders, np.clip(session.coeffs, -4, 4), atol=0.026)
    assert "/audio/note-" in page.execute_script("return document.getElementById('player').src")
    assert "my e4.wav: pitch 64" in page.find_element("id", "status").text
    rendered_after(page, version)  # the keyboard re-rendered in the new timbre
    # a file that is no sound is refused in words, and nothing changes
    z = session.z.copy()
    bad = tmp_path / "notes.txt"
    bad.write_text("not a sound")
    page.find_element("id", "sound-file").send_keys(str(bad))
    wait_for(page, "return document.body.dataset.invert === 'refused'", timeout=60)
    assert "cannot read notes.txt as a sound" in page.find_element("id", "status").text
    assert session.z.tobytes() == z.tobytes()
    # dropped anywhere on the page: the same upload
    page.execute_script("""
        document.body.dataset.invert = "";
        const dt = new DataTransfer();
        dt.items.add(new File(["junk"], "dropped.wav", { type: "audio/wav" }));
        document.getElementById("scope").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true,
                                                                             cancelable: true }));""")
    wait_for(page, "return document.body.dataset.invert === 'refused'", timeout=60)
    assert "cannot read dropped.wav as a sound" in page.find_element("id", "status").text
    assert requests(server, "/api/invert") == 3
