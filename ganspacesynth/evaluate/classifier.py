"""A spectrogram classifier with one head per label (pitch, instrument family, …), for evaluation.

GANSynth measured pitch accuracy, pitch entropy, FID and IS with a pitch classifier trained on NSynth;
this is the same idea, small enough to train on a CPU. Its penultimate layer (the embedding) gives the
features for FID; the pitch head's probabilities give IS and pitch entropy.

Files: safetensors with tensors `classifier.<param>` and metadata `format="ganspacesynth-classifier"`,
`format_version`, `config` (ClassifierConfig JSON) and `metrics` (held-out accuracies). No pickles.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..audio.spectral import SpectralConfig
from ..errors import UserError
from ..fileio import atomic_path, check_format
from ..conditions import ConditionSpec

FORMAT = "ganspacesynth-classifier"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ClassifierConfig:
    """Heads (categorical ConditionSpecs, pitch first) and the architecture; stored in every classifier file."""

    heads: tuple[ConditionSpec, ...]
    spectral: SpectralConfig = field(default_factory=SpectralConfig)
    channels: tuple[int, ...] = (16, 32, 64, 128, 128)
    time_pool: int = 4  # average this many frames first: pitch and family live in frequency, not fine time
    embedding: int = 128

    def __post_init__(self):
        heads = tuple(h if isinstance(h, ConditionSpec) else ConditionSpec(**h) for h in self.heads)
        object.__setattr__(self, "heads", heads)
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if isinstance(self.spectral, dict):
            object.__setattr__(self, "spectral", SpectralConfig.from_dict(self.spectral))
        if not heads:
            raise ValueError("a classifier needs at least one head")
        if any(h.kind != "categorical" for h in heads):
            raise ValueError("classifier heads must be categorical")

    def head(self, name: str) -> ConditionSpec | None:
        return next((h for h in self.heads if h.name == name), None)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["heads"] = [h.to_dict() for h in self.heads]
        d["spectral"] = self.spectral.to_dict()
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "ClassifierConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class SpectrogramClassifier(nn.Module):
    """Conv net on normalised spectrograms `[B, 2, T, F]` → embedding `[B, E]` → logits per head."""

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        in_ch = 2
        for out_ch in config.channels:
            layers += [nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.BatchNorm2d(out_ch), nn.LeakyReLU(0.2),
                       nn.MaxPool2d(2, ceil_mode=True)]
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        self.embed = nn.Sequential(nn.Linear(2 * in_ch, config.embedding), nn.LeakyReLU(0.2))
        self.heads = nn.ModuleDict({h.name: nn.Linear(config.embedding, h.size) for h in config.heads})

    def embedding(self, specs: torch.Tensor) -> torch.Tensor:
        x = nn.functional.avg_pool2d(specs, (self.config.time_pool, 1))
        x = self.features(x)
        x = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)  # global average + max over (T, F)
        return self.embed(x)

    def forward(self, specs: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        emb = self.embedding(specs)
        return emb, {name: head(emb) for name, head in self.heads.items()}


@dataclass
class Classifier:
    """A loaded classifier ready for inference, plus its held-out metrics."""

    net: SpectrogramClassifier
    metrics: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def config(self) -> ClassifierConfig:
        return self.net.config

    def predict(self, specs, batch_size: int = 64, device: str = "cpu") -> dict[str, np.ndarray]:
        """`{"embedding": [N, E], "<head>": probabilities [N, K]}` for spectrograms `[N, 2, T, F]` (array or ShardedArray)."""
        self.net.to(device).eval()
        out: dict[str, list[np.ndarray]] = {"embedding": []}
        n = len(specs)
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                x = _rows(specs, np.arange(start, min(n, start + batch_size)))
                emb, logits = self.net(torch.as_tensor(x, dtype=torch.float32, device=device))
                out["embedding"].append(emb.cpu().numpy())
                for name, lg in logits.items():
                    out.setdefault(name, []).append(torch.softmax(lg.float(), 1).cpu().numpy())
        return {k: np.concatenate(v) for k, v in out.items()}

    def check_spectral(self, spectral: SpectralConfig, what: str = "the model") -> None:
        if spectral.to_dict() != self.config.spectral.to_dict():
            raise UserError(f"the classifier was trained on another spectrogram shape/config than {what}")


def _rows(specs, idx: np.ndarray) -> np.ndarray:
    if isinstance(specs, (np.ndarray, torch.Tensor)):
        return np.asarray(specs[idx])
    return specs.take(idx)  # ShardedArray: gathers rows from memory-mapped shards


# -- training ------------------------------------------------------------------------------------
def evaluate_heads(classifier: Classifier, specs, labels: Mapping[str, np.ndarray], batch_size: int = 64,
                   device: str = "cpu") -> dict[str, float]:
    """Held-out accuracy per head (labels < 0 are unknown and skipped)."""
    from .metrics import accuracy

    probs = classifier.predict(specs, batch_size, device)
    return {h.name: accuracy(probs[h.name].argmax(1), labels[h.name]) for h in classifier.config.heads}


def train_classifier(config: ClassifierConfig, train_specs, train_labels: Mapping[str, np.ndarray],
                     valid_specs=None, valid_labels: Mapping[str, np.ndarray] | None = None, *, steps: int = 2000,
                     batch_size: int = 32, lr: float = 1e-3, seed: int = 0, device: str = "cpu",
                     log: Callable[[str], None] | None = None) -> Classifier:
    """Train with Adam on the sum of the heads' cross-entropies; labels are class indices (< 0: unknown).

    `train_specs` may be a numpy array or a memory-mapped ShardedArray (rows are gathered per batch).
    Held-out accuracies (when `valid_*` are given) go into `classifier.metrics`.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n = len(train_specs)
    if n < 2:
        raise UserError("need at least 2 training notes to train a classifier")
    net = SpectrogramClassifier(config).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    if steps >= 4:
        # At least two warm-up steps: torch's OneCycleLR divides by zero when 10 % of the run rounds to one.
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=max(0.1, 2 / steps))
    else:  # too short for a schedule
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    targets = {h.name: torch.as_tensor(np.asarray(train_labels[h.name]), dtype=torch.long) for h in config.heads}
    order, pos = rng.permutation(n), 0
    t0 = time.perf_counter()
    net.train()
    for step in range(steps):
        if pos + batch_size > n:
            order, pos = rng.permutation(n), 0
        idx = np.sort(order[pos : pos + batch_size])
        pos += batch_size
        x = torch.as_tensor(_rows(train_specs, idx), dtype=torch.float32, device=device)
        _, logits = net(x)
        loss = sum(nn.functional.cross_entropy(logits[name], t[idx].to(device), ignore_index=-1)
                   for name, t in targets.items() if (t[idx] >= 0).any())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if log and (step + 1) % max(1, steps // 10) == 0:
            log(f"step {step + 1}/{steps}  loss {loss.item():.3f}  ({time.perf_counter() - t0:.0f} s)")
    clf = Classifier(net.cpu().eval())
    clf.metrics = {"steps": steps, "batch_size": batch_size, "train_notes": n, "seed": seed}
    if valid_specs is not None and valid_labels is not None:
        acc = evaluate_heads(clf, valid_specs, valid_labels, device=device)
        clf.metrics["heldout_accuracy"] = acc
        clf.metrics["heldout_notes"] = len(valid_specs)
        clf.metrics["chance_accuracy"] = {
            name: float(np.bincount(np.asarray(valid_labels[name])[np.asarray(valid_labels[name]) >= 0]).max()
                        / max(1, int((np.asarray(valid_labels[name]) >= 0).sum())))
            for name in acc if (np.asarray(valid_labels[name]) >= 0).any()
        }
    return clf


# -- files ---------------------------------------------------------------------------------------
def save_classifier(path: str | os.PathLike, classifier: Classifier) -> Path:
    """Write a classifier file atomically (safetensors + JSON metadata)."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {f"classifier.{k}": v.detach().cpu().contiguous() for k, v in classifier.net.state_dict().items()}
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION),
                "config": json.dumps(classifier.config.to_dict(), sort_keys=True),
                "metrics": json.dumps(classifier.metrics, sort_keys=True)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def load_classifier(path: str | os.PathLike) -> Classifier:
    """Load and validate a classifier file (format, version, config, tensor names and shapes)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"classifier file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"cannot read classifier {path}: {exc}") from None
    check_format(meta, FORMAT, FORMAT_VERSION, "GANSpaceSynth classifier file", path)
    try:
        config = ClassifierConfig.from_dict(json.loads(meta["config"]))
        metrics = json.loads(meta.get("metrics", "{}"))
    except (KeyError, ValueError, TypeError) as exc:
        raise UserError(f"{path} has a broken classifier config: {exc}") from None
    net = SpectrogramClassifier(config)
    state = {k.removeprefix("classifier."): v for k, v in tensors.items()}
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    if expected != {k: tuple(v.shape) for k, v in state.items()}:
        raise UserError(f"{path}: classifier weights do not fit its config")
    net.load_state_dict(state)
    return Classifier(net.eval(), metrics, path)


def heads_for_dataset(vocab: Mapping[str, Sequence[str]], names: Sequence[str]) -> tuple[ConditionSpec, ...]:
    """Categorical head specs (pitch first) for the chosen label names of a dataset vocabulary."""
    names = sorted(dict.fromkeys(names), key=lambda n: n != "pitch")
    heads = []
    for name in names:
        if name not in vocab or name in ("qualities", "instrument"):
            usable = [n for n in vocab if n not in ("qualities", "instrument")]
            raise UserError(f"cannot train a {name!r} head on this dataset (categorical labels: {', '.join(usable)})")
        heads.append(ConditionSpec(name, "categorical", tuple(vocab[name])))
    return tuple(heads)
