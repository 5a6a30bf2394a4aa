"""Generation speed of this tree against another checkout of the code, paired in one run.

A refactor must not change generation speed; this VM's speed drifts by up to 3x within minutes, so the two
trees are timed alternately (order reversed every cycle), each in its own process that imports ganspacesynth
from its tree, and the result is the median of the per-cycle ratios. Only the public API is used
(`Synth(config, generator)`, `Synth.generate`), so any two versions of it compare.

    mkdir -p /tmp/gss-before && git archive <commit> | tar -x -C /tmp/gss-before
    python benchmarks/generate_paired.py --old-tree /tmp/gss-before [--cycles 6] [--precision float32]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

HERE = Path(__file__).resolve().parents[1]

# Runs in a fresh process with the tree's package first on sys.path: best of `repeats` timed batches.
WORKER = r"""
import json, sys, time
tree, precision, batch, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sys.path.insert(0, tree)
import torch
import ganspacesynth
assert ganspacesynth.__file__.startswith(tree), ganspacesynth.__file__
from ganspacesynth.model.config import preset
from ganspacesynth.model.generator import Generator
from ganspacesynth.synth import Synth
torch.manual_seed(0)
cfg = preset("mel_prog_hires")
synth = Synth(cfg, Generator(cfg), device="cpu", precision=precision)
z = synth.random_z(batch, seed=0)
waves = synth.generate(z, pitch=60, batch_size=batch)  # warm-up (kernels compiled and cached)
best = float("inf")
for _ in range(repeats):
    t = time.perf_counter()
    waves = synth.generate(z, pitch=60, batch_size=batch)
    best = min(best, time.perf_counter() - t)
print(json.dumps({"s_per_note": best / batch, "checksum": float(abs(waves).sum())}))
"""


def run_tree(tree: Path, args) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    out = subprocess.run([sys.executable, "-c", WORKER, str(tree), args.precision, str(args.batch), str(args.repeats)],
                         env=env, capture_output=True, text=True, check=True, cwd="/")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old-tree", required=True, type=Path, help="source tree of the code to compare against")
    ap.add_argument("--cycles", type=int, default=6, help="alternating old/new pairs")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2, help="timed batches per process (best kept)")
    ap.add_argument("--precision", default="float32")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    trees = {"old": args.old_tree.resolve(), "new": HERE}
    times: dict[str, list[float]] = {"old": [], "new": []}
    checksums: dict[str, float] = {}
    for k in range(args.cycles):
        for name in ("old", "new") if k % 2 == 0 else ("new", "old"):
            r = run_tree(trees[name], args)
            times[name].append(r["s_per_note"])
            checksums[name] = r["checksum"]
        print(f"cycle {k + 1}: old {times['old'][-1]:.4f}, new {times['new'][-1]:.4f} s/note", flush=True)
    ratios = [n / o for n, o in zip(times["new"], times["old"])]
    summary = {"old_s_per_note_median": statistics.median(times["old"]),
               "new_s_per_note_median": statistics.median(times["new"]),
               "new_over_old_median": statistics.median(ratios), "new_over_old_range": [min(ratios), max(ratios)],
               "same_audio_checksum": checksums["old"] == checksums["new"]}
    print(f"new / old: median {summary['new_over_old_median']:.3f} (range {min(ratios):.3f}-{max(ratios):.3f}); "
          f"same audio checksum: {summary['same_audio_checksum']}")
    write_result("generate_paired", {"architecture": "mel_prog_hires (random weights)", "precision": args.precision,
                                     "batch": args.batch, "old_tree": str(args.old_tree), "times": times,
                                     "ratios": ratios, **summary}, args.out)


if __name__ == "__main__":
    from _common import run

    run(main)
