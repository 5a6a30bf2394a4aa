"""SoundFont 2 files: a small writer for one-preset, one-instrument banks, and a reader for what it writes.

There is no well-kept SoundFont *writer* on PyPI (sf2utils, tinysoundfont and the others only parse or play), so
the RIFF structure is written here with `struct`, following the SoundFont 2.04 specification (E-mu/Creative,
2006), sections 4–8:

    RIFF 'sfbk'
      LIST 'INFO'  ifil (2.01), isng "EMU8000", INAM bank name, ICRD, IENG, ISFT, ICMT comment (our metadata JSON)
      LIST 'sdta'  smpl: every sample as 16-bit mono PCM, each followed by 46 zero samples (spec 6.1)
      LIST 'pdta'  phdr pbag pmod pgen inst ibag imod igen shdr, each ending in its terminal record

One preset (bank 0, program 0) holds one zone pointing at one instrument; the instrument has one zone per sample
and velocity layer. Zone generators are written in the order the spec requires: keyRange first, velRange second,
sampleID last (instrument zones) and instrument last (preset zones). Sample headers carry the root key, pitch
correction 0 and the loop points (absolute indices into smpl; the loop end is the first sample *after* the loop).

    sf = SoundFont(name="my bank", preset_name="piano", instrument_name="piano", samples=[...], zones=[...])
    write_sf2("piano.sf2", sf)                 # atomic: a temporary name, renamed when complete
    read_sf2("piano.sf2").info["ICMT"]         # our reader (used by tests and `instrument` metadata)
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import UserError
from ..fileio import atomic_path

#: Generator numbers (SoundFont 2.04, section 8.1.2) used here.
GEN = {
    "initialFilterFc": 8,
    "attackVolEnv": 34,
    "holdVolEnv": 35,
    "decayVolEnv": 36,
    "sustainVolEnv": 37,
    "releaseVolEnv": 38,
    "instrument": 41,
    "keyRange": 43,
    "velRange": 44,
    "initialAttenuation": 48,
    "coarseTune": 51,
    "fineTune": 52,
    "sampleID": 53,
    "sampleModes": 54,
    "overridingRootKey": 58,
}
#: sampleModes values.
NO_LOOP, LOOP_CONTINUOUS, LOOP_UNTIL_RELEASE = 0, 1, 3
MONO_SAMPLE = 1
#: Zero samples after each sample (the spec asks for at least 46).
SAMPLE_GAP = 46
NAME_BYTES = 20
MAX_INFO_BYTES = 65536  # the spec's limit for ICMT (and 256 for the other INFO strings)


@dataclass
class Sample:
    """One mono sample. `data` is float in [-1, 1] or int16; `loop` is (start, end) with end exclusive."""

    name: str
    data: np.ndarray
    sample_rate: int
    root_key: int
    loop: tuple[int, int] | None = None
    pitch_correction: int = 0

    def pcm(self) -> np.ndarray:
        return to_pcm16(self.data)


def to_pcm16(data) -> np.ndarray:
    """Float samples in [-1, 1] → int16 (clipped, rounded in float64); int16 data is kept as it is."""
    d = np.asarray(data)
    if d.dtype == np.int16:
        return d
    return np.round(np.clip(d.astype(np.float64), -1.0, 1.0) * 32767.0).astype(np.int16)


@dataclass
class Zone:
    """An instrument zone: a sample played over a key and velocity range, plus other generators (name → value)."""

    sample: int
    key_range: tuple[int, int] = (0, 127)
    vel_range: tuple[int, int] = (0, 127)
    generators: Mapping[str, int] = field(default_factory=dict)


@dataclass
class SoundFont:
    name: str
    preset_name: str
    instrument_name: str
    samples: list[Sample]
    zones: list[Zone]
    comment: str = ""
    engineer: str = ""
    creation_date: str = ""
    software: str = "GANSpaceSynth"
    bank: int = 0
    program: int = 0


def timecents(seconds: float) -> int:
    """Seconds → absolute timecents (1200·log2 s), clamped to the range SoundFont players accept."""
    if seconds <= 0.001:
        return -12000
    return int(max(-12000, min(8000, round(1200.0 * math.log2(seconds)))))


def hz_to_cents(hz: float) -> int:
    """A frequency → absolute cents (8.176 Hz · 2^(cents/1200)), for initialFilterFc (1500..13500)."""
    return int(max(1500, min(13500, round(1200.0 * math.log2(hz / 8.176)))))


def _name(text: str) -> bytes:
    raw = text.encode("ascii", "replace")[: NAME_BYTES - 1]
    return raw.ljust(NAME_BYTES, b"\0")


def _chunk(tag: bytes, payload: bytes) -> bytes:
    out = tag + struct.pack("<I", len(payload)) + payload
    return out + b"\0" if len(payload) % 2 else out


def _list(kind: bytes, chunks: Sequence[bytes]) -> bytes:
    return _chunk(b"LIST", kind + b"".join(chunks))


def _zstr(text: str, limit: int = 256) -> bytes:
    """A zero-terminated string padded to an even length (INFO sub-chunks)."""
    raw = text.encode("ascii", "replace")[: limit - 2] + b"\0"
    return raw + b"\0" if len(raw) % 2 else raw


def _gen(name: str, value) -> bytes:
    oper = GEN[name]
    if name in ("keyRange", "velRange"):
        lo, hi = value
        return struct.pack("<HBB", oper, int(lo), int(hi))
    if name in ("sampleID", "instrument", "sampleModes", "overridingRootKey"):
        return struct.pack("<HH", oper, int(value))
    return struct.pack("<Hh", oper, int(value))


def validate(sf: SoundFont) -> None:
    """Refuse what the format cannot hold (ValueError: these are programming errors, not user input)."""
    if not sf.samples or not sf.zones:
        raise ValueError("a SoundFont needs at least one sample and one zone")
    for s in sf.samples:
        n = len(s.data)
        if np.asarray(s.data).ndim != 1 or n < 48:
            raise ValueError(f"sample {s.name}: need a mono sample of at least 48 points, got shape {np.shape(s.data)}")
        if not 0 <= s.root_key <= 127 or not -99 <= s.pitch_correction <= 99:
            raise ValueError(f"sample {s.name}: root key {s.root_key} / correction {s.pitch_correction} out of range")
        if not 1 <= s.sample_rate <= 0xFFFFFFFF:
            raise ValueError(f"sample {s.name}: bad sample rate {s.sample_rate}")
        if s.loop is not None:
            a, b = s.loop
            if not (8 <= a and b - a >= 32 and b <= n - 8):
                raise ValueError(f"sample {s.name}: loop {s.loop} must start >= 8, last >= 32 points and end "
                                 f"<= {n - 8}")
    for z in sf.zones:
        if not 0 <= z.sample < len(sf.samples):
            raise ValueError(f"zone refers to sample {z.sample} of {len(sf.samples)}")
        for lo, hi in (z.key_range, z.vel_range):
            if not 0 <= lo <= hi <= 127:
                raise ValueError(f"bad range {lo}..{hi}")
        unknown = set(z.generators) - set(GEN)
        if unknown or {"keyRange", "velRange", "sampleID"} & set(z.generators):
            raise ValueError(f"zone generators: unknown or reserved {sorted(unknown) or sorted(z.generators)}")
    if len(sf.comment.encode("ascii", "replace")) + 1 > MAX_INFO_BYTES:
        raise ValueError(f"the comment is longer than {MAX_INFO_BYTES - 1} bytes")


def sf2_bytes(sf: SoundFont) -> bytes:
    """The whole .sf2 file as bytes."""
    validate(sf)
    # -- INFO
    info = [_chunk(b"ifil", struct.pack("<HH", 2, 1)), _chunk(b"isng", _zstr("EMU8000")),
            _chunk(b"INAM", _zstr(sf.name))]
    if sf.creation_date:
        info.append(_chunk(b"ICRD", _zstr(sf.creation_date)))
    if sf.engineer:
        info.append(_chunk(b"IENG", _zstr(sf.engineer)))
    info.append(_chunk(b"ISFT", _zstr(sf.software)))
    if sf.comment:
        info.append(_chunk(b"ICMT", _zstr(sf.comment, MAX_INFO_BYTES)))
    # -- sdta: samples one after another, 46 zeros after each
    parts, headers, pos = [], [], 0
    for s in sf.samples:
        pcm = s.pcm()
        start, end = pos, pos + len(pcm)
        loop_start, loop_end = (start + s.loop[0], start + s.loop[1]) if s.loop else (start, start)
        if s.loop is None:  # no loop: players ignore the points, but keep them inside the sample
            loop_start, loop_end = start + 8, start + 40 if len(pcm) >= 48 else end
        headers.append(struct.pack("<20sIIIIIBbHH", _name(s.name), start, end, loop_start, loop_end,
                                   int(s.sample_rate), int(s.root_key), int(s.pitch_correction), 0, MONO_SAMPLE))
        parts.append(pcm.astype("<i2").tobytes())
        parts.append(b"\0" * (2 * SAMPLE_GAP))
        pos = end + SAMPLE_GAP
    headers.append(struct.pack("<20sIIIIIBbHH", _name("EOS"), 0, 0, 0, 0, 0, 0, 0, 0, 0))
    sdta = _list(b"sdta", [_chunk(b"smpl", b"".join(parts))])
    # -- pdta: one preset zone → the instrument; one instrument zone per Zone
    phdr = struct.pack("<20sHHHIII", _name(sf.preset_name), sf.program, sf.bank, 0, 0, 0, 0)
    phdr += struct.pack("<20sHHHIII", _name("EOP"), 0, 0, 1, 0, 0, 0)
    pbag = struct.pack("<HH", 0, 0) + struct.pack("<HH", 1, 0)
    pmod = b"\0" * 10
    pgen = _gen("instrument", 0) + b"\0" * 4
    inst = struct.pack("<20sH", _name(sf.instrument_name), 0) + struct.pack("<20sH", _name("EOI"), len(sf.zones))
    ibag, igen = [], []
    for z in sf.zones:
        ibag.append(struct.pack("<HH", len(igen), 0))
        igen.append(_gen("keyRange", z.key_range))
        igen.append(_gen("velRange", z.vel_range))
        for name, value in z.generators.items():
            igen.append(_gen(name, value))
        igen.append(_gen("sampleID", z.sample))
    ibag.append(struct.pack("<HH", len(igen), 0))
    igen.append(b"\0" * 4)
    imod = b"\0" * 10
    pdta = _list(b"pdta", [_chunk(b"phdr", phdr), _chunk(b"pbag", pbag), _chunk(b"pmod", pmod),
                           _chunk(b"pgen", pgen), _chunk(b"inst", inst), _chunk(b"ibag", b"".join(ibag)),
                           _chunk(b"imod", imod), _chunk(b"igen", b"".join(igen)),
                           _chunk(b"shdr", b"".join(headers))])
    body = b"sfbk" + _list(b"INFO", info) + sdta + pdta
    return b"RIFF" + struct.pack("<I", len(body)) + body


def write_sf2(path: str | os.PathLike, sf: SoundFont) -> Path:
    """Write atomically: the file appears complete under its name or not at all."""
    data = sf2_bytes(sf)
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


# -- reading (our own files, and for tests) ------------------------------------------------------------------------
@dataclass
class ParsedSoundFont:
    info: dict[str, str | tuple[int, int]]
    samples: list[Sample]
    #: Instrument zones as dicts of generator name → value (keyRange/velRange as (lo, hi)).
    zones: list[dict]
    preset_name: str
    instrument_name: str


def _chunks(data: bytes, start: int, stop: int):
    pos = start
    while pos + 8 <= stop:
        tag, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        yield tag, pos + 8, pos + 8 + size
        pos += 8 + size + (size & 1)


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


def read_sf2(path: str | os.PathLike) -> ParsedSoundFont:
    """Parse a .sf2 file written by `write_sf2` (one preset, one instrument; enough for checking and metadata)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    if data[:4] != b"RIFF" or data[8:12] != b"sfbk":
        raise UserError(f"{path} is not a SoundFont 2 file")
    lists = {}
    for tag, a, b in _chunks(data, 12, len(data)):
        if tag == b"LIST":
            lists[data[a:a + 4]] = {t.decode(): data[x:y] for t, x, y in _chunks(data, a + 4, b)}
    if set(lists) != {b"INFO", b"sdta", b"pdta"}:
        raise UserError(f"{path} lacks one of the INFO, sdta, pdta lists")
    info: dict = {}
    for tag, raw in lists[b"INFO"].items():
        info[tag] = struct.unpack("<HH", raw) if tag == "ifil" else _cstr(raw)
    pcm = np.frombuffer(lists[b"sdta"]["smpl"], dtype="<i2")
    pd = lists[b"pdta"]
    samples = []
    for off in range(0, len(pd["shdr"]) - 46, 46):
        name, start, end, ls, le, rate, root, corr, _link, _kind = struct.unpack_from("<20sIIIIIBbHH", pd["shdr"], off)
        samples.append(Sample(_cstr(name), pcm[start:end].copy(), rate, root, (ls - start, le - start), corr))
    names = {v: k for k, v in GEN.items()}
    gens = [struct.unpack_from("<HH", pd["igen"], off) for off in range(0, len(pd["igen"]), 4)]
    bags = [struct.unpack_from("<HH", pd["ibag"], off)[0] for off in range(0, len(pd["ibag"]), 4)]
    zones = []
    for a, b in zip(bags, bags[1:]):
        zone = {}
        for oper, amount in gens[a:b]:
            key = names.get(oper, str(oper))
            if key in ("keyRange", "velRange"):
                zone[key] = (amount & 0xFF, amount >> 8)
            elif key in ("sampleID", "instrument", "sampleModes", "overridingRootKey"):
                zone[key] = amount
            else:
                zone[key] = amount - 0x10000 if amount >= 0x8000 else amount
        zones.append(zone)
    return ParsedSoundFont(info, samples, zones, _cstr(pd["phdr"][:20]), _cstr(pd["inst"][:20]))
