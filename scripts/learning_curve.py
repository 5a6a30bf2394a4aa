"""Learning curves of training runs: every checkpoint's EMA generator evaluated as `ganspacesynth evaluate`
does (classifier pitch accuracy, pYIN f0 agreement, no pitch found, instrument-family accuracy, FID, and the
timbre measures: diversity ratio, instrument-family effect ratio, median level, median start click, upper-band
share after 0.1 s), plotted against training minutes.

    python scripts/learning_curve.py --run cpu=runs/cpu --run no-profile=runs/b --data data/gm \
        --classifier classifier.safetensors --count 200 --out docs/reports/cpu-preset

A checkpoint taken before the last stage is heard as training saw it: the generator runs at that stage's
resolution and fade-in alpha and its output is upsampled (nearest) to full size, as Magenta's summaries do;
its untrained last blocks would only add noise. Results are cached in OUT/curve.json by run name and checkpoint step, so the script can be re-run while the
runs go on and evaluates only the new checkpoints (and cached ones recorded before the timbre measures existed).
Writes OUT/curve.json and OUT/learning_curve.png (two rows: the pitch and family scores, then timbre).
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
from ganspacesynth.evaluate.timbre import TimbreSettings, curve_summary
from ganspacesynth.fileio import read_json, write_json
from ganspacesynth.model.files import save_model
from ganspacesynth.model.prior import LatentPrior
from ganspacesynth.synth import Synth
from ganspacesynth.training.checkpoint import checkpoint_paths, load_checkpoint
from ganspacesynth.model.layers import upscale
from ganspacesynth.training.loop import read_run_config
from ganspacesynth.training.schedule import Schedule

#: (key, title, y range or None for automatic), one row of plots each.
METRICS = (("pitch_accuracy", "classifier pitch accuracy", (0, 1)), ("f0_accuracy", "f0-tracker agreement", (0, 1)),
           ("unvoiced", "no pitch found", (0, 1)), ("family_accuracy", "instrument-family accuracy", (0, 1)))
TIMBRE = (("diversity_ratio", "timbre diversity ratio (gen/real)", None),
          ("family_effect_ratio", "family effect ratio (gen/real)", None),
          ("level_dbfs", "median level (dBFS)", None), ("click_median", "median start click", None),
          ("upper_band_db", "upper-band share after 0.1 s (dB)", None))


def summarise(metrics: dict, which: str = "generated") -> dict:
    """The numbers a curve point records, for the generated notes or (which="real") the real ones."""
    g = metrics[which]
    return {"pitch_accuracy": g["pitch_accuracy"], "f0_accuracy": g["f0"]["f0_accuracy"],
            "unvoiced": g["f0"]["unvoiced"], "family_accuracy": g["condition_accuracy"].get("instrument_family"),
            "fid": g["fid"], "ndb": g["ndb"]["ndb"], **curve_summary(metrics["timbre"], which)}


def at_stage(synth: Synth, num_blocks: int, alpha: float) -> None:
    """Make `synth` generate at a progressive stage's resolution, upsampled to full size (through the reference
    network: the fast engine runs complete generators only)."""
    generator = synth.generator
    factor = synth.config.scale_base ** (synth.config.num_resolutions - num_blocks)

    def staged(z, cond=None, **kwargs):
        kwargs.update(num_blocks=num_blocks, alpha=alpha)
        return upscale(generator(z, cond, **kwargs), factor)

    synth.engine = staged


def checkpoint_prior(config, ckpt):
    """The prior the run exports with this checkpoint: its codes for `latent_prior: codes`, else None (N(0, I))."""
    rec = config.train.reconstruction
    if rec is None or rec.latent_prior != "codes":
        return None
    codes = ckpt.module_state("codes")["codes"].float().numpy()
    return LatentPrior(codes.shape[1], codes, rec.latent_prior_spread)


def evaluate_checkpoint(path: Path, run: Path, classifier, train_ds, valid_ds, count: int) -> tuple[dict, dict, dict]:
    config, _ = read_run_config(run)
    ckpt = load_checkpoint(path)
    with tempfile.TemporaryDirectory() as tmp:
        model = save_model(Path(tmp) / "model.safetensors", config.model, ckpt.module_state("ema"),
                           prior=checkpoint_prior(config, ckpt))
        synth = Synth.load(model)
        point = Schedule(config.train, config.model).at(ckpt.position.images, ckpt.position.seconds)
        if point.num_blocks < config.model.num_resolutions:
            at_stage(synth, point.num_blocks, point.alpha)
        metrics, _ = evaluate_model(synth, classifier, train_ds, valid_ds, count=count, reference_count=1000, seed=0,
                                    f0=F0Settings(), timbre=TimbreSettings())
    position = {"step": ckpt.position.step, "images": ckpt.position.images, "minutes": ckpt.position.seconds / 60,
                "stage": point.stage_id, "num_blocks": point.num_blocks, "alpha": point.alpha}
    return position, summarise(metrics), summarise(metrics, "real")


def plot(curve: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    rows = (METRICS, TIMBRE)
    cols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(4.2 * cols, 3.4 * len(rows)), squeeze=False)
    for row, metrics in zip(axes, rows):
        for ax in row[len(metrics):]:
            ax.set_visible(False)
        for ax, (key, title, ylim) in zip(row, metrics):
            for name, points in curve["runs"].items():
                points = sorted((p for p in points.values() if p.get(key) is not None), key=lambda p: p["minutes"])
                start = curve.get("offsets", {}).get(name, 0.0)  # a run started from another's checkpoint
                ax.plot([start + p["minutes"] for p in points], [p[key] for p in points], marker="o", label=name)
            real = curve.get("real", {}).get(key)
            if real is not None:
                ax.axhline(real, color="gray", linestyle="--", label="real held-out notes")
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("training minutes")
            if ylim is not None:
                ax.set_ylim(*ylim)
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(curve.get("title", "learning curves"), fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="append", required=True, metavar="NAME=RUN_DIR[@MINUTES]",
                    help="a run; @MINUTES plots it from that minute (a run started with --init-from another's "
                         "checkpoint taken at that time)")
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
        run, _, start = run.partition("@")
        if start:
            curve.setdefault("offsets", {})[name] = float(start)
        points = curve["runs"].setdefault(name, {})
        for path in checkpoint_paths(run):
            cached = points.get(str(int(path.stem.split("-")[-1])))
            if cached is not None and "diversity_ratio" in cached:
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
