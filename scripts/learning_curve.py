"""Learning curves of training runs: every checkpoint's EMA generator evaluated as `ganspacesynth evaluate`
does (classifier pitch accuracy, pYIN f0 agreement, no pitch found, instrument-family accuracy, FID),
plotted against training minutes.

    python scripts/learning_curve.py --run cpu=runs/cpu --run no-profile=runs/b --data data/gm \
        --classifier classifier.safetensors --count 200 --out docs/reports/cpu-preset

A checkpoint taken before the last stage is heard as training saw it: the generator runs at that stage's
resolution and fade-in alpha and its output is upsampled (nearest) to full size, as Magenta's summaries do;
its untrained last blocks would only add noise. Results are cached in OUT/curve.json by run name and checkpoint step, so the script can be re-run while the
runs go on and evaluates only the new checkpoints. Writes OUT/curve.json and OUT/learning_curve.png.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from ganspacesynth.data.dataset import SpectrogramDataset
from ganspacesynth.evaluate.classifier import load_classifier
from ganspacesynth.evaluate.evaluation import evaluate_model
from ganspacesynth.evaluate.pitch import F0Settings
from ganspacesynth.fileio import read_json, write_json
from ganspacesynth.model.files import save_model
from ganspacesynth.synth import Synth
from ganspacesynth.training.checkpoint import checkpoint_paths, load_checkpoint
from ganspacesynth.model.layers import upscale
from ganspacesynth.training.loop import read_run_config
from ganspacesynth.training.schedule import Schedule

METRICS = (("pitch_accuracy", "classifier pitch accuracy"), ("f0_accuracy", "f0-tracker agreement"),
           ("unvoiced", "no pitch found"), ("family_accuracy", "instrument-family accuracy"))


def summarise(metrics: dict) -> dict:
    g = metrics["generated"]
    return {"pitch_accuracy": g["pitch_accuracy"], "f0_accuracy": g["f0"]["f0_accuracy"],
            "unvoiced": g["f0"]["unvoiced"], "family_accuracy": g["condition_accuracy"].get("instrument_family"),
            "fid": g["fid"], "ndb": g["ndb"]["ndb"]}


def at_stage(synth: Synth, num_blocks: int, alpha: float) -> None:
    """Make `synth` generate at a progressive stage's resolution, upsampled to full size (through the reference
    network: the fast engine runs complete generators only)."""
    generator = synth.generator
    factor = synth.config.scale_base ** (synth.config.num_resolutions - num_blocks)

    def staged(z, cond=None, **kwargs):
        kwargs.update(num_blocks=num_blocks, alpha=alpha)
        return upscale(generator(z, cond, **kwargs), factor)

    synth.engine = staged


def evaluate_checkpoint(path: Path, run: Path, classifier, train_ds, valid_ds, count: int) -> tuple[dict, dict, dict]:
    config, _ = read_run_config(run)
    ckpt = load_checkpoint(path)
    with tempfile.TemporaryDirectory() as tmp:
        model = save_model(Path(tmp) / "model.safetensors", config.model, ckpt.module_state("ema"))
        synth = Synth.load(model)
        point = Schedule(config.train, config.model).at(ckpt.position.images, ckpt.position.seconds)
        if point.num_blocks < config.model.num_resolutions:
            at_stage(synth, point.num_blocks, point.alpha)
        metrics, _ = evaluate_model(synth, classifier, train_ds, valid_ds, count=count, reference_count=1000, seed=0,
                                    f0=F0Settings())
    position = {"step": ckpt.position.step, "images": ckpt.position.images, "minutes": ckpt.position.seconds / 60,
                "stage": point.stage_id, "num_blocks": point.num_blocks, "alpha": point.alpha}
    return position, summarise(metrics), {k: v for k, v in summarise({"generated": metrics["real"]}).items()}


def plot(curve: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(METRICS), figsize=(4.2 * len(METRICS), 3.4), squeeze=False)
    for ax, (key, title) in zip(axes[0], METRICS):
        for name, points in curve["runs"].items():
            points = sorted(points.values(), key=lambda p: p["minutes"])
            ax.plot([p["minutes"] for p in points], [p[key] for p in points], marker="o", label=name)
        real = curve.get("real", {}).get(key)
        if real is not None:
            ax.axhline(real, color="gray", linestyle="--", label="real held-out notes")
        ax.set_title(title)
        ax.set_xlabel("training minutes")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(curve.get("title", "learning curves"), fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="append", required=True, metavar="NAME=RUN_DIR")
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--classifier", required=True, type=Path)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--title", default=None)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.out / "curve.json"
    curve = read_json(cache) if cache.is_file() else {"runs": {}}
    curve["count"] = args.count
    if args.title:
        curve["title"] = args.title
    classifier = load_classifier(args.classifier)
    train_ds, valid_ds = SpectrogramDataset(args.data, "train"), SpectrogramDataset(args.data, "valid")
    for item in args.run:
        name, _, run = item.partition("=")
        points = curve["runs"].setdefault(name, {})
        for path in checkpoint_paths(run):
            if str(int(path.stem.split("-")[-1])) in points:
                continue
            position, generated, real = evaluate_checkpoint(path, Path(run), classifier, train_ds, valid_ds, args.count)
            points[str(position["step"])] = {**position, **generated}
            curve["real"] = real
            print(f"{name} step {position['step']} ({position['minutes']:.1f} min): "
                  + ", ".join(f"{k} {v:.3f}" for k, v in generated.items() if isinstance(v, float)), flush=True)
            write_json(cache, curve)
    write_json(cache, curve)
    plot(curve, args.out / "learning_curve.png")
    print(f"wrote {cache} and {args.out / 'learning_curve.png'}")


if __name__ == "__main__":
    sys.exit(main())
