"""`ganspacesynth dataset …`: chop, pad, make, soundfont, info."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from ..choices import PRESET_NAMES

_PRESETS = list(PRESET_NAMES)


def _report_problems(fn):
    """List every input problem (one per line) before the one-line error the main group prints."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from ..data.validate import InputProblems

        try:
            return fn(*args, **kwargs)
        except InputProblems as exc:
            for problem in exc.problems:
                click.echo(f"  {problem}", err=True)
            raise

    return wrapper


def _spectral(preset: str):
    from ..model.config import PRESETS

    return PRESETS[preset].spectral


def _log(message: str) -> None:
    click.echo(message, err=True)


preset_option = click.option(
    "--preset", type=click.Choice(_PRESETS), default="mel_prog_hires", show_default=True,
    help="Model preset whose spectrogram representation (length, rate, STFT) the dataset uses.",
)
split_options = [
    click.option("--valid-fraction", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.1, show_default=True,
                 help="Share of instruments held out for validation (split by instrument)."),
    click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
                 help="Seed of the train/validation split."),
    click.option("--workers", type=click.IntRange(1, 1024), default=None,
                 help="Processes computing spectrograms (default: all cores)."),
    click.option("--overwrite", is_flag=True, help="Replace OUT_DIR if it exists."),
]


def _warn_without_validation(header: dict) -> None:
    """Held-out notes are whole instruments; one instrument (e.g. clips of one recording) leaves none."""
    if header["count"] and not header["splits"].get("valid"):
        click.echo("note: no notes are held out for validation (held-out notes are whole instruments: there is only "
                   "one, or --valid-fraction is 0); training works, but train-classifier and evaluate need them",
                   err=True)


def _with(options):
    def deco(fn):
        for opt in reversed(options):
            fn = opt(fn)
        return fn

    return deco


@click.group("dataset")
def dataset_group() -> None:
    """Prepare audio and build training sets (manifest + spectrogram shards)."""


@dataset_group.command("chop")
@click.argument("in_dir", type=click.Path(path_type=Path))
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--length", type=click.IntRange(1, 1 << 26), default=64000, show_default=True,
              help="Clip length in samples (16384 for the tiny preset).")
@click.option("--step", type=click.IntRange(1, 1 << 26), default=16000, show_default=True,
              help="Samples between clip starts.")
@click.option("--sample-rate", type=click.IntRange(1000, 384000), default=16000, show_default=True,
              help="Output sample rate.")
@click.option("--pitch", default="32", show_default=True,
              help="MIDI pitch written in every name, or 'auto' to estimate each clip's pitch (pYIN).")
@click.option("--min-rms", "min_rms", type=float, default=-60.0, show_default=True,
              help="Skip clips quieter than this RMS level (dBFS).")
@click.option("--overwrite", is_flag=True, help="Replace OUT_DIR if it exists.")
@_report_problems
def chop_cmd(in_dir, out_dir, length, step, sample_rate, pitch, min_rms, overwrite) -> None:
    """Cut long recordings into clips named <source>_<index>_<pitch>.wav.

    Reads every audio file soundfile can read under IN_DIR (any rate and channel count), resamples
    it, mixes it to mono and writes a clip of --length samples every --step samples, skipping near-silent
    clips. OUT_DIR/chop.json records each clip's source, start, level and pitch confidence.

    Example: ganspacesynth dataset chop recordings/ clips/ --step 32000 --pitch auto
    """
    from ..data.folder import chop

    summary = chop(in_dir, out_dir, length=length, step=step, sample_rate=sample_rate, pitch=pitch,
                   min_rms_db=min_rms, overwrite=overwrite, log=_log)
    click.echo(f"wrote {len(summary['clips'])} clips to {out_dir} (skipped: {summary['skipped']})")


@dataset_group.command("pad")
@click.argument("in_dir", type=click.Path(path_type=Path))
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--length", type=click.IntRange(1, 1 << 26), default=64000, show_default=True,
              help="Output length in samples (16384 for the tiny preset).")
@click.option("--sample-rate", type=click.IntRange(1000, 384000), default=16000, show_default=True,
              help="Output sample rate.")
@click.option("--pitch", default="32", show_default=True, help="MIDI pitch written in every name, or 'auto'.")
@click.option("--fade-ms", type=click.FloatRange(0, 60000), default=10.0, show_default=True, help="Fade-out at the end of the kept sound.")
@click.option("--normalize/--no-normalize", default=True, show_default=True, help="Scale each peak to full scale.")
@click.option("--min-rms", "min_rms", type=float, default=-60.0, show_default=True,
              help="Skip sounds quieter than this RMS level (dBFS).")
@click.option("--overwrite", is_flag=True, help="Replace OUT_DIR if it exists.")
@_report_problems
def pad_cmd(in_dir, out_dir, length, sample_rate, pitch, fade_ms, normalize, min_rms, overwrite) -> None:
    """Pad or trim single sounds to --length samples (4 s), named <source>_<pitch>.wav.

    Example: ganspacesynth dataset pad one-shots/ padded/ --pitch auto
    """
    from ..data.folder import pad

    summary = pad(in_dir, out_dir, length=length, sample_rate=sample_rate, pitch=pitch, fade_ms=fade_ms,
                  normalize=normalize, min_rms_db=min_rms, overwrite=overwrite, log=_log)
    click.echo(f"wrote {len(summary['sounds'])} sounds to {out_dir} (skipped {len(summary['skipped'])})")


def _names(text: str | None):
    return None if text in (None, "", "all") else tuple(v.strip() for v in text.split(",") if v.strip())


@dataset_group.command("make")
@click.argument("in_path", type=click.Path(path_type=Path))
@click.argument("out_dir", type=click.Path(path_type=Path))
@preset_option
@click.option("--min-pitch", type=click.IntRange(0, 127), default=24, show_default=True, help="NSynth: lowest pitch kept.")
@click.option("--max-pitch", type=click.IntRange(0, 127), default=84, show_default=True, help="NSynth: highest pitch kept.")
@click.option("--sources", default="acoustic", show_default=True,
              help="NSynth: instrument sources kept (comma-separated, or 'all').")
@click.option("--families", default="all", show_default=True,
              help="NSynth: instrument families kept (comma-separated, or 'all').")
@click.option("--min-rms", "min_rms", type=float, default=-60.0, show_default=True,
              help="Notes quieter than this RMS level (dBFS) are errors.")
@_with(split_options)
@_report_problems
def make_cmd(in_path, out_dir, preset, min_pitch, max_pitch, sources, families, min_rms, valid_fraction, seed,
             workers, overwrite) -> None:
    """Build a training set from a folder of [instrument]_[pitch].wav files or from NSynth.

    IN_PATH is a note folder, an NSynth json/wav release (examples.json + audio/), or NSynth
    TFRecords (a .tfrecord file or a folder of them, official or the course scripts' data.tfrecord +
    meta.json). Every file is checked first; all problems are listed and nothing is written if any.

    Example: ganspacesynth dataset make clips/ data/clips
    """
    from ..data.make import make_dataset
    from ..data.nsynth import NSynthFilter

    filt = NSynthFilter(min_pitch, max_pitch, _names(sources), _names(families))
    header = make_dataset(in_path, out_dir, spectral=_spectral(preset), nsynth_filter=filt, min_rms_db=min_rms,
                          valid_fraction=valid_fraction, seed=seed, workers=workers, overwrite=overwrite, log=_log)
    click.echo(f"{out_dir}: {header['count']} notes {header['splits']}")
    _warn_without_validation(header)


@dataset_group.command("soundfont")
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--soundfont", type=click.Path(path_type=Path), default=None,
              help="General MIDI .sf2/.sf3 file (default: TimGM6mb.sf2 from pretty_midi).")
@click.option("--programs", default="0-127", show_default=True, help="GM programs, e.g. 0-46,48-54,56-111.")
@click.option("--pitches", default="24-84", show_default=True, help="MIDI pitches.")
@click.option("--velocities", default="25,50,75,100,127", show_default=True, help="MIDI velocities.")
@preset_option
@_with(split_options)
def soundfont_cmd(out_dir, soundfont, programs, pitches, velocities, preset, valid_fraction, seed, workers,
                  overwrite) -> None:
    """Render an NSynth-like training set from a General MIDI SoundFont.

    One note per program x pitch x velocity, held for 3/4 of the length (3 s of 4 s) then released,
    labelled with an NSynth instrument family and source; silent renders are skipped. The result is
    a dataset folder ready for training.

    Example: ganspacesynth dataset soundfont data/gm --programs 0-111 --velocities 100
    """
    from ..data.make import make_soundfont_dataset
    from ..data.soundfont import parse_int_list

    header = make_soundfont_dataset(
        out_dir, soundfont=soundfont, programs=parse_int_list(programs, 0, 127, "program"),
        pitches=parse_int_list(pitches, 0, 127, "pitch"), velocities=parse_int_list(velocities, 1, 127, "velocity"),
        spectral=_spectral(preset), valid_fraction=valid_fraction, seed=seed, workers=workers, overwrite=overwrite,
        log=_log,
    )
    click.echo(f"{out_dir}: {header['count']} notes {header['splits']}, {len(header['skipped_silent'])} silent skipped")
    _warn_without_validation(header)


@dataset_group.command("info")
@click.argument("path", type=click.Path(path_type=Path))
def info_cmd(path) -> None:
    """Summarise a dataset folder: counts, splits, pitch range, label vocabularies.

    Example: ganspacesynth dataset info data/gm
    """
    from ..data.dataset import read_manifest

    m = read_manifest(path)
    pitches = [e["pitch"] for e in m["examples"]]
    click.echo(f"{path}: {m['count']} notes {m['splits']}, {len(m['shards'])} shards, "
               f"spectrograms {m['spec_shape']} at {m['sample_rate']} Hz, pitches {min(pitches)}..{max(pitches)}")
    click.echo(f"built from: {m['built_from'].get('kind')} {m['built_from'].get('path', m['built_from'].get('soundfont', ''))}")
    for name, classes in m["vocab"].items():
        shown = ", ".join(classes[:12]) + (" …" if len(classes) > 12 else "")
        click.echo(f"  {name} ({len(classes)}): {shown}")


def register(group: click.Group) -> None:
    group.add_command(dataset_group)
