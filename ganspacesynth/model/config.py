"""Model configuration: a dataclass stored inside every model file. Names follow Magenta's hparams."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from ..audio.spectral import SpectralConfig
from ..conditions import ConditionSpec

#: MIDI pitches GANSynth was trained on (NSynth filtered to 24..84).
DEFAULT_PITCHES = tuple(range(24, 85))


def pitch_condition(pitches=DEFAULT_PITCHES) -> ConditionSpec:
    return ConditionSpec("pitch", "categorical", tuple(str(int(p)) for p in pitches))


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the progressive generator/discriminator and the representation they model.

    Defaults are GANSynth's `mel_prog_hires`. Channels of block b: min(fmap_base / 2^(b·fmap_decay), fmap_max).
    """

    latent_vector_size: int = 256
    start_height: int = 2
    start_width: int = 16
    num_resolutions: int = 7
    scale_base: int = 2
    fmap_base: int = 4096
    fmap_decay: float = 1.0
    fmap_max: int = 256
    kernel_size: int = 3
    to_rgb_activation: str = "tanh"
    conditions: tuple[ConditionSpec, ...] = field(default_factory=lambda: (pitch_condition(),))
    spectral: SpectralConfig = field(default_factory=SpectralConfig)

    def __post_init__(self):
        conds = tuple(c if isinstance(c, ConditionSpec) else ConditionSpec(**c) for c in self.conditions)
        object.__setattr__(self, "conditions", conds)
        if isinstance(self.spectral, dict):
            object.__setattr__(self, "spectral", SpectralConfig.from_dict(self.spectral))

    # -- derived -------------------------------------------------------------------------------
    def num_filters(self, block_id: int) -> int:
        """Magenta's `_num_filters_fn` (block ids start at 1)."""
        return min(int(self.fmap_base / (2.0 ** (block_id * self.fmap_decay))), self.fmap_max)

    def resolution(self, block_id: int) -> tuple[int, int]:
        scale = self.scale_base ** (block_id - 1)
        return (self.start_height * scale, self.start_width * scale)

    def largest_activation(self, up_to_block: int | None = None) -> int:
        """Values in one note's largest layer activation (C·H·W) among blocks 1..up_to_block (default: all)."""
        last = up_to_block or self.num_resolutions
        return max(self.num_filters(b) * self.resolution(b)[0] * self.resolution(b)[1] for b in range(1, last + 1))

    @property
    def output_shape(self) -> tuple[int, int]:
        return self.resolution(self.num_resolutions)

    @property
    def condition_dim(self) -> int:
        return sum(c.size for c in self.conditions)

    def condition(self, name: str) -> ConditionSpec | None:
        for c in self.conditions:
            if c.name == name:
                return c
        return None

    @property
    def pitches(self) -> list[int]:
        spec = self.condition("pitch")
        return [int(p) for p in spec.classes] if spec else []

    def validate(self) -> None:
        self.check_bounds()
        self.spectral.validate()
        if self.output_shape != self.spectral.shape:
            raise ValueError(
                f"generator output {self.output_shape} does not match the spectrogram shape {self.spectral.shape}"
            )
        if self.to_rgb_activation not in ("tanh", "linear"):
            raise ValueError(f"to_rgb_activation must be tanh or linear, not {self.to_rgb_activation!r}")
        names = [c.name for c in self.conditions]
        if len(set(names)) != len(names):
            raise ValueError("duplicate condition names")

    #: (low, high) of every integer field: far beyond any real GANSynth, they refuse a crafted or corrupted
    #: config (say fmap_base=1e9) before a single weight is allocated.
    INT_BOUNDS = {"latent_vector_size": (1, 4096), "start_height": (1, 64), "start_width": (1, 64),
                  "num_resolutions": (1, 12), "scale_base": (2, 4), "fmap_base": (1, 1 << 20),
                  "fmap_max": (1, 4096), "kernel_size": (1, 9)}
    MAX_PARAMETERS = 200_000_000  # 27x mel_prog_hires (7.3 M)
    MAX_ACTIVATION = 1 << 26      # values in one note's largest layer; 16x mel_prog_hires

    def check_bounds(self) -> None:
        """Refuse (ValueError) sizes no model should have, using only arithmetic on the config."""
        for name, (lo, hi) in self.INT_BOUNDS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ValueError(f"{name} must be a whole number in {lo}..{hi}, not {value!r}")
        if isinstance(self.fmap_decay, bool) or not isinstance(self.fmap_decay, (int, float)) \
                or not 0 < self.fmap_decay <= 8:
            raise ValueError(f"fmap_decay must be a number in (0, 8], not {self.fmap_decay!r}")
        h, w = self.output_shape
        if h * w > 1 << 22:
            raise ValueError(f"output {h}x{w} is too large")
        if self.largest_activation() > self.MAX_ACTIVATION:
            raise ValueError(f"a layer of {self.largest_activation()} values per note is too large")
        k2 = self.kernel_size ** 2
        params = self.latent_vector_size + sum(c.size for c in self.conditions)
        params = params * self.num_filters(1) * self.start_height * self.start_width
        for b in range(1, self.num_resolutions + 1):
            c_in, c_out = self.num_filters(max(1, b - 1)), self.num_filters(b)
            params += (c_in + c_out) * c_out * k2 + c_out * 2
        if params > self.MAX_PARAMETERS:
            raise ValueError(f"about {params / 1e6:.0f} M generator weights is too many "
                             f"(the limit is {self.MAX_PARAMETERS / 1e6:.0f} M)")
        if sum(c.size for c in self.conditions) > 100_000:
            raise ValueError("too many condition classes")

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["conditions"] = [c.to_dict() for c in self.conditions]
        d["spectral"] = self.spectral.to_dict()
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**data)

    def replace(self, **changes) -> "ModelConfig":
        return dataclasses.replace(self, **changes)


def tiny_spectral() -> SpectralConfig:
    """A ~1 s, 128 × 256 representation for tests (nfft 512, hop 128)."""
    return SpectralConfig(audio_length=16384, n_fft=512, hop_length=128, frames=128)


def cpu_spectral() -> SpectralConfig:
    """~1 s at GANSynth's frequency resolution: 32 × 1024 (nfft 2048, hop 512)."""
    return SpectralConfig(audio_length=16384, n_fft=2048, hop_length=512, frames=32)


PRESETS: dict[str, ModelConfig] = {
    # GANSynth's best published model.
    "mel_prog_hires": ModelConfig(),
    # Same representation, a quarter of the channels: trains an order of magnitude faster (see docs/training.md).
    "fast": ModelConfig(fmap_base=2048, fmap_max=128),
    # Trains on one CPU core in two hours (docs/training.md): ~1 s notes with GANSynth's own frequency
    # resolution (nfft 2048, hop 512: 32 frames × 1024 bins, `mel_prog_hires` cut to a quarter of its length),
    # channels 32 … 8, a 64-dimensional latent. 2048 points resolve the harmonics of MIDI 24 (32.7 Hz, 4 bins
    # apart); at 128 × 256 (nfft 512) notes below MIDI 42 keep their pitch only in frame-to-frame detail of
    # the IF channel, which a model that blurs loses (docs/training.md, "Why 32 × 1024").
    "cpu": ModelConfig(
        latent_vector_size=64,
        start_height=1,
        start_width=32,
        num_resolutions=6,
        fmap_base=512,
        fmap_max=32,
        spectral=cpu_spectral(),
    ),
    # For tests and trying the pipeline: ~1 s notes at 128 × 256, a few channels.
    "tiny": ModelConfig(
        latent_vector_size=32,
        start_height=4,
        start_width=8,
        num_resolutions=6,
        fmap_base=128,
        fmap_max=16,
        spectral=tiny_spectral(),
    ),
}


def preset(name: str, conditions: tuple[ConditionSpec, ...] | None = None) -> ModelConfig:
    """A copy of a named preset, optionally with other conditions."""
    if name not in PRESETS:
        from ..errors import UserError

        raise UserError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    cfg = PRESETS[name]
    if conditions is not None:
        cfg = cfg.replace(conditions=tuple(conditions))
    cfg.validate()
    return cfg
