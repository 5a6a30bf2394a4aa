"""Helpers shared by several test modules (fixtures live in conftest.py).

- dataset notes: synthetic tones, note folders, and TFRecords written with tools independent of ganspacesynth
  (protobuf's runtime and TensorBoard's RecordWriter);
- `Client`: a plain UDP OSC client;
- Pure Data: `Patch` (writes test patches), `watchdog`, `run_pd`.
"""

from __future__ import annotations

import io
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from ganspacesynth.model.config import tiny_spectral

# -- dataset notes ---------------------------------------------------------------------------------------------------
SPECTRAL = tiny_spectral()  # 16384 samples at 16 kHz → 128 × 256 spectrograms
SR = SPECTRAL.sample_rate
N = SPECTRAL.audio_length


def tone(pitch: float, n: int = N, sr: int = SR, amp: float = 0.3, seed: int = 0, decay: float = 1.5) -> np.ndarray:
    """A decaying harmonic tone at a MIDI pitch (a little noise so no two notes are identical)."""
    t = np.arange(n) / sr
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 4) if f0 * k < sr / 2)
    wave = wave * np.exp(-decay * t) * np.minimum(1.0, t / 0.01)
    noise = np.random.default_rng(seed).normal(0, 1e-3, n)
    return (amp * wave / np.max(np.abs(wave)) + noise).astype(np.float32)


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


# -- OSC -------------------------------------------------------------------------------------------------------------
class Client:
    """A plain UDP OSC client that reads replies on its own socket (as Pd's [netsend -u -b] does)."""

    def __init__(self, address):
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(10)

    def send(self, address, *args):
        b = OscMessageBuilder(address)
        for a in args:
            b.add_arg(a)
        self.sock.sendto(b.build().dgram, self.address)

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
