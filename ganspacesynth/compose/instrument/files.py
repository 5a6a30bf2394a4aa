"""An instrument's files: NAME.sf2 (and NAME.sfz + NAME-samples/), checked before any work, written atomically,
and the metadata read back (see the package docstring, step 6)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ...errors import UserError
from ...fileio import check_format, check_output_file
from .model import Instrument

INSTRUMENT_FORMAT = "ganspacesynth-instrument"
INSTRUMENT_FORMAT_VERSION = 1


def check_output(out: str | os.PathLike, *, overwrite: bool = True, sfz: bool = False, inputs=()) -> Path:
    """The .sf2 path to write (with `sfz`, also NAME.sfz), refused before any generation if it cannot be written
    (fileio.check_output_file: not a folder, device or pipe, a folder that can hold it, not in the package, not
    one of `inputs`; an existing file only with `overwrite`: the CLI's --overwrite, True for the live session,
    which replaces its own exports by name)."""
    out = Path(out)
    if out.suffix.lower() != ".sf2":
        raise UserError(f"the output must be a .sf2 file, not {out}")
    for path in (out, sfz_paths(out)[0]) if sfz else (out,):
        check_output_file(path, overwrite=overwrite, inputs=inputs)
    return out


def sfz_paths(out: Path) -> tuple[Path, Path]:
    """NAME.sfz and its sample folder NAME-samples/ beside NAME.sf2."""
    return out.with_suffix(".sfz"), out.with_name(out.stem + "-samples")


def check_sfz_output(out: Path, overwrite_samples: bool = True) -> None:
    """Refuse, before any work, a NAME-samples/ folder holding files an earlier export did not write."""
    from ...audio.sfz import check_samples_dir

    check_samples_dir(sfz_paths(out)[1], overwrite_samples)


def write_instrument(inst: Instrument, out: str | os.PathLike, *, sfz: bool = False,
                     overwrite_samples: bool = True) -> Path:
    """Write NAME.sf2 (and NAME.sfz + NAME-samples/): each under a temporary name, renamed when complete; on any
    error nothing new is left behind."""
    from ...audio import sf2

    out = Path(out)
    soundfont = inst.soundfont()
    if not sfz:
        return sf2.write_sf2(out, soundfont)
    from ...audio.sfz import write_sfz

    try:
        with write_sfz(inst, *sfz_paths(out), overwrite=overwrite_samples):
            sf2.write_sf2(out, soundfont)  # inside: the .sfz and its WAVs appear with it or not at all
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out


def read_metadata(path: str | os.PathLike) -> dict:
    """The metadata an exported .sf2 carries (its INFO comment)."""
    from ...audio.sf2 import read_sf2

    parsed = read_sf2(path)
    try:
        meta = json.loads(parsed.info.get("ICMT", ""))
    except ValueError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != INSTRUMENT_FORMAT:
        raise UserError(f"{path} was not made by `ganspacesynth instrument` (no instrument metadata)")
    check_format(meta, INSTRUMENT_FORMAT, INSTRUMENT_FORMAT_VERSION, "GANSpaceSynth instrument", path)
    return meta
