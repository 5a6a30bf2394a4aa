"""The web instrument's latency in a real browser (headless Chromium through Selenium), against serve-web's app.

1. Key -> sound start: a computer key pressed through WebDriver; from the keydown event's time stamp to the
   Web Audio source's start() in the page (the page's window.gss.play.log). The audio device's own latency
   (AudioContext baseLatency + outputLatency, what the browser reports) comes on top and is listed apart.
2. Slider -> keyboard ready: a direction slider moved by an arrow key; from its input event to the whole
   keyboard re-rendered on the server (one batch), sent, and turned into Web Audio buffers (the page's
   window.gss.play.renders). Includes the page's 120 ms debounce. The bare batch generation (Session keyboard
   request on the worker, no HTTP) is timed beside it. The page's "synthesize on every change" is switched off
   for it (--auto keeps it: each move then also generates one note for the player first).

    python benchmarks/web_latency.py [--model PATH] [--keys 20] [--moves 5] [--out bench-out/web_latency.json]

Without --model: the bundled model and its components. Run it with the threads you want generation to use
(OMP_NUM_THREADS / --threads); the JSON records them with the CPU model.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402


def browser(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        raise SystemExit("needs chromium and chromedriver (apt-get install chromium chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=1200,1400",
                 "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=opts)


def wait(driver, script: str, timeout: float = 600):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: d.execute_script(script))


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def key_latency(driver, presses: int) -> dict:
    from selenium.webdriver.common.action_chains import ActionChains

    keys = "asdfghjk"
    for i in range(presses + 2):  # the first two warm up
        ActionChains(driver).key_down(keys[i % len(keys)]).pause(0.05).key_up(keys[i % len(keys)]).perform()
    log = driver.execute_script("return window.gss.play.log")[2:]
    device = driver.execute_script("const c = window.gss.play.ctx; return [c.baseLatency || 0, c.outputLatency || 0, "
                                   "c.sampleRate, c.state]")
    ms = [e["at"] - e["event"] for e in log]
    return {"event_to_start_ms": summary(ms), "all_ms": ms, "audio_base_latency_ms": 1000 * device[0],
            "audio_output_latency_ms": 1000 * device[1], "context_rate": device[2], "context_state": device[3]}


def slider_latency(driver, moves: int, auto: bool) -> dict:
    from selenium.webdriver.common.keys import Keys

    if not auto:  # the page's "synthesize on every change" (one note to the player) would share the generator
        driver.execute_script("document.getElementById('auto').checked = false")
    slider = driver.find_element("id", "c0")
    results = []
    for i in range(moves):
        version = driver.execute_script("return window.gss.play.version")
        slider.send_keys(Keys.ARROW_RIGHT if i % 2 == 0 else Keys.ARROW_LEFT)
        wait(driver, f"const p = window.gss.play; return p.version > {version} && !p.rendering && !p.again "
                     "&& p.pendingSince === null")
        results.append(driver.execute_script("return window.gss.play.renders.slice(-1)[0]"))
    parts = {part: summary([r[part] for r in results]) for part in ("waited", "server", "transfer")}
    return {"input_to_ready_ms": summary([r["ms"] for r in results]), "all_ms": [r["ms"] for r in results],
            "parts_ms": parts, "bytes": results[-1]["bytes"], "debounce_ms": 120, "auto_synthesize": auto}


def bare_keyboard(session, repeats: int) -> dict:
    seconds = []
    for _ in range(repeats):
        t = time.perf_counter()
        session.submit(session.keyboard_request("offset" if session.components is not None else "z")).result()
        seconds.append(time.perf_counter() - t)
    return {"seconds": summary(seconds), "notes": len(session.synth.pitches)}


def main() -> None:
    import torch

    from ganspacesynth.interfaces.serving import ServeOptions, build_session
    from ganspacesynth.interfaces.web.app import WebServer

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="a model file (default: the bundled model)")
    ap.add_argument("--components", type=Path, default=None)
    ap.add_argument("--keys", type=int, default=20, help="key presses timed")
    ap.add_argument("--moves", type=int, default=5, help="slider moves timed")
    ap.add_argument("--auto", action="store_true", help="keep the page's 'synthesize on every change' on (a note "
                    "is generated before each keyboard render)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    session = build_session(ServeOptions(model=args.model, components=args.components))
    server = WebServer(session, "127.0.0.1", 0).start()
    profile = Path(tempfile.mkdtemp(prefix="gss-bench-chromium-"))
    driver = browser(profile)
    try:
        t = time.perf_counter()
        driver.get(server.url)
        wait(driver, "return window.gss && window.gss.play && window.gss.play.version > 0")
        first = time.perf_counter() - t
        keys = key_latency(driver, args.keys)
        slider = slider_latency(driver, args.moves, args.auto)
        bare = bare_keyboard(session, max(2, args.moves // 2))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
        server.shutdown()
        session.close()
    synth = session.synth
    model = {"path": "bundled" if args.model is None else str(args.model), "notes": len(synth.pitches),
             "samples": synth.config.spectral.audio_length,
             "sample_rate": synth.sample_rate, "components": session.num_components}
    print(f"model: {model['path']} ({model['notes']} keys of {model['samples']} samples), torch threads "
          f"{torch.get_num_threads()}")
    print(f"page load -> keyboard playable: {first:.2f} s")
    k = keys["event_to_start_ms"]
    print(f"key -> sound start in the page: median {k['median']:.2f} ms (min {k['min']:.2f}, max {k['max']:.2f}, "
          f"n {k['n']}); audio device latency reported: base {keys['audio_base_latency_ms']:.1f} ms + output "
          f"{keys['audio_output_latency_ms']:.1f} ms")
    s = slider["input_to_ready_ms"]
    print(f"slider -> keyboard ready: median {s['median']:.0f} ms (min {s['min']:.0f}, max {s['max']:.0f}, n {s['n']}; "
          f"{slider['bytes'] / 1e6:.1f} MB of notes; bare batch generation median {1000 * bare['seconds']['median']:.0f} ms)")
    parts = slider["parts_ms"]
    print(f"  parts (medians): debounce {parts['waited']['median']:.0f} ms, server {parts['server']['median']:.0f} ms, "
          f"transfer + buffers {parts['transfer']['median']:.0f} ms")
    write_result("web_latency", {"model": model, "threads": torch.get_num_threads(), "page_to_playable_s": first,
                                 "key": keys, "slider": slider, "bare_keyboard": bare}, args.out)


if __name__ == "__main__":
    from _common import run

    run(main)
