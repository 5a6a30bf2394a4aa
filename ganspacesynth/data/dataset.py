"""Reading a built dataset: memory-mapped spectrograms, labels, vocabularies, and fast batches.

```python
ds = SpectrogramDataset("data/gm", split="train")
ds.specs            # memmap-backed [N, 2, T, F] float16 (a ShardedArray)
ds.labels["pitch"]  # int64 class indices into ds.vocab["pitch"]; qualities: uint8 [N, K] multi-hot
for specs, labels in DeviceBatcher(ds, "cuda", batch_size=8, balanced=True, seed=0): ...
```
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from ..audio.spectral import SpectralConfig
from ..errors import UserError
from ..fileio import check_format, read_json
from ..runtime import keep_allocations_in_heap
from .shards import FORMAT, FORMAT_VERSION, MANIFEST

MULTILABEL = ("qualities",)
SPLITS = ("train", "valid", "all")


def read_manifest(path: str | os.PathLike) -> dict:
    """Load and check a dataset's manifest.json (format and version)."""
    path = Path(path)
    file = path / MANIFEST if path.is_dir() else path
    if not file.is_file():
        raise UserError(f"not a dataset folder (no {MANIFEST}): {path}")
    manifest = read_json(file)
    check_format(manifest, FORMAT, FORMAT_VERSION, "GANSpaceSynth dataset manifest", file)
    return manifest


class ShardedArray:
    """Rows of several memory-mapped .npy shards seen as one [N, ...] array (a contiguous row range).

    `take(indices)` gathers rows (sorted per shard for sequential reads) into one new array.
    """

    def __init__(self, arrays: Sequence[np.ndarray], start: int = 0, stop: int | None = None):
        self.arrays = list(arrays)
        self.offsets = np.cumsum([0] + [len(a) for a in self.arrays])
        self.start = start
        self.stop = int(self.offsets[-1]) if stop is None else stop
        self.shape = (self.stop - self.start, *self.arrays[0].shape[1:])
        self.dtype = self.arrays[0].dtype

    def __len__(self) -> int:
        return self.shape[0]

    def take(self, indices, out: np.ndarray | None = None) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError("row index out of range")
        glob = indices + self.start
        shard = np.searchsorted(self.offsets, glob, side="right") - 1
        out = np.empty((len(indices), *self.shape[1:]), self.dtype) if out is None else out
        for s in np.unique(shard):
            pos = np.nonzero(shard == s)[0]
            rows = glob[pos] - self.offsets[s]
            order = np.argsort(rows, kind="stable")
            out[pos[order]] = self.arrays[s][rows[order]]
        return out

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            if not -len(self) <= index < len(self):
                raise IndexError(index)
            return self.take([index % len(self)])[0]
        if isinstance(index, slice):
            return self.take(np.arange(len(self))[index])
        return self.take(index)

    def __array__(self, dtype=None, copy=None):
        arr = self.take(np.arange(len(self)))
        return arr if dtype is None else arr.astype(dtype)


class SpectrogramDataset(torch.utils.data.Dataset):
    """One split ('train', 'valid' or 'all') of a dataset folder built by `dataset make`/`soundfont`.

    `.specs` [N, 2, T, F] float16 and `.audio` [N, samples] int16 are memory-mapped; `.labels` maps each
    condition to int64 class indices (−1: unknown) or, for qualities, a uint8 [N, K] multi-hot array;
    `.vocab` maps each condition to its class list; `.examples` are the manifest entries.
    """

    def __init__(self, path: str | os.PathLike, split: str = "train"):
        if split not in SPLITS:
            raise UserError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
        self.path = Path(path)
        manifest = read_manifest(self.path)
        self.manifest = {k: v for k, v in manifest.items() if k != "examples"}
        self.spectral = SpectralConfig.from_dict(manifest["spectral"])
        self.vocab: dict[str, list[str]] = {k: list(v) for k, v in manifest["vocab"].items()}
        examples = manifest["examples"]
        rows = [i for i, e in enumerate(examples) if split == "all" or e["split"] == split]
        if not rows:
            raise UserError(f"dataset {self.path} has no {split!r} examples")
        if rows != list(range(rows[0], rows[-1] + 1)):  # pragma: no cover - guaranteed by the writer
            raise UserError(f"dataset {self.path}: the {split!r} split is not contiguous")
        start, stop = rows[0], rows[-1] + 1
        self.split = split
        self.examples = examples[start:stop]
        try:
            specs = [np.load(self.path / s["specs"], mmap_mode="r") for s in manifest["shards"]]
            audio = [np.load(self.path / s["audio"], mmap_mode="r") for s in manifest["shards"]]
        except (OSError, ValueError) as exc:
            raise UserError(f"dataset {self.path} has a missing or broken shard: {exc}") from None
        expected = (2, *self.spectral.shape)
        if any(tuple(a.shape[1:]) != expected for a in specs):
            raise UserError(f"dataset {self.path}: shards do not hold {expected} spectrograms")
        self.specs = ShardedArray(specs, start, stop)
        self.audio = ShardedArray(audio, start, stop)
        self.labels = self._labels()

    def _labels(self) -> dict[str, np.ndarray]:
        labels: dict[str, np.ndarray] = {}
        for name, classes in self.vocab.items():
            if name in MULTILABEL:
                arr = np.zeros((len(self.examples), len(classes)), np.uint8)
                index = {c: i for i, c in enumerate(classes)}
                for r, e in enumerate(self.examples):
                    for q in e.get(name) or []:
                        arr[r, index[q]] = 1
            else:
                index = {c: i for i, c in enumerate(classes)}
                arr = np.array([index.get(str(e.get(name)), -1) for e in self.examples], np.int64)
            labels[name] = arr
        return labels

    @property
    def pitches(self) -> np.ndarray:
        """MIDI pitch of every example."""
        return np.array([e["pitch"] for e in self.examples], np.int64)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        spec = torch.from_numpy(np.array(self.specs[i], dtype=np.float32))
        return spec, {k: torch.as_tensor(v[i]) for k, v in self.labels.items()}

    def check_spectral(self, spectral: SpectralConfig) -> None:
        """Raise UserError if a model's representation differs from the one this dataset was built with."""
        if spectral.to_dict() != self.spectral.to_dict():
            diff = {k: (v, spectral.to_dict().get(k)) for k, v in self.spectral.to_dict().items()
                    if spectral.to_dict().get(k) != v}
            raise UserError(f"dataset {self.path} was built with another spectral config (dataset, model): {diff}")


def condition_specs(dataset: SpectrogramDataset, names: Sequence[str] = ("pitch",)) -> list:
    """ConditionSpecs (pitch first) for the chosen conditions, with the dataset's vocabularies."""
    from ..conditions import ConditionSpec

    names = list(names)
    if "pitch" in names:
        names.remove("pitch")
        names.insert(0, "pitch")
    specs = []
    for name in names:
        if name not in dataset.vocab or name == "instrument":
            usable = [n for n in dataset.vocab if n != "instrument"]
            raise UserError(f"dataset has no {name!r} labels for every note (conditions available: {', '.join(usable)})")
        kind = "multilabel" if name in MULTILABEL else "categorical"
        specs.append(ConditionSpec(name, kind, tuple(dataset.vocab[name])))
    return specs


class DeviceBatcher:
    """Endless random batches `(specs [B, 2, T, F], {condition: labels})` on a torch device.

    `balanced=True` draws a pitch uniformly, then a note of that pitch (GANSynth's NSynth is not
    balanced: low and high pitches are rarer). `preload=True` copies the whole split to the device
    once ('auto': when it fits in a quarter of the device's free memory, or 2 GB of RAM on CPU);
    otherwise batches are gathered from the memory-mapped shards. Specs arrive as `dtype`.
    """

    def __init__(
        self,
        dataset: SpectrogramDataset,
        device: str | torch.device = "cpu",
        batch_size: int = 8,
        balanced: bool = False,
        seed: int = 0,
        preload: bool | str = "auto",
        dtype: torch.dtype = torch.float32,
        conditions: Sequence[str] | None = None,
    ):
        if batch_size < 1:
            raise UserError("batch size must be positive")
        self.dataset = dataset
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.balanced = balanced
        self.dtype = dtype
        self.rng = np.random.default_rng(seed)
        names = list(dataset.labels) if conditions is None else list(conditions)
        self._labels = {n: torch.from_numpy(np.ascontiguousarray(dataset.labels[n])).to(self.device)
                        for n in names if n != "instrument"}
        for n, t in self._labels.items():
            if n in MULTILABEL:
                self._labels[n] = t.float()
        pitch = dataset.labels["pitch"]
        self._by_pitch = [np.nonzero(pitch == p)[0] for p in np.unique(pitch)]
        nbytes = len(dataset) * int(np.prod(dataset.specs.shape[1:])) * 2
        if preload == "auto":
            preload = nbytes <= _free_bytes(self.device) // 4
        self.preloaded = bool(preload)
        self._specs: torch.Tensor | None = None
        self._host = dataset.specs
        if self.preloaded:
            whole = dataset.specs.take(np.arange(len(dataset)))
            if self.device.type == "cpu":
                self._host = ShardedArray([whole])  # in RAM: no page faults or disk reads later
            else:
                self._specs = torch.from_numpy(whole).to(self.device)  # float16: half the memory
        # Rows are gathered into this reused float16 buffer, then converted into a fresh tensor.
        self._buf = np.empty((batch_size, *dataset.specs.shape[1:]), np.float16)
        if self.device.type == "cpu":
            batch_bytes = self._buf.size * torch.finfo(dtype).bits // 8  # one batch as it is handed out
            keep_allocations_in_heap(4 * batch_bytes)
        self._order = np.zeros(0, np.int64)
        self._pos = 0

    def next_indices(self) -> np.ndarray:
        """Rows of the next random batch (an epoch-wise permutation, or pitch-balanced draws)."""
        b = self.batch_size
        if self.balanced:
            groups = self.rng.integers(0, len(self._by_pitch), b)
            return np.array([self._by_pitch[g][self.rng.integers(0, len(self._by_pitch[g]))] for g in groups])
        out = []
        while len(out) < b:  # epochs of a fresh permutation, so every note is seen once per epoch
            if self._pos >= len(self._order):
                self._order, self._pos = self.rng.permutation(len(self.dataset)), 0
            take = min(b - len(out), len(self._order) - self._pos)
            out.extend(self._order[self._pos : self._pos + take])
            self._pos += take
        return np.asarray(out, np.int64)

    def batch(self, indices: np.ndarray | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One batch (random, or of the given dataset rows)."""
        idx = self.next_indices() if indices is None else np.asarray(indices, np.int64)
        tidx = torch.from_numpy(idx).to(self.device)
        if self._specs is not None:
            specs = self._specs.index_select(0, tidx).to(self.dtype)
        else:
            buf = self._buf[: len(idx)] if len(idx) <= len(self._buf) else np.empty((len(idx), *self._buf.shape[1:]), np.float16)
            self._host.take(idx, out=buf)
            host = torch.from_numpy(buf)
            if self.device.type == "cpu":
                specs = host.to(self.dtype, copy=True)
            else:  # move float16 (half the bytes), convert on the device
                specs = host.to(self.device).to(self.dtype)
        return specs, {n: t[tidx] for n, t in self._labels.items()}

    def __iter__(self) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        while True:
            yield self.batch()


def _free_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        return 8 * 2**30  # preload on CPU up to 2 GB (a quarter of this)
    return 0
