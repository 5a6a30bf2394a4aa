"""Options shared by many commands, so every command spells them the same way."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import UserError

model_option = click.option(
    "--model", "model", type=click.Path(path_type=Path), default=None,
    help="Model file or training run folder (default: the bundled model).",
)
device_option = click.option("--device", default=None, help="torch device (default: cuda if available, else cpu).")
precision_option = click.option(
    "--precision", type=click.Choice(["float32", "bfloat16"]), default="float32", show_default=True,
    help="Generator arithmetic; bfloat16 is about 2x faster on CPUs with AMX.",
)
seed_option = click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")


def load_synth(model, device=None, precision="float32"):
    from ..synth import Synth

    return Synth.load(model, device=device, precision=precision)


def parse_conditions(values: tuple[str, ...]) -> dict[str, str]:
    """`name=value` pairs → dict."""
    out: dict[str, str] = {}
    for item in values:
        if "=" not in item:
            raise UserError(f"--condition expects name=value, got {item!r}")
        name, value = item.split("=", 1)
        out[name.strip()] = value.strip()
    return out


def parse_floats(text: str, what: str = "values") -> list[float]:
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise UserError(f"{what} must be comma-separated numbers, got {text!r}") from None
