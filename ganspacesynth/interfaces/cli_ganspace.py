"""GANSpace commands: ganspace (find components), edit (one sound from coefficients), grid (2-D sweep)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click
import numpy as np

from ..choices import ESTIMATOR_NAMES, GANSPACE_MODES
from ..errors import UserError
from .options import (MAX_COEFFICIENT, SEED, BATCH_SIZE, apply_level, device_option, level_options, load_latents,
                      load_synth, model_file, model_option, overwrite_option, parse_coeffs, parse_conditions,
                      parse_floats, precision_option, with_file_conditions)

components_option = click.option(
    "--components", "components_path", type=click.Path(path_type=Path), default=None,
    help="Components file from `ganspacesynth ganspace` (default: the bundled one).",
)
mode_option = click.option(
    "--mode", type=click.Choice(GANSPACE_MODES), default="noz", show_default=True,
    help="noz: the pitch's mean activation + components; offset: add to the activation of a latent; latent: move "
         "the latent.",
)


class ComponentCount(click.ParamType):
    """A positive number of components, or 'all'."""

    name = "N|all"

    def convert(self, value, param, ctx):
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif str(value).strip().lower() == "all":
            return "all"
        else:
            try:
                number = int(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is neither a number nor 'all'", param, ctx)
        if number < 1:
            self.fail(f"{number} is not a positive number of components", param, ctx)
        return number


def _parse_pitches(text: str | None) -> str | list[int] | None:
    if text is None or text == "all":
        return text
    return [int(v) for v in parse_floats(text, "--pitches")]


def _note(synth, comps, mode: str, seed: int, z_path: Path | None, z_index: int, pitch, conditions):
    """The latent `[1, L]` (None in mode noz), pitch and conditions of the note to edit: a `--z` row plays at the
    pitch and conditions `conditions.json` beside it gives (`invert`'s), the flags given winning."""
    given = parse_conditions(conditions)
    if mode == "noz":
        return None, _default_pitch(comps, pitch), given or None
    if z_path is None:
        return synth.random_z(1, seed), _default_pitch(comps, pitch), given or None
    z, pitches, rows = load_latents(synth, z_path, z_index)
    if pitch is None and pitches is not None:
        pitch = pitches[0]
    rows = with_file_conditions(given, rows)
    return z, _default_pitch(comps, pitch), (given if rows is None else rows[0]) or None


def _load(model, components_path, device, precision):
    from ..ganspace.components import Components

    synth = load_synth(model, device, precision)
    return synth, Components.load(components_path, synth)


@click.command("ganspace")
@model_option
@click.option("--layer", default="conv0", show_default=True, help="Layer to analyse (see --list-layers).")
@click.option("--list-layers", is_flag=True, help="List the model's layers (shape, size, samples for a full PCA) and exit.")
@click.option("--random-z-count", type=click.IntRange(2, 100_000_000), default=8192, show_default=True, help="Random latents to sample.")
@click.option("--estimator", type=click.Choice(ESTIMATOR_NAMES), default="cov",
              show_default=True, help="cov: exact streamed PCA; ipca: scikit-learn IncrementalPCA (the original's).")
@click.option("--components", "n_components", type=ComponentCount(), default=None,
              help="Components to keep, or 'all' (default: 256, or the layer size if smaller; the top 256 of a "
                   "wide layer are found without a full eigendecomposition).")
@click.option("--pitch", type=int, default=None, help="MIDI pitch of every sample (default 32, as the original).")
@click.option("--pitches", "pitches_text", default=None, help="'all' or comma-separated pitches, cycled over the samples.")
@click.option("--condition", "conditions", multiple=True, help="Other conditions, e.g. instrument_family=guitar.")
@click.option("--batch-size", type=BATCH_SIZE, default=None,
              help="Latents per forward pass (bounds memory; default 1024, fewer for layers over 16k values).")
@click.option("--regression-samples", type=click.IntRange(0, 100_000_000), default=10000, show_default=True,
              help="Samples for the latent regression (z_comp); 0 skips it.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Random seed (same latents whatever the batch size).")
@device_option
@precision_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--checkpoint", "checkpoint_path", type=click.Path(path_type=Path), default=None,
              help="Checkpoint of the covariance sums (cov; default: OUT with .ckpt.npz), written atomically "
                   "every --checkpoint-every seconds and removed once OUT is written.")
@click.option("--checkpoint-every", type=click.FloatRange(0), default=300, show_default=True,
              help="Seconds between checkpoints; 0 writes none.")
@click.option("--resume", is_flag=True, help="Continue an interrupted fit from its checkpoint (same options).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Components file to write (.npz).")
@overwrite_option("the components file (and a checkpoint file that is not resumed)")
def ganspace_cmd(model, layer, list_layers, random_z_count, estimator, n_components, pitch, pitches_text, conditions,
                 batch_size, regression_samples, seed, device, precision, quiet, checkpoint_path, checkpoint_every,
                 resume, out, overwrite) -> None:
    """Find GANSpace directions: PCA of a layer's activations over many random latents.

    Run it under torchrun to split the sampling over processes (cov estimator).

    \b
    Examples:
      ganspacesynth ganspace --model tiny.safetensors --list-layers
      ganspacesynth ganspace --model tiny.safetensors --layer conv0 --random-z-count 8192 --out comps.npz
      torchrun --nproc-per-node 2 -m ganspacesynth ganspace --model m.safetensors --out comps.npz
      ganspacesynth ganspace --model m.safetensors --random-z-count 4194304 --out big.npz --resume
    """
    from ..training import distributed
    from ..ganspace.checkpoint import checkpoint_file, default_checkpoint_path, remove_checkpoint
    from ..ganspace.fit import fit_components, list_layers as layers_of

    if list_layers:
        synth = load_synth(model, "cpu")
        click.echo(f"{'layer':<10} {'shape (C, H, W)':<18} {'size':>8} {'min samples for full PCA':>26}")
        for info in layers_of(synth):
            click.echo(f"{info['name']:<10} {str(info['shape']):<18} {info['size']:>8} {info['min_samples_full_pca']:>26}")
        return
    if out is None:
        raise UserError("--out is required (or use --list-layers)")
    from ..fileio import check_output_file

    check_output_file(out, overwrite=overwrite, inputs=[model_file(model), checkpoint_path])  # before any work
    if pitch is not None and pitches_text is not None:
        raise UserError("give --pitch or --pitches, not both")
    if estimator != "cov" and (resume or checkpoint_path is not None):
        raise UserError("--checkpoint and --resume work with the cov estimator")
    if estimator == "cov" and checkpoint_path is None:
        checkpoint_path = default_checkpoint_path(out)
    if checkpoint_path is not None and not resume and checkpoint_every > 0:  # every process's file, on each
        size = int(os.environ.get("WORLD_SIZE", "1"))
        for rank in range(size):
            check_output_file(checkpoint_file(checkpoint_path, rank, size), overwrite=overwrite,
                              inputs=[model_file(model)], hint="add --overwrite to replace it (--resume continues "
                                                                "a fit from its own checkpoint)")
    world = distributed.setup(device)
    try:
        synth = load_synth(model, str(world.device), precision)
        start = time.perf_counter()
        comps = fit_components(
            synth, layer, random_z_count, estimator=estimator,
            n_components="default" if n_components is None else n_components,
            pitches=pitch if pitches_text is None else _parse_pitches(pitches_text),
            conditions=parse_conditions(conditions) or None, seed=seed, batch_size=batch_size,
            regression_samples=regression_samples, world=world, progress=not quiet,
            log=lambda msg: click.echo(msg, err=True), checkpoint=checkpoint_path,
            checkpoint_every=checkpoint_every, resume=resume,
        )
        if world.is_main:
            comps.save(out)
            top = ", ".join(f"{v:.3f}" for v in comps.var_ratio[:4])
            click.echo(f"wrote {out}: {comps.n_components} components of {layer} {comps.layer_shape} from "
                       f"{comps.meta['sample_count']} samples ({estimator}, {world.world_size} process(es), "
                       f"{time.perf_counter() - start:.1f} s); variance ratios {top} …")
        world.barrier()
        if checkpoint_path is not None:  # the components are written: the accumulator is no longer needed
            remove_checkpoint(checkpoint_file(checkpoint_path, world.rank, world.world_size))
    finally:
        distributed.teardown()


def synthesis_options(fn):
    """Pitch, mode, latent source, conditions and device: shared by `edit` and `grid`."""
    for opt in reversed([
        click.option("--pitch", type=int, default=None,
                     help="MIDI pitch (default: conditions.json's beside --z, else the components' first)."),
        mode_option,
        click.option("--seed", type=SEED, default=0, show_default=True,
                     help="Seed of the latent (offset and latent modes)."),
        click.option("--z", "z_path", type=click.Path(path_type=Path), default=None,
                     help="Latents .npy instead of a seed (with `invert`'s conditions.json beside it: the note's "
                          "pitch and conditions, unless given)."),
        click.option("--z-index", type=click.IntRange(0), default=0, show_default=True, help="Row of --z to use."),
        click.option("--condition", "conditions", multiple=True,
                     help="Other conditions, e.g. instrument_family=guitar."),
        device_option,
        precision_option,
    ]):
        fn = opt(fn)
    return fn


@click.command("edit")
@model_option
@components_option
@click.option("--coeffs", required=True, help='Coefficients, in standard deviations, e.g. "1.5,-0.5,0,0.8".')
@synthesis_options
@level_options()
@click.option("--out", type=click.Path(path_type=Path), required=True, help="WAV file to write.")
@overwrite_option("the WAV file")
def edit_cmd(model, components_path, coeffs, pitch, mode, seed, z_path, z_index, conditions, device, precision,
             gain_db, normalize, out, overwrite) -> None:
    """Synthesise one note from component coefficients (GANSpaceSynth's sliders).

    \b
    Examples:
      ganspacesynth edit --model m.safetensors --components comps.npz --coeffs "1.5,-0.5,0,0.8" --pitch 60 --out x.wav
      ganspacesynth edit --components comps.npz --coeffs 2 --mode offset --seed 3 --pitch 48 --out y.wav
    """
    from ..audio.io import write_wav
    from ..ganspace.edits import synthesize
    from ..audio.levels import peak_safe

    from ..fileio import check_output_file

    check_output_file(out, overwrite=overwrite, inputs=[model_file(model), components_path, z_path])  # before any work
    values = parse_coeffs(coeffs)
    if not values:
        raise UserError("--coeffs needs at least one number")
    synth, comps = _load(model, components_path, device, precision)
    apply_level(synth, gain_db, normalize)
    z, pitch, conds = _note(synth, comps, mode, seed, z_path, z_index, pitch, conditions)
    wave = synthesize(synth, comps, np.array(values), pitch, mode, z, conds)
    write_wav(out, peak_safe(wave)[0], synth.sample_rate)
    click.echo(f"wrote {out} ({mode}, pitch {pitch}, {len(values)} coefficients)")


def _default_pitch(comps, pitch):
    if pitch is not None:
        return pitch
    pitches = comps.meta.get("pitches") or []
    return pitches[0] if pitches else None


@click.command("grid")
@model_option
@components_option
@click.option("--x", "x", type=click.IntRange(0), default=0, show_default=True, help="Component along the horizontal axis.")
@click.option("--y", "y", type=click.IntRange(0), default=1, show_default=True, help="Component along the vertical axis.")
@click.option("--range", "value_range", type=click.FloatRange(-MAX_COEFFICIENT, MAX_COEFFICIENT), nargs=2,
              default=(-1.0, 1.0), show_default=True, help="Coefficient range (standard deviations).")
@click.option("--steps", type=click.IntRange(1, 64), default=5, show_default=True, help="Values per axis.")
@synthesis_options
@level_options()
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder (new or empty).")
def grid_cmd(model, components_path, x, y, value_range, steps, pitch, mode, seed, z_path, z_index, conditions,
             device, precision, gain_db, normalize, out) -> None:
    """Sweep two components on a grid: WAVs named wave_<x>,<y>.wav, grid.png (spectrograms) and grid.json.

    \b
    Example:
      ganspacesynth grid --model m.safetensors --components comps.npz --x 0 --y 1 --range -1 1 --steps 5 --pitch 32 --out grid/
    """
    from ..fileio import atomic_directory, check_output_folder
    from ..ganspace.grid import render_grid

    check_output_folder(out, owner="grid", overwrite=True)  # before any work
    synth, comps = _load(model, components_path, device, precision)
    apply_level(synth, gain_db, normalize)
    z, pitch, conds = _note(synth, comps, mode, seed, z_path, z_index, pitch, conditions)
    with atomic_directory(out, overwrite=True, owner="grid") as tmp:
        render_grid(synth, comps, tmp, x=x, y=y, lo=value_range[0], hi=value_range[1], steps=steps, pitch=pitch,
                    mode=mode, z=z, conditions=conds)
    click.echo(f"wrote {steps * steps} notes, grid.png and grid.json to {out}")


def register(group: click.Group) -> None:
    for cmd in (ganspace_cmd, edit_cmd, grid_cmd):
        group.add_command(cmd)
