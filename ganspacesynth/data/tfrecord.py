"""TFRecord files and tf.train.Example protobufs, read and written without TensorFlow.

Hand-written on purpose: TensorFlow (or protobuf's generated classes) would be a huge dependency for
reading NSynth. A TFRecord is a sequence of records framed as
`uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)` (little endian);
each record's data is a serialised `tf.train.Example`:
`Example{1: Features{1: map<string, Feature>}}`, `Feature{1: BytesList, 2: FloatList, 3: Int64List}`,
each list a repeated field `1` (floats and ints may be packed or not).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO, Iterator, Mapping, Sequence

import google_crc32c
import numpy as np

from ..errors import UserError
from ..protowire import iter_fields, read_varint, signed64

_MASK_DELTA = 0xA282EAD8


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC32C."""
    crc = google_crc32c.value(bytes(data))
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


# -- records --------------------------------------------------------------------------------------
def iter_records(path: str | os.PathLike, verify: bool = True) -> Iterator[tuple[int, bytes]]:
    """Yield (byte offset, data) for each record; a truncated or corrupt file raises UserError."""
    path = Path(path)
    with open(path, "rb") as f:
        while True:
            offset = f.tell()
            data = _read_record(f, path, offset, verify)
            if data is None:
                return
            yield offset, data


def read_record_at(path: str | os.PathLike, offset: int, verify: bool = True) -> bytes:
    """The record that starts at `offset` (as yielded by iter_records)."""
    with open(path, "rb") as f:
        f.seek(offset)
        data = _read_record(f, Path(path), offset, verify)
    if data is None:
        raise UserError(f"{path}: no record at byte {offset}")
    return data


def _read_record(f: BinaryIO, path: Path, offset: int, verify: bool) -> bytes | None:
    header = f.read(12)
    if not header:
        return None
    if len(header) < 12:
        raise UserError(f"{path}: truncated TFRecord header at byte {offset}")
    length, length_crc = struct.unpack("<QI", header)
    if verify and masked_crc(header[:8]) != length_crc:
        raise UserError(f"{path}: corrupt TFRecord (length checksum) at byte {offset}")
    data = f.read(length)
    footer = f.read(4)
    if len(data) < length or len(footer) < 4:
        raise UserError(f"{path}: truncated TFRecord at byte {offset}")
    if verify and masked_crc(data) != struct.unpack("<I", footer)[0]:
        raise UserError(f"{path}: corrupt TFRecord (data checksum) at byte {offset}")
    return data


def write_records(f: BinaryIO, records: Sequence[bytes]) -> None:
    """Append framed records to an open binary file."""
    for data in records:
        length = struct.pack("<Q", len(data))
        f.write(length + struct.pack("<I", masked_crc(length)) + data + struct.pack("<I", masked_crc(data)))


# -- protobuf wire format (shared reader in ganspacesynth/protowire.py) ----------------------------


def _parse_feature(buf: bytes) -> list | np.ndarray:
    for kind, _, payload in iter_fields(buf):
        if kind == 1:  # BytesList
            return [v for n, w, v in iter_fields(payload) if n == 1 and w == 2]
        if kind == 2:  # FloatList: packed (wire 2) or one fixed32 per value (wire 5)
            parts = [np.frombuffer(v, dtype="<f4") for n, w, v in iter_fields(payload) if n == 1]
            return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
        if kind == 3:  # Int64List: packed or one varint per value
            values: list[int] = []
            for n, w, v in iter_fields(payload):
                if n != 1:
                    continue
                if w == 0:
                    values.append(signed64(v))
                else:
                    pos = 0
                    while pos < len(v):
                        x, pos = read_varint(v, pos)
                        values.append(signed64(x))
            return np.asarray(values, dtype=np.int64)
    return []


def parse_example(data: bytes) -> dict[str, list | np.ndarray]:
    """A serialised tf.train.Example → {feature name: list of bytes | float32 array | int64 array}."""
    out: dict[str, list | np.ndarray] = {}
    for n, w, features in iter_fields(data):
        if n != 1 or w != 2:
            continue
        for fn, fw, entry in iter_fields(features):
            if fn != 1 or fw != 2:
                continue
            key, value = None, b""
            for en, _, ev in iter_fields(entry):
                if en == 1:
                    key = ev.decode("utf-8")
                elif en == 2:
                    value = ev
            if key is not None:
                out[key] = _parse_feature(value)
    return out


def _enc_varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _enc_field(number: int, payload: bytes) -> bytes:
    return _enc_varint(number << 3 | 2) + _enc_varint(len(payload)) + payload


def encode_example(features: Mapping[str, object]) -> bytes:
    """Serialise {name: bytes/str | list of bytes/str | float array | int list} as a tf.train.Example.

    Floats are np.floating arrays or Python floats; ints are np.integer arrays or Python ints.
    """
    entries = b""
    for name, value in features.items():
        if isinstance(value, (bytes, str)):
            value = [value]
        arr = value if isinstance(value, np.ndarray) else None
        if arr is None and isinstance(value, (list, tuple)) and value and isinstance(value[0], (bytes, str)):
            items = b"".join(_enc_field(1, v.encode() if isinstance(v, str) else v) for v in value)
            feature = _enc_field(1, items)
        else:
            arr = np.asarray(value)
            if arr.dtype.kind == "f":
                feature = _enc_field(2, _enc_field(1, arr.astype("<f4").tobytes()))
            else:
                packed = b"".join(_enc_varint(int(v)) for v in arr.reshape(-1))
                feature = _enc_field(3, _enc_field(1, packed))
        entry = _enc_field(1, name.encode("utf-8")) + _enc_field(2, feature)
        entries += _enc_field(1, entry)
    return _enc_field(1, entries)
