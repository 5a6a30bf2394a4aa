"""Evaluation commands: train-classifier, evaluate, describe."""

from __future__ import annotations

from pathlib import Path

import click

from ..choices import GANSPACE_MODES
from ..errors import UserError
from .options import (MAX_COEFFICIENT, device_option, load_synth, model_file, model_option, overwrite_option,
                      parse_floats, precision_option, seed_option)


def _load_split(data: Path, split: str):
    from ..data.dataset import SpectrogramDataset

    return SpectrogramDataset(data, split)


@click.command("train-classifier")
@click.option("--data", type=click.Path(path_type=Path), required=True, help="Dataset folder (train and valid splits).")
@click.option("--head", "heads", multiple=True,
              help="Label to classify; repeat for several (default: pitch, plus instrument_family when labelled).")
@click.option("--steps", type=click.IntRange(1, 10_000_000), default=2000, show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Peak learning rate (one-cycle schedule).")
@seed_option
@device_option
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Classifier file to write (.safetensors).")
@overwrite_option("the classifier file")
def train_classifier_cmd(data, heads, steps, batch_size, lr, seed, device, out, overwrite) -> None:
    """Train the spectrogram classifier that `evaluate` uses (pitch and instrument-family heads) and report its
    accuracy on the dataset's held-out split.

    Example: ganspacesynth train-classifier --data data/gm --steps 2000 --out classifier.safetensors
    """
    import numpy as np
    import torch

    from ..evaluate.classifier import ClassifierConfig, heads_for_dataset, save_classifier, train_classifier
    from ..fileio import check_output_file
    from ..synth import default_device

    check_output_file(out, overwrite=overwrite)  # before any work
    train, valid = _load_split(data, "train"), _load_split(data, "valid")
    if not heads:
        heads = ["pitch"] + [n for n in ("instrument_family",)
                             if n in train.labels and np.any(train.labels[n] >= 0)]
    specs = heads_for_dataset(train.vocab, heads)
    for h in specs:
        if not np.any(train.labels[h.name] >= 0):
            raise UserError(f"no training note has a {h.name} label")
    config = ClassifierConfig(heads=specs, spectral=train.spectral)
    device = device or default_device()
    torch.manual_seed(seed)
    click.echo(f"training heads {', '.join(h.name for h in specs)} on {len(train)} notes, {steps} steps on {device}")
    clf = train_classifier(config, train.specs, {h.name: train.labels[h.name] for h in specs}, valid.specs,
                           {h.name: valid.labels[h.name] for h in specs}, steps=steps, batch_size=batch_size, lr=lr,
                           seed=seed, device=device, log=click.echo)
    clf.metrics["dataset"] = str(data)
    save_classifier(out, clf)
    for name, acc in clf.metrics["heldout_accuracy"].items():
        chance = clf.metrics["chance_accuracy"].get(name)
        click.echo(f"held-out {name} accuracy: {acc:.3f} on {len(valid)} notes (majority-class rate {chance:.3f})")
    click.echo(f"wrote {out}")


@click.command("evaluate")
@model_option
@click.option("--data", type=click.Path(path_type=Path), required=True, help="Dataset folder the model was trained on.")
@click.option("--classifier", type=click.Path(path_type=Path), required=True, help="File from `train-classifier`.")
@click.option("--count", type=click.IntRange(2, 100_000), default=1000, show_default=True, help="Notes to generate.")
@click.option("--reference-count", type=click.IntRange(2, 1_000_000), default=1000, show_default=True,
              help="Training notes for the FID and NDB reference.")
@click.option("--ndb-bins", type=click.IntRange(2, 1000), default=50, show_default=True)
@click.option("--no-f0", is_flag=True, help="Skip the f0-tracker pitch check (the slowest part after generation).")
@click.option("--timbre-count", type=click.IntRange(2, 10_000), default=30, show_default=True,
              help="Timbre diversity: generated notes per pitch, and real notes of as many instruments.")
@click.option("--timbre-pitch", "timbre_pitches", type=click.IntRange(0, 127), multiple=True,
              help="Pitch for timbre diversity and condition effects; repeat (default: 48 and 60; clamped to the "
                   "model's range).")
@click.option("--timbre-latents", type=click.IntRange(2, 1000), default=8, show_default=True,
              help="Condition effects: latents per pitch, each played with every class.")
@click.option("--no-timbre", is_flag=True,
              help="Skip timbre diversity and condition effects (the per-note timbre measures stay).")
@click.option("--batch-size", type=click.IntRange(1, 1024), default=16, show_default=True)
@seed_option
@device_option
@precision_option
@click.option("--overwrite", is_flag=True, help="Replace an existing report folder.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Report folder to write.")
def evaluate_cmd(model, data, classifier, count, reference_count, ndb_bins, no_f0, timbre_count, timbre_pitches,
                 timbre_latents, no_timbre, batch_size, seed, device, precision, overwrite, out) -> None:
    """Measure generated notes beside held-out real notes: pitch accuracy and entropy (classifier), an
    independent pitch check (pYIN f0), FID and Inception Score on classifier features, NDB, the accuracy
    of every condition, and timbre (diversity, condition effects, upper band, start clicks, level, pitch accuracy
    per octave band); writes metrics.json, report.md, plots and example notes.

    Example: ganspacesynth evaluate --model model.safetensors --data data/gm --classifier classifier.safetensors
    --count 1000 --out report/
    """
    from ..evaluate.classifier import load_classifier
    from ..evaluate.evaluation import evaluate_model
    from ..evaluate.pitch import F0Settings
    from ..evaluate.report import write_evaluation_report
    from ..evaluate.timbre import TimbreSettings, timbre_summary_line
    from ..fileio import atomic_directory, check_output_folder

    check_output_folder(out, owner="evaluate", overwrite=overwrite)  # before any work
    synth = load_synth(model, device, precision)
    clf = load_classifier(classifier)
    train, valid = _load_split(data, "train"), _load_split(data, "valid")
    metrics, sets = evaluate_model(synth, clf, train, valid, count=count, reference_count=reference_count, seed=seed,
                                   batch_size=batch_size, f0=None if no_f0 else F0Settings(), ndb_bins=ndb_bins,
                                   device=str(synth.device), log=click.echo,
                                   timbre=None if no_timbre else TimbreSettings(
                                       pitches=tuple(timbre_pitches) or TimbreSettings.pitches, count=timbre_count,
                                       latents=timbre_latents))
    header = {"model": str(synth.path), "model_fingerprint": synth.fingerprint, "dataset": str(data),
              "classifier": str(classifier), "classifier_heldout_accuracy": clf.metrics.get("heldout_accuracy"),
              "precision": precision}
    with atomic_directory(out, overwrite=overwrite, owner="evaluate") as tmp:
        write_evaluation_report(tmp, metrics, sets, synth.sample_rate, header)
    g, r = metrics["generated"], metrics["real"]
    click.echo(f"pitch accuracy {g['pitch_accuracy']:.3f} (real {r['pitch_accuracy']:.3f}), FID {g['fid']:.2f} "
               f"(real {r['fid']:.2f}), NDB {g['ndb']['ndb']}/{g['ndb']['bins']} (real {r['ndb']['ndb']})")
    click.echo(timbre_summary_line(metrics["timbre"]))
    click.echo(f"wrote {out}/report.md")


@click.command("describe")
@model_option
@click.option("--components", type=click.Path(path_type=Path), required=True, help="Components file from `ganspace`.")
@click.option("--top", type=click.IntRange(1, 10000), default=None,
              help="Directions to describe, at most the file's count [default: 16, or all when fewer].")
@click.option("--values", default="-2,-1,0,1,2", show_default=True, help="Coefficients to sweep (× stdev).")
@click.option("--pitch", "pitches", type=int, multiple=True, help="Pitch to sweep at; repeat (default: three).")
@click.option("--latents", type=click.IntRange(1, 100), default=2, show_default=True,
              help="Random latents per pitch (modes offset and latent).")
@click.option("--mode", type=click.Choice(GANSPACE_MODES), default="offset", show_default=True)
@seed_option
@click.option("--batch-size", type=click.IntRange(1, 1024), default=8, show_default=True)
@device_option
@precision_option
@click.option("--report", "report_dir", type=click.Path(path_type=Path), default=None,
              help="Also write plots and a Markdown table to this folder.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Components file to write with the descriptions (default: update --components in place, which "
                   "takes --overwrite).")
@overwrite_option(help="Replace an existing --out file, or without --out write the descriptions into the "
                       "--components file itself (never the package's bundled components).")
def describe_cmd(model, components, top, values, pitches, latents, mode, seed, batch_size, device, precision,
                 report_dir, out, overwrite) -> None:
    """Label GANSpace directions by what they do to the sound ("brighter", "longer sustain", "noisier"):
    sweep each coefficient at several pitches and latents, measure audio descriptors, keep those that change
    monotonically and audibly, and how often each moves the pitch (pYIN against the unedited note). Stores the
    labels in the components file for the CLI, Pd and the web page.

    Example: ganspacesynth describe --model model.safetensors --components comps.npz --top 16 --report describe/
    """
    from ..evaluate.describe import describe_components
    from ..ganspace.components import Components

    vals = parse_floats(values, "--values", limit=MAX_COEFFICIENT)
    if len(vals) < 3 or len(set(vals)) < 3:
        raise UserError("--values needs at least 3 different coefficients")
    from ..fileio import check_output_file, check_output_folder, same_file

    if report_dir is not None:
        check_output_folder(report_dir, owner="describe", overwrite=True)  # before any work
    if out is None or same_file(out, components):
        # in place: the input is the output, so only with --overwrite (never the package's bundled components)
        check_output_file(components, overwrite=overwrite,
                          hint="without --out, describe writes the descriptions into it: add --overwrite to allow "
                               "that, or give --out")
    else:
        check_output_file(out, overwrite=overwrite, inputs=[components, model_file(model)])  # before any work
    synth = load_synth(model, device, precision)
    comps = Components.load(components, synth=synth)
    for p in pitches:
        synth.check_pitch(p)
    if mode == "latent" and comps.z_comp is None:
        raise UserError("mode latent needs components with latent directions (z_comp)")
    if top is None:
        top = min(16, comps.n_components)
    elif top > comps.n_components:
        raise UserError(f"--top {top}: {components} holds {comps.n_components} components; give at most "
                        f"{comps.n_components}")
    contexts = (len(pitches) or 3) * (1 if mode == "noz" else latents)
    click.echo(f"describing {top} directions: {len(vals)} values × {contexts} contexts = {top * len(vals) * contexts} notes")
    descriptions = describe_components(synth, comps, top=top, values=vals, pitches=list(pitches) or None,
                                       latents=latents, seed=seed, mode=mode, batch_size=batch_size,
                                       progress=lambda i, n: click.echo(f"context {i}/{n} done"))
    for d in descriptions:
        d["mode"] = mode
    old = comps.descriptions or []
    merged = descriptions + old[len(descriptions):]  # keep earlier descriptions of components beyond --top
    target = out or comps.path
    comps.with_descriptions(merged).save(target)
    from ..evaluate.describe import drift_text

    for i, d in enumerate(descriptions):
        click.echo(f"{i:3d}  {d['label'] or '(no clear change)'}; {drift_text(d.get('pitch_drift'))}")
    if report_dir is not None:
        from ..evaluate.report import write_describe_report
        from ..fileio import atomic_directory

        header = {"model": str(synth.path), "components": str(components), "layer": comps.layer, "mode": mode}
        with atomic_directory(report_dir, overwrite=True, owner="describe") as tmp:
            write_describe_report(tmp, descriptions, comps.var_ratio[:max(top, min(len(comps.var_ratio), 32))], header)
        click.echo(f"wrote {report_dir}/describe.md")
    click.echo(f"wrote descriptions to {target}")


def register(group: click.Group) -> None:
    for cmd in (train_classifier_cmd, evaluate_cmd, describe_cmd):
        group.add_command(cmd)
