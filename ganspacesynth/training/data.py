"""What the training loop reads: real spectrograms and their labels, gathered by row index.

`TrainingData` is either an in-memory tensor (tests, small experiments) or a dataset folder read
with `data.dataset.SpectrogramDataset` and gathered by its `DeviceBatcher` (which keeps the split on
the GPU when it fits). The loop draws the row indices itself, from counters, so that a resumed run
and a multi-process run see exactly the rows a straight single-process run sees.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
import torch

from ..audio.spectral import SpectralConfig
from ..conditions import ConditionSpec
from ..errors import UserError


class TrainingData:
    """Spectrograms `[N, 2, T, F]` (normalised) with labels; `gather(rows)` returns a device batch.

    labels: name → int64 class indices `[N]` (categorical) or float multi-hot `[N, K]` (multi-label).
    vocab: name → class names (the model's condition classes).
    """

    def __init__(self, specs: torch.Tensor | None, labels: Mapping[str, torch.Tensor],
                 vocab: Mapping[str, Sequence[str]], spectral: SpectralConfig, *, batcher=None,
                 source: str = "memory"):
        self.specs = specs
        self.batcher = batcher
        self.labels = {k: torch.as_tensor(v) for k, v in labels.items()}
        self.vocab = {k: [str(c) for c in v] for k, v in vocab.items()}
        self.spectral = spectral
        self.source = source
        n = len(batcher.dataset) if batcher is not None else int(specs.shape[0])
        for name, value in self.labels.items():
            if value.shape[0] != n:
                raise ValueError(f"labels {name!r} have {value.shape[0]} rows for {n} spectrograms")
        self._n = n
        self.device = torch.device("cpu") if batcher is None else batcher.device

    def __len__(self) -> int:
        return self._n

    @classmethod
    def from_folder(cls, path: str | os.PathLike, conditions: Sequence[str], device: str | torch.device = "cpu",
                    split: str = "train", preload: bool | str = "auto", extra_labels: Sequence[str] = ()) -> "TrainingData":
        """A dataset folder's split, gathered on `device` (the whole split moved there when it fits).
        `extra_labels` are loaded too where the dataset has them (not conditions: e.g. `instrument` for
        the reconstruction objective's shared codes)."""
        from ..data.dataset import DeviceBatcher, SpectrogramDataset, condition_specs

        ds = SpectrogramDataset(path, split)
        condition_specs(ds, conditions)  # one-line error for conditions the dataset lacks
        batcher = DeviceBatcher(ds, device, preload=preload, conditions=list(conditions))
        labels = {}
        for name in list(conditions) + [n for n in extra_labels if n in ds.labels and n not in conditions]:
            t = torch.from_numpy(np.ascontiguousarray(ds.labels[name]))
            labels[name] = (t.float() if t.dim() == 2 else t.long()).to(batcher.device)
        vocab = {name: ds.vocab[name] for name in labels}
        return cls(None, labels, vocab, ds.spectral, batcher=batcher, source=str(path))

    def to(self, device: str | torch.device) -> "TrainingData":
        """Move in-memory data (and labels) to a device; folder data already live on theirs."""
        self.device = torch.device(device)
        self.labels = {k: v.to(self.device) for k, v in self.labels.items()}
        if self.specs is not None:
            self.specs = self.specs.to(self.device)
        return self

    def condition_specs(self, names: Sequence[str]) -> tuple[ConditionSpec, ...]:
        """ConditionSpecs (pitch first) for the named conditions, with this data's vocabularies."""
        names = list(dict.fromkeys(names))
        if "pitch" in names:
            names.remove("pitch")
            names.insert(0, "pitch")
        specs = []
        for name in names:
            if name not in self.labels:
                raise UserError(f"the data have no {name!r} labels (available: {', '.join(self.labels) or 'none'})")
            value = self.labels[name]
            kind = "multilabel" if value.dim() == 2 else "categorical"
            specs.append(ConditionSpec(name, kind, tuple(self.vocab[name])))
        return tuple(specs)

    def gather(self, rows: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """float32 spectrograms and labels of the given rows, on the data's device."""
        if self.batcher is not None:
            specs, _ = self.batcher.batch(rows.cpu().numpy())
        else:
            specs = self.specs.index_select(0, rows.to(self.specs.device)).float()
        return specs, self.labels_of(rows)

    @torch.no_grad()
    def label_mean_profiles(self, names: Sequence[str], chunk: int = 512) -> torch.Tensor:
        """`[N, 2, F]`: for every row, the time-averaged spectrogram averaged over all rows whose labels
        `names` (categorical conditions) equal this row's: the targets of the profile loss."""
        n = len(self)
        rows_profiles = []
        for start in range(0, n, chunk):
            specs, _ = self.gather(torch.arange(start, min(start + chunk, n)))
            rows_profiles.append(specs.float().mean(dim=2).cpu())
        profiles = torch.cat(rows_profiles)
        if not names:
            return profiles.mean(dim=0, keepdim=True).expand_as(profiles).to(self.device)
        keys = torch.stack([self.labels[name].cpu().long() for name in names], dim=1)
        _, group = torch.unique(keys, dim=0, return_inverse=True)
        sums = torch.zeros(int(group.max()) + 1, *profiles.shape[1:]).index_add_(0, group, profiles)
        counts = torch.bincount(group).clamp_min(1).to(profiles.dtype)
        return (sums / counts[:, None, None])[group].to(self.device)

    def labels_of(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        rows = rows.to(self.device)
        return {k: v.index_select(0, rows) for k, v in self.labels.items()}


def in_memory(specs: torch.Tensor | np.ndarray, labels: Mapping[str, Sequence], vocab: Mapping[str, Sequence[str]],
              spectral: SpectralConfig) -> TrainingData:
    """TrainingData from arrays: `labels[name]` are class indices (or multi-hot rows for multi-label)."""
    specs = torch.as_tensor(np.asarray(specs))
    tensors = {}
    for name, values in labels.items():
        t = torch.as_tensor(np.asarray(values))
        tensors[name] = t.float() if t.dim() == 2 else t.long()
    return TrainingData(specs, tensors, vocab, spectral)
