"""Read TensorFlow checkpoints (format V2, "tensor bundles") without TensorFlow.

A checkpoint `PREFIX` is two kinds of files:
- `PREFIX.index`: a LevelDB-format table (sorted key -> value, prefix-compressed blocks, a footer that
  points at an index block). Each key is a variable name and each value a serialized `BundleEntryProto`
  (dtype, shape, shard, offset, size, crc32c); the empty key holds the `BundleHeaderProto`
  (number of shards, endianness).
- `PREFIX.data-0000S-of-0000T`: the raw tensor bytes, concatenated.

TensorFlow is a very heavy dependency for reading a few megabytes of weights, and no maintained library
reads this format on its own, so the table and the two small protobuf messages are decoded here by hand.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..protowire import parse_message, read_varint, signed64

__all__ = ["TensorEntry", "read_checkpoint", "list_variables", "latest_checkpoint", "resolve_prefix"]

# LevelDB table footer: two block handles padded to 40 bytes, then the 8-byte magic number.
_FOOTER_SIZE = 48
_TABLE_MAGIC = 0xDB4775248B80FB57
_BLOCK_TRAILER = 5  # 1 byte compression type + 4 bytes masked crc32c
_NO_COMPRESSION, _SNAPPY = 0, 1

# tensorflow/core/framework/types.proto DataType values we can read -> numpy dtypes (little-endian).
_NUMPY_DTYPES: dict[int, str] = {
    1: "<f4",  # DT_FLOAT
    2: "<f8",  # DT_DOUBLE
    3: "<i4",  # DT_INT32
    4: "u1",  # DT_UINT8
    5: "<i2",  # DT_INT16
    6: "i1",  # DT_INT8
    8: "<c8",  # DT_COMPLEX64
    9: "<i8",  # DT_INT64
    10: "?",  # DT_BOOL
    17: "<u2",  # DT_UINT16
    18: "<c16",  # DT_COMPLEX128
    19: "<f2",  # DT_HALF
    22: "<u4",  # DT_UINT32
    23: "<u8",  # DT_UINT64
}
_DT_BFLOAT16 = 14
_DTYPE_NAMES: dict[int, str] = {
    1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string",
    8: "complex64", 9: "int64", 10: "bool", 14: "bfloat16", 17: "uint16", 18: "complex128",
    19: "float16", 20: "resource", 21: "variant", 22: "uint32", 23: "uint64",
}


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lives in the data shards (a decoded BundleEntryProto)."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None
    sliced: bool

    @property
    def dtype_name(self) -> str:
        return _DTYPE_NAMES.get(self.dtype, f"dtype{self.dtype}")


# ---------------------------------------------------------------- protobuf wire format



def _last(fields: dict[int, list], number: int, default=0):
    values = fields.get(number)
    return values[-1] if values else default


def _parse_entry(name: str, buf: bytes) -> TensorEntry:
    # BundleEntryProto: dtype=1, shape=2 (TensorShapeProto: repeated Dim dim=2 {int64 size=1}),
    # shard_id=3, offset=4, size=5, fixed32 crc32c=6, repeated TensorSliceProto slices=7.
    f = parse_message(buf)
    shape_fields = parse_message(_last(f, 2, b""))
    dims = tuple(signed64(_last(parse_message(d), 1)) for d in shape_fields.get(2, []))
    if any(d < 0 for d in dims) or _last(shape_fields, 3):
        raise ValueError(f"tensor {name!r} has an unknown shape")
    crc = f.get(6)
    return TensorEntry(
        name=name,
        dtype=int(_last(f, 1)),
        shape=dims,
        shard_id=int(_last(f, 3)),
        offset=signed64(int(_last(f, 4))),
        size=signed64(int(_last(f, 5))),
        crc32c=int(crc[-1]) if crc else None,
        sliced=bool(f.get(7)),
    )


# ---------------------------------------------------------------- LevelDB table

def _block_handle(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    offset, pos = read_varint(buf, pos, end)
    size, pos = read_varint(buf, pos, end)
    return offset, size, pos


def _read_block(data: bytes, offset: int, size: int, check_crc) -> bytes:
    if offset + size + _BLOCK_TRAILER > len(data):
        raise ValueError("a block lies past the end of the file (truncated?)")
    kind = data[offset + size]
    if kind == _SNAPPY:
        raise ValueError("snappy-compressed blocks are not supported (TensorFlow writes uncompressed indexes)")
    if kind != _NO_COMPRESSION:
        raise ValueError(f"unknown block compression type {kind}")
    if check_crc is not None:
        (stored,) = struct.unpack_from("<I", data, offset + size + 1)
        if check_crc(data[offset : offset + size + 1]) != _unmask(stored):
            raise ValueError("block checksum mismatch")
    return data[offset : offset + size]


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    """Decode a block: entries (shared key length, unshared length, value length, key suffix, value),
    followed by the restart offsets (uint32 each) and their count (uint32)."""
    if len(block) < 4:
        raise ValueError("block too short")
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit = len(block) - 4 - 4 * num_restarts
    if limit < 0:
        raise ValueError("bad restart count in block")
    entries: list[tuple[bytes, bytes]] = []
    key = b""
    pos = 0
    while pos < limit:
        shared, pos = read_varint(block, pos, limit)
        unshared, pos = read_varint(block, pos, limit)
        value_len, pos = read_varint(block, pos, limit)
        if shared > len(key) or pos + unshared + value_len > limit:
            raise ValueError("corrupt block entry")
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + value_len]))
        pos += value_len
    return entries


def _read_table(data: bytes, check_crc) -> list[tuple[bytes, bytes]]:
    """All (key, value) pairs of a LevelDB-format table held in `data`, in order."""
    if len(data) < _FOOTER_SIZE:
        raise ValueError("file is shorter than a table footer")
    footer = data[-_FOOTER_SIZE:]
    (magic,) = struct.unpack_from("<Q", footer, _FOOTER_SIZE - 8)
    if magic != _TABLE_MAGIC:
        raise ValueError("bad magic number (not a TensorFlow V2 checkpoint index, or truncated)")
    _, _, pos = _block_handle(footer, 0, 40)  # metaindex: unused by TensorFlow
    index_offset, index_size, _ = _block_handle(footer, pos, 40)
    pairs: list[tuple[bytes, bytes]] = []
    for _, handle in _block_entries(_read_block(data, index_offset, index_size, check_crc)):
        offset, size, _ = _block_handle(handle, 0, len(handle))
        pairs.extend(_block_entries(_read_block(data, offset, size, check_crc)))
    return pairs


# ---------------------------------------------------------------- crc32c

def _make_crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # Castagnoli polynomial, reflected
        table.append(crc)
    return table


_CRC32C_TABLE = _make_crc32c_table()


def _crc32c_small(data: bytes) -> int:
    """Plain-Python crc32c: fine for index blocks (kilobytes), far too slow for tensor data."""
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _fast_crc32c():
    """A compiled crc32c if one is installed (google-crc32c or crc32c), else None: tensor data checksums
    are then skipped, because a pure-Python crc over megabytes of weights would dominate the import."""
    try:
        import google_crc32c  # type: ignore[import-not-found]

        return lambda b: google_crc32c.value(bytes(b))
    except ImportError:
        pass
    try:
        import crc32c  # type: ignore[import-not-found]

        return lambda b: crc32c.crc32c(bytes(b))
    except ImportError:
        return None


def _unmask(masked: int) -> int:
    # TensorFlow/LevelDB store crc32c "masked" (rotated and offset) so CRCs of CRCs stay well distributed.
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# ---------------------------------------------------------------- public API

_CKPT_NUMBER = re.compile(r"-(\d+)\.index$")


def latest_checkpoint(folder: str | os.PathLike) -> Path:
    """The newest checkpoint prefix in `folder`: the one its `checkpoint` file names, else the highest N."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"checkpoint folder not found: {folder}")
    state = folder / "checkpoint"
    if state.is_file():
        match = re.search(r'^model_checkpoint_path:\s*"(.*)"\s*$', state.read_text(errors="replace"), re.M)
        if match:
            # The path may be absolute on the machine that trained; the files sit beside this one.
            prefix = folder / Path(match.group(1)).name
            if Path(str(prefix) + ".index").is_file():
                return prefix
    indexes = [(int(m.group(1)), p) for p in folder.glob("*.index") if (m := _CKPT_NUMBER.search(p.name))]
    if not indexes:
        raise UserError(f"no TensorFlow checkpoint (*.index) in {folder}")
    return Path(str(max(indexes)[1])[: -len(".index")])


def resolve_prefix(path: str | os.PathLike) -> Path:
    """Accept a checkpoint prefix, its `.index` file, or a folder (newest checkpoint in it)."""
    path = Path(path)
    if path.is_dir():
        return latest_checkpoint(path)
    if path.name.endswith(".index"):
        return Path(str(path)[: -len(".index")])
    if re.search(r"\.data-\d{5}-of-\d{5}$", path.name):
        return Path(re.sub(r"\.data-\d{5}-of-\d{5}$", "", str(path)))
    return path


def _read_index(prefix: Path, check_crc) -> tuple[dict[str, TensorEntry], int, bool]:
    """Parse `prefix.index`; return (entries by name, number of shards, big-endian?)."""
    index = Path(str(prefix) + ".index")
    if not index.is_file():
        raise UserError(f"checkpoint index not found: {index}")
    try:
        pairs = _read_table(index.read_bytes(), check_crc)
        header = None
        entries: dict[str, TensorEntry] = {}
        for key, value in pairs:
            if key == b"":
                header = parse_message(value)
            else:
                # Names are UTF-8; keys of partitioned-variable slices are binary, so never fail on them.
                name = key.decode("utf-8", errors="backslashreplace")
                entries[name] = _parse_entry(name, value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"corrupt checkpoint index {index}: {exc}") from None
    if header is None:
        raise UserError(f"corrupt checkpoint index {index}: no bundle header")
    # BundleHeaderProto: num_shards=1, endianness=2 (0 little, 1 big).
    num_shards = int(_last(header, 1, 1))
    return entries, num_shards, bool(_last(header, 2))


def list_variables(prefix: str | os.PathLike) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{variable name: (dtype name, shape)} for every tensor in the checkpoint."""
    entries, _, _ = _read_index(resolve_prefix(prefix), _fast_crc32c() or _crc32c_small)
    return {name: (e.dtype_name, e.shape) for name, e in entries.items()}


def read_checkpoint(prefix: str | os.PathLike, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Read the numeric tensors of a checkpoint (all, or only `names`) as numpy arrays.

    String, resource and variant tensors are skipped; bfloat16 comes back as float32.
    Index checksums are always verified; tensor data checksums when a compiled crc32c library is installed.
    """
    prefix = resolve_prefix(prefix)
    check_crc = _fast_crc32c()
    entries, num_shards, big_endian = _read_index(prefix, check_crc or _crc32c_small)
    if names is not None:
        missing = [n for n in names if n not in entries]
        if missing:
            raise UserError(f"checkpoint {prefix} has no variable {missing[0]!r}")
        entries = {n: entries[n] for n in names}

    wanted = [e for e in entries.values() if e.dtype in _NUMPY_DTYPES or e.dtype == _DT_BFLOAT16]
    shards: dict[int, tuple[Path, object]] = {}
    out: dict[str, np.ndarray] = {}
    try:
        for entry in sorted(wanted, key=lambda e: (e.shard_id, e.offset)):
            if entry.sliced:
                raise UserError(f"checkpoint {prefix}: variable {entry.name!r} is partitioned (not supported)")
            if not 0 <= entry.shard_id < num_shards:
                raise UserError(f"corrupt checkpoint index {prefix}.index: bad shard id for {entry.name!r}")
            if entry.shard_id not in shards:
                path = Path(f"{prefix}.data-{entry.shard_id:05d}-of-{num_shards:05d}")
                if not path.is_file():
                    raise UserError(f"checkpoint data shard not found: {path}")
                shards[entry.shard_id] = (path, open(path, "rb"))  # noqa: SIM115 - closed below
            path, handle = shards[entry.shard_id]
            out[entry.name] = _read_tensor(entry, path, handle, big_endian, check_crc)
    finally:
        for _, handle in shards.values():
            handle.close()
    return out


def _read_tensor(entry: TensorEntry, path: Path, handle, big_endian: bool, check_crc) -> np.ndarray:
    if entry.dtype == _DT_BFLOAT16:
        dtype = np.dtype("<u2")
    else:
        dtype = np.dtype(_NUMPY_DTYPES[entry.dtype])
    if big_endian:
        dtype = dtype.newbyteorder(">")
    count = int(np.prod(entry.shape, dtype=np.int64))
    if count * dtype.itemsize != entry.size:
        raise UserError(
            f"corrupt checkpoint index: {entry.name!r} has {entry.size} bytes for shape {entry.shape} "
            f"of {entry.dtype_name}"
        )
    handle.seek(entry.offset)
    raw = handle.read(entry.size)
    if len(raw) != entry.size:
        raise UserError(f"checkpoint data shard {path} is truncated (reading {entry.name!r})")
    if check_crc is not None and entry.crc32c is not None and check_crc(raw) != _unmask(entry.crc32c):
        raise UserError(f"checkpoint data shard {path}: checksum mismatch for {entry.name!r}")
    array = np.frombuffer(raw, dtype=dtype, count=count).reshape(entry.shape)
    if entry.dtype == _DT_BFLOAT16:
        # bfloat16 is the top half of a float32.
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array.astype(dtype.newbyteorder("="), copy=True)
