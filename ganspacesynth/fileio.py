"""Atomic file writing: outputs appear complete or not at all."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    The temporary name keeps the final suffix so libraries that infer a format from it
    (soundfile, safetensors, numpy) still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            # mkstemp creates 0600 files; give outputs the permissions a plain open() would.
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def read_json(path: str | os.PathLike, kind: type = dict) -> Any:
    """Read a JSON file that must hold a `kind` (object by default), with one-line UserErrors for a missing,
    unreadable or malformed file."""
    from .errors import UserError

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise UserError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, kind):
        raise UserError(f"{path} does not hold a JSON {'object' if kind is dict else kind.__name__}")
    return data


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write JSON atomically (indented, UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Build a directory under a temporary name and move it into place when the block succeeds.

    On any error the partial directory is removed, so nothing half-written is left behind.
    """
    path = Path(path)
    if path.exists() and any(path.iterdir()) and not overwrite:
        from .errors import UserError

        raise UserError(f"output folder {path} already exists and is not empty")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700 folders; outputs should be shareable like mkdir's
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def load_npy(path: str | os.PathLike):
    """Load a .npy array without pickles, with a one-line error for missing or malformed files."""
    import numpy as np

    from .errors import UserError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(f"cannot read {path} as a .npy array: {exc}") from None
