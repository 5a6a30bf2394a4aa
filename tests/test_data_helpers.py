"""Helpers for the dataset tests: synthetic notes, note folders, and TFRecords written with tools
independent of ganspacesynth (protobuf's runtime and TensorBoard's RecordWriter)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf

from ganspacesynth.model.config import tiny_spectral

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
