"""Report pictures (matplotlib, Agg backend: no display needed). Each function writes one PNG atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..fileio import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def example_spectrograms(path: Path, rows: Sequence[tuple[str, np.ndarray, Sequence[str]]]) -> Path:
    """A grid of log-magnitude spectrograms: one row per set (title, specs [n, 2, T, F], per-note captions)."""
    plt = _pyplot()
    ncols = max(len(specs) for _, specs, _ in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(2.2 * ncols, 2.0 * len(rows)), squeeze=False)
    for r, (title, specs, captions) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(specs):
                ax.imshow(specs[c, 0].T, origin="lower", aspect="auto", cmap="magma", vmin=-1, vmax=1)
                ax.set_title(captions[c], fontsize=8)
            else:
                ax.axis("off")
        axes[r][0].set_ylabel(title, fontsize=9)
    fig.suptitle("log magnitude (mel frequency ↑, time →)", fontsize=9)
    return _save(fig, path)


def accuracy_per_pitch(path: Path, per_pitch: dict) -> Path:
    """Pitch accuracy (classifier and f0 tracker) per MIDI pitch, generated beside real held-out notes."""
    plt = _pyplot()
    pitches = per_pitch["pitches"]
    fig, ax = plt.subplots(figsize=(8, 3.2))
    styles = {"generated_classifier": ("C0", "-", "generated, classifier"),
              "real_classifier": ("C0", ":", "real, classifier"),
              "generated_f0": ("C1", "-", "generated, f0 tracker"),
              "real_f0": ("C1", ":", "real, f0 tracker")}
    for key, (color, ls, label) in styles.items():
        if key in per_pitch:
            y = [np.nan if v is None else v for v in per_pitch[key]]
            ax.plot(pitches, y, color=color, linestyle=ls, marker=".", label=label)
    ax.set_xlabel("MIDI pitch")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    return _save(fig, path)


def variance_explained(path: Path, var_ratio: np.ndarray, labels: Sequence[str] | None = None) -> Path:
    """Bar chart of each component's explained-variance ratio, with its label when known."""
    plt = _pyplot()
    k = len(var_ratio)
    fig, ax = plt.subplots(figsize=(max(5, 0.45 * k + 2), 3.2))
    ax.bar(np.arange(k), var_ratio, color="C0")
    ax.set_xlabel("component")
    ax.set_ylabel("explained variance ratio")
    ax.set_xticks(np.arange(k))
    if labels:
        ax.set_xticklabels([f"{i}: {lab}" if lab else str(i) for i, lab in enumerate(labels)], rotation=60,
                           ha="right", fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def descriptor_curves(path: Path, descriptions: Sequence[dict], descriptors: Sequence[str]) -> Path:
    """Descriptor (mean over contexts) against coefficient: one panel per descriptor, one line per direction."""
    plt = _pyplot()
    ncols = 4
    nrows = int(np.ceil(len(descriptors) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.6 * nrows), squeeze=False)
    cmap = plt.get_cmap("tab20")
    for n, name in enumerate(descriptors):
        ax = axes[n // ncols][n % ncols]
        for i, d in enumerate(descriptions):
            curve = [np.nan if v is None else v for v in d["stats"][name]["curve"]]
            kept = any(c["descriptor"] == name for c in d["changes"])
            ax.plot(d["values"], curve, color=cmap(i % 20), linewidth=2.0 if kept else 0.7,
                    alpha=1.0 if kept else 0.4, label=str(i))
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for n in range(len(descriptors), nrows * ncols):
        axes[n // ncols][n % ncols].axis("off")
    axes[0][0].legend(fontsize=6, ncol=2, title="component", title_fontsize=6)
    fig.supxlabel("coefficient (× stdev)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
