"""Training hyper-parameters (Magenta's names) and presets.

`TrainConfig` holds what Magenta's GANSynth calls hparams for training; the architecture lives in
`ModelConfig` (model/config.py), whose fields also carry Magenta's names. `resolve_config` merges a
preset, a JSON file (ours or Magenta's `experiment.json`) and `key=value` overrides into both, so a
Magenta config maps one to one. A few extras that Magenta hard-codes or lacks (`ema_decay`, `seed`,
checkpoint intervals) are ordinary fields here.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import UserError
from ..fileio import check_format, read_json
from ..model.config import PRESETS as MODEL_PRESETS
from ..model.config import ModelConfig

CONFIG_FORMAT = "ganspacesynth-train-config"
#: 2: each objective's settings in a block of their own (`train.gan`, `train.reconstruction`, `train.adversarial`);
#: 1 (read and migrated): every setting flat in `train`.
CONFIG_FORMAT_VERSION = 2


@dataclass(frozen=True)
class GanSettings:
    """The adversarial half (objectives `gan` and `glo+gan`): Magenta's WGAN-GP critic with AC-GAN heads."""

    gradient_penalty_weight: float = 10.0
    gradient_penalty_target: float = 1.0
    # Not Magenta: the penalty on every k-th discriminator step only, weighted ×k ("lazy regularisation",
    # Karras et al. 2020, StyleGAN2). 1 is Magenta's arithmetic; 4 makes a CPU step about a third cheaper.
    gradient_penalty_interval: int = 1
    real_score_penalty_weight: float = 0.001
    generator_ac_loss_weight: float = 10.0
    discriminator_ac_loss_weight: float = 10.0
    discriminator_learning_rate: float = 8e-4
    # Not Magenta: weight of the profile loss (training/losses.py): the fine structure of each fake's
    # time-averaged spectrogram against the mean of real notes with the same labels. A dense,
    # non-adversarial signal for where the harmonics of a pitch lie; 0 turns it off.
    profile_loss_weight: float = 0.0
    # Which channels the profile loss compares: "all" (log magnitude and instantaneous frequency) or "if" (only
    # the instantaneous frequency: where the harmonics are, not how loud each is, so timbre stays free).
    profile_loss_channels: str = "all"
    # Compare only the bins below this frequency (none: all). Above ~5 kHz the real notes' mean instantaneous
    # frequency is mostly noise, and pulling fakes to it darkened their upper band (docs/reports/timbre-recipe).
    profile_loss_max_hz: float | None = None
    # Not Magenta: the critic judges every note at this many blocks' resolution (average-pooled down from the
    # stage's own; 0: the stage's). A critic at 16 × 512 costs a quarter of one at 32 × 1024 per note and judges
    # envelope and brightness, which a CPU-sized adversarial stage can afford more steps of.
    critic_num_blocks: int = 0

    def validate(self) -> None:
        if self.critic_num_blocks < 0:
            raise UserError("critic_num_blocks must be 0 (the stage's resolution) or a number of blocks")
        if self.gradient_penalty_interval < 1:
            raise UserError("gradient_penalty_interval must be at least 1 (1: every step, as Magenta)")
        if self.profile_loss_weight < 0:
            raise UserError("profile_loss_weight must be non-negative (0 turns the profile loss off)")
        if self.profile_loss_channels not in ("all", "if"):
            raise UserError(f"profile_loss_channels must be 'all' or 'if', not {self.profile_loss_channels!r}")
        if self.discriminator_learning_rate < 0:
            raise UserError("discriminator_learning_rate must be non-negative")
        if self.profile_loss_max_hz is not None and not self.profile_loss_max_hz > 0:
            raise UserError("profile_loss_max_hz must be a positive frequency in Hz (or none: every bin)")


@dataclass(frozen=True)
class ReconstructionSettings:
    """The reconstruction half (objectives `glo` and `glo+gan`, training/objectives/reconstruction.py)."""

    latent_code_learning_rate: float = 1e-3  # Adam learning rate of the codes
    # Notes with the same value of this label (e.g. "instrument") share a code, so pitch can only come from the
    # condition; "" gives every note its own code.
    latent_code_label: str = ""
    # The fraction of each batch's notes reconstructed from a fresh random latent instead of their code: those
    # notes can only be told apart by their conditions, so the generator follows pitch and family for any z.
    latent_code_dropout: float = 0.0
    # > 0: each code is a Gaussian (learned mean and scale) drawn anew every step, with this weight on its KL
    # divergence from N(0, I), so random latents come from the distribution the codes fill (a VAE whose
    # encoder is a table). 0: each code is a point.
    latent_code_kl_weight: float = 0.0
    # Where the trained model's random latents come from (model/prior.py): "normal", N(0, I); "codes", a code
    # (its mean) plus N(0, latent_prior_spread² I), the codes stored in the model file. With "codes" the critic
    # of `glo+gan` judges notes of such latents, so the notes users draw are the ones it sharpened.
    latent_prior: str = "normal"
    latent_prior_spread: float = 0.25

    def validate(self) -> None:
        if self.latent_prior not in ("normal", "codes"):
            raise UserError(f"latent_prior must be normal or codes, not {self.latent_prior!r}")
        if not 0.0 <= self.latent_prior_spread <= 10.0:
            raise UserError("latent_prior_spread must be in [0, 10]")
        if self.latent_code_learning_rate < 0:
            raise UserError("latent_code_learning_rate must be non-negative")
        if not 0.0 <= self.latent_code_dropout <= 1.0:
            raise UserError("latent_code_dropout must be in [0, 1]")
        if self.latent_code_kl_weight < 0:
            raise UserError("latent_code_kl_weight must be non-negative (0: point codes)")


@dataclass(frozen=True)
class AdversarialSettings:
    """How `glo+gan` mixes its halves: the discriminator starts late, on a generator the reconstruction has
    already shaped (as RAVE, VQGAN and Parallel WaveGAN do), and its loss is added with a weight."""

    adversarial_weight: float = 0.1  # weight of the generator's adversarial + AC loss beside the reconstruction
    # When the discriminator starts: seconds of training for a timed run, else images shown.
    adversarial_start: float = 0.0
    # VQGAN's adaptive weight (Esser et al. 2021): the adversarial loss is scaled by ‖∇rec‖ / ‖∇adv‖ at the
    # generator's last layer, so `adversarial_weight` is a ratio of gradients rather than of loss scales
    # (which differ by orders of magnitude between an L1 loss and a critic's score).
    adversarial_adaptive: bool = True

    def validate(self) -> None:
        if self.adversarial_weight < 0:
            raise UserError("adversarial_weight must be non-negative")
        if self.adversarial_start < 0:
            raise UserError("adversarial_start must be non-negative")


#: Settings blocks by name, and the blocks each objective reads.
SETTINGS_BLOCKS = {"gan": GanSettings, "reconstruction": ReconstructionSettings, "adversarial": AdversarialSettings}
OBJECTIVE_BLOCKS: dict[str, tuple[str, ...]] = {
    "gan": ("gan",),  # Magenta's progressive WGAN-GP + AC-GAN
    "glo": ("reconstruction",),  # not Magenta: learned codes, dense supervised signal, no discriminator
    "glo+gan": ("reconstruction", "gan", "adversarial"),  # reconstruction, then a discriminator joins
}
OBJECTIVES = tuple(OBJECTIVE_BLOCKS)
#: Which block each flat setting name (Magenta's names included) belongs to.
BLOCK_OF_KEY = {f.name: block for block, cls in SETTINGS_BLOCKS.items() for f in dataclasses.fields(cls)}


@dataclass(frozen=True)
class TrainConfig:
    """Progressive training: the schedule and optimiser settings every objective shares, the objective's name,
    and one settings block per part of the objective (None where the objective has no such part).
    Defaults are Magenta's published `mel_prog_hires` run."""

    # -- progressive schedule (counted in real images shown) --
    stable_stage_num_images: int = 800_000
    transition_stage_num_images: int = 800_000
    total_num_images: int = 11_000_000
    batch_size_schedule: tuple[int, ...] = (8,)  # one per resolution; padded at the front with the first
    train_progressive: bool = True  # False: train at full resolution from the start
    train_time_limit: float | None = None  # seconds; when set, stages are timed instead of counted (Magenta)
    train_time_stage_multiplier: float = 1.0  # stage i gets a share of the time proportional to this^i
    # Not Magenta: the seconds the stage boundaries are laid out over (none: train_time_limit). A longer
    # train_time_limit then only lengthens the last stage; a resumed run given a new limit pins this to the
    # old one, so continuing a finished run never moves it back to an earlier stage.
    train_time_schedule: float | None = None
    # -- objective (training/objectives/) --
    objective: str = "gan"
    gan: GanSettings | None = GanSettings()
    reconstruction: ReconstructionSettings | None = None
    adversarial: AdversarialSettings | None = None
    # -- optimisation --
    generator_learning_rate: float = 8e-4
    adam_beta1: float = 0.0
    adam_beta2: float = 0.99
    ema_decay: float = 0.999  # Magenta hard-codes 0.999
    # -- logging and checkpoints --
    save_summaries_num_images: int = 10_000  # spectrogram images and audio of fixed latents
    fake_batch_size: int = 8  # how many fixed latents those summaries show
    checkpoint_every_seconds: float = 600.0  # Magenta's save_checkpoint_secs
    checkpoint_every_images: int = 0  # 0: only the time interval (plus the end and signals)
    keep_checkpoints: int = 3
    log_every_steps: int = 10
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "batch_size_schedule", tuple(int(b) for b in self.batch_size_schedule))
        for block, cls in SETTINGS_BLOCKS.items():
            value = getattr(self, block)
            if isinstance(value, Mapping):
                object.__setattr__(self, block, cls(**value))

    def validate(self, num_resolutions: int) -> None:
        if not self.batch_size_schedule or any(b < 1 for b in self.batch_size_schedule):
            raise UserError("batch_size_schedule must list positive batch sizes")
        if len(self.batch_size_schedule) > num_resolutions:
            raise UserError(f"batch_size_schedule has {len(self.batch_size_schedule)} entries for {num_resolutions} resolutions")
        for name in ("stable_stage_num_images", "transition_stage_num_images", "total_num_images"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be positive")
        if self.train_time_limit is not None and self.train_time_limit <= 0:
            raise UserError("train_time_limit must be positive (or none)")
        if self.train_time_schedule is not None and self.train_time_schedule <= 0:
            raise UserError("train_time_schedule must be positive (or none)")
        if self.train_time_stage_multiplier <= 0:
            raise UserError("train_time_stage_multiplier must be positive")
        if not 0.0 <= self.ema_decay < 1.0:
            raise UserError("ema_decay must be in [0, 1)")
        if self.objective not in OBJECTIVES:
            raise UserError(f"objective must be one of {', '.join(OBJECTIVES)}, not {self.objective!r}")
        for block in SETTINGS_BLOCKS:
            value = getattr(self, block)
            if block in OBJECTIVE_BLOCKS[self.objective]:
                if value is None:
                    raise UserError(f"the {self.objective} objective needs its {block} settings")
                value.validate()
            elif value is not None:
                raise UserError(f"the {self.objective} objective has no {block} settings")
        if self.keep_checkpoints < 1:
            raise UserError("keep_checkpoints must be at least 1")
        if self.log_every_steps < 1:
            raise UserError("log_every_steps must be at least 1")

    def setting(self, key: str) -> Any:
        """A setting by its flat name (Magenta's), from the shared fields or the block that holds it."""
        block = BLOCK_OF_KEY.get(key)
        if block is None:
            return getattr(self, key)
        if getattr(self, block) is None:
            raise UserError(f"the {self.objective} objective has no setting {key}")
        return getattr(getattr(self, block), key)

    def for_objective(self, objective: str) -> "TrainConfig":
        """This config with another objective: the blocks it shares are kept, the others dropped or defaulted."""
        if objective not in OBJECTIVES:
            raise UserError(f"objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
        blocks = {block: (getattr(self, block) or cls()) if block in OBJECTIVE_BLOCKS[objective] else None
                  for block, cls in SETTINGS_BLOCKS.items()}
        return dataclasses.replace(self, objective=objective, **blocks)

    def batch_size(self, num_blocks: int, num_resolutions: int) -> int:
        """Magenta's `get_batch_size`: the schedule padded at the front, indexed by resolution."""
        sched = list(self.batch_size_schedule)
        sched = [sched[0]] * (num_resolutions - len(sched)) + sched
        return sched[num_blocks - 1]

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["batch_size_schedule"] = list(self.batch_size_schedule)
        return {k: v for k, v in d.items() if not (k in SETTINGS_BLOCKS and v is None)}

    @classmethod
    def from_dict(cls, data: Mapping, version: int = CONFIG_FORMAT_VERSION) -> "TrainConfig":
        """From `to_dict`'s form; version 1's flat settings are moved into the objective's blocks (settings of
        blocks the objective does not read, which version 1 stored for every run, are dropped)."""
        data = dict(data)
        if version < 2:
            objective = data.get("objective", "gan")
            blocks: dict[str, dict] = {b: {} for b in OBJECTIVE_BLOCKS.get(objective, ())}
            for key in [k for k in data if k in BLOCK_OF_KEY]:
                value = data.pop(key)
                if BLOCK_OF_KEY[key] in blocks:
                    blocks[BLOCK_OF_KEY[key]][key] = value
            data.update(blocks)
        unknown = set(data) - set(TRAIN_KEYS)
        for block, settings in SETTINGS_BLOCKS.items():
            if isinstance(data.get(block), Mapping):
                names = {f.name for f in dataclasses.fields(settings)}
                unknown |= {f"{block}.{k}" for k in data[block] if k not in names}
        if unknown:
            raise UserError(f"unknown training config keys: {sorted(unknown)} (written by a newer GANSpaceSynth?)")
        data.setdefault("gan", None)  # a version-2 file names every block its objective reads
        return cls(**data)


#: Training presets; each names the architecture preset of model/config.py it trains.
TRAIN_PRESETS: dict[str, TrainConfig] = {
    # Magenta's experiment.json for the published model: 11 M images at batch 8 (days on one GPU).
    "mel_prog_hires": TrainConfig(),
    # About 10 minutes on one H100 (see docs/training.md): a wall-clock schedule that gives the
    # high-resolution stages most of the time, large batches that keep the GPU busy at low resolution,
    # and image counts (used only if train_time_limit is set to none) sized for the same budget.
    "fast": TrainConfig(
        stable_stage_num_images=150_000,
        transition_stage_num_images=100_000,
        total_num_images=3_000_000,
        batch_size_schedule=(64, 64, 64, 64, 32, 32, 32),
        train_time_limit=540.0,
        train_time_stage_multiplier=1.25,
        save_summaries_num_images=100_000,
        checkpoint_every_seconds=120.0,
        log_every_steps=50,
    ),
    # A model with a range of timbres from one CPU core in 160 minutes (docs/reports/timbre-recipe/ has the
    # curves that chose it). First the reconstruction objective (training/objectives/reconstruction.py) with a
    # Gaussian code per instrument, over a timed progressive schedule laid over 90 minutes (each stage 1.4x the
    # time of the one before; the last starts at 63.6 min), where it learns pitch and a rough timbre per code;
    # from 100 minutes a critic joins (`glo+gan`) for the last 60, judging notes at 16 x 512: random latents must
    # then make notes it cannot tell from real ones, which is what widens their timbre. Random latents are the
    # codes' (`latent_prior: codes`, stored in the model file): what the critic judges is what users draw, and
    # it reached the same FID in half the steps with a third more varied notes than on N(0, I). A profile loss on
    # the instantaneous frequency below 5 kHz keeps their harmonics where their pitch puts them meanwhile (above
    # 5 kHz the real notes' mean IF is noise, and holding the fakes to it darkened them). Checkpoints every 5
    # minutes, all kept (learning curves).
    "cpu": TrainConfig(
        objective="glo+gan",
        reconstruction=ReconstructionSettings(latent_code_learning_rate=1e-2, latent_code_label="instrument",
                                              latent_code_dropout=0.0, latent_code_kl_weight=3e-4,
                                              latent_prior="codes"),
        gan=GanSettings(discriminator_learning_rate=2e-3, gradient_penalty_interval=4, critic_num_blocks=5,
                        profile_loss_weight=1.0, profile_loss_channels="if", profile_loss_max_hz=5000.0),
        adversarial=AdversarialSettings(adversarial_weight=0.5, adversarial_start=6000.0),
        stable_stage_num_images=8_000,
        transition_stage_num_images=8_000,
        total_num_images=96_000,
        batch_size_schedule=(32, 32, 32, 32, 16, 16),
        train_time_limit=9600.0,
        train_time_schedule=5400.0,
        train_time_stage_multiplier=1.4,
        generator_learning_rate=2e-3,
        ema_decay=0.99,
        save_summaries_num_images=50_000,
        checkpoint_every_seconds=300.0,
        keep_checkpoints=40,
    ),
    # Trying the pipeline on a CPU in minutes (and the tests).
    "tiny": TrainConfig(
        stable_stage_num_images=8_000,
        transition_stage_num_images=8_000,
        total_num_images=96_000,
        batch_size_schedule=(32, 32, 32, 32, 16, 16),
        generator_learning_rate=2e-3,
        gan=GanSettings(discriminator_learning_rate=2e-3),
        ema_decay=0.99,
        save_summaries_num_images=8_000,
        checkpoint_every_seconds=120.0,
    ),
}

#: Magenta experiment.json keys with no effect here (paths, cluster settings, TF-only switches).
MAGENTA_IGNORED = {
    "dataset_name", "train_data_path", "train_root_dir", "master", "ps_tasks", "task", "debug_hook",
    "d_fn", "g_fn", "data_type", "data_normalizer", "normalizer_margin", "normalizer_num_examples",
}
#: Magenta keys this implementation supports only at one value.
MAGENTA_FIXED = {"scale_mode": "ALL", "simple_arch": False, "gen_gl_consistency_loss_weight": 0.0}
#: Magenta keys describing the representation: they must match the dataset's spectral config.
SPECTRAL_KEYS = ("sample_rate", "audio_length", "mag_normalizer_a", "mag_normalizer_b", "p_normalizer_a", "p_normalizer_b")

TRAIN_KEYS = {f.name: f for f in dataclasses.fields(TrainConfig)}
#: Settings `--set` takes by name: the shared ones and every block's (a block's may also be written `block.key`).
SETTING_KEYS = (set(TRAIN_KEYS) - set(SETTINGS_BLOCKS)) | set(BLOCK_OF_KEY)
MODEL_KEYS = {f.name for f in dataclasses.fields(ModelConfig)} - {"conditions", "spectral"}


def parse_value(key: str, text: str) -> Any:
    """A `--set key=value` value: JSON when it parses (numbers, lists, true, null), else the string."""
    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    try:
        return json.loads(text)
    except ValueError:
        if "," in text:  # batch_size_schedule=64,32
            return [parse_value(key, t) for t in text.split(",")]
        return text


def _coerce(key: str, value: Any, default: Any) -> Any:
    if value is None or default is None:
        return value
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                return {"true": True, "false": False, "1": True, "0": False}[value.lower()]
            return bool(value)
        if isinstance(default, int):
            if float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            return tuple(int(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
    except (ValueError, TypeError, KeyError):
        raise UserError(f"{key}: cannot use {value!r} (expected {type(default).__name__})") from None
    return value


@dataclass
class ResolvedConfig:
    """Everything a run needs besides the data: preset name, training and architecture configs."""

    preset: str
    train: TrainConfig
    model: ModelConfig
    spectral_checks: dict[str, Any] = field(default_factory=dict)  # Magenta representation keys to verify

    def to_dict(self) -> dict:
        return {"format": CONFIG_FORMAT, "format_version": CONFIG_FORMAT_VERSION, "preset": self.preset,
                "train": self.train.to_dict(), "model": self.model.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping) -> "ResolvedConfig":
        version = check_format(data, CONFIG_FORMAT, CONFIG_FORMAT_VERSION, "GANSpaceSynth training config")
        return cls(preset=data["preset"], train=TrainConfig.from_dict(data["train"], version),
                   model=ModelConfig.from_dict(dict(data["model"])))


def _flat_setting(key: str) -> str:
    """`gan.gradient_penalty_weight` → `gradient_penalty_weight` (the block must be the key's own)."""
    if "." not in key:
        return key
    block, name = key.split(".", 1)
    if block in SETTINGS_BLOCKS and BLOCK_OF_KEY.get(name) == block:
        return name
    raise UserError(f"unknown setting {key!r}")


def _apply(base: TrainConfig, values: Mapping[str, Any]) -> TrainConfig:
    """`base` with flat settings changed: shared ones on the config, the others in their objective's block."""
    objective = base.objective
    shared: dict[str, Any] = {}
    blocks: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        block = BLOCK_OF_KEY.get(key)
        if block is None:
            shared[key] = _coerce(key, value, getattr(base, key))
        elif block not in OBJECTIVE_BLOCKS[objective]:
            users = [o for o, b in OBJECTIVE_BLOCKS.items() if block in b]
            raise UserError(f"{key} is a setting of the {' and '.join(users)} objective(s); this run's objective is "
                            f"{objective} (set objective=… to change it)")
        else:
            blocks.setdefault(block, {})[key] = _coerce(key, value, getattr(getattr(base, block), key))
    changed = {b: dataclasses.replace(getattr(base, b), **v) for b, v in blocks.items()}
    return dataclasses.replace(base, **shared, **changed)


def resolve_config(preset: str = "tiny", overrides: Mapping[str, Any] | None = None,
                   config_file: str | Path | None = None) -> ResolvedConfig:
    """Preset, then a JSON config file (ours, or Magenta's flat experiment.json), then overrides."""
    if preset not in TRAIN_PRESETS:
        raise UserError(f"unknown preset {preset!r}; choose one of {', '.join(TRAIN_PRESETS)}")
    values: dict[str, Any] = {}
    if config_file is not None:
        data = read_json(config_file)
        if data.get("format") == CONFIG_FORMAT:
            preset = data.get("preset", preset)
            version = check_format(data, CONFIG_FORMAT, CONFIG_FORMAT_VERSION, "GANSpaceSynth training config",
                                   config_file)
            values.update(TrainConfig.from_dict(data["train"], version).to_dict())
            for block in SETTINGS_BLOCKS:
                values.update(values.pop(block, None) or {})
            values.update({k: v for k, v in data["model"].items() if k in MODEL_KEYS})
        else:
            values.update(data)
    values.update({_flat_setting(k): v for k, v in (overrides or {}).items()})

    train_changes: dict[str, Any] = {}
    model_changes: dict[str, Any] = {}
    spectral_checks: dict[str, Any] = {}
    base_model = MODEL_PRESETS[preset]
    for key, value in values.items():
        if key in SETTING_KEYS:
            train_changes[key] = value
        elif key in MODEL_KEYS:
            model_changes[key] = _coerce(key, value, getattr(base_model, key))
        elif key in SPECTRAL_KEYS:
            spectral_checks[key] = value
        elif key in MAGENTA_IGNORED:
            continue
        elif key in MAGENTA_FIXED:
            if value != MAGENTA_FIXED[key]:
                raise UserError(f"{key}={value!r} is not supported (only {MAGENTA_FIXED[key]!r})")
        else:
            known = sorted(SETTING_KEYS | MODEL_KEYS)
            raise UserError(f"unknown setting {key!r}; settings are: {', '.join(known)}")
    base_train = TRAIN_PRESETS[preset]
    objective = train_changes.pop("objective", base_train.objective)
    train = _apply(base_train.for_objective(objective), train_changes)
    model = base_model.replace(**model_changes) if model_changes else base_model
    train.validate(model.num_resolutions)
    return ResolvedConfig(preset=preset, train=train, model=model, spectral_checks=spectral_checks)


def with_overrides(train: TrainConfig, overrides: Mapping[str, Any]) -> TrainConfig:
    """A copy of `train` with some settings changed (values coerced to the field types)."""
    overrides = {_flat_setting(k): v for k, v in overrides.items()}
    unknown = sorted(set(overrides) - SETTING_KEYS)
    if unknown:
        raise UserError(f"unknown training settings: {', '.join(unknown)}")
    return _apply(train, overrides)


def parse_overrides(items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """`key=value` strings → dict (values parsed as JSON where possible)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = parse_value(key.strip(), value.strip())
    return out
