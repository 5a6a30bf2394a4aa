"""Import Magenta GANSynth checkpoints (TensorFlow) as GANSpaceSynth models, without TensorFlow.

A Magenta training folder holds `experiment.json` (the run's hyperparameters) and one folder per
progressive stage, `stage_000NN/model.ckpt-STEP.{index,data-…}`. Magenta's own generation loads the
final stage and runs the generator with the exponential moving averages of its weights; so do we.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from ..audio.spectral import SpectralConfig
from ..errors import UserError
from ..fileio import read_json
from ..model.config import DEFAULT_PITCHES, ModelConfig, pitch_condition
from ..model.files import save_model
from ..model.generator import Generator
from .tfcheckpoint import latest_checkpoint, list_variables, read_checkpoint

__all__ = ["import_magenta", "import_magenta_to_file", "magenta_config", "generator_variable_map"]

GENERATOR_SCOPE = "Generator/progressive_gan_generator"
EMA_SUFFIX = "/ExponentialMovingAverage"

# Magenta's data_type -> our spectral flags (its data_helpers registry: 'mel' = Mel-IF, 'linear' = linear IF).
_DATA_TYPES = {"mel": True, "linear": False}

# Magenta's `model.set_flags` defaults for the keys the import reads. Magenta fills keys missing from
# experiment.json with these when it loads a model, so we do the same.
MAGENTA_DEFAULTS = {
    "data_type": "mel",
    "audio_length": 64000,
    "sample_rate": 16000,
    "data_normalizer": "specgrams_prespecified_normalizer",
    "mag_normalizer_a": 0.0661371661726,
    "mag_normalizer_b": 0.113718730221,
    "p_normalizer_a": 0.8,
    "p_normalizer_b": 0.0,
    "g_fn": "specgram",
    "latent_vector_size": 256,
    "kernel_size": 3,
    "start_height": 4,
    "start_width": 8,
    "scale_mode": "ALL",
    "scale_base": 2,
    "num_resolutions": 7,
    "simple_arch": False,
    "to_rgb_activation": "tanh",
    "fmap_base": 512,
    "fmap_decay": 1.0,
    "fmap_max": 128,
}


def read_experiment(ckpt_dir: Path) -> dict:
    """The run's hyperparameters, with Magenta's defaults for missing keys.

    Usually `experiment.json` sits in the checkpoint folder. Magenta's internal sweeps wrote one file
    for several runs, `{"jobs": {run folder name: flags}}`, in the folder above; that is read too.
    """
    own, parent = ckpt_dir / "experiment.json", ckpt_dir.parent / "experiment.json"
    if own.is_file():
        experiment = read_json(own)
        if isinstance(experiment.get("jobs"), dict):
            jobs = experiment["jobs"]
            if ckpt_dir.name not in jobs and len(jobs) != 1:
                raise UserError(f"{own} describes runs {', '.join(sorted(jobs))}, none named {ckpt_dir.name!r}")
            experiment = jobs.get(ckpt_dir.name) or next(iter(jobs.values()))
    elif parent.is_file() and isinstance((jobs := read_json(parent).get("jobs")), dict) and ckpt_dir.name in jobs:
        experiment = jobs[ckpt_dir.name]
    else:
        hint = ""
        if parent.is_file():
            hint = f" (give the folder above it, {ckpt_dir.parent})"
        elif ckpt_dir.suffix == ".zip" or not ckpt_dir.exists():
            hint = " (unzip the downloaded checkpoint and give the folder that holds experiment.json)"
        if not ckpt_dir.exists():
            raise UserError(f"{ckpt_dir} does not exist, so there is no experiment.json{hint}")
        raise UserError(f"{ckpt_dir} is not a Magenta GANSynth checkpoint folder: no experiment.json{hint}")
    if not isinstance(experiment, dict):
        raise UserError(f"the experiment.json for {ckpt_dir} does not hold a JSON object of flags")
    return {**MAGENTA_DEFAULTS, **experiment}


def magenta_config(experiment: dict, pitches: tuple[int, ...] | None = None) -> ModelConfig:
    """Translate Magenta hyperparameters into a ModelConfig, refusing what our generator cannot reproduce."""
    experiment = {**MAGENTA_DEFAULTS, **experiment}
    refusals = {
        "g_fn": ("specgram", "only the spectrogram generator (g_fn 'specgram') is supported"),
        "simple_arch": (False, "simple_arch generators are not supported"),
        "scale_mode": ("ALL", "only scale_mode 'ALL' (height and width doubled each block) is supported"),
        "data_normalizer": (
            "specgrams_prespecified_normalizer",
            "only the 'specgrams_prespecified_normalizer' (fixed constants in experiment.json) is supported",
        ),
    }
    for key, (wanted, message) in refusals.items():
        if experiment[key] != wanted:
            raise UserError(f"unsupported Magenta configuration {key}={experiment[key]!r}: {message}")
    data_type = experiment["data_type"]
    if data_type not in _DATA_TYPES:
        raise UserError(
            f"unsupported Magenta configuration data_type={data_type!r}: "
            f"supported are {', '.join(repr(k) for k in _DATA_TYPES)}"
        )
    activation = experiment["to_rgb_activation"]
    if activation not in ("tanh", "linear"):  # the only two Magenta's generator_fn_specgram knows
        raise UserError(f"unsupported Magenta configuration to_rgb_activation={activation!r}")

    if pitches is None:
        # All of Magenta's NSynth datasets keep MIDI pitches 24..84 (experiment.json does not record them).
        pitches = DEFAULT_PITCHES
    try:
        num_res = int(experiment["num_resolutions"])
        height = int(experiment["start_height"]) * int(experiment["scale_base"]) ** (num_res - 1)
        width = int(experiment["start_width"]) * int(experiment["scale_base"]) ** (num_res - 1)
        # Magenta's SpecgramsHelper: n_fft = 2 × frequency bins, overlap 0.75, one frame per row.
        spectral = SpectralConfig(
            sample_rate=int(experiment["sample_rate"]),
            audio_length=int(experiment["audio_length"]),
            n_fft=2 * width,
            hop_length=2 * width // 4,
            frames=height,
            mel=_DATA_TYPES[data_type],
            ifreq=True,
            mag_normalizer_a=float(experiment["mag_normalizer_a"]),
            mag_normalizer_b=float(experiment["mag_normalizer_b"]),
            p_normalizer_a=float(experiment["p_normalizer_a"]),
            p_normalizer_b=float(experiment["p_normalizer_b"]),
        )
        config = ModelConfig(
            latent_vector_size=int(experiment["latent_vector_size"]),
            start_height=int(experiment["start_height"]),
            start_width=int(experiment["start_width"]),
            num_resolutions=num_res,
            scale_base=int(experiment["scale_base"]),
            fmap_base=int(experiment["fmap_base"]),
            fmap_decay=float(experiment["fmap_decay"]),
            fmap_max=int(experiment["fmap_max"]),
            kernel_size=int(experiment["kernel_size"]),
            to_rgb_activation=activation,
            conditions=(pitch_condition(pitches),),
            spectral=spectral,
        )
        config.validate()
    except (TypeError, ValueError) as exc:
        raise UserError(f"unsupported Magenta configuration: {exc}") from None
    return config


def final_stage_checkpoint(ckpt_dir: Path, num_resolutions: int) -> Path:
    """Prefix of the newest checkpoint in the last `stage_000NN` folder, which must be the final stage."""
    stages = sorted(
        (int(m.group(1)), p) for p in ckpt_dir.iterdir() if p.is_dir() and (m := re.fullmatch(r"stage_(\d+)", p.name))
    )
    if not stages:
        raise UserError(f"no stage_000NN folder in {ckpt_dir}")
    stage_id, stage_dir = stages[-1]
    # Stages alternate stable/transition: the last one (all blocks, fully faded in) is 2·(resolutions − 1).
    final = 2 * (num_resolutions - 1)
    if stage_id != final:
        raise UserError(
            f"the last stage in {ckpt_dir} is {stage_dir.name}, but a finished run ends with stage_{final:05d}: "
            "only fully trained checkpoints can be imported"
        )
    return latest_checkpoint(stage_dir)


def generator_variable_map(config: ModelConfig) -> dict[str, str]:
    """{Magenta variable name (without the EMA suffix): our generator parameter name}."""
    mapping = {}
    for block_id in range(1, config.num_resolutions + 1):
        for layer in ("conv0", "conv1", "to_rgb"):
            scope = f"{GENERATOR_SCOPE}/progressive_gan_block_{block_id}/{layer}"
            mapping[f"{scope}/conv2d/kernel"] = f"blocks.{block_id - 1}.{layer}.weight"
            mapping[f"{scope}/bias"] = f"blocks.{block_id - 1}.{layer}.bias"
    return mapping


def _generator_weights(prefix: Path) -> tuple[dict[str, np.ndarray], bool]:
    """Read the generator's variables, EMA shadows preferred; returns (arrays by base name, used EMA?)."""
    names = [n for n in list_variables(prefix) if n.startswith("Generator/")]
    if not names:
        raise UserError(f"checkpoint {prefix} has no Generator variables")
    base = [n for n in names if not n.endswith(EMA_SUFFIX)]
    ema = {n[: -len(EMA_SUFFIX)] for n in names if n.endswith(EMA_SUFFIX)}
    if ema:
        without = sorted(set(base) - ema)
        if without:
            raise UserError(f"checkpoint {prefix}: generator variable {without[0]} has no ExponentialMovingAverage")
        arrays = read_checkpoint(prefix, [n + EMA_SUFFIX for n in base])
        return {n: arrays[n + EMA_SUFFIX] for n in base}, True
    warnings.warn(
        f"checkpoint {prefix} has no ExponentialMovingAverage weights; importing the raw generator weights "
        "(Magenta generates with the averages, so the sound may differ from Magenta's)",
        stacklevel=3,
    )
    return read_checkpoint(prefix, base), False


def _state_dict(arrays: dict[str, np.ndarray], config: ModelConfig) -> dict[str, torch.Tensor]:
    """Map Magenta arrays onto our generator's parameters; every variable used, every parameter filled."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in Generator(config).state_dict().items()}
    mapping = generator_variable_map(config)
    unused = sorted(set(arrays) - set(mapping))
    if unused:
        raise UserError(f"unsupported Magenta generator: variable {unused[0]} has no counterpart in our generator")
    state: dict[str, torch.Tensor] = {}
    for tf_name, ours in mapping.items():
        if tf_name not in arrays:
            raise UserError(f"Magenta checkpoint lacks {tf_name} (needed for {ours})")
        value = np.asarray(arrays[tf_name], dtype=np.float32)
        if ours.endswith(".weight"):
            value = value.transpose(3, 2, 0, 1)  # TF kernels are HWIO, torch's OIHW
        if ours not in expected:
            raise UserError(f"internal mismatch: our generator has no parameter {ours}")
        if tuple(value.shape) != expected[ours]:
            raise UserError(
                f"shape mismatch for {tf_name}: checkpoint has {tuple(value.shape)} (as OIHW), the configuration "
                f"in experiment.json expects {expected[ours]}"
            )
        state[ours] = torch.from_numpy(np.ascontiguousarray(value))
    unfilled = sorted(set(expected) - set(state))
    if unfilled:
        raise UserError(f"internal mismatch: no Magenta variable fills our parameter {unfilled[0]}")
    return state


def _import(ckpt_dir: Path) -> tuple[ModelConfig, dict[str, torch.Tensor], dict]:
    experiment = read_experiment(ckpt_dir)
    config = magenta_config(experiment)
    prefix = final_stage_checkpoint(ckpt_dir, config.num_resolutions)
    arrays, used_ema = _generator_weights(prefix)
    conv0 = arrays.get(f"{GENERATOR_SCOPE}/progressive_gan_block_1/conv0/conv2d/kernel")
    if conv0 is not None and conv0.ndim == 4:
        labels = conv0.shape[2] - config.latent_vector_size
        if labels != config.condition_dim:
            raise UserError(
                f"the generator's first layer takes {conv0.shape[2]} inputs, i.e. {labels} label inputs after "
                f"latent_vector_size={config.latent_vector_size}, but pitches {config.pitches[0]}..{config.pitches[-1]} "
                f"are {config.condition_dim} classes: experiment.json does not describe this checkpoint"
            )
    info = {
        "source": "magenta",
        "checkpoint": f"{prefix.parent.name}/{prefix.name}",
        "weights": "ema" if used_ema else "raw",
        "dataset_name": experiment.get("dataset_name"),
        "total_num_images": experiment.get("total_num_images"),
    }
    return config, _state_dict(arrays, config), info


def import_magenta(ckpt_dir: str | os.PathLike) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """Read a Magenta GANSynth training folder; return our ModelConfig and the generator's state dict."""
    config, state, _ = _import(Path(ckpt_dir))
    return config, state


def import_magenta_to_file(ckpt_dir: str | os.PathLike, out_path: str | os.PathLike,
                           data: str | os.PathLike | None = None, count: int = 200) -> Path:
    """Convert a Magenta GANSynth training folder into a GANSpaceSynth model file (written atomically).

    With `data` (a dataset at the model's representation, e.g. NSynth built with `--preset mel_prog_hires`), the
    file also gets an output gain measured from `count` of its own notes against that set (calibration.py);
    without, its gain is 0 dB: Magenta's raw level."""
    config, state, info = _import(Path(ckpt_dir))
    if data is not None:  # measured before anything is written: a wrong dataset leaves no file
        from ..calibration import measure_output_gain
        from ..model.files import OUTPUT_GAIN_KEY, ModelFile
        from ..synth import Synth

        synth = Synth.from_model_file(ModelFile(config, state, info), device="cpu")
        result = measure_output_gain(synth, data, count=count)
        info = {**info, OUTPUT_GAIN_KEY: result.pop("output_gain_db"), "calibration": result}
    return save_model(out_path, config, state, info=info)
