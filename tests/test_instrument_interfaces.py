"""Instrument export from every interface: the CLI, the Python API on Synth, OSC (/export_instrument), the web page
(its API and its button in headless Chromium), the main Pd patch's button, and the speed benchmark at tiny size."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ganspacesynth.audio import sf2
from ganspacesynth.compose.instrument import read_metadata
from ganspacesynth.interfaces.cli import main
from ganspacesynth.interfaces.osc import OSCServer
from ganspacesynth.interfaces.session import Session
from helpers import call

REPO = Path(__file__).resolve().parents[1]


# -- CLI and API ----------------------------------------------------------------------------------------------------
def test_cli_writes_sf2_and_sfz(tiny_model_path, tmp_path):
    z = np.random.default_rng(3).standard_normal((2, 32)).astype(np.float32)
    np.save(tmp_path / "latents.npy", z)
    out = tmp_path / "inst" / "pad.sf2"
    res = CliRunner().invoke(main, ["instrument", "--model", str(tiny_model_path), "--out", str(out), "--z",
                                    str(tmp_path / "latents.npy"), "--z-index", "1", "--pitches", "48-56", "--every",
                                    "3", "--velocity-layers", "2", "--sfz"])
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and "keys 48-56 from 3 notes, 2 velocity layer(s)" in res.output
    meta = read_metadata(out)
    np.testing.assert_array_equal(np.float32(meta["timbre"]["z"]), z[1])
    assert meta["timbre"]["seed"] is None and meta["keyboard"]["roots"] == [48, 51, 54]
    assert len(sf2.read_sf2(out).zones) == 6
    assert (tmp_path / "inst" / "pad.sfz").is_file()
    assert len(list((tmp_path / "inst" / "pad-samples").glob("*.wav"))) == 3


@pytest.mark.parametrize("args,message", [
    (["--every", "0"], "error: --every must be a whole number >= 1"),
    (["--pitches", "10-30"], "error: pitches 10-23 are outside this model's range 24..84"),
    (["--velocity-layers", "9"], "error: --velocity-layers must be a whole number in 1..4"),
    (["--coefficients", "1,2"], "error: --coefficients need --components"),
    (["--seed", "1", "--z", "z.npy"], "error: give either --seed or --z, not both"),
    (["--condition", "instrument_family=banjo"], "error: this model has no condition 'instrument_family'"),
])
def test_cli_refuses_bad_input_in_one_line(tiny_model_path, tmp_path, args, message):
    res = CliRunner().invoke(main, ["instrument", "--model", str(tiny_model_path), "--out", str(tmp_path / "x.sf2"),
                                    *args])
    assert res.exit_code == 1 and res.output.strip() == res.output.strip().splitlines()[0], res.output
    assert res.output.startswith(message), res.output
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_components_of_another_model(tiny_synth, tiny_model_path, tmp_path):
    import dataclasses

    from ganspacesynth.ganspace.fit import fit_components

    comps = fit_components(tiny_synth, "conv0", count=64, n_components=2, pitches=[60], regression_samples=0)
    other = dataclasses.replace(comps, meta={**comps.meta, "model_fingerprint": "f" * 64}).save(tmp_path / "c.npz")
    res = CliRunner().invoke(main, ["instrument", "--model", str(tiny_model_path), "--out", str(tmp_path / "x.sf2"),
                                    "--components", str(other), "--coefficients", "1"])
    assert res.exit_code == 1 and "components were computed for another model" in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "x.sf2").exists()


def test_cli_refuses_an_unwritable_output(tiny_model_path, tmp_path):
    (tmp_path / "file").write_text("x")
    for out, message in [(tmp_path / "file" / "x.sf2", "is a file, not a folder"), (tmp_path / "x.wav", "must be a .sf2")]:
        res = CliRunner().invoke(main, ["instrument", "--model", str(tiny_model_path), "--out", str(out)])
        assert res.exit_code == 1 and message in res.output and len(res.output.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_synth_api(tiny_synth, tmp_path):
    result = tiny_synth.export_instrument(tmp_path / "api.sf2", seed=4, pitches=[60, 64, 67])
    assert result.path == tmp_path / "api.sf2" and result.seconds > 0
    assert [s.root_key for s in sf2.read_sf2(result.path).samples] == [60, 64, 67]
    assert [z["keyRange"] for z in sf2.read_sf2(result.path).zones] == [(60, 62), (63, 65), (66, 67)]


@pytest.mark.parametrize("settings, message", [
    ({"every": 0}, "--every must be a whole number >= 1"), ({"every": 1.5}, "--every must be a whole number"),
    ({"velocity_layers": 5}, "--velocity-layers must be a whole number in 1..4"),
    ({"loop": "sometimes"}, "loop must be one of auto, none"), ({"mode": "loud"}, "unknown synthesis mode 'loud'"),
    ({"pitches": "sixty"}, "bad pitch list"), ({"pitches": "10-30"}, "pitches 10-23 are outside"),
])
def test_one_options_check_for_the_api_the_session_and_the_cli(tiny_synth, tiny_model_path, tmp_path, settings,
                                                                message):
    from ganspacesynth.compose.instrument import InstrumentOptions
    from ganspacesynth.errors import UserError

    session = Session(tiny_synth, out_dir=tmp_path / "out")
    refusals = [lambda: InstrumentOptions(**settings).keyboard(tiny_synth.pitches),
                lambda: tiny_synth.export_instrument(tmp_path / "x.sf2", **settings),
                lambda: session.instrument_request("x", **settings)]
    try:
        for refuse in refusals:
            with pytest.raises(UserError, match=message):
                refuse()
    finally:
        session.close()
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in settings.items()]
    res = CliRunner().invoke(main, ["instrument", "--model", str(tiny_model_path), "--out", str(tmp_path / "x.sf2"),
                                    *flags])
    assert res.exit_code in (1, 2) and (res.exit_code == 2 or message in res.output), res.output  # 2: click's
    assert not (tmp_path / "x.sf2").exists()


def test_options_take_whole_numbers_from_clients_and_normalise_pitches():
    from ganspacesynth.compose.instrument import InstrumentOptions

    options = InstrumentOptions(every=2.0, velocity_layers=np.int64(2), pitches="60,48-50")
    assert (options.every, options.velocity_layers, options.pitches) == (2, 2, (48, 49, 50, 60))
    assert type(options.every) is int and type(options.velocity_layers) is int
    assert options.keyboard(range(24, 85)) == ([48, 49, 50, 60], [(48, 48, 49), (50, 50, 60)])


# -- OSC ------------------------------------------------------------------------------------------------------------
@pytest.fixture
def osc(tiny_synth, tiny_model_path, tmp_path):
    from helpers import Client

    session = Session(tiny_synth, allowed_dirs=[tiny_model_path.parent], out_dir=tmp_path / "out", queue_size=4)
    server = OSCServer(session, "127.0.0.1", 0).start()
    client = Client(server.address)
    client.sock.settimeout(60)
    yield session, client
    client.close()
    server.shutdown()
    session.close()


def test_osc_exports_the_current_timbre(osc, tiny_synth):
    session, c = osc
    c.send("/randomize_z", 9.0)
    assert c.recv()[0] == "/z" and c.recv()[0] == "/ok"
    address, args = c.ask("/export_instrument", "id", "e1", "my-pad", "z", 3.0)
    assert address == "/exported", args
    path, rid = args
    assert rid == "e1" and Path(path) == session.out_dir / "instruments" / "my-pad.sf2"
    meta = read_metadata(path)
    np.testing.assert_array_equal(np.float32(meta["timbre"]["z"]), tiny_synth.random_z(1, 9)[0])
    assert meta["keyboard"]["every"] == 3 and meta["keyboard"]["roots"][0] == 24
    assert len(sf2.read_sf2(path).samples) == 21  # 24..84 every 3rd key


@pytest.mark.parametrize("args,needle", [
    (["../escape"], "plain file name"),
    (["a/b"], "plain file name"),
    (["/tmp/abs"], "plain file name"),
    ([".hidden"], "plain file name"),
    (["x" * 65], "plain file name"),
    ([""], "plain file name"),
    ([3.0], "name must be a string"),
    (["ok", "offset", 0.0], "--every must be a whole number >= 1"),
    (["ok", "offset", 1.5], "every must be a whole number"),
    (["ok", "noz"], "no GANSpace components loaded"),
    (["ok", "loud"], "unknown synthesis mode"),
    ([], "usage: /export_instrument <name>"),
])
def test_osc_refuses_bad_names_and_values(osc, args, needle):
    session, c = osc
    address, reply = c.ask("/export_instrument", *args)
    assert address == "/error" and needle in reply[0], reply
    assert not (session.out_dir / "instruments").exists()
    assert not list(session.out_dir.parent.glob("*.sf2")) and not Path("/tmp/abs.sf2").exists()
    assert c.ask("/ping")[0] == "/pong"  # the server goes on


# -- web ------------------------------------------------------------------------------------------------------------
@pytest.fixture
def web(tiny_synth, tmp_path):
    pytest.importorskip("flask", reason="the web extra is not installed (pip install -e '.[web]')")
    from ganspacesynth.interfaces.web.app import WebServer

    session = Session(tiny_synth, out_dir=tmp_path / "out")
    server = WebServer(session, "127.0.0.1", 0).start()
    yield session, server
    server.shutdown()
    session.close()


def test_web_api_exports_and_serves_the_sf2(web, tiny_synth):
    session, server = web
    assert call(server, "/api/z", {"seed": 11})[0] == 200
    status, body = call(server, "/api/instrument", {"name": "web-pad", "mode": "z", "every": 2, "pitches": "48-60"})
    assert status == 200, body
    r = json.loads(body)
    assert r["name"] == "web-pad.sf2" and r["download"] == "/instrument/web-pad.sf2" and r["keys"] == [48, 60]
    status, data, headers = call(server, r["download"], headers=True)
    assert status == 200 and data[:4] == b"RIFF" and data[8:12] == b"sfbk" and len(data) == r["bytes"]
    assert "attachment" in headers.get("Content-Disposition", "") and "web-pad.sf2" in headers["Content-Disposition"]
    meta = read_metadata(session.out_dir / "instruments" / "web-pad.sf2")
    np.testing.assert_array_equal(np.float32(meta["timbre"]["z"]), tiny_synth.random_z(1, 11)[0])


@pytest.mark.parametrize("path,data,code", [
    ("/api/instrument", {"name": "../../etc/evil"}, 400),
    ("/api/instrument", {"name": "sub/dir"}, 400),
    ("/api/instrument", {"name": "a\\b"}, 400),
    ("/api/instrument", {"name": "ok", "every": 0}, 400),
    ("/api/instrument", {"name": "ok", "pitches": "1-200"}, 400),
    ("/api/instrument", {"name": "ok", "pitches": 60}, 400),
    ("/instrument/..%2F..%2Fetc%2Fpasswd", None, 404),
    ("/instrument/missing.sf2", None, 404),
])
def test_web_api_refuses_bad_requests(web, path, data, code):
    session, server = web
    status, body = call(server, path, data)
    assert status == code, body
    if data is not None:
        assert json.loads(body)["error"]
    assert not list(session.out_dir.parent.rglob("*.sf2"))


def test_web_api_applies_the_sliders_only_when_the_export_is_accepted(web, tiny_synth, tmp_path):
    from ganspacesynth.ganspace.fit import fit_components

    session, server = web
    path = fit_components(tiny_synth, "conv0", count=64, n_components=3, pitches=[60],
                          regression_samples=0).save(tmp_path / "comps.npz")
    session.allowed_dirs.append(tmp_path.resolve())
    session.load_components(str(path))
    status, body = call(server, "/api/instrument", {"name": "../x", "coefficients": [2.0, -1.0]})
    assert status == 400 and "plain file name" in json.loads(body)["error"]
    assert session.coeffs.tolist() == [0.0, 0.0, 0.0]  # a refused request changes nothing
    status, body = call(server, "/api/instrument", {"name": "edited", "coefficients": [2.0, -1.0],
                                                    "pitches": "60-62"})
    assert status == 200, body
    assert session.coeffs.tolist() == [2.0, -1.0, 0.0]
    meta = read_metadata(session.out_dir / "instruments" / "edited.sf2")
    assert meta["timbre"]["mode"] == "offset" and meta["timbre"]["coefficients"] == [2.0, -1.0]


CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.mark.browser
@pytest.mark.integration
def test_web_page_button_exports_and_offers_the_download(web):
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("chromium / chromium-driver not installed (apt-get install chromium chromium-driver)")
    pytest.importorskip("selenium", reason="selenium not installed (pip install -e '.[dev]')")
    import tempfile

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    session, server = web
    profile = tempfile.mkdtemp(prefix="gss-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        driver.get(server.url)
        WebDriverWait(driver, 60).until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
        box = driver.find_element(By.ID, "instrument-name")
        box.clear()
        box.send_keys("page-pad")
        driver.find_element(By.ID, "export-instrument").click()
        WebDriverWait(driver, 120).until(lambda d: d.execute_script("return document.body.dataset.instrument"))
        link = driver.find_element(By.ID, "instrument-download")
        assert link.get_attribute("href").endswith("/instrument/page-pad.sf2") and link.is_displayed()
        assert "instrument page-pad.sf2: keys 24–84 from 61 notes" in driver.find_element(By.ID, "status").text
        head = driver.execute_async_script(
            "const done = arguments[1]; fetch(arguments[0]).then((r) => r.arrayBuffer())"
            ".then((b) => done(Array.from(new Uint8Array(b.slice(0, 12))))).catch((e) => done(String(e)));",
            link.get_attribute("href"))
        assert bytes(head[:4]) == b"RIFF" and bytes(head[8:12]) == b"sfbk"
        box.clear()
        box.send_keys("../escape")
        driver.find_element(By.ID, "export-instrument").click()
        WebDriverWait(driver, 60).until(lambda d: "plain file name" in d.find_element(By.ID, "status").text)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    assert sorted(p.name for p in (session.out_dir / "instruments").iterdir()) == ["page-pad.sf2"]


# -- Pure Data ------------------------------------------------------------------------------------------------------
@pytest.mark.pd
@pytest.mark.integration
def test_pd_main_patch_exports_an_instrument(tiny_synth, tiny_model_path, tmp_path):
    """The shipped patch's export button, banged through its remote name; the reply comes back on gss-exported."""
    if shutil.which("pd") is None:
        pytest.skip("Pure Data not installed (apt-get install puredata-core)")
    import re

    from helpers import PD_DIR, Patch, run_pd, watchdog

    p = Patch()
    watchdog(p, 30000)
    port, tp, con, scon = p.obj("r harness-port"), p.obj("t b f"), p.msg("list 127.0.0.1 $1"), p.obj("s gss-connect")
    p.chain(port, tp)
    p.connect(tp, 1, con)
    p.connect(con, 0, scon)
    delay, bang, export = p.obj("delay 100"), p.msg("bang"), p.obj("s gss-export")
    p.connect(tp, 0, delay)
    p.chain(delay, bang, export)
    got, show, then = p.obj("r gss-exported"), p.obj("print EXPORTED"), p.obj("t b")
    wait, quit_ = p.obj("delay 50"), p.msg("; pd quit 0")
    p.chain(got, show)
    p.connect(got, 0, then)
    p.chain(then, wait, quit_)
    h = p.write(tmp_path / "harness.pd")
    session = Session(tiny_synth, allowed_dirs=[tiny_model_path.parent], out_dir=tmp_path / "out")
    srv = OSCServer(session, "127.0.0.1", 0).start()
    try:
        out = run_pd("-send", f"harness-port {srv.address[1]}", "-open", str(PD_DIR / "ganspacesynth.pd"), str(h),
                     timeout=60)
    finally:
        srv.shutdown()
        session.close()
    assert out.returncode == 0, out.stderr
    m = re.search(r"^EXPORTED: list (\S+) ", out.stderr, re.M)  # a list: <path> <id>
    assert m, out.stderr
    assert m.group(1) == str(session.out_dir / "instruments" / "pd-instrument-1.sf2")
    assert len(sf2.read_sf2(m.group(1)).samples) == 61


# -- speed benchmark ------------------------------------------------------------------------------------------------
@pytest.mark.integration
def test_speed_benchmark_runs_at_tiny_size(tmp_path):
    out = tmp_path / "speed.json"
    res = subprocess.run([sys.executable, str(REPO / "benchmarks" / "instrument_speed.py"), "--preset", "tiny",
                          "--keys", "24-36", "--repeats", "1", "--out", str(out)], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text())
    assert data["keys"] == 13 and data["preset"] == "tiny" and data["cpu_model"]
    assert data["seconds"]["float32"] > 0 and set(data["seconds"]) == {"float32", "bfloat16"}
    assert data["seconds"]["bfloat16"] is None or data["seconds"]["bfloat16"] > 0  # null where oneDNN lacks bf16
    assert "cpu" in res.stdout.lower()
