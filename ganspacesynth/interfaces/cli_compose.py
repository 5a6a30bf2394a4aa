"""Composing commands: hallucinate (random or GANSpace step sequences) and midi (play a MIDI file)."""

from __future__ import annotations

from pathlib import Path

import click

from ..choices import GANSPACE_MODES, LATENT_MODE, Z_EDIT_MODES
from ..errors import UserError
from .options import (SEED, apply_level, device_option, level_options, load_synth, model_file, model_option,
                      overwrite_option, parse_coeffs, parse_conditions, precision_option)

#: hallucinate options that describe the composition (refused with --from, which re-renders exactly).
_COMPOSITION = ("notes", "steps", "spacing", "start_trim", "attack", "sustain", "release", "pitch", "seed", "mode",
                "conditions")
#: parameter name -> option, where they differ.
_OPTION_NAMES = {"conditions": "--condition"}
#: option name -> score field, for options a --score steps file may also set.
_SCORE_FIELDS = {"steps": "interpolation_steps", "spacing": "spacing", "start_trim": "start_trim",
                 "attack": "attack", "sustain": "sustain", "release": "release", "seed": "seed", "mode": "mode", "pitch": "pitch"}

seed_or_random = click.option("--seed", type=SEED, default=None,
                              help="Random seed (default: a fresh one, printed and saved in the score).")
batch_option = click.option("--batch-size", type=click.IntRange(1, 1024), default=16, show_default=True,
                            help="Notes generated per batch.")
max_notes_option = click.option("--max-notes", type=click.IntRange(1), default=1024, show_default=True,
                                help="Refuse requests with more notes than this.")
max_seconds_option = click.option("--max-seconds", type=click.FloatRange(min=0, min_open=True), default=1200.0,
                                  show_default=True, help="Refuse pieces longer than this.")
no_progress_option = click.option("--no-progress", is_flag=True,
                                  help="No progress bar (there is none either when stderr is not a terminal).")


def _explicit(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE


def _progress(total_label: str, enabled: bool = True):
    from tqdm import tqdm

    bar = tqdm(total=None, unit="note", desc=total_label, leave=False, disable=None if enabled else True)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def _recorded_path(score: dict, what: str) -> Path | None:
    """The model or components file a score was made with, when it still exists (else None: the default)."""
    entry = score.get(what)
    recorded = entry.get("path") if isinstance(entry, dict) else None
    if isinstance(recorded, str) and Path(recorded).exists():
        click.echo(f"using the score's {what}: {recorded}", err=True)
        return Path(recorded)
    return None


def _guard(audio):
    """A mix kept at its notes' level (--no-normalize, --gain) is scaled down only if it would clip."""
    from ..audio.levels import peak_safe

    return peak_safe(audio)


def _load_components(path: Path | None, synth):
    if path is None:
        return None
    from ..ganspace.components import Components

    return Components.load(path, synth)


@click.command("hallucinate")
@model_option
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="WAV file to write; the score goes beside it as <name>.score.json.")
@click.option("--notes", type=click.IntRange(1), default=3, show_default=True, help="Random key points.")
@click.option("--steps", type=click.IntRange(0), default=3, show_default=True,
              help="Interpolation steps between consecutive key points.")
@click.option("--spacing", type=click.FloatRange(min=0, max=3600), default=None,
              help="Seconds between note onsets [default: 0.5 for 4 s notes, scaled to the model's note length].")
@click.option("--start-trim", type=click.FloatRange(min=0, max=3600), default=0.0, show_default=True,
              help="Seconds skipped at the start of each generated note.")
@click.option("--attack", type=click.FloatRange(min=0, max=3600), default=None,
              help="Linear attack, seconds [default: 0.5 for 4 s notes, scaled to the model's note length].")
@click.option("--sustain", type=click.FloatRange(min=0, max=3600), default=None,
              help="Sustain, seconds [default: 0.5 for 4 s notes, scaled to the model's note length].")
@click.option("--release", type=click.FloatRange(min=0, max=3600), default=None,
              help="Linear release, seconds [default: 0.5 for 4 s notes, scaled to the model's note length].")
@click.option("--pitch", type=click.IntRange(0, 127), default=None,
              help="MIDI pitch (with --score: for steps that give none) [default: 32, or the middle of the "
                   "model's range when 32 is outside it].")
@click.option("--condition", "conditions", multiple=True, metavar="NAME=VALUE",
              help="The model's other conditions for every note, e.g. instrument_family=guitar; repeat for several "
                   "(recorded in the score; with --score they override the file's, name by name).")
@seed_or_random
@click.option("--from", "from_score", type=click.Path(path_type=Path), default=None,
              help="Re-render a score written by an earlier run, exactly.")
@click.option("--components", type=click.Path(path_type=Path), default=None,
              help="GANSpace components file: makes the steps of --score coefficient vectors.")
@click.option("--score", "steps_score", type=click.Path(path_type=Path), default=None,
              help="Steps file (JSON, see docs/composing.md) for the GANSpace mode; options given override it.")
@click.option("--mode", type=click.Choice(GANSPACE_MODES), default=None,
              help="GANSpace synthesis mode (default: the steps file's, else noz).")
@batch_option
@max_notes_option
@max_seconds_option
@device_option
@precision_option
@no_progress_option
@level_options(mix=True)
@overwrite_option("the WAV file and its score")
@click.pass_context
def hallucinate_cmd(ctx, model, out, notes, steps, spacing, start_trim, attack, sustain, release, pitch, conditions,
                    seed, from_score, components, steps_score, mode, batch_size, max_notes, max_seconds, device,
                    precision, no_progress, gain_db, normalize, overwrite) -> None:
    """Compose a piece that wanders between key points: n random timbres with m slerp steps between each
    pair (n + (n-1)*m notes), each note enveloped, placed --spacing seconds apart and mixed.

    With --components and --score, the key points are GANSpace coefficient vectors (the Hallu step
    sequencer), lerped. A score JSON with every parameter, the key points and the seed is written next
    to the WAV; --from re-renders it exactly. A model conditioned on more than pitch plays every note with
    the --condition values given (the score keeps them).

    \b
    Examples:
      ganspacesynth hallucinate --model tiny.safetensors --notes 3 --steps 3 --spacing 0.3 \\
          --attack 0.05 --sustain 0.4 --release 0.3 --seed 1 --out piece.wav
      ganspacesynth hallucinate --model tiny.safetensors --from piece.score.json --out again.wav
      ganspacesynth hallucinate --model m.safetensors --components comps.npz --score steps.json --out hallu.wav
    """
    from ..audio.io import write_wav
    from ..compose import hallucinate as H

    from ..fileio import check_output_file

    inputs = [model_file(model), from_score, steps_score, components]
    for path in (out, H.score_path_for(out)):  # the WAV and its score: refused before any work
        check_output_file(path, overwrite=overwrite, inputs=inputs)
    limits = H.Limits(max_notes=max_notes, max_seconds=max_seconds)
    given_conditions = parse_conditions(conditions)  # names and classes are checked with the model, when planning
    given = {"spacing": spacing, "attack": attack, "sustain": sustain, "release": release, "pitch": pitch}

    def params_for(synth) -> "H.HallucinationSettings":
        """The options, with the ones not given scaled to the model's note length (and pitch range)."""
        fill = {} if synth is None else {**H.default_times(synth), "pitch": H.default_pitch(synth)}
        values = {k: (fill[k] if v is None else v) for k, v in given.items()}
        return H.HallucinationSettings.make(notes=notes, steps=steps, start_trim=start_trim, seed=seed, **values)

    if from_score is not None and steps_score is not None:
        raise UserError("give either --from (re-render a score) or --score (a steps file), not both")
    if from_score is not None:
        given_options = [_OPTION_NAMES.get(n, f"--{n.replace('_', '-')}") for n in _COMPOSITION if _explicit(ctx, n)]
        if given_options:
            raise UserError(f"--from re-renders a score exactly; do not combine it with {', '.join(given_options)}")
        score = H.load_score(from_score)
        # The score names the files it was made with; use them unless others are given.
        model = model if model is not None else _recorded_path(score, "model")
        components = components if components is not None else _recorded_path(score, "components")
    elif steps_score is not None:
        if _explicit(ctx, "notes"):
            raise UserError("with --score the number of key points is the number of steps in the file; drop --notes")
        score = H.load_score(steps_score)
        for name, key in _SCORE_FIELDS.items():
            if _explicit(ctx, name):
                score[key] = ctx.params[name]
        if given_conditions:
            recorded = score.get("conditions")
            score["conditions"] = {**(recorded if isinstance(recorded, dict) else {}), **given_conditions}
        if H.score_mode(score) == LATENT_MODE:
            if components is not None:
                raise UserError("--score holds latent-vector (z) steps, which need no components: drop --components")
        elif components is None:
            raise UserError("--score holds GANSpace coefficient steps: give the components file with --components")
    else:
        if components is not None:
            raise UserError("--components is for the GANSpace mode: give the coefficient steps with --score")
        if mode is not None:
            raise UserError("--mode is for the GANSpace mode (--components with --score)")
        # before loading anything: the note count always, the length when every time is given
        limits.check(H.note_count(notes, steps), params_for(None).seconds if None not in given.values() else 0.0)
        score = None

    synth = load_synth(model, device, precision)
    peak = apply_level(synth, gain_db, normalize, mix=True)
    defaults = params_for(synth)
    if score is None:
        plan = H.plan_latent(synth, defaults, limits, conditions=given_conditions)
    else:
        plan = H.plan_from_score(synth, score, limits, defaults)
        made_with = score.get("model")
        fp = made_with.get("fingerprint") if isinstance(made_with, dict) else None
        if fp and synth.fingerprint and fp != synth.fingerprint:
            click.echo(f"warning: the score was made with another model ({fp[:12]}…); the sound will differ", err=True)
    comps = None
    if plan.mode != LATENT_MODE:
        if components is None:
            raise UserError(f"this score is in GANSpace mode {plan.mode!r}: give its components file with --components")
        comps = _load_components(components, synth)
    audio, score_out = H.render(synth, plan, comps, batch_size=batch_size, peak=peak,
                                progress=_progress("hallucinate", not no_progress))
    write_wav(out, _guard(audio), synth.sample_rate)
    score_file = H.save_score(H.score_path_for(out), score_out)
    played_with = "".join(f", {k}={','.join(v) if isinstance(v, list) else v}"
                          for k, v in H.conditions_json(plan.conditions).items())
    click.echo(f"wrote {out} ({plan.count} notes, {len(audio) / synth.sample_rate:.2f} s, mode {plan.mode}, "
               f"seed {plan.params.seed}{played_with}) and {score_file}")


@click.command("midi")
@model_option
@click.argument("midi_file", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--secs-per-instrument", type=click.FloatRange(min=0, min_open=True), default=6.0, show_default=True,
              help="Seconds between random timbres; notes in between get their slerp.")
@seed_or_random
@click.option("--components", type=click.Path(path_type=Path), default=None,
              help="GANSpace components file, to edit every note with --coeffs.")
@click.option("--coeffs", default=None, help="Comma-separated component coefficients, e.g. '2,0,-1'.")
@click.option("--mode", type=click.Choice(Z_EDIT_MODES), default="offset", show_default=True,
              help="How --coeffs edit each note's timbre.")
@click.option("--include-drums", is_flag=True, help="Also play channel-10 (drum) notes as pitched notes.")
@batch_option
@max_notes_option
@max_seconds_option
@device_option
@precision_option
@no_progress_option
@level_options(mix=True)
@overwrite_option("OUT")
def midi_cmd(model, midi_file, out, secs_per_instrument, seed, components, coeffs, mode, include_drums, batch_size,
             max_notes, max_seconds, device, precision, no_progress, gain_db, normalize, overwrite) -> None:
    """Play a MIDI file with a model (Magenta GANSynth's MIDI mode) into a WAV file.

    A random timbre every --secs-per-instrument seconds; each note gets the slerp of the timbres around
    its start, a 10 ms attack, its length (capped by the model's note length), a 0.3 s release and its
    velocity. Notes outside the model's pitch range are skipped and counted.

    \b
    Example:
      ganspacesynth midi --model tiny.safetensors --seed 1 song.mid song.wav
    """
    from ..audio.io import write_wav
    from ..compose.hallucinate import Limits
    from ..compose.midi import MidiParams, plan_midi, read_midi, render_midi

    from ..fileio import check_output_file

    check_output_file(out, overwrite=overwrite, inputs=[midi_file, model_file(model), components])  # before any work
    if (components is None) != (coeffs is None):
        raise UserError("--components and --coeffs go together")
    coeff_values = parse_coeffs(coeffs) if coeffs is not None else None
    params = MidiParams(secs_per_instrument=secs_per_instrument, seed=seed, include_drums=include_drums)
    notes = read_midi(midi_file)
    if not notes:
        raise UserError(f"{midi_file} has no notes")
    synth = load_synth(model, device, precision)
    peak = apply_level(synth, gain_db, normalize, mix=True)
    plan = plan_midi(synth, notes, params, Limits(max_notes=max_notes, max_seconds=max_seconds))
    skipped = plan.skipped
    if skipped["out_of_range"]:
        click.echo(f"skipped {skipped['out_of_range']} of {len(notes)} notes outside the model's pitch range "
                   f"{synth.pitches[0]}..{synth.pitches[-1]}", err=True)
    if skipped["drums"]:
        click.echo(f"skipped {skipped['drums']} drum notes (channel 10; --include-drums plays them)", err=True)
    comps = _load_components(components, synth)
    audio = render_midi(synth, plan, comps, coeff_values, mode, batch_size=batch_size, peak=peak,
                        progress=_progress("midi", not no_progress))
    write_wav(out, _guard(audio), synth.sample_rate)
    click.echo(f"wrote {out} ({plan.count} notes, {len(plan.timbres)} timbres, "
               f"{len(audio) / synth.sample_rate:.2f} s, seed {plan.seed})")


def register(group: click.Group) -> None:
    for cmd in (hallucinate_cmd, midi_cmd):
        group.add_command(cmd)
