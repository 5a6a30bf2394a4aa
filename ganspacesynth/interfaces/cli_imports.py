"""Commands that bring models from elsewhere: `import-magenta` (TensorFlow GANSynth checkpoints)."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import click

from .options import model_file, overwrite_option


@click.command("import-magenta")
@click.argument("ckpt_dir", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Model file to write (.safetensors).")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="A dataset at the model's representation (e.g. NSynth, --preset mel_prog_hires): also measure "
                   "the output gain against it (as `ganspacesynth calibrate`); without, the gain is 0 dB.")
@overwrite_option("the model file")
def import_magenta_cmd(ckpt_dir: Path, out: Path, data: Path | None, overwrite: bool) -> None:
    """Convert a Magenta GANSynth checkpoint folder (with experiment.json and stage_000NN/) into a model file.

    No TensorFlow needed. The generator's moving-average weights are used, as Magenta's own generation does.

    \b
    Example:
      ganspacesynth import-magenta all_instruments/ --out all_instruments.safetensors
    """
    from ..fileio import check_output_file
    from ..imports.magenta import import_magenta_to_file
    from ..model.files import load_model

    check_output_file(out, overwrite=overwrite)  # before any work
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = import_magenta_to_file(ckpt_dir, out, data=data)
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)
    model = load_model(path)
    seconds = time.perf_counter() - start
    cfg = model.config
    click.echo(
        f"wrote {path} from {model.info.get('checkpoint')} ({model.info.get('weights')} weights; output "
        f"{cfg.output_shape[0]}x{cfg.output_shape[1]}, pitches {cfg.pitches[0]}..{cfg.pitches[-1]}; "
        f"fingerprint {model.fingerprint}; output gain {model.output_gain_db:+.2f} dB; {seconds:.1f} s)"
    )


# -- legacy GANSpaceSynth PCA pickles (import-pca / export-pca; GANSpace engineer) ---------------------------


@click.command("import-pca")
@click.argument("pickle_file", type=click.Path(path_type=Path))
@click.option("--model", "model", type=click.Path(path_type=Path), default=None,
              help="Model the pickle was made for (default: the bundled model); its layer shapes are checked.")
@click.option("--trust-pickle", is_flag=True, help="Confirm you trust the file enough to unpickle it (restricted to numpy arrays).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Components file to write (.npz).")
@overwrite_option("the components file")
def import_pca_cmd(pickle_file: Path, model, trust_pickle: bool, out: Path, overwrite: bool) -> None:
    """Convert an original GANSpaceSynth PCA pickle into a components file (TF NHWC order → ours).

    \b
    Example:
      ganspacesynth import-pca pca_conv0.pickle --model m.safetensors --trust-pickle --out comps.npz
    """
    from ..errors import UserError
    from ..fileio import check_output_file

    check_output_file(out, overwrite=overwrite, inputs=[pickle_file, model_file(model)])  # before any work
    if not trust_pickle:
        raise UserError(
            "pickles can run code when loaded; even though this import only rebuilds numpy arrays and refuses "
            "anything else, it runs only with --trust-pickle for files whose origin you trust")
    from ..imports.legacy import import_legacy
    from .options import load_synth

    synth = load_synth(model, "cpu")
    comps = import_legacy(pickle_file, synth)
    comps.save(out)
    latent = "with" if comps.z_comp is not None else "without"
    click.echo(f"wrote {out}: {comps.n_components} components of {comps.layer} {comps.layer_shape}, "
               f"{latent} latent directions")


@click.command("export-pca")
@click.argument("components_file", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Pickle file to write.")
@overwrite_option("the pickle file")
def export_pca_cmd(components_file: Path, out: Path, overwrite: bool) -> None:
    """Write a components file as an original GANSpaceSynth PCA pickle, for the old Pd setup.

    \b
    Example:
      ganspacesynth export-pca comps.npz --out pca_conv0.pickle
    """
    from ..fileio import check_output_file
    from ..ganspace.components import Components
    from ..imports.legacy import export_legacy

    check_output_file(out, overwrite=overwrite, inputs=[components_file])  # before any work
    comps = Components.load(components_file)
    export_legacy(comps, out)
    click.echo(f"wrote {out}: {comps.n_components} components of {comps.layer} in TF (NHWC) order"
               + (", version 2 with z_comp" if comps.z_comp is not None else ""))


def register(group: click.Group) -> None:
    group.add_command(import_magenta_cmd)
    group.add_command(import_pca_cmd)
    group.add_command(export_pca_cmd)
