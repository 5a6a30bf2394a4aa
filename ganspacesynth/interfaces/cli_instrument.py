"""The `instrument` command: one timbre across the keyboard as a SoundFont 2 (and SFZ) any sampler plays."""

from __future__ import annotations

from pathlib import Path

import click

from ..choices import GANSPACE_MODES, INSTRUMENT_LOOPS as LOOP_CHOICES
from ..errors import UserError
from .options import (SEED, batch_size_option, device_option, load_latents, load_synth, model_file, model_option,
                      overwrite_option, parse_coeffs, parse_conditions, precision_option, with_file_conditions)


@click.command("instrument")
@model_option
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="SoundFont to write (NAME.sf2); with --sfz also NAME.sfz and NAME-samples/ beside it.")
@click.option("--seed", type=SEED, default=None, help="Seed of the timbre's latent z (default 0).")
@click.option("--z", "z_path", type=click.Path(path_type=Path), default=None,
              help="Latents file (.npy, e.g. notes/latents.npy from `generate` or `invert`: with conditions.json beside "
                   "it, its conditions unless given) holding the timbre's z.")
@click.option("--z-index", type=click.IntRange(0), default=0, show_default=True, help="Which latent of --z.")
@click.option("--components", "components_path", type=click.Path(path_type=Path), default=None,
              help="GANSpace components file made for this model (enables --coefficients).")
@click.option("--coefficients", default=None, help="Comma-separated component coefficients, e.g. '1.5,-0.5'.")
@click.option("--mode", type=click.Choice(GANSPACE_MODES), default="offset", show_default=True,
              help="How the coefficients make the timbre (as in `edit`): offset at the layer, noz (no z), latent.")
@click.option("--condition", "conditions", multiple=True, help="Other conditions, e.g. instrument_family=guitar.")
@click.option("--pitches", default=None, help="Keys to cover, e.g. 24-84 or 36,48-72 (default: the model's range).")
@click.option("--every", type=int, default=1, show_default=True,
              help="Generate every n-th key; the keys between play the nearest generated note, transposed.")
@click.option("--velocity-layers", type=int, default=1, show_default=True,
              help="1..4 velocity layers (a velocity-conditioned model makes each; else softer layers are darker).")
@click.option("--loop", type=click.Choice(LOOP_CHOICES), default="auto", show_default=True,
              help="auto: sustain loops where the note has a good one (else one-shot); none: one-shots only.")
@click.option("--sfz", is_flag=True, help="Also write NAME.sfz and its WAVs in NAME-samples/.")
@click.option("--name", default=None, help="Preset and sample name (default: the file name).")
@batch_size_option(8, "Notes per forward pass.")
@device_option
@precision_option
@overwrite_option("NAME.sf2 (and NAME.sfz)")
def instrument_cmd(model, out, seed, z_path, z_index, components_path, coefficients, mode, conditions, pitches,
                   every, velocity_layers, loop, sfz, name, batch_size, device, precision, overwrite) -> None:
    """Export one timbre as a playable instrument: a SoundFont 2 (one preset, one instrument, a note per root
    key with sustain loops or one-shots, loudness matched) for FluidSynth, MuseScore, DAWs, trackers and
    hardware samplers; --sfz adds an SFZ with its WAVs. The file's metadata names the model (fingerprint), the
    z or coefficients and the keys, so it can be made again. See docs/user-guide.md, section 10.

    \b
    Examples:
      ganspacesynth instrument --model model.safetensors --seed 3 --out pad.sf2
      ganspacesynth instrument --model m.safetensors --components comps.npz --coefficients 1.5,-0.5 \\
          --mode offset --pitches 36-84 --every 2 --velocity-layers 2 --sfz --out pad.sf2
      fluidsynth -ni -F song.wav pad.sf2 song.mid
    """
    from ..compose.instrument import InstrumentOptions, check_output, export_instrument

    if seed is not None and z_path is not None:
        raise UserError("give either --seed or --z, not both")
    if coefficients is not None and components_path is None:
        raise UserError("--coefficients need --components")
    # refuse what can be refused before loading the model: the files (and, with --sfz, NAME-samples/)
    check_output(out, overwrite=overwrite, sfz=sfz, inputs=[model_file(model), z_path, components_path])
    if sfz:
        from ..compose.instrument.files import check_sfz_output

        check_sfz_output(out)
    options = InstrumentOptions(mode=mode, pitches=pitches, every=every, velocity_layers=velocity_layers, loop=loop,
                                sfz=sfz, name=name, batch_size=batch_size)
    coeffs = parse_coeffs(coefficients, "--coefficients") if coefficients is not None else None
    synth = load_synth(model, device, precision)
    options.keyboard(synth.pitches)
    comps = None
    if components_path is not None:
        from ..ganspace.components import Components

        comps = Components.load(components_path, synth)
    z, conds = None, parse_conditions(conditions)
    if z_path is not None:  # the keys set the pitches; conditions.json beside --z the conditions not given
        z, _, rows = load_latents(synth, z_path, z_index)
        rows = with_file_conditions(conds, rows)
        conds = conds if rows is None else rows[0]
    result = export_instrument(synth, out, z=z, seed=0 if seed is None else seed, components=comps,
                               coefficients=coeffs, conditions=conds, options=options)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(result.describe())


def register(group: click.Group) -> None:
    group.add_command(instrument_cmd)
