"""Commands that bring models from elsewhere: `import-magenta` (TensorFlow GANSynth checkpoints)."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import click


@click.command("import-magenta")
@click.argument("ckpt_dir", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Model file to write (.safetensors).")
def import_magenta_cmd(ckpt_dir: Path, out: Path) -> None:
    """Convert a Magenta GANSynth checkpoint folder (with experiment.json and stage_000NN/) into a model file.

    No TensorFlow needed. The generator's moving-average weights are used, as Magenta's own generation does.

    \b
    Example:
      ganspacesynth import-magenta all_instruments/ --out all_instruments.safetensors
    """
    from ..imports.magenta import import_magenta_to_file
    from ..model.files import load_model

    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = import_magenta_to_file(ckpt_dir, out)
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)
    model = load_model(path)
    seconds = time.perf_counter() - start
    cfg = model.config
    click.echo(
        f"wrote {path} from {model.info.get('checkpoint')} ({model.info.get('weights')} weights; output "
        f"{cfg.output_shape[0]}x{cfg.output_shape[1]}, pitches {cfg.pitches[0]}..{cfg.pitches[-1]}; "
        f"fingerprint {model.fingerprint}; {seconds:.1f} s)"
    )


def register(group: click.Group) -> None:
    group.add_command(import_magenta_cmd)
