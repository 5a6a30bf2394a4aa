"""Cost of `ganspacesynth evaluate` for the full mel_prog_hires architecture, extrapolated to 1,000 notes.

Runs the real evaluation (`evaluate_model`) on `--notes` generated notes, as many held-out real notes and as many
training reference notes, with a random-weight generator and an untrained classifier (their cost does not depend
on training), in float32 and bfloat16 side by side. Every phase scales linearly with the note count except the
k-means fit of NDB, timed separately at 1,000 reference notes, and the final metrics (FID on 128-value features,
NDB scoring), which take the same time at any count; the estimate for 1,000 notes is
(total − k-means − metrics) × 1000 / notes + k-means(1000) + metrics.

    python benchmarks/evaluate_speed.py [--notes 24] [--threads 2] [--out bench-out/evaluate_speed.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from ganspacesynth.data.dataset import SpectrogramDataset  # noqa: E402
from ganspacesynth.data.labels import Note  # noqa: E402
from ganspacesynth.data.shards import build_dataset  # noqa: E402
from ganspacesynth.evaluate.classifier import Classifier, ClassifierConfig, SpectrogramClassifier  # noqa: E402
from ganspacesynth.evaluate.evaluation import evaluate_model  # noqa: E402
from ganspacesynth.evaluate.metrics import NDB  # noqa: E402
from ganspacesynth.evaluate.pitch import track_f0  # noqa: E402
from ganspacesynth.conditions import ConditionSpec  # noqa: E402
from ganspacesynth.model.config import pitch_condition, preset  # noqa: E402
from ganspacesynth.model.generator import Generator  # noqa: E402
from ganspacesynth.synth import Synth  # noqa: E402

TARGET_S = 600.0


def tone(pitch: int, seed: int, n: int, sr: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    w = sum(rng.uniform(0.2, 1) / h * np.sin(2 * np.pi * f0 * h * t) for h in range(1, 10) if f0 * h < sr / 2)
    return (0.3 * w / np.abs(w).max() * np.exp(-rng.uniform(0.5, 2) * t)).astype(np.float32)


def make_dataset(root: Path, notes: int, spectral) -> Path:
    """2 × notes full-length tones, half of them (whole instruments) held out."""
    items = []
    for i in range(2 * notes):
        p = 24 + (7 * i) % 61
        items.append(Note(id=f"n{i}", instrument=f"inst{i % 8}", pitch=p, velocity=100, instrument_family="keyboard",
                          source=("array", tone(p, i, spectral.audio_length, spectral.sample_rate))))
    out = root / "ds"
    build_dataset(out, items, spectral, built_from={"kind": "benchmark"}, valid_fraction=0.5, workers=1, progress=False)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notes", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = preset("mel_prog_hires")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        data = make_dataset(Path(tmp), args.notes, cfg.spectral)
        build_s = time.perf_counter() - t
        train, valid = SpectrogramDataset(data, "train"), SpectrogramDataset(data, "valid")
        torch.manual_seed(0)
        gen = Generator(cfg)
        heads = (pitch_condition(), ConditionSpec("instrument_family", "categorical", ("keyboard", "bass")))
        clf = Classifier(SpectrogramClassifier(ClassifierConfig(heads=heads, spectral=cfg.spectral)).eval())
        # One-off costs that do not grow with the note count: numba compiles pYIN's Viterbi on first use.
        track_f0(np.random.default_rng(0).normal(size=(2, cfg.spectral.audio_length)).astype(np.float32),
                 cfg.spectral.sample_rate)
        runs = {}
        for precision in ("bfloat16", "float32"):
            synth = Synth(cfg, gen, precision=precision)
            t, c = time.perf_counter(), time.process_time()
            metrics, _ = evaluate_model(synth, clf, train, valid, count=args.notes, reference_count=args.notes,
                                        batch_size=8)
            total, cpu = time.perf_counter() - t, time.process_time() - c
            runs[precision] = {"seconds": metrics["seconds"], "total_s": total, "cpu_s": cpu,
                               "real_notes": metrics["setup"]["real_count"]}
    # NDB's k-means at the real size: 1,000 reference notes of pooled (16 × 64) spectrograms, 50 bins.
    feats = np.random.default_rng(0).normal(size=(1000, 16 * 64)).astype(np.float32)
    t, c = time.perf_counter(), time.process_time()
    NDB(feats, bins=50).score(feats)
    kmeans_1000, kmeans_1000_cpu = time.perf_counter() - t, time.process_time() - c
    result = {"notes_measured": args.notes, "threads": args.threads, "dataset_build_s": build_s,
              "kmeans_1000_s": kmeans_1000, "kmeans_1000_cpu_s": kmeans_1000_cpu, "load_average": os.getloadavg(),
              "runs": runs}
    for precision, r in runs.items():
        fixed = r["seconds"]["ndb_fit"] + r["seconds"]["metrics"]  # do not grow with the note count (k-means: below)
        est = (r["total_s"] - fixed) * 1000 / args.notes + kmeans_1000 + r["seconds"]["metrics"]
        r["estimated_1000_s"] = est
        # CPU seconds do not grow when other programs share the cores (wall time does): with --threads 1 they
        # estimate the wall time on one otherwise idle core. k-means' share is taken at the real size.
        ratio = r["cpu_s"] / r["total_s"]
        r["estimated_1000_cpu_s"] = ((r["cpu_s"] - ratio * fixed) * 1000 / args.notes + kmeans_1000_cpu
                                     + ratio * r["seconds"]["metrics"])
        g = r["seconds"]["generated"]
        r["per_note_s"] = {k: v / args.notes for k, v in g.items()}
        r["per_note_s"]["real_f0"] = r["seconds"]["real"].get("f0", 0.0) / r["real_notes"]
        print(f"{precision:9s}: {r['total_s']:.1f} s for {args.notes} notes → ~{est:.0f} s for 1,000 "
              f"({'within' if est <= TARGET_S else 'OVER'} the {TARGET_S:.0f} s target); per note: "
              + ", ".join(f"{k} {v:.3f} s" for k, v in r["per_note_s"].items())
              + f"; CPU time for 1,000: ~{r['estimated_1000_cpu_s']:.0f} s")
    result["ratio_float32_over_bfloat16"] = runs["float32"]["estimated_1000_s"] / runs["bfloat16"]["estimated_1000_s"]
    print(f"float32 / bfloat16 time: {result['ratio_float32_over_bfloat16']:.2f}×; k-means (1,000 notes) "
          f"{kmeans_1000:.1f} s; load average {os.getloadavg()[0]:.1f}")
    write_result("evaluate_speed", result, args.out)


if __name__ == "__main__":
    from _common import run

    run(main)
