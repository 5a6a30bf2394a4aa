"""The `invert` command: find the latents of recorded notes (ganspacesynth/invert/) and write them out."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import UserError
from .options import (SEED, device_option, load_synth, model_option, parse_conditions, precision_option,
                      progress_bar)


@click.command("invert")
@click.argument("sounds", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="SOUND...")
@model_option
@click.option("--components", "components_path", type=click.Path(path_type=Path), default=None,
              help="Components file whose coefficients to give each note (default: the bundled one with the "
                   "bundled model; none for other models).")
@click.option("--pitch", type=int, default=None, help="MIDI pitch of every note (default: pYIN finds each note's).")
@click.option("--condition", "conditions", multiple=True,
              help="Other conditions by name, e.g. instrument_family=guitar (default: the closest class is searched).")
@click.option("--start", type=click.FloatRange(0, 86400), default=None,
              help="Seconds into each file where the one note to invert starts (default: a note per onset).")
@click.option("--length", type=click.FloatRange(0, 86400), default=None,
              help="Seconds of the note from --start (default and at most: the model's note length).")
@click.option("--restarts", type=click.IntRange(1, 64), default=None, help="Latents refined at once [default: 4].")
@click.option("--steps", type=click.IntRange(1, 10000), default=None, help="Gradient-descent steps [default: 50].")
@click.option("--baseline", type=click.IntRange(0, 100000), default=None,
              help="Random latents of the report's comparison (best of them); 0 skips it [default: 256].")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the random latents.")
@device_option
@precision_option
@click.option("--no-progress", is_flag=True,
              help="No progress bar (there is none either when stderr is not a terminal).")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Output folder: new, empty, or one an earlier invert wrote (it is replaced as a whole).")
def invert_cmd(sounds, model, components_path, pitch, conditions, start, length, restarts, steps, baseline, seed,
               device, precision, no_progress, out) -> None:
    """Find where recorded notes lie in a model: the latent (and conditions) of the closest note to each.

    Any audio file soundfile reads (WAV, FLAC, AIFF, OGG…; any rate, channels, length). A longer file gives one
    note per onset, or one from --start. Writes latents.npy (one row per note, for `generate --z`, `edit --z`
    and `instrument --z`), conditions.json (each note's pitch and conditions), reconstruction-<i>.wav,
    original-<i>.wav (the note as the model heard it), coefficients.npy (the GANSpace coefficients of each
    note) and report.json (distances, pitch, the edit command of each note). See docs/user-guide.md, "Start
    from your own sound". The folder appears complete or not at all (Ctrl-C leaves nothing).

    \b
    Examples:
      ganspacesynth invert my-note.wav --out mine/
      ganspacesynth edit --z mine/latents.npy --pitch 60 --condition instrument_family=guitar \\
          --coeffs 1.5 --mode offset --out darker.wav
      ganspacesynth invert phrase.flac --condition instrument_family=string --out phrase/
      ganspacesynth invert take.wav --start 1.5 --length 1 --pitch 57 --out take/
    """
    from ..audio.io import read_audio
    from ..fileio import atomic_directory, check_input_file, check_output_folder
    from .. import invert as inv

    check_output_folder(out, owner="invert", overwrite=True)  # refuse before any work
    recordings = []
    for path in sounds:  # every file read (or refused) before the model loads
        check_input_file(path, "sound file")
        audio, rate = read_audio(path, sample_rate=None)
        if len(audio) < inv.MIN_SECONDS * rate:
            raise UserError(f"{path} is {len(audio) / rate:.3f} s long; a note needs at least {inv.MIN_SECONDS:g} s")
        recordings.append((path, audio, rate))
    given = parse_conditions(conditions)
    defaults = inv.InvertSettings()
    restarts = defaults.restarts if restarts is None else restarts
    settings = inv.InvertSettings(
        restarts=restarts, random_starts=min(defaults.random_starts, restarts - 1),  # one restart: the best guess
        steps=defaults.steps if steps is None else steps,
        baseline=defaults.baseline if baseline is None else baseline, seed=seed)
    synth = load_synth(model, device, precision)
    components = _components(synth, model, components_path)
    targets, skipped = [], []
    for path, audio, rate in recordings:
        found, left = inv.prepare_notes(synth, audio, rate,
                                        source=str(path), pitch=pitch, conditions=given, start=start, length=length)
        targets += found
        skipped += left
    if not targets:
        raise UserError(inv.refusal(skipped))
    for item in skipped:
        click.echo(f"warning: skipped {item.message()}", err=True)
    with progress_bar(len(targets), "invert", "note", enabled=not no_progress) as bar:
        result = inv.invert_notes(synth, targets, skipped, settings=settings, components=components,
                                  progress=lambda done, total: bar.update(done - bar.n))
    with atomic_directory(out, overwrite=True, owner="invert") as tmp:
        inv.write_inversion(result, tmp, synth)
    for i, note in enumerate(result.notes):
        for warning in note.target.warnings + note.warnings:
            click.echo(f"warning: note {i} ({note.target.where(2)}): {warning}", err=True)
    s = result.summary()
    compared = "" if s["median_baseline_db"] is None else \
        f", {s['median_ratio_to_baseline']:.2f}x the best of {settings.baseline} random latents"
    noz = "" if s["median_noz_distance_db"] is None else \
        (f"; played from its coefficients in noz mode (where the sliders start): "
         f"{s['median_noz_distance_db']:.2f} dB") + \
        ("" if s["median_noz_ratio_to_baseline"] is None else f", {s['median_noz_ratio_to_baseline']:.2f}x")
    click.echo(f"wrote {len(result.notes)} note(s) to {out}: median log-mel distance {s['median_distance_db']:.2f} dB"
               f"{compared}{noz} (the recording's own Mel-IF round trip: {s['median_floor_db']:.2f} dB)")


def _components(synth, model, path):
    """The components to give coefficients of: the file given, else the bundled ones for the bundled model."""
    from ..ganspace.components import Components

    if path is not None:
        return Components.load(path, synth)
    if model is not None:
        return None
    from ..assets import default_components_path

    return None if default_components_path() is None else Components.load(None, synth)


def register(group: click.Group) -> None:
    group.add_command(invert_cmd)

