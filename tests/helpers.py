"""Helpers shared by several test modules (fixtures live in conftest.py).

- dataset notes: synthetic tones, note folders, and TFRecords written with tools independent of ganspacesynth
  (protobuf's runtime and TensorBoard's RecordWriter);
- requests: `osc_message` (one OSC datagram), `Client` (a plain UDP OSC client), `call` (one HTTP request to a
  test web server);
- Pure Data: `Patch` (writes test patches), `watchdog`, `run_pd`;
- live instruments: `family_model` (a tiny model with an instrument family), `family_components` (its
  GANSpace components), `chromium` (a headless browser, optionally with a script run before each page), `wait_for`.
"""

from __future__ import annotations

import io
import json
import shutil
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from ganspacesynth.model.config import tiny_spectral

# -- dataset notes ---------------------------------------------------------------------------------------------------
SPECTRAL = tiny_spectral()  # 16384 samples at 16 kHz → 128 × 256 spectrograms
SR = SPECTRAL.sample_rate
N = SPECTRAL.audio_length


def tone(pitch: float, n: int = N, sr: int = SR, *, seconds: float | None = None, amp: float = 0.3, partials=None,
         phase: float = 0.0, top: float = 0.5, decay: float = 1.5, lead: float = 0.0, attack: float = 0.01,
         release: float = 0.0, tremolo: float = 0.0, normalize: bool = True, noise: float = 1e-3, seed: int = 0,
         dtype=np.float32) -> np.ndarray:
    """A harmonic tone at a MIDI pitch: every test's synthetic note.

    The defaults make a dataset note: harmonics 1, 1/2, 1/3, a 10 ms fade-in, an exponential decay (1.5 per
    second), the peak scaled to `amp`, and a little seeded noise so no two notes are identical. The keywords:
    `seconds` (the length, instead of `n` samples); `partials` (the amplitudes of harmonics 1, 2, …); `phase`
    (harmonic k starts at k·phase radians); `top` (harmonics at or above top·sr are left out); `decay` (per second,
    0: none); `lead` (seconds of silence before the attack); `attack` (a linear fade-in, seconds, 0: none);
    `release` (a fast exponential fall, 60 per second, over the last `release` seconds); `tremolo` (the depth of a
    0.5 Hz amplitude tremolo); `normalize` (False: `amp` scales the partials as given, the peak is not set);
    `noise` (its standard deviation, 0: none); `dtype` (None keeps float64).
    """
    if seconds is not None:
        n = int(seconds * sr)
    t = np.arange(n) / sr
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    weights = partials if partials is not None else (1.0, 1 / 2, 1 / 3)
    wave = sum(w * np.sin(2 * np.pi * f0 * k * t + k * phase) for k, w in enumerate(weights, 1) if f0 * k < top * sr)
    wave = wave * np.exp(-decay * t)
    if attack:
        wave = wave * np.clip((t - lead) / attack, 0, 1)
    if release:
        end = n / sr - release
        wave = wave * np.where(t > end, np.exp(-(t - end) * 60), 1.0)
    if tremolo:
        wave = wave * (1 - tremolo + tremolo * np.cos(2 * np.pi * 0.5 * t))
    wave = amp * wave / np.max(np.abs(wave)) if normalize else amp * wave
    if noise:
        wave = wave + np.random.default_rng(seed).normal(0, noise, n)
    return wave if dtype is None else wave.astype(dtype)


def write_note_folder(root: Path, instruments=("flute", "horn", "bell"), pitches=(48, 55, 60)) -> list[Path]:
    """`[instrument]_[pitch].wav` notes (16-bit, tiny length) in a folder."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, inst in enumerate(instruments):
        for j, p in enumerate(pitches):
            path = root / f"{inst}_{p}.wav"
            sf.write(path, tone(p, seed=10 * i + j, decay=1.0 + i), SR, subtype="PCM_16")
            paths.append(path)
    return paths


# -- tf.train.Example via protobuf's runtime ------------------------------------------------------
_EXAMPLE = None


def _example_class():
    global _EXAMPLE
    if _EXAMPLE is None:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

        F = descriptor_pb2.FieldDescriptorProto
        fdp = descriptor_pb2.FileDescriptorProto(name="gss_test_example.proto", package="gsstest", syntax="proto3")

        def message(name, fields):
            m = fdp.message_type.add(name=name)
            for fname, num, typ, label, tname in fields:
                f = m.field.add(name=fname, number=num, type=typ, label=label)
                if tname:
                    f.type_name = tname
            return m

        R, O = F.LABEL_REPEATED, F.LABEL_OPTIONAL
        message("BytesList", [("value", 1, F.TYPE_BYTES, R, None)])
        message("FloatList", [("value", 1, F.TYPE_FLOAT, R, None)])
        message("Int64List", [("value", 1, F.TYPE_INT64, R, None)])
        message("Feature", [("bytes_list", 1, F.TYPE_MESSAGE, O, ".gsstest.BytesList"),
                            ("float_list", 2, F.TYPE_MESSAGE, O, ".gsstest.FloatList"),
                            ("int64_list", 3, F.TYPE_MESSAGE, O, ".gsstest.Int64List")])
        feats = message("Features", [("feature", 1, F.TYPE_MESSAGE, R, ".gsstest.Features.FeatureEntry")])
        entry = feats.nested_type.add(name="FeatureEntry")
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=O)
        entry.field.add(name="value", number=2, type=F.TYPE_MESSAGE, label=O, type_name=".gsstest.Feature")
        message("Example", [("features", 1, F.TYPE_MESSAGE, O, ".gsstest.Features")])
        pool = descriptor_pool.DescriptorPool()
        pool.Add(fdp)
        _EXAMPLE = message_factory.GetMessageClass(pool.FindMessageTypeByName("gsstest.Example"))
    return _EXAMPLE


def tf_example(features: dict) -> bytes:
    """Serialise {name: str | list[int] | float array} with protobuf (as TensorFlow would)."""
    ex = _example_class()()
    for name, value in features.items():
        feature = ex.features.feature[name]
        if isinstance(value, str):
            feature.bytes_list.value.append(value.encode())
        elif isinstance(value, np.ndarray) and value.dtype.kind == "f":
            feature.float_list.value.extend(value.tolist())
        else:
            feature.int64_list.value.extend(int(v) for v in value)
    return ex.SerializeToString()


def write_tfrecord(path: Path, records: list[bytes]) -> None:
    """TFRecord framing by TensorBoard's RecordWriter (its own masked CRC32C)."""
    from tensorboard.summary.writer.record_writer import RecordWriter

    buf = io.BytesIO()
    writer = RecordWriter(buf)
    for r in records:
        writer.write(r)
    writer.flush()
    Path(path).write_bytes(buf.getvalue())


def nsynth_example(note_str: str, pitch: int, audio: np.ndarray, family: int, source: int, velocity: int = 100,
                   qualities=(0,) * 10) -> dict:
    inst = note_str.rsplit("-", 2)[0]
    return {
        "note_str": note_str, "pitch": [pitch], "velocity": [velocity], "audio": audio.astype(np.float32),
        "instrument": [sum(inst.encode()) % 1000], "instrument_str": inst, "instrument_family": [family],
        "instrument_source": [source], "qualities": list(qualities), "sample_rate": [SR],
    }


# -- OSC and HTTP requests -------------------------------------------------------------------------------------------
def osc_message(address: str, *args) -> bytes:
    """One OSC message as a datagram; floats beyond float32's range go as OSC doubles ('d')."""
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a, "d" if isinstance(a, float) and abs(a) > 3e38 and a == a and abs(a) != float("inf") else None)
    return b.build().dgram


def call(server, path: str, data=None, *, raw: bytes | None = None, host: str | None = None,
         headers: bool = False) -> tuple:
    """One request to a test web server (`server.url`): `data` POSTed as JSON, or the `raw` bytes as they are;
    neither: a GET. `host` sets the Host header. Returns (status, body bytes), with `headers=True` (status, body,
    {header: value})."""
    body = raw if raw is not None else (None if data is None else json.dumps(data).encode())
    req = urllib.request.Request(server.url.rstrip("/") + path, method="GET" if body is None else "POST", data=body,
                                 headers={"Content-Type": "application/json", **({"Host": host} if host else {})})
    try:
        with urllib.request.urlopen(req, timeout=120) as res:
            reply = res.status, res.read(), dict(res.headers)
    except urllib.error.HTTPError as exc:
        reply = exc.code, exc.read(), dict(exc.headers)
    return reply if headers else reply[:2]


class Client:
    """A plain UDP OSC client that reads replies on its own socket (as Pd's [netsend -u -b] does)."""

    def __init__(self, address):
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(10)

    def send(self, address, *args):
        self.sock.sendto(osc_message(address, *args), self.address)

    def recv(self):
        data, sender = self.sock.recvfrom(65535)
        assert sender == self.address  # replies come from the server's own port
        msg = OscMessage(data)
        return msg.address, list(msg.params)

    def ask(self, address, *args):
        self.send(address, *args)
        return self.recv()

    def close(self):
        self.sock.close()


# -- Pure Data -------------------------------------------------------------------------------------------------------
PD = shutil.which("pd")
PD_DIR = Path(__file__).resolve().parents[1] / "pd"


class Patch:
    """Just enough of the Pd file format to write test patches."""

    def __init__(self):
        self.lines, self.conns = ["#N canvas 0 50 900 700 10;"], []

    def _add(self, kind: str, text: str) -> int:
        text = text.replace("$", "\\$").replace(",", " \\,").replace(";", " \\;")
        self.lines.append(f"#X {kind} 10 {10 * len(self.lines)} {text};")
        return len(self.lines) - 2

    def obj(self, text: str) -> int:
        return self._add("obj", text)

    def msg(self, text: str) -> int:
        return self._add("msg", text)

    def chain(self, *objs, outlet: int = 0) -> None:
        for a, b in zip(objs, objs[1:]):
            self.conns.append(f"#X connect {a} {outlet if a == objs[0] else 0} {b} 0;")

    def connect(self, a: int, outlet: int, b: int, inlet: int = 0) -> None:
        self.conns.append(f"#X connect {a} {outlet} {b} {inlet};")

    def write(self, path: Path) -> Path:
        path.write_text("\n".join(self.lines + self.conns) + "\n")
        return path


def watchdog(p: Patch, ms: int) -> None:
    lb, d, pr, q = p.obj("loadbang"), p.obj(f"delay {ms}"), p.obj("print TIMEOUT"), p.msg("; pd quit 1")
    p.chain(lb, d, pr)
    p.connect(d, 0, q)


def run_pd(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([PD, "-nogui", "-noaudio", "-nomidi", "-noprefs", *args], capture_output=True, text=True,
                          timeout=timeout)


def default_sigint() -> None:
    """`Popen(preexec_fn=…)`: SIGINT back to its default in the child, so its Python turns Ctrl-C into
    KeyboardInterrupt even when the test run ignores SIGINT (as a background job of a shell does, and children
    inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# -- live instruments: a model with conditions, a headless browser ----------------------------------------------------
FAMILIES = ("bass", "guitar", "organ")
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")


def family_model(path: Path) -> Path:
    """An untrained `tiny` model (seed 0) conditioned on pitch and an instrument family (`FAMILIES`)."""
    import torch

    from ganspacesynth.conditions import ConditionSpec
    from ganspacesynth.model.config import pitch_condition, preset
    from ganspacesynth.model.files import save_model
    from ganspacesynth.model.generator import Generator

    torch.manual_seed(0)
    cfg = preset("tiny", conditions=(pitch_condition(), ConditionSpec("instrument_family", "categorical", FAMILIES)))
    return save_model(path, cfg, Generator(cfg).state_dict(), info={"untrained": True})


def chromium(profile: Path, before_page: str | None = None, size: tuple[int, int] = (1200, 1400)):
    """Headless Chromium driven by Selenium (Debian's chromium + chromium-driver), or None when one of them is
    missing. Sound plays without a click; `before_page` is JavaScript run in every page before its own scripts
    (Chrome DevTools' Page.addScriptToEvaluateOnNewDocument: stubs such as a fake Web MIDI input)."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        return None
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required", f"--window-size={size[0]},{size[1]}",
                 f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_script_timeout(60)
    if before_page:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": before_page})
    return driver


def wait_for(driver, script: str, timeout: float = 60):
    """Poll a JavaScript expression (a `return …` statement) until it is truthy; returns its value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: d.execute_script(script))


def family_components(synth, folder: Path, labels: Sequence[str] = ()) -> Path:
    """GANSpace components of `synth` at conv0 (256 latents, 8 components, pitch 60), the first directions labelled
    `labels`, saved in `folder`."""
    from ganspacesynth.ganspace.fit import fit_components

    comps = fit_components(synth, "conv0", count=256, n_components=8, pitches=[60])
    if labels:
        comps = comps.with_descriptions([{"label": label} for label in labels])
    return comps.save(Path(folder) / "comps.npz")
