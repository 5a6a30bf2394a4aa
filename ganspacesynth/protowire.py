"""The protobuf wire format, read by hand: enough for tf.train.Example records and TF checkpoint indexes.

We parse these few small schemas directly so that neither TensorFlow nor generated protobuf classes
are needed to read NSynth TFRecords or Magenta checkpoints.
"""

from __future__ import annotations

from typing import Iterator


def read_varint(buf: bytes, pos: int, end: int | None = None) -> tuple[int, int]:
    """Decode a base-128 varint at `pos`; return (value, next position)."""
    end = len(buf) if end is None else end
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def iter_fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value): an int for varints, the raw bytes for every other wire type."""
    pos, end = 0, len(buf)
    while pos < end:
        tag, pos = read_varint(buf, pos, end)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = read_varint(buf, pos, end)
        else:
            if wire == 2:
                size, pos = read_varint(buf, pos, end)
            elif wire in (1, 5):
                size = 8 if wire == 1 else 4
            else:
                raise ValueError(f"unsupported protobuf wire type {wire}")
            if pos + size > end:
                raise ValueError("truncated protobuf field")
            value, pos = bytes(buf[pos : pos + size]), pos + size
        yield number, wire, value


def parse_message(buf: bytes) -> dict[int, list[int | bytes]]:
    """{field number: [values]}: ints for varint and fixed-width fields, bytes for length-delimited ones."""
    fields: dict[int, list[int | bytes]] = {}
    for number, wire, value in iter_fields(buf):
        if wire in (1, 5):
            value = int.from_bytes(value, "little")
        fields.setdefault(number, []).append(value)
    return fields


def signed64(value: int) -> int:
    """Reinterpret a decoded varint as a two's complement int64 (negative ints use 10 bytes)."""
    return value - (1 << 64) if value >= 1 << 63 else value
