"""The web explorer: its JSON API directly, and the page end to end in headless Chromium (Selenium with the
system chromium + chromium-driver, as Debian packages them)."""

from __future__ import annotations

import json
import shutil
import struct
import tempfile

import numpy as np
import pytest

pytest.importorskip("flask", reason="the web extra is not installed (pip install -e '.[web]')")

from ganspacesynth.interfaces.session import Session  # noqa: E402
from ganspacesynth.interfaces.web.app import WebServer  # noqa: E402
from helpers import call  # noqa: E402

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def components_path(tiny_synth, tmp_path_factory):
    from ganspacesynth.ganspace.fit import fit_components

    comps = fit_components(tiny_synth, "conv0", count=512, n_components=8, pitches=[60])
    comps = comps.with_descriptions([{"label": "brighter"}, {"label": "noisier"}])
    return comps.save(tmp_path_factory.mktemp("comps") / "tiny_comps.npz")


@pytest.fixture
def web(tiny_synth, components_path, tmp_path):
    session = Session(tiny_synth, allowed_dirs=[components_path.parent], out_dir=tmp_path / "out")
    session.load_components(str(components_path))
    server = WebServer(session, "127.0.0.1", 0).start()
    yield session, server
    server.shutdown()
    session.close()


def test_api_synthesizes_every_mode_and_serves_audio_and_spectrogram(web):
    import soundfile as sf

    session, server = web
    waves = {}
    for mode in ("offset", "latent", "noz", "z"):
        status, body = call(server, "/api/synthesize", {"pitch": 60, "mode": mode, "coefficients": [2.0, -1.0]})
        assert status == 200, body
        r = json.loads(body)
        assert (r["samples"], r["sample_rate"]) == (16384, 16000)
        status, wav = call(server, r["audio"])
        assert status == 200 and wav == (session.out_dir / r["name"]).read_bytes()  # the note it wrote
        waves[mode], rate = sf.read(session.out_dir / r["name"])
        assert rate == 16000 and waves[mode].shape == (16384,)
        status, png = call(server, r["spectrogram"])
        assert status == 200 and png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
        assert width >= 128 and height >= 128
    assert np.abs(waves["offset"] - waves["z"]).max() > 1e-3  # the coefficients change the sound
    assert np.abs(waves["noz"] - waves["offset"]).max() > 1e-3
    status, body = call(server, "/api/hallucinate", {"mode": "noz", "steps": [[0], [2, 1], [-1]],
                                                     "settings": {"interp_steps": 1, "sample_spacing": 0.1,
                                                                  "attack": 0.1, "sustain": 0.1, "release": 0.1}})
    assert status == 200, body
    r = json.loads(body)
    assert r["samples"] == round(4 * 0.1 * 16000) + 3 * 1600
    audio, _ = sf.read(session.out_dir / r["name"])
    assert audio.shape == (r["samples"],) and np.abs(audio).max() > 1e-3


@pytest.mark.parametrize("path,data,code", [
    ("/api/synthesize", {"pitch": 500}, 400),
    ("/api/synthesize", {"coefficients": "lots"}, 400),
    ("/api/synthesize", {"coefficients": [1.0] * 9}, 400),
    ("/api/hallucinate", {"steps": "x"}, 400),
    ("/api/hallucinate", {"settings": {"attack": -2}}, 400),
    ("/audio/../../etc/passwd", None, 404),
    ("/audio/note-999999.wav", None, 404),
])
def test_api_refuses_bad_requests(web, path, data, code):
    _, server = web
    state = call(server, "/api/state")
    status, body = call(server, path, data)
    assert status == code
    if data is not None:
        error = json.loads(body)["error"]
        assert isinstance(error, str) and error and "\n" not in error and "Traceback" not in error
    assert call(server, "/api/state") == state  # refused requests change nothing


def test_api_refuses_other_hosts(web):
    _, server = web
    status, body = call(server, "/api/state", host="evil.example:80")
    assert status == 403 and b"fingerprint" not in body  # no state leaks to another host
    assert call(server, "/api/state")[0] == 200  # its own host is served


@pytest.fixture
def browser():
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("chromium / chromium-driver not installed (apt-get install chromium chromium-driver)")
    selenium = pytest.importorskip("selenium", reason="selenium not installed (pip install -e '.[dev]')")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    del selenium
    profile = tempfile.mkdtemp(prefix="gss-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver, script: str, timeout: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: d.execute_script(script))


DECODE = """
const [url, done] = arguments;
fetch(url).then((r) => r.arrayBuffer())
  .then((buf) => new OfflineAudioContext(1, 1, 16000).decodeAudioData(buf))
  .then((b) => { const x = b.getChannelData(0); let m = 0; for (const v of x) m = Math.max(m, Math.abs(v));
                 done({length: b.length, rate: b.sampleRate, peak: m, head: Array.from(x.slice(4000, 4100))}); })
  .catch((e) => done({error: String(e)}));
"""


@pytest.mark.browser
@pytest.mark.integration
def test_page_slider_makes_new_audio_and_spectrogram(web, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _, server = web
    browser.get(server.url)
    wait_for(browser, "return document.body.dataset.ready === '1'")
    label = browser.find_element(By.CSS_SELECTOR, "label[for=c0]").text
    assert label == "direction 0: brighter"  # numbered from 0 as everywhere, labelled with its measured description
    results = []
    for key in (Keys.ARROW_RIGHT, Keys.ARROW_LEFT):
        before = browser.execute_script("return window.gss.results")
        slider = browser.find_element(By.ID, "c0")
        slider.click()
        for _ in range(15):
            slider.send_keys(key)
        wait_for(browser, f"return window.gss.results > {before} && !window.gss.busy && !window.gss.again")
        name = browser.execute_script("return document.body.dataset.result")
        audio_src = browser.execute_script("return document.getElementById('player').src")
        assert audio_src.endswith(f"/audio/{name}")
        wait_for(browser, "const a = document.getElementById('player'); return a.readyState >= 1 && a.duration > 0")
        duration = browser.execute_script("return document.getElementById('player').duration")
        assert duration == pytest.approx(16384 / 16000, abs=0.01)
        decoded = browser.execute_async_script(DECODE, audio_src)
        assert decoded.get("length") == 16384 and decoded["rate"] == 16000, decoded
        assert decoded["peak"] > 1e-3
        wait_for(browser, "const i = document.getElementById('spectrogram'); return i.complete && i.naturalWidth > 0")
        img = browser.execute_script("const i = document.getElementById('spectrogram'); "
                                     "return [i.src, i.naturalWidth, i.naturalHeight]")
        assert img[0].endswith(f"/spectrogram/{name}.png") and img[1] >= 128 and img[2] >= 128
        value = float(browser.execute_script("return document.getElementById('c0').value"))
        results.append((name, decoded["head"], value))
    (n1, h1, v1), (n2, h2, v2) = results
    assert n1 != n2 and v1 > 0 and v2 < v1
    assert np.abs(np.subtract(h1, h2)).max() > 1e-4  # a different sound, not the same file renamed


@pytest.mark.browser
@pytest.mark.integration
def test_page_sequencer_generates_a_hallucination_to_download(web, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _, server = web
    browser.get(server.url)
    wait_for(browser, "return document.body.dataset.ready === '1'")
    browser.find_element(By.ID, "auto").click()  # no notes while editing steps
    browser.find_element(By.ID, "add-step").click()
    slider = browser.find_element(By.ID, "c1")
    slider.click()
    for _ in range(20):
        slider.send_keys(Keys.ARROW_RIGHT)
    assert browser.find_element(By.ID, "step-count").text == "2"
    for name, value in (("interp_steps", "2"), ("sample_spacing", "0.1"), ("attack", "0.05"), ("sustain", "0.1"),
                        ("release", "0.05")):
        box = browser.find_element(By.ID, name)
        box.clear()
        box.send_keys(value)
    browser.find_element(By.ID, "generate").click()
    wait_for(browser, "return window.gss.results > 0 && !window.gss.busy")
    href = browser.find_element(By.ID, "download").get_attribute("href")
    assert "/download/hallucination-" in href
    decoded = browser.execute_async_script(DECODE, href)
    assert decoded.get("length") == round(3 * 0.1 * 16000) + 800 + 1600 + 800, decoded
    assert decoded["peak"] > 0.5  # a peak-normalised mix
