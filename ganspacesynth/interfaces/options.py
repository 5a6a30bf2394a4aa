"""Options shared by many commands, so every command spells them the same way."""

from __future__ import annotations

from pathlib import Path

import click

from ..choices import PRECISION_NAMES
from ..errors import UserError
from ..ganspace.coefficients import MAX_COEFFICIENT

model_option = click.option(
    "--model", "model", type=click.Path(path_type=Path), default=None,
    help="Model file or training run folder (default: the bundled model).",
)
#: Seeds numpy and torch both accept.
SEED = click.IntRange(0, 2**32 - 1)
#: Notes (or latents) per forward pass.
BATCH_SIZE = click.IntRange(1, 4096)


def check_device_option(ctx, param, value):
    """Refuse an unknown device or one this machine lacks (cuda without CUDA) while parsing: one line."""
    if value is None:
        return None
    from ..synth import resolve_device

    try:
        return resolve_device(value)
    except UserError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


device_option = click.option("--device", default=None, callback=check_device_option,
                             help="torch device: cpu, cuda or cuda:N (default: cuda if available, else cpu).")
precision_option = click.option(
    "--precision", type=click.Choice(PRECISION_NAMES), default="float32", show_default=True,
    help="Generator arithmetic. auto: bfloat16 on CUDA and on CPUs with native bfloat16 (AMX or AVX512-BF16), "
         "else float32; bfloat16 is about 2x faster on CPUs with AMX and several times slower on CPUs without.",
)
seed_option = click.option("--seed", type=SEED, default=0, show_default=True, help="Random seed.")


def overwrite_option(what: str = "the output file", help: str | None = None):
    """`--overwrite`: the one way a command replaces an existing file (fileio.check_output_file refuses it
    otherwise, and always refuses the command's own inputs and the package's bundled files)."""
    return click.option("--overwrite", is_flag=True,
                        help=help or f"Replace {what} if already there (never the command's own input or the "
                                     f"package's bundled files).")


def model_file(model) -> Path | None:
    """The model file `--model` names (a run folder: its export), to keep outputs off it; None for the bundled
    one (inside the package: refused as an output anyway)."""
    if model is None:
        return None
    path = Path(model)
    return path / "model.safetensors" if path.is_dir() else path


def batch_size_option(default: int, help: str | None = None):
    return click.option("--batch-size", type=BATCH_SIZE, default=default, show_default=True, help=help)


def progress_bar(total: int, desc: str, unit: str = "note", enabled: bool = True):
    """A tqdm bar on stderr for long runs; off with enabled=False (--no-progress) and when stderr is no terminal."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False, disable=None if enabled else True)


def load_synth(model, device=None, precision="float32"):
    from ..synth import Synth

    return Synth.load(model, device=device, precision=precision)


#: dB a --gain may ask for (either sign); audio/levels.MAX_GAIN_DB, spelled here to keep --help free of numpy.
MAX_GAIN_OPTION_DB = 60.0
GAIN = click.FloatRange(-MAX_GAIN_OPTION_DB, MAX_GAIN_OPTION_DB)


def check_gain_option(ctx, param, value):
    """FloatRange lets NaN through (every comparison with it is false): refuse it while parsing."""
    import math

    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number of dB", ctx=ctx, param=param)
    return value


def level_options(mix: bool = False):
    """`--gain DB` and `--normalize`: how loud the written audio is. Notes (`mix=False`) come at the model's
    calibrated level unless told otherwise; a mix (hallucinate, midi) is peak-normalised unless told otherwise
    (`--no-normalize`, or a `--gain`, keeps the notes' level)."""
    gain = click.option(
        "--gain", "gain_db", type=GAIN, default=None, metavar="DB", callback=check_gain_option,
        help="Output gain in dB instead of the model's calibrated one (0: the raw model; `ganspacesynth info` "
             "shows the model's). Notes that would clip are scaled to just below full scale.")
    if mix:
        normalize = click.option(
            "--normalize/--no-normalize", "normalize", default=None,
            help="Scale the mix so its peak is 0.99 [default, unless --gain]; --no-normalize keeps the notes' "
                 "calibrated level (scaled down only where the mix would clip).")
    else:
        normalize = click.option("--normalize", "normalize", is_flag=True, default=False,
                                 help="Scale every note so its peak is 0.99, instead of the model's calibrated level.")

    def decorate(fn):
        return gain(normalize(fn))

    return decorate


def apply_level(synth, gain_db: float | None, normalize: bool | None, mix: bool = False) -> float | None:
    """Set the synth's note level from `--gain` / `--normalize`; for a mix, return the peak to normalise it to
    (None: keep the notes' level)."""
    if gain_db is not None and normalize:
        raise UserError("give either --gain or --normalize, not both")
    if mix:
        synth.set_level(gain_db=gain_db)
        normalize = gain_db is None if normalize is None else normalize
        from ..audio.levels import SAFE_PEAK

        return SAFE_PEAK if normalize else None
    synth.set_level(gain_db=gain_db, normalize=bool(normalize))
    return None


def parse_conditions(values: tuple[str, ...]) -> dict[str, str]:
    """`name=value` pairs → dict."""
    out: dict[str, str] = {}
    for item in values:
        if "=" not in item:
            raise UserError(f"--condition expects name=value, got {item!r}")
        name, value = item.split("=", 1)
        out[name.strip()] = value.strip()
    return out


def parse_floats(text: str, what: str = "values", limit: float | None = None) -> list[float]:
    """Comma-separated finite numbers (within ±limit when given)."""
    import math

    parts = [v.strip() for v in text.split(",")]
    if all(v == "" for v in parts):
        return []
    if "" in parts:  # '1,,2' would move the 2 onto the wrong component (or pitch)
        raise UserError(f"{what} has an empty entry (number {parts.index('') + 1} in {text!r}); give a number for "
                        f"each (0 leaves a component unchanged)")
    try:
        values = [float(v) for v in parts]
    except ValueError:
        raise UserError(f"{what} must be comma-separated numbers, got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise UserError(f"{what} must be finite numbers, got {text!r}")
    if limit is not None and any(abs(v) > limit for v in values):
        raise UserError(f"{what} must lie within ±{limit:g}, got {text!r}")
    return values


def parse_coeffs(text: str, what: str = "--coeffs") -> list[float]:
    """GANSpace coefficients (standard deviations): finite and within ±MAX_COEFFICIENT."""
    return parse_floats(text, what, limit=MAX_COEFFICIENT)


def load_latents(synth, z_path, z_index: int | None = None):
    """The latents of a `--z` file (every row, or row `z_index`) and, where `conditions.json` (what `invert`
    writes) lies beside it, each row's pitch and conditions: `(z, pitches, conditions)`, the last two None
    without that file. The one reading of `--z`: generate, edit, grid and instrument call it."""
    from ..fileio import load_npy

    z = synth.check_z(load_npy(z_path))
    labels = Path(z_path).with_name("conditions.json")
    pitches = conditions = None
    if labels.is_file():
        from ..invert.files import read_note_labels

        pitches, conditions = read_note_labels(labels, synth, len(z))
    if z_index is not None:
        if not 0 <= z_index < len(z):
            raise UserError(f"--z-index {z_index} is out of range: {z_path} holds {len(z)} latents")
        z = z[z_index:z_index + 1]
        if pitches is not None:
            pitches, conditions = pitches[z_index:z_index + 1], conditions[z_index:z_index + 1]
    return z, pitches, conditions


def with_file_conditions(given: dict, conditions: list[dict] | None) -> list[dict] | None:
    """Each row's conditions from `load_latents`, the `--condition` flags given winning name by name (None without
    a conditions file)."""
    return None if conditions is None else [{**row, **given} for row in conditions]
