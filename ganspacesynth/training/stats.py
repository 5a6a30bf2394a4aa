"""What a run reports: a JSONL of statistics, TensorBoard scalars, spectrogram images and audio, and
a tqdm progress bar. Only the main process (rank 0) writes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

STATS_FILE = "stats.jsonl"
TENSORBOARD_DIR = "tensorboard"


def truncate_stats(run_dir: str | Path, last_step: int) -> None:
    """Drop JSONL lines logged after `last_step` (a resumed run logs those steps again)."""
    path = Path(run_dir) / STATS_FILE
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= last_step:
                kept.append(line)
        except ValueError:
            break  # a line cut short by a kill: everything after it is dropped too
    from ..fileio import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text("".join(k + "\n" for k in kept), encoding="utf-8")


def read_stats(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / STATS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def spectrogram_grid(specs: torch.Tensor) -> np.ndarray:
    """`[B, 2, T, F]` in [-1, 1] → one HW image in [0, 1]: notes side by side (magnitude above IF),
    frequency upwards, a white line between notes."""
    specs = specs.detach().float().cpu().clamp(-1, 1)
    tiles = []
    for spec in specs:
        mag = spec[0].T.flip(0)  # [F, T], low frequencies at the bottom
        ifreq = spec[1].T.flip(0)
        col = torch.cat([mag, torch.ones(1, mag.shape[1]), ifreq], dim=0)
        tiles += [col, torch.ones(col.shape[0], 1)]
    grid = torch.cat(tiles[:-1], dim=1)
    return ((grid + 1) / 2).clamp(0, 1).numpy()


class RunLog:
    """JSONL + TensorBoard + progress bar for one run (inactive on ranks other than 0)."""

    def __init__(self, run_dir: Path, *, active: bool, tensorboard: bool, progress: bool, total: float,
                 initial: float, unit: str):
        self.active = active
        self.run_dir = run_dir
        self.writer = None
        self.bar = None
        self._file = None
        if not active:
            return
        self._file = open(run_dir / STATS_FILE, "a", encoding="utf-8")
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / TENSORBOARD_DIR))
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit=unit, dynamic_ncols=True, smoothing=0.1,
                            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]")
        self._bar_pos = initial

    def scalars(self, record: Mapping[str, float]) -> None:
        """One JSONL line and the matching TensorBoard scalars (x axis: images shown)."""
        if not self.active:
            return
        self._file.write(json.dumps(dict(record)) + "\n")
        self._file.flush()
        if self.writer is not None:
            x = int(record["images"])
            for key, value in record.items():
                if key not in ("step", "images", "time", "wall") and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, x)

    def progress(self, position: float, stage: str, record: Mapping[str, float]) -> None:
        if self.bar is None:
            return
        self.bar.update(position - self._bar_pos)
        self._bar_pos = position
        self.bar.set_postfix_str(
            f"{stage}, img {int(record['images'])}, {record.get('images_per_s', 0):.0f} img/s, "
            + (f"D {record['loss/d']:.3f}, G {record['loss/g']:.3f}" if "loss/d" in record
               else f"L1 {record.get('loss/reconstruction', float('nan')):.4f}"), refresh=False)

    def samples(self, images: int, specs: torch.Tensor, waves: np.ndarray | None, sample_rate: int) -> None:
        """Spectrograms of the fixed latents (and their audio, one clip with short gaps)."""
        if self.writer is None:
            return
        self.writer.add_image("samples/spectrograms", spectrogram_grid(specs), images, dataformats="HW")
        if waves is not None:
            gap = np.zeros((waves.shape[0], sample_rate // 4), np.float32)
            clip = np.concatenate([waves, gap], axis=1).reshape(-1)
            peak = float(np.abs(clip).max()) or 1.0
            self.writer.add_audio("samples/audio", torch.from_numpy(clip / max(peak, 1.0)), images, sample_rate)
        self.writer.flush()

    def message(self, text: str) -> None:
        if not self.active:
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()
        if self._file is not None:
            self._file.close()


class Rate:
    """Images per second over the last logging interval."""

    def __init__(self, images: int):
        self.t0 = time.perf_counter()
        self.i0 = images

    def update(self, images: int) -> float:
        now = time.perf_counter()
        rate = (images - self.i0) / max(now - self.t0, 1e-9)
        self.t0, self.i0 = now, images
        return rate
