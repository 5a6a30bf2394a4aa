"""The protocol every GANSpace estimator implements, and the `Decomposition` it returns.

`fit_components` (fit.py) drives any estimator through this class alone: it never asks which estimator it
has. Every estimator takes batches (`fit_partial`) and solves (`components`); what else it can do it declares
in class attributes, and the methods behind a capability it lacks refuse with `Unsupported`:

    streaming       memory independent of the sample count (fit notes large in-memory fits)
    shifted         `set_shift(point)` before the first batch: the sums are taken about that point, which
                    every process of a fit must share (fit: the mean of a pilot sample)
    checkpointable  `config(dim)`, `state_dict()` (numpy arrays named by `state_keys`), `load_state_dict(state)`:
                    a loaded state continues exactly as the saved one would (checkpoint.py writes it)
    reducible       `reduce(all_reduce)`: the statistics summed over torchrun processes, in place
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class Decomposition:
    comp: np.ndarray       # [K, D] float32, unit rows, sorted by decreasing variance
    stdev: np.ndarray      # [K] float32
    var_ratio: np.ndarray  # [K] float32, fraction of the total variance
    mean: np.ndarray       # [D] float32
    count: int
    info: dict = field(default_factory=dict)  # how it was solved (method, rounds, residual)


class Unsupported(NotImplementedError):
    """An estimator was asked for a capability its class does not declare."""


class Estimator:
    """Base class of the GANSpace estimators (see the module docstring)."""

    name: str = ""
    streaming: bool = True
    shifted: bool = False
    checkpointable: bool = False
    reducible: bool = False
    state_keys: tuple[str, ...] = ()

    def fit_partial(self, x: torch.Tensor | np.ndarray) -> None:
        """Take one batch of samples `[n, D]` (or `[n, ...]`, flattened per sample)."""
        raise NotImplementedError

    def fit(self, x: torch.Tensor | np.ndarray) -> None:
        self.fit_partial(x)

    def components(self) -> Decomposition:
        """Solve for the components of everything taken so far."""
        raise NotImplementedError

    def set_shift(self, shift) -> None:
        """The point the statistics are taken about; estimators that are not `shifted` need none and ignore it."""

    def config(self, dim: int) -> dict:
        """What the state depends on besides the data (a checkpoint records it and must match it)."""
        raise Unsupported(f"the {self.name} estimator cannot be checkpointed")

    def state_dict(self) -> dict[str, np.ndarray]:
        raise Unsupported(f"the {self.name} estimator cannot be checkpointed")

    def load_state_dict(self, state: dict) -> None:
        raise Unsupported(f"the {self.name} estimator cannot be checkpointed")

    def reduce(self, all_reduce) -> None:
        """Sum the statistics over processes with `all_reduce(list_of_tensors)` (in place)."""
        raise Unsupported(f"the {self.name} estimator cannot be split over processes")


def as_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float32).numpy()
    return np.asarray(x, dtype=np.float32)


def flip_signs(comp: np.ndarray) -> np.ndarray:
    """Make the largest-magnitude entry of each component positive (as scikit-learn's svd_flip): a
    deterministic sign, so results of different estimators and runs can be compared entry by entry.
    Flips `comp` in place and returns it."""
    idx = np.argmax(np.abs(comp), axis=1)
    signs = np.sign(comp[np.arange(comp.shape[0]), idx])
    signs[signs == 0] = 1
    comp *= signs[:, None].astype(comp.dtype)
    return comp


def decomposition(comp, variances, total_var, mean, count, info: dict | None = None) -> Decomposition:
    """A Decomposition from unsorted directions (rows of `comp`) and their variances: sorted by decreasing
    variance, unit rows, canonical signs, variance ratios of `total_var`."""
    comp = np.asarray(comp)
    # float32 eigenvectors (the full float32 solve of a wide layer: 256 MB) are finished in float32, without
    # float64 copies; everything else in float64.
    dtype = np.float32 if comp.dtype == np.float32 else np.float64
    variances = np.maximum(np.asarray(variances, np.float64), 0.0)
    order = np.argsort(-variances, kind="stable")
    if np.array_equal(order, np.arange(len(order))):
        comp = np.array(comp, dtype=dtype, order="C")  # a copy: the caller's array is left alone
    else:
        comp, variances = np.ascontiguousarray(comp[order], dtype=dtype), variances[order]
    comp /= np.maximum(np.linalg.norm(comp, axis=1, keepdims=True), 1e-30).astype(dtype)
    return Decomposition(
        comp=flip_signs(comp).astype(np.float32, copy=False),
        stdev=np.sqrt(variances).astype(np.float32),
        var_ratio=(variances / max(float(total_var), 1e-30)).astype(np.float32),
        mean=np.asarray(mean, np.float32).reshape(-1),
        count=int(count),
        info=dict(info or {}),
    )
