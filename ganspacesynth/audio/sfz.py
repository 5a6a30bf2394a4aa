"""SFZ instruments: a writer (NAME.sfz + 16-bit WAVs in NAME-samples/), a small reader and a small renderer.

The reader understands the subset of SFZ 1/2 that `write_sfz` uses and most hand-written single-layer files use:
`// comments`, the headers <control> <global> <master> <group> <region> (opcodes inherit downwards),
`default_path`, and the opcodes sample, key, lokey, hikey, pitch_keycenter, lovel, hivel, tune, transpose,
loop_mode, loop_start, loop_end, ampeg_attack, ampeg_release, volume, cutoff (keys as numbers or names, c4 = 60).
Sample paths may contain spaces (a value runs to the next opcode). The renderer plays notes through the regions
(linear interpolation, continuous loops, linear attack/release, a 2-pole low-pass for `cutoff`) so exported SFZs
are checked by playing them, not only by reading them back.

Loop points: SFZ's `loop_end` is the last sample *in* the loop (the SoundFont's is the first one after it).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..errors import UserError
from ..fileio import atomic_directory, atomic_path

_NOTE = re.compile(r"^([a-gA-G])([#b]?)(-?\d+)$")
_SEMITONE = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_TOKEN = re.compile(r"<(\w+)>|([A-Za-z0-9_]+)=")


def note_number(value: str) -> int:
    """'60' or 'c4' / 'c#4' / 'db4' (c4 = 60, c-1 = 0) → MIDI note number."""
    value = value.strip()
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    m = _NOTE.match(value)
    if not m:
        raise UserError(f"bad SFZ key {value!r}")
    letter, accidental, octave = m.groups()
    return (int(octave) + 1) * 12 + _SEMITONE[letter.lower()] + {"#": 1, "b": -1, "": 0}[accidental]


@dataclass
class Region:
    sample: Path
    lokey: int = 0
    hikey: int = 127
    lovel: int = 1
    hivel: int = 127
    pitch_keycenter: int = 60
    tune: float = 0.0  # cents
    transpose: int = 0
    loop_mode: str = "no_loop"
    loop_start: int | None = None
    loop_end: int | None = None  # inclusive
    ampeg_attack: float = 0.0
    ampeg_release: float = 0.001
    volume: float = 0.0  # dB
    cutoff: float | None = None  # Hz
    opcodes: dict = field(default_factory=dict)

    def plays(self, key: int, velocity: int) -> bool:
        return self.lokey <= key <= self.hikey and self.lovel <= velocity <= self.hivel


_INT_KEYS = ("lokey", "hikey", "pitch_keycenter")
_INTS = ("lovel", "hivel", "transpose", "loop_start", "loop_end")
_FLOATS = ("tune", "ampeg_attack", "ampeg_release", "volume", "cutoff")


def parse_sfz(text: str, base: Path) -> list[Region]:
    """Regions of an SFZ text; sample paths are resolved against `base` (the .sfz file's folder)."""
    text = "\n".join(line.split("//", 1)[0] for line in text.splitlines())
    tokens = list(_TOKEN.finditer(text))
    if tokens and not tokens[0].group(1):
        raise UserError("SFZ opcode before any header")
    return [_region(ops, base) for ops in _inherit(text, tokens)]


def _inherit(text: str, tokens) -> list[dict]:
    """Each region's opcodes merged with the control/global/master/group opcodes in force where it appears."""
    scopes = {"global": {}, "master": {}, "group": {}}
    control: dict = {}
    regions, current = [], None
    order = ["global", "master", "group"]
    for i, tok in enumerate(tokens):
        if tok.group(1):
            header = tok.group(1).lower()
            if header == "control":
                current = control = {}
            elif header in order:
                current = scopes[header] = {}
                for lower in order[order.index(header) + 1:]:
                    scopes[lower] = {}
            elif header == "region":
                current = {}
                regions.append((current, {k: dict(v) for k, v in scopes.items()}, control))
            else:
                current = {}
            continue
        end = tokens[i + 1].start() if i + 1 < len(tokens) else len(text)
        current[tok.group(2).lower()] = text[tok.end():end].strip()
    merged = []
    for reg, sc, ctl in regions:
        ops = {"_default_path": ctl.get("default_path", "")}
        for name in order:
            ops.update(sc[name])
        ops.update(reg)
        merged.append(ops)
    return merged


def _region(ops: dict, base: Path) -> Region:
    if "sample" not in ops:
        raise UserError("an SFZ region has no sample")
    path = (ops.get("_default_path", "") + ops["sample"]).replace("\\", "/")
    reg = Region(sample=(base / path))
    try:
        if "key" in ops:
            reg.lokey = reg.hikey = reg.pitch_keycenter = note_number(ops["key"])
        for name in _INT_KEYS:
            if name in ops:
                setattr(reg, name, note_number(ops[name]))
        for name in _INTS:
            if name in ops:
                setattr(reg, name, int(ops[name]))
        for name in _FLOATS:
            if name in ops:
                setattr(reg, name, float(ops[name]))
    except ValueError as exc:
        raise UserError(f"bad SFZ value: {exc}") from None
    reg.loop_mode = ops.get("loop_mode", "no_loop")
    reg.opcodes = {k: v for k, v in ops.items() if not k.startswith("_")}
    return reg


def read_sfz(path: str | os.PathLike) -> list[Region]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    return parse_sfz(text, path.parent)


def sfz_comment(path: str | os.PathLike) -> dict | None:
    """The metadata JSON an exported .sfz carries in its `// metadata:` comment line."""
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("// metadata: "):
            return json.loads(line[len("// metadata: "):])
    return None


# -- rendering ------------------------------------------------------------------------------------------------------
def _render_region(reg: Region, wave: np.ndarray, wave_rate: int, key: int, velocity: int, hold: int,
                   sample_rate: int) -> np.ndarray:
    ratio = 2.0 ** ((key + reg.transpose - reg.pitch_keycenter) / 12.0 + reg.tune / 1200.0) * wave_rate / sample_rate
    release = int(round(max(reg.ampeg_release, 0.001) * sample_rate))
    n = hold + release
    pos = np.arange(n, dtype=np.float64) * ratio
    looping = reg.loop_mode in ("loop_continuous", "loop_sustain") and reg.loop_start is not None \
        and reg.loop_end is not None and reg.loop_end > reg.loop_start
    if looping:
        a, length = reg.loop_start, reg.loop_end + 1 - reg.loop_start
        wrap = pos >= a + length
        if reg.loop_mode == "loop_sustain":
            wrap[hold:] = False  # plays on past the loop after the release (not used by our exports)
        pos = np.where(wrap, a + np.mod(pos - a, length), pos)
    valid = pos < len(wave) - 1
    if not looping:
        n = int(np.argmin(valid)) if not valid.all() else n
        pos, valid = pos[:n], valid[:n]
    i = np.floor(pos).astype(np.int64)
    frac = pos - i
    i = np.clip(i, 0, len(wave) - 2)
    out = (wave[i] * (1 - frac) + wave[i + 1] * frac) * valid
    env = np.ones(len(out))
    att = int(round(reg.ampeg_attack * sample_rate))
    if att > 0:
        k = min(att, len(env))
        env[:k] = np.arange(k) / att
    if len(env) > hold:
        level = env[hold - 1] if hold > 0 else 0.0
        env[hold:] = level * (1.0 - np.arange(1, len(env) - hold + 1) / release)
    out = out * np.clip(env, 0.0, 1.0) * (velocity / 127.0) ** 2 * 10 ** (reg.volume / 20)
    if reg.cutoff is not None and reg.cutoff < sample_rate / 2:
        from scipy.signal import butter, lfilter

        b, a_ = butter(2, reg.cutoff / (sample_rate / 2))
        out = lfilter(b, a_, out)
    return out


def render_sfz(regions: Sequence[Region], notes: Sequence, sample_rate: int, tail: float = 1.0) -> np.ndarray:
    """Play `notes` (objects with pitch, velocity, start, end in seconds, e.g. compose.midi.MidiNote) through the
    regions; float64 mono. Every region that matches a note's key and velocity sounds (SFZ semantics)."""
    import soundfile as sf

    cache: dict[Path, tuple[np.ndarray, int]] = {}

    def load(path: Path):
        if path not in cache:
            try:
                data, rate = sf.read(str(path), dtype="float64", always_2d=True)
            except (sf.LibsndfileError, RuntimeError, OSError) as exc:
                raise UserError(f"cannot read SFZ sample {path}: {exc}") from None
            cache[path] = (data.mean(axis=1), int(rate))
        return cache[path]

    end = max((note.end for note in notes), default=0.0)
    longest = max((r.ampeg_release for r in regions), default=0.0)
    out = np.zeros(int(np.ceil((end + max(tail, longest)) * sample_rate)) + 1)
    for note in notes:
        start = int(round(note.start * sample_rate))
        hold = max(1, int(round((note.end - note.start) * sample_rate)))
        for reg in regions:
            if reg.plays(int(note.pitch), int(note.velocity)):
                wave, rate = load(reg.sample)
                y = _render_region(reg, wave, rate, int(note.pitch), int(note.velocity), hold, sample_rate)
                y = y[: len(out) - start]
                out[start:start + len(y)] += y
    return out


# -- writing --------------------------------------------------------------------------------------------------------
#: The command name recorded in the sample folder's output marker (fileio.OUTPUT_MARKER).
OWNER = "instrument"


def check_samples_dir(samples_dir: Path, overwrite: bool = True) -> None:
    """Refuse, before any work, a sample folder that holds files another command or the user put there
    (fileio.check_output_folder: only an earlier export's WAVs are ever replaced)."""
    from ..fileio import check_output_folder

    check_output_folder(samples_dir, owner=OWNER, overwrite=overwrite,
                        hint="remove it or export under another name")


def sfz_text(inst, folder: str) -> str:
    """The .sfz text for a `compose.instrument.Instrument` whose WAVs are in `folder` beside it."""
    meta = json.dumps(inst.metadata, separators=(",", ":"))
    lines = [f"// GANSpaceSynth instrument {inst.name} (SoundFont twin: {inst.name}.sf2)",
             f"// metadata: {meta}", "", "<control>", f"default_path={folder}/", "", "<global>",
             "ampeg_attack=0.001", ""]
    for i, _layer, (lo, hi), st in inst.zones():
        note = inst.notes[i]
        ops = [f"sample={inst.sample_name(note)}.wav", f"pitch_keycenter={note.root}",
               f"lokey={note.key_range[0]}", f"hikey={note.key_range[1]}", f"lovel={max(1, lo)}", f"hivel={hi}"]
        if st["loop"]:
            ops += ["loop_mode=loop_continuous", f"loop_start={note.loop.start}", f"loop_end={note.loop.end - 1}"]
        else:
            ops.append("loop_mode=no_loop")
        ops.append(f"ampeg_release={st['release_s']:.4f}")
        if "cutoff_hz" in st:
            ops += ["fil_type=lpf_2p", f"cutoff={st['cutoff_hz']:.1f}"]
        lines.append("<region> " + " ".join(ops))
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def write_sfz(inst, sfz_file: Path, samples_dir: Path, overwrite: bool = True) -> Iterator[None]:
    """Write the WAVs into a temporary folder and the .sfz under a temporary name; both are renamed into place
    after the block (the caller writes its .sf2 inside it), and removed if anything fails."""
    import soundfile as sf

    from .sf2 import to_pcm16

    check_samples_dir(samples_dir, overwrite)
    with atomic_directory(samples_dir, overwrite=overwrite, owner=OWNER,
                          hint="remove it or export under another name") as tmp_dir:
        written = set()
        for note in inst.notes:
            fname = f"{inst.sample_name(note)}.wav"
            if fname in written:
                continue
            written.add(fname)
            sf.write(str(tmp_dir / fname), to_pcm16(note.data), inst.sample_rate, subtype="PCM_16", format="WAV")
        with atomic_path(sfz_file) as tmp:
            tmp.write_text(sfz_text(inst, samples_dir.name), encoding="utf-8")
            yield
