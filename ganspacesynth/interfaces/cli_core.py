"""Core commands: init, info, generate, interpolate, calibrate."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from ..choices import PRESET_NAMES
from ..errors import UserError
from .options import (SEED, apply_level, batch_size_option, device_option, level_options, load_latents, load_synth,
                      model_option, overwrite_option, parse_conditions, precision_option, progress_bar, seed_option,
                      with_file_conditions)


def note_names(pitches, count: int) -> list[str]:
    """p<pitch>_<index>.wav, the index zero-padded to the count's width (at least 3) so names sort in order."""
    width = max(3, len(str(max(count - 1, 0))))
    return [f"p{p}_{i:0{width}d}.wav" for p in pitches for i in range(count)]


def write_notes(synth, waves: np.ndarray, out_dir: Path, names: list[str]) -> list[Path]:
    from ..audio.io import write_wav
    from ..audio.levels import peak_safe

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for wave, name in zip(peak_safe(waves), names):
        paths.append(write_wav(out_dir / name, wave, synth.sample_rate))
    return paths


@click.command("init")
@click.option("--preset", "preset_name", type=click.Choice(PRESET_NAMES), default="tiny",
              show_default=True, help="Architecture preset.")
@seed_option
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Model file to write.")
@overwrite_option("the model file")
def init_cmd(preset_name: str, seed: int, out: Path, overwrite: bool) -> None:
    """Write an untrained model (random weights) to try the pipeline before any training.

    Example: ganspacesynth init --preset tiny --seed 0 --out tiny.safetensors
    """
    import torch

    from ..fileio import check_output_file
    from ..model.config import preset
    from ..model.files import save_model

    check_output_file(out, overwrite=overwrite)
    from ..model.generator import Generator

    cfg = preset(preset_name)
    torch.manual_seed(seed)
    gen = Generator(cfg)
    save_model(out, cfg, gen.state_dict(), info={"untrained": True, "preset": preset_name, "seed": seed})
    n = sum(p.numel() for p in gen.parameters())
    click.echo(f"wrote {out} ({preset_name}, {n / 1e6:.2f} M parameters, untrained)")


@click.command("info")
@model_option
def info_cmd(model) -> None:
    """Describe a model: architecture, representation, conditions, layers.

    Example: ganspacesynth info --model tiny.safetensors
    """
    from ..conditions import format_ranges

    synth = load_synth(model, device="cpu")
    c = synth.config
    click.echo(f"model: {synth.path}  (fingerprint {synth.fingerprint})")
    click.echo(f"audio: {c.spectral.audio_length} samples at {c.spectral.sample_rate} Hz, spectrogram {c.spectral.shape}")
    click.echo(f"latent size: {c.latent_vector_size}")
    for spec in c.conditions:
        shown = ", ".join(spec.classes[:8]) + (" …" if spec.size > 8 else "")
        if spec.name == "pitch":
            shown = format_ranges(synth.pitches)  # the model's whole range: what --pitch and --pitches may be
        click.echo(f"condition {spec.name} ({spec.kind}, {spec.size}): {shown}")
    for name in synth.layer_names():
        click.echo(f"layer {name}: {synth.generator.layer_shape(name)}")
    calibration = synth.info.get("calibration") if isinstance(synth.info.get("calibration"), dict) else {}
    if calibration:
        click.echo(f"output gain: {synth.model_gain_db:+.2f} dB (notes at {calibration.get('target_rms_dbfs')} dBFS "
                   f"median RMS, the level of {calibration.get('dataset')}; raw {calibration.get('raw_rms_dbfs')})")
    else:
        click.echo(f"output gain: {synth.model_gain_db:+.2f} dB (not calibrated: `ganspacesynth calibrate` "
                   f"measures it against a dataset)")
    if synth.info:
        click.echo(f"info: {synth.info}")


@click.command("generate")
@model_option
@click.option("--pitch", "pitches", type=int, multiple=True,
              help="MIDI pitch; repeat for several (default with --z: each note's own, from `invert`'s conditions.json "
                   "beside it).")
@click.option("--count", type=click.IntRange(1, 10000), default=1, show_default=True, help="Notes per pitch.")
@seed_option
@click.option("--z", "z_path", type=click.Path(path_type=Path), default=None,
              help="Latents .npy [N, latent] to use instead of random ones (with conditions.json beside it, as "
                   "`invert` writes: each note's pitch and conditions, unless given).")
@click.option("--condition", "conditions", multiple=True, help="Other conditions by name, e.g. instrument_family=guitar.")
@batch_size_option(8)
@device_option
@precision_option
@click.option("--no-progress", is_flag=True, help="No progress bar (there is none either when stderr is not a terminal).")
@level_options()
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Output folder: new, empty, or one an earlier generate wrote (it is replaced as a whole).")
def generate_cmd(model, pitches, count, seed, z_path, conditions, batch_size, device, precision, no_progress,
                 gain_db, normalize, out) -> None:
    """Generate notes as 16 kHz WAV files named p<pitch>_<index>.wav, plus the latents used (latents.npy).

    Notes come at the model's calibrated level (--gain, --normalize: otherwise). The same seed gives identical
    audio. The folder appears complete or not at all (Ctrl-C leaves nothing).
    Example: ganspacesynth generate --model tiny.safetensors --pitch 60 --pitch 64 --count 4 --seed 1 --out notes/
    """
    from ..fileio import atomic_directory, check_output_folder

    check_output_folder(out, owner="generate", overwrite=True)  # refuse before any work
    if not pitches and z_path is None:
        raise UserError("give --pitch (one or more)")
    synth = load_synth(model, device, precision)
    apply_level(synth, gain_db, normalize)
    for p in pitches:
        synth.check_pitch(p)  # refuses out-of-range pitches before any work
    conds = parse_conditions(conditions)
    file_pitches = rows = None
    if z_path is not None:
        z, file_pitches, rows = load_latents(synth, z_path)
        count = z.shape[0]
        if not 1 <= count <= 10000:
            raise UserError(f"{z_path} holds {count} latents; give 1 to 10000")
    else:
        z = synth.random_z(count, seed)
    rows = with_file_conditions(conds, rows)
    if pitches:
        all_z = np.concatenate([z] * len(pitches))
        all_p = [p for p in pitches for _ in range(count)]
        names = note_names(pitches, count)
        all_c = None if rows is None else rows * len(pitches)
    elif file_pitches is not None and None not in file_pitches:  # each note at its own pitch
        all_z, all_p, all_c = z, list(file_pitches), rows
        width = max(3, len(str(max(count - 1, 0))))
        names = [f"p{p}_{i:0{width}d}.wav" for i, p in enumerate(all_p)]
    else:
        raise UserError(f"give --pitch: no conditions.json with the notes' pitches lies beside {z_path}")
    if all_c is not None and len({frozenset(c) for c in all_c}) > 1:
        raise UserError(f"the notes of {z_path} name different conditions: give them with --condition")
    chunk = max(32, batch_size)
    with atomic_directory(out, overwrite=True, owner="generate") as tmp, \
            progress_bar(len(names), "generate", "note", enabled=not no_progress) as bar:
        for start in range(0, len(names), chunk):
            sl = slice(start, start + chunk)
            chunk_conds = (conds or None) if all_c is None else \
                ({k: [c[k] for c in all_c[sl]] for k in all_c[0]} or None)
            waves = synth.generate(all_z[sl], pitch=all_p[sl], conditions=chunk_conds, batch_size=batch_size)
            write_notes(synth, waves, tmp, names[sl])
            bar.update(len(waves))
        np.save(tmp / "latents.npy", z)
    click.echo(f"wrote {len(names)} notes and latents.npy to {out}")


@click.command("interpolate")
@model_option
@click.option("--pitch", type=int, required=True)
@click.option("--seed-a", type=SEED, default=1, show_default=True)
@click.option("--seed-b", type=SEED, default=2, show_default=True)
@click.option("--steps", type=click.IntRange(2, 1000), default=8, show_default=True)
@click.option("--method", type=click.Choice(["slerp", "lerp"]), default="slerp", show_default=True)
@click.option("--condition", "conditions", multiple=True, help="Other conditions, e.g. instrument_family=guitar.")
@device_option
@precision_option
@level_options()
@click.option("--out", type=click.Path(path_type=Path), required=True)
def interpolate_cmd(model, pitch, seed_a, seed_b, steps, method, conditions, device, precision, gain_db, normalize,
                    out) -> None:
    """Interpolate between two random timbres (latents from two seeds) at one pitch.

    Example: ganspacesynth interpolate --model tiny.safetensors --pitch 60 --seed-a 1 --seed-b 2 --steps 8 --out interp/
    """
    from ..fileio import atomic_directory, check_output_folder
    from ..compose.interpolate import interpolate

    check_output_folder(out, owner="interpolate", overwrite=True)  # refuse before any work
    synth = load_synth(model, device, precision)
    apply_level(synth, gain_db, normalize)
    synth.check_pitch(pitch)
    za, zb = synth.random_z(1, seed_a)[0], synth.random_z(1, seed_b)[0]
    z = interpolate(za, zb, steps, method)
    waves = synth.generate(z, pitch=pitch, conditions=parse_conditions(conditions) or None)
    with atomic_directory(out, overwrite=True, owner="interpolate") as tmp:
        write_notes(synth, waves, tmp, note_names([pitch], steps))
        np.save(tmp / "latents.npy", z)
    click.echo(f"wrote {steps} notes ({method} from seed {seed_a} to {seed_b}) to {out}")


@click.command("calibrate")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--data", type=click.Path(path_type=Path), required=True,
              help="Dataset folder the model was trained on (or one at the same --preset): the level to match.")
@click.option("--count", type=click.IntRange(1, 100000), default=200, show_default=True, help="Notes to generate.")
@seed_option
@batch_size_option(32)
@device_option
@precision_option
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Model file to write (default: MODEL itself, rewritten atomically: needs --overwrite).")
@overwrite_option(help="Replace an existing --out file, or without --out rewrite MODEL in place (never the "
                       "package's bundled model).")
def calibrate_cmd(model, data, count, seed, batch_size, device, precision, out, overwrite) -> None:
    """Measure the gain that brings a model's notes to its training data's level and store it in the model file.

    Gain = median RMS (dBFS) of the dataset's notes minus that of `--count` generated notes (random latents,
    labels drawn from the dataset). Every command then plays the model at that level; only the file's metadata
    changes (same weights, same fingerprint, GANSpace components still fit). A training run's next export
    overwrites RUN/model.safetensors: calibrate the exported file you keep. Rewriting MODEL itself (no --out)
    takes --overwrite; the bundled model is never rewritten.
    Example: ganspacesynth calibrate runs/gm/model.safetensors --data data/gm --out gm.safetensors
    """
    from ..calibration import calibrate_model_file
    from ..fileio import check_format, check_output_file, same_file
    from ..model.files import MODEL_FORMAT, MODEL_FORMAT_VERSION, read_metadata, resolve_model_path

    source = resolve_model_path(model)
    check_format(read_metadata(source), MODEL_FORMAT, MODEL_FORMAT_VERSION, "GANSpaceSynth model file", source)
    if out is None or same_file(out, source):
        # in place: the input is the output, so only with --overwrite (and never inside the package)
        check_output_file(source, overwrite=overwrite,
                          hint="without --out, calibrate rewrites it in place: add --overwrite to allow that, or give --out")
    else:
        check_output_file(out, overwrite=overwrite, inputs=[source])  # before any work
    written, result = calibrate_model_file(model, data, out, count=count, seed=seed, device=device or "cpu",
                                           precision=precision, batch_size=batch_size)
    click.echo(f"wrote {written}: output gain {result['output_gain_db']:+.2f} dB (dataset median RMS "
               f"{result['target_rms_dbfs']:.2f} dBFS over {result['real_notes']} notes, the model's raw notes "
               f"{result['raw_rms_dbfs']:.2f} over {result['count']})")


def register(group: click.Group) -> None:
    for cmd in (init_cmd, info_cmd, generate_cmd, interpolate_cmd, calibrate_cmd):
        group.add_command(cmd)
