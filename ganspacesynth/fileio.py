"""Atomic file writing: outputs appear complete or not at all."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator


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
    check_file_kind(path)
    suffix = path.suffix if suffix is None else suffix
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem[:80]}.", suffix=".tmp" + suffix[:20], dir=path.parent)
    except OSError as exc:
        raise _write_error(path, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            # mkstemp creates 0600 files; give outputs the permissions a plain open() would.
            os.chmod(tmp_path, 0o666 & ~_umask())
        check_file_kind(path)  # it may have become a folder meanwhile
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


def check_format(meta: Any, fmt: str, version: int, what: str, source: str | os.PathLike | None = None, *,
                 exact: bool = False) -> int:
    """Check the `format` and `format_version` fields that every GANSpaceSynth file carries; return the version.

    `what` names the kind of file in messages ("GANSpaceSynth model file"), `source` the file itself. The version
    may be an int (JSON) or a string of one (safetensors metadata). Refuses, as one-line UserErrors, another
    format, a version that is not a whole number from 1, and one newer than `version` (with `exact`, any other).
    """
    from .errors import UserError

    if not isinstance(meta, dict) or meta.get("format") != fmt:
        found = meta.get("format") if isinstance(meta, dict) else None
        message = f"{source} is not a {what}" if source else f"not a {what}"
        raise UserError(message if found is None else f"{message} (format {str(found)[:60]!r})")
    raw = meta.get("format_version")
    subject = f"{source} has" if source else f"this {what} has"
    if isinstance(raw, bool) or not (isinstance(raw, int) or (isinstance(raw, str) and raw.strip().isdigit())):
        raise UserError(f"{subject} an invalid format version {raw!r}")
    got = int(raw)
    if got < 1:
        raise UserError(f"{subject} an invalid format version {raw!r}")
    if exact and got != version:
        raise UserError(f"{subject} {what} format version {got}; this GANSpaceSynth reads version {version}")
    if got > version:
        raise UserError(f"{subject} {what} format version {got}; this GANSpaceSynth reads up to {version}: "
                        f"please upgrade")
    return got


def write_npz(path: str | os.PathLike, arrays: dict, meta: dict) -> Path:
    """Arrays plus a JSON `meta` entry (no pickles) as one .npz, written atomically."""
    import numpy as np

    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:  # a file object: numpy must not append ".npz" to the name
            np.savez(f, **arrays, meta=np.array(json.dumps(meta, sort_keys=True)))
    return path


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write JSON atomically (indented, UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


#: The file in every output folder that records which command wrote which file: commands replace only
#: what they wrote themselves and refuse folders holding anything else (never deleting the user's files).
OUTPUT_MARKER = ".ganspacesynth-output.json"
OUTPUT_MARKER_FORMAT = "ganspacesynth-output"


def _write_error(path: Path, exc: OSError):
    from .errors import UserError

    return UserError(f"cannot write {path}: {exc.strerror or exc}")


def check_file_kind(path: str | os.PathLike) -> None:
    """Refuse an output file path that names a folder, a device (/dev/null), a pipe or a socket: replacing it
    would destroy it (or fail half-way). What `atomic_path` checks on every write; commands check more, before
    any work, with `check_output_file`."""
    from .errors import UserError

    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a file name to write")
    if path.exists() and not path.is_file():
        raise UserError(f"{path} is not a regular file (a device, pipe or socket); give a file name to write")


#: The installed package's folder: its bundled files (the default model and components) are never an output.
PACKAGE_DIR = Path(__file__).resolve().parent
#: How a command that has `--overwrite` tells the user to replace an existing file.
OVERWRITE_HINT = "add --overwrite to replace it"


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop, an unreadable parent
        return Path(os.path.abspath(path))


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: the same resolved path, or (hard links, bind mounts) the same inode."""
    if _resolved(a) == _resolved(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # either is missing: different files
        return False


def check_output_parent(path: str | os.PathLike) -> None:
    """Refuse an output (file or folder) whose folder cannot hold it, before any work, with the real reason: a
    parent that is a file (`--out notes.txt/x`), a read-only file system, no write permission. Checks the
    nearest folder that exists (the missing ones are created when writing)."""
    from .errors import UserError

    path = Path(path)
    parent = path.parent
    while not (parent.exists() or parent.is_symlink()) and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"cannot write {path}: {parent} is a file, not a folder")
    try:
        read_only = bool(os.statvfs(parent).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # no statvfs (Windows) or an unreadable mount: the write itself will say
        read_only = False
    if read_only:
        raise UserError(f"cannot write {path}: Read-only file system ({parent} is mounted read-only)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {path}: permission denied in {parent}")


def check_not_in_package(path: str | os.PathLike) -> None:
    """Refuse an output inside the installed ganspacesynth package: its bundled model and components are not
    the user's to replace (and an upgrade would silently undo it)."""
    from .errors import UserError

    real = _resolved(Path(path))
    if real == PACKAGE_DIR or PACKAGE_DIR in real.parents:
        raise UserError(f"{path} is inside the installed ganspacesynth package ({PACKAGE_DIR}), whose bundled "
                        f"files are never replaced; write it somewhere else")


def check_output_file(path: str | os.PathLike, *, overwrite: bool = False,
                      inputs: Iterable[str | os.PathLike | None] = (), hint: str = OVERWRITE_HINT) -> Path:
    """THE check of a file a command writes (its output and every side file), made before any work.

    Refuses, as one-line UserErrors naming the file: a folder, a device, pipe or socket; a path whose folder
    cannot hold it (`check_output_parent`); anything inside the installed package (its bundled files); one of
    the command's own `inputs` (the same file by path or inode, whatever `overwrite` says); and an existing file
    unless `overwrite` (the message ends with `hint`: how to allow it). Returns the path.
    """
    from .errors import UserError

    path = Path(path)
    check_file_kind(path)
    check_output_parent(path)
    check_not_in_package(path)
    for source in inputs:
        if source is not None and same_file(path, Path(source)):
            raise UserError(f"{path} is also this command's input; write the output to another file")
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise UserError(f"{path} already exists; {hint}")
    return path


def _entries(folder: Path, prefix: str = "") -> list[str]:
    """Every file (and empty folder, as 'name/') under `folder`, relative, without following links; the
    marker itself is left out."""
    out: list[str] = []
    with os.scandir(folder) as it:
        for entry in sorted(it, key=lambda e: e.name):
            rel = prefix + entry.name
            if rel == OUTPUT_MARKER:
                continue
            if entry.is_dir(follow_symlinks=False):
                inner = _entries(Path(entry.path), rel + "/")
                out.extend(inner or [rel + "/"])
            else:
                out.append(rel)
    return out


def read_output_marker(folder: str | os.PathLike) -> dict[str, str]:
    """{relative path: command} for the files GANSpaceSynth recorded writing into `folder` ({} if none)."""
    try:
        data = json.loads((Path(folder) / OUTPUT_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) and data.get("format") == OUTPUT_MARKER_FORMAT else None
    if not isinstance(files, dict):
        return {}
    return {str(k): str(v) for k, v in files.items()}


def _shown(names: list[str], limit: int = 3) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_output_folder(path: str | os.PathLike, *, owner: str = "ganspacesynth", overwrite: bool = False,
                        merge: tuple[str, ...] = (), hint: str = "use --overwrite to replace it") -> dict[str, str]:
    """Whether `owner` may (re)write the output folder `path`; returns the files of other commands it must keep.

    A missing or empty folder is fine. Otherwise every file in it must have been written by a GANSpaceSynth
    command (recorded in its OUTPUT_MARKER); files of `owner` are replaced only with `overwrite`, and files of
    the commands named in `merge` are kept (dataset chop and pad filling one clip folder).
    Anything else is refused with a one-line UserError naming the folder, so no user file is ever deleted.
    """
    from .errors import UserError

    path = Path(path)
    check_not_in_package(path)
    check_output_parent(path)
    if not (path.exists() or path.is_symlink()):
        return {}
    if not path.is_dir():
        raise UserError(f"{path} exists and is not a folder; give a new folder name for the output")
    try:
        real, cwd = path.resolve(), Path.cwd().resolve()
    except OSError:
        real, cwd = path.absolute(), Path(os.path.abspath(os.curdir))
    if real == cwd or real in cwd.parents:
        raise UserError(f"output folder {path} is the current folder or one above it; give a new folder name")
    try:
        entries = _entries(path)
    except OSError as exc:
        raise UserError(f"cannot read the output folder {path}: {exc.strerror or exc}") from None
    if not entries:
        return {}
    owned = read_output_marker(path)
    foreign = [e for e in entries if e not in owned]
    if foreign:
        raise UserError(f"output folder {path} already exists and is not empty: it holds files no "
                        f"GANSpaceSynth command wrote there ({_shown(foreign)}); choose another folder, or remove "
                        f"them yourself (nothing was changed)")
    others = {e: owned[e] for e in entries if owned[e] != owner}
    if any(o not in merge for o in others.values()):
        writers = ", ".join(sorted(set(others.values())))
        raise UserError(f"output folder {path} already exists and is not empty: it holds the output of "
                        f"`ganspacesynth {writers}`; choose another folder (nothing was changed)")
    if len(others) < len(entries) and not overwrite:
        raise UserError(f"output folder {path} already exists and is not empty: it holds the output of an "
                        f"earlier `ganspacesynth {owner}` ({hint})")
    return others


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, overwrite: bool = False, *, owner: str = "ganspacesynth",
                     merge: tuple[str, ...] = (), hint: str = "use --overwrite to replace it") -> Iterator[Path]:
    """Build a directory under a temporary name and move it into place when the block succeeds.

    On any error (or Ctrl-C) the partial directory is removed, so nothing half-written is left behind. An
    existing folder is replaced only under the rules of `check_output_folder` (only files `owner` wrote
    itself, never anything else); the files of the commands in `merge` are kept beside the new ones. The
    folder's OUTPUT_MARKER records who wrote what.
    """
    path = Path(path)
    keep = check_output_folder(path, owner=owner, overwrite=overwrite, merge=merge, hint=hint)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name[:80]}.", suffix=".tmp", dir=path.parent))
    except OSError as exc:
        raise _write_error(path, exc) from None
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700 folders; outputs should be shareable like mkdir's
    old: Path | None = None
    try:
        yield tmp
        from .errors import UserError

        written = _entries(tmp)
        clash = sorted(set(written) & set(keep))
        if clash:
            raise UserError(f"{path / clash[0]} was written by `ganspacesynth {keep[clash[0]]}`; write into "
                            f"another folder (nothing was changed)")
        keep = check_output_folder(path, owner=owner, overwrite=overwrite, merge=merge, hint=hint)  # again, now
        for rel in keep:
            src, dst = path / rel, tmp / rel
            if rel.endswith("/"):
                dst.mkdir(parents=True, exist_ok=True)
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dst, follow_symlinks=False)
            except OSError:
                shutil.copy2(src, dst, follow_symlinks=False)
        manifest = {rel: owner for rel in written}
        manifest.update(keep)
        (tmp / OUTPUT_MARKER).write_text(json.dumps({"format": OUTPUT_MARKER_FORMAT, "format_version": 1,
                                                     "files": dict(sorted(manifest.items()))}, indent=1) + "\n",
                                         encoding="utf-8")
        if path.exists():
            # Move the old folder (only files GANSpaceSynth wrote) aside, put the new one in place, then delete it.
            old = Path(tempfile.mkdtemp(prefix=f".{path.name[:80]}.", suffix=".old", dir=path.parent))
            os.replace(path, old / "folder")
            try:
                os.replace(tmp, path)
            except OSError:
                os.replace(old / "folder", path)
                raise
        else:
            os.replace(tmp, path)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            exc.add_note(f"the unfinished output {path} was removed")
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists():
            shutil.rmtree(old, ignore_errors=True)


def check_input_file(path: str | os.PathLike, what: str = "file") -> Path:
    """A file a command reads, with the real reason when it is not one: missing ("{what} not found: X"), a
    folder, or a device, pipe or socket (`--model /dev/zero` is not "not found"; reading a pipe could block)."""
    from .errors import UserError

    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a {what}")
    if path.exists():
        raise UserError(f"{path} is a device, pipe or socket, not a {what}")
    raise UserError(f"{what} not found: {path}")


def load_npy(path: str | os.PathLike):
    """Load a .npy array without pickles, with a one-line error for missing or malformed files."""
    import numpy as np

    from .errors import UserError

    path = check_input_file(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    if magic != NPY_MAGIC:
        # np.load would try to unpickle it and suggest allow_pickle=True: never the advice to give for a bad file
        raise UserError(f"{path} is not a .npy array file (it does not start with the .npy header)")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(f"cannot read {path} as a .npy array: {exc}") from None


#: The first bytes of every .npy file (and of no pickle).
NPY_MAGIC = b"\x93NUMPY"
