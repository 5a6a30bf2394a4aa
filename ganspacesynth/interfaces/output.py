"""A live session's output folder: every result as an atomically written WAV, only the newest `keep` of them,
client saves in saved/, exported instruments in instruments/ and timbre presets in presets/.

A temporary folder (the servers' default) is removed on `close()`, except what clients saved or exported there.
"""

from __future__ import annotations

import itertools
import os
import shutil
import threading
from pathlib import Path

import numpy as np

from ..errors import UserError

#: Names clients may give exported instruments: a plain file name, never a path (written to <out_dir>/instruments/).
INSTRUMENT_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
MAX_INSTRUMENT_NAME = 64
#: Sub-folders that hold what clients asked to keep.
KEPT_FOLDERS = ("saved", "instruments", "presets")


class OutputFolder:
    """Where results go. Thread-safe."""

    def __init__(self, path: os.PathLike, keep: int = 200, temporary: bool = False):
        self.path = Path(path).resolve()
        self.path.mkdir(parents=True, exist_ok=True)
        self.keep = max(1, int(keep))
        self.temporary = temporary
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._files: list[Path] = []

    def write(self, wave: np.ndarray, kind: str, sample_rate: int) -> Path:
        """`<kind>-NNNNNN.wav`, written atomically and readable by other users (Pd may run as another one); the
        oldest results beyond `keep` are deleted."""
        from ..audio.io import write_wav

        path = self.path / f"{kind}-{next(self._counter):06d}.wav"
        write_wav(path, wave, sample_rate)
        os.chmod(path, 0o644)  # mkstemp made it 0600
        with self._lock:
            self._files.append(path)
            while len(self._files) > self.keep:
                self._files.pop(0).unlink(missing_ok=True)
        return path

    def instrument_path(self, name) -> Path:
        """`<out_dir>/instruments/<name>.sf2` for a plain name (letters, digits, '_', '-', '.'; no folders)."""
        return self._named(name, "instrument", "instruments", ".sf2")

    def preset_path(self, name) -> Path:
        """`<out_dir>/presets/<name>.json` for a plain name (as for instruments)."""
        return self._named(name, "preset", "presets", ".json")

    def _named(self, name, what: str, folder: str, suffix: str) -> Path:
        if not isinstance(name, str):
            raise UserError(f"a{'n' if what[0] in 'aeiou' else ''} {what} needs a name")
        stem = name[:-len(suffix)] if name.lower().endswith(suffix) else name
        if not stem or len(stem) > MAX_INSTRUMENT_NAME or stem[0] in ".-" or ".." in stem \
                or not set(stem) <= INSTRUMENT_NAME_CHARS:
            raise UserError(f"a{'n' if what[0] in 'aeiou' else ''} {what} name must be a plain file name of at most "
                            f"{MAX_INSTRUMENT_NAME} letters, digits, '_', '-' or '.' (no folders), not {name[:80]!r}")
        return self.path / folder / f"{stem}{suffix}"

    def save_path(self, name) -> Path:
        """`<out_dir>/saved/<name>.wav` for a plain name: no folders, no control characters, and short enough
        for the file system with the score's name beside it."""
        if not isinstance(name, str) or not name or any(c in name for c in "/\\") or name.startswith("."):
            raise UserError("save needs a plain file name (no folders)")
        if any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise UserError("a save name may not contain control characters (tabs, newlines, …)")
        stem = name[:-4] if name.endswith(".wav") else name
        try:
            size = len((stem + ".score.json").encode("utf-8"))
        except UnicodeEncodeError:
            raise UserError("a save name must be valid text (UTF-8)") from None
        try:
            limit = os.pathconf(self.path, "PC_NAME_MAX")
        except (OSError, ValueError):
            limit = 255
        if size > limit:
            raise UserError(f"save name too long: {size - len('.score.json')} bytes; this file system allows "
                            f"{limit - len('.score.json')} (file names of at most {limit} bytes with '.score.json')")
        return self.path / "saved" / (stem + ".wav")

    def save(self, source: Path, name: str, overwrite: bool = False, score: dict | None = None) -> Path:
        """Copy a result to `saved/<name>.wav` (its score beside it); an existing save is replaced only with
        `overwrite`."""
        from ..compose.hallucinate import save_score, score_path_for
        from ..fileio import atomic_path

        dest = self.save_path(name)
        if not overwrite and (dest.exists() or score_path_for(dest).exists()):
            raise UserError(f"{dest.name} is already saved; send /save {dest.stem} overwrite to replace it")
        with atomic_path(dest) as tmp:
            shutil.copyfile(source, tmp)
        os.chmod(dest, 0o644)
        if score is not None:
            save_score(score_path_for(dest), score)
        return dest

    def close(self) -> list[Path]:
        """Remove a temporary folder, except what clients saved or exported there (returned, so the server can
        say where it is). A folder the user named is left as it is."""
        if not self.temporary or not self.path.is_dir():
            return []
        kept = [self.path / d for d in KEPT_FOLDERS if (self.path / d).is_dir() and any((self.path / d).iterdir())]
        if not kept:
            shutil.rmtree(self.path, ignore_errors=True)
            return []
        for entry in self.path.iterdir():
            if entry not in kept:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
        return kept
