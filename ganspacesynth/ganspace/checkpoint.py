"""Checkpoints of a streamed GANSpace fit: the estimator's state, so a long fit survives interruption.

A checkpoint is an `.npz` (numpy arrays only, loaded with allow_pickle=False) holding a `checkpointable`
estimator's `state_dict()` (protocol.py; for cov, sums.py: count, shift, Σ(x−c), Σ(x−c)(x−c)ᵀ, pending
rows of an unfinished float32 chunk, the same arrays from either backend) and a `meta` JSON string: format
name and version, the next sample index to process, and everything the state depends on (model fingerprint,
layer and shape, seed, pitches, conditions, sample count, batch size, process rank and count, and the
estimator's `config`: for cov product precision, chunk size and device). It is written atomically
(fileio.write_npz), so an interruption while writing leaves the previous checkpoint intact. Resuming checks
every one of those facts against the new run and continues from the next index: sample i depends only on
(seed, i), chunks end at the same rows, so the result equals an uninterrupted run's bit for bit. Under
torchrun each process writes its own file (`<name>.rank<r>-of-<n>.npz`).

For conv0 of mel_prog_hires a checkpoint is ~0.55 GB (the 8192 × 8192 float64 sums).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import UserError
from ..fileio import check_format, write_npz

CHECKPOINT_FORMAT = "ganspacesynth-ganspace-checkpoint"
CHECKPOINT_FORMAT_VERSION = 1


def checkpoint_file(path: str | os.PathLike, rank: int = 0, world_size: int = 1) -> Path:
    """The file of process `rank` (the path itself for a single process)."""
    path = Path(path)
    if world_size <= 1:
        return path
    name = path.name[:-4] if path.name.endswith(".npz") else path.name
    return path.with_name(f"{name}.rank{rank}-of-{world_size}.npz")


def default_checkpoint_path(out: str | os.PathLike) -> Path:
    """`comps.npz` → `comps.ckpt.npz`, beside the output."""
    out = Path(out)
    stem = out.name[:-4] if out.name.endswith(".npz") else out.name
    return out.with_name(f"{stem}.ckpt.npz")


def save_checkpoint(path: str | os.PathLike, estimator, run: dict, next_index: int) -> Path:
    """Write the estimator's state and the run's identity atomically."""
    meta = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_FORMAT_VERSION, "next_index": int(next_index),
            "run": run}
    return write_npz(path, dict(estimator.state_dict()), meta)


def load_checkpoint(path: str | os.PathLike, run: dict, keys: Sequence[str] | None = None) -> tuple[dict, int]:
    """(estimator state, next sample index) of a checkpoint made by a run identical to `run`; a UserError
    naming every difference otherwise. `keys`: the arrays the state must hold (the estimator's `state_keys`);
    None: every array of the file."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            is_zip = f.read(4) == b"PK\x03\x04"
    except OSError as exc:
        raise UserError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    if not is_zip:
        raise UserError(f"{path} is not a GANSpace checkpoint (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: np.array(data[name]) for name in data.files}
        meta = json.loads(str(arrays.pop("meta")))
    except (ValueError, OSError, EOFError, KeyError) as exc:
        raise UserError(f"{path} is not a readable GANSpace checkpoint ({exc})") from None
    check_format(meta, CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION, "GANSpace checkpoint", path, exact=True)
    keys = tuple(arrays) if keys is None else tuple(keys)
    missing = [n for n in keys if n not in arrays]
    if missing:
        raise UserError(f"checkpoint {path} is incomplete (missing {', '.join(missing)})")
    saved = meta.get("run") or {}
    expected = json.loads(json.dumps(run, sort_keys=True))  # compare JSON to JSON (tuples become lists)
    diffs = [f"{key} {saved.get(key)!r} (this run: {expected.get(key)!r})"
             for key in sorted(set(saved) | set(expected)) if saved.get(key) != expected.get(key)]
    if diffs:
        raise UserError(f"checkpoint {path} belongs to another fit: " + "; ".join(diffs)
                        + ". Run with the checkpoint's settings, or delete it to start over")
    next_index = int(meta.get("next_index", -1))
    start, stop = run.get("shard", [0, run.get("count", 0)])
    if not start <= next_index <= stop:
        raise UserError(f"checkpoint {path} is damaged (next sample {next_index} outside {start}..{stop})")
    return {name: arrays[name] for name in keys}, next_index


def remove_checkpoint(path: str | os.PathLike) -> None:
    try:
        Path(path).unlink()
    except FileNotFoundError:
        pass
