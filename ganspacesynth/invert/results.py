"""What `invert` is asked for and what it finds: the settings, the notes of a recording (`Target`, `Skipped`) and
the inverted notes with their measurements (`InvertedNote`, `Inversion`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import UserError


@dataclass(frozen=True)
class InvertSettings:
    """How hard `invert` looks. The defaults take about 8 s of one core per note of the bundled model (11
    instrument families searched), plus about 2 s for the comparison with 256 random latents."""

    guesses: int = 16  # random latents per combination of searched conditions
    restarts: int = 4  # latents refined at once
    random_starts: int = 1  # of those, plain random latents (the others: the best guesses)
    steps: int = 50  # Adam steps
    learning_rate: float = 0.3
    prior_weight: float = 0.5  # of (|z|²/L − 1)², for N(0, I) models only (codes: none, search.refine)
    stft_weight: float = 0.1  # of the multi-resolution STFT distance beside the log-mel distance
    baseline: int = 256  # random latents of the comparison (0: none)
    seed: int = 0
    # The closest candidate whose note pYIN hears at the note's pitch wins, if it is within this factor of the
    # closest distance (the generator misses the pitch of a few latents; 1: the closest wins, whatever its pitch).
    pitch_slack: float = 1.5
    # With components: Adam steps on the note's noz coefficients (0: their projection from the latent), each kept
    # within ±coefficient_limit standard deviations (the web page's sliders reach ±4).
    coefficient_steps: int = 100
    coefficient_learning_rate: float = 0.05
    coefficient_limit: float = 4.0

    def __post_init__(self):
        for name in ("guesses", "restarts", "steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= 100_000:
                raise UserError(f"{name} must be a whole number from 1 to 100000, not {value!r}")
        for name in ("random_starts", "baseline", "seed", "coefficient_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise UserError(f"{name} must be a whole number >= 0, not {value!r}")
        if self.random_starts > self.restarts:
            raise UserError(f"random_starts ({self.random_starts}) cannot exceed restarts ({self.restarts})")
        if (isinstance(self.pitch_slack, bool) or not isinstance(self.pitch_slack, (int, float, np.integer, np.floating))
                or not 1.0 <= self.pitch_slack <= 100.0):
            raise UserError(f"pitch_slack must be a number from 1 to 100, not {self.pitch_slack!r}")
        if (isinstance(self.coefficient_limit, bool)
                or not isinstance(self.coefficient_limit, (int, float, np.integer, np.floating))
                or not 0.0 < self.coefficient_limit <= 1000.0):
            raise UserError(f"coefficient_limit must be a number above 0 and at most 1000, "
                            f"not {self.coefficient_limit!r}")
        for name in ("learning_rate", "prior_weight", "stft_weight", "coefficient_learning_rate"):
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))
                    or not math.isfinite(value) or value < 0):
                raise UserError(f"{name} must be a finite number >= 0, not {value!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Target:
    """One note of a recording, ready to invert: `audio` is the model's note length at its sample rate."""

    audio: np.ndarray
    source: str
    start_s: float
    pitch: int | None
    pitch_source: str  # "pyin" | "given" | "none" (the model has no pitch condition)
    f0_hz: float | None
    pitch_confidence: float | None
    conditions: dict  # the given ones
    warnings: list[str] = field(default_factory=list)

    def where(self, notes_in_file: int = 1) -> str:
        return self.source if notes_in_file == 1 else f"{self.source} at {self.start_s:.2f} s"


@dataclass
class Skipped:
    source: str
    start_s: float
    reason: str

    def message(self) -> str:
        return f"{self.source} (note at {self.start_s:.2f} s): {self.reason}"


@dataclass
class InvertedNote:
    target: Target
    z: np.ndarray  # [L]
    pitch: int | None
    conditions: dict  # every condition the note was made with (given and searched)
    searched: list[str]  # the names of the searched conditions
    distance_db: float
    first_guess_db: float
    baseline_db: float | None
    floor_db: float
    seconds: float  # the inversion (wall clock; pitch analysis excluded)
    cpu_seconds: float  # the same in this process's CPU time
    winner: str = ""  # which start the result came from
    compare_seconds: float = 0.0  # the baseline and floor measurements
    reconstruction: np.ndarray | None = None  # raw waves [N]
    reconstruction_f0_hz: float | None = None
    reconstruction_midi: int | None = None
    coefficients: np.ndarray | None = None  # [K] noz coefficients of the components
    noz_distance_db: float | None = None  # of the note noz plays from `coefficients`
    noz_midi: int | None = None  # pYIN of that note
    coefficient_seconds: float = 0.0  # refining the coefficients (wall clock)
    warnings: list[str] = field(default_factory=list)

    def report(self, index: int) -> dict:
        t = self.target
        kept = None if self.pitch is None else self.reconstruction_midi == self.pitch
        return {
            "index": index, "file": t.source, "start_s": round(t.start_s, 4),
            "pitch": self.pitch, "pitch_source": t.pitch_source,
            "f0_hz": _round(t.f0_hz, 2), "pitch_confidence": _round(t.pitch_confidence, 3),
            "conditions": self.conditions, "searched_conditions": self.searched,
            "distance_db": _round(self.distance_db), "baseline_db": _round(self.baseline_db),
            "ratio_to_baseline": _round(None if not self.baseline_db else self.distance_db / self.baseline_db),
            "first_guess_db": _round(self.first_guess_db), "floor_db": _round(self.floor_db),
            "noz_distance_db": _round(self.noz_distance_db), "noz_midi": self.noz_midi,
            "noz_ratio_to_baseline": _round(None if not self.baseline_db or self.noz_distance_db is None
                                            else self.noz_distance_db / self.baseline_db),
            "coefficient_seconds": _round(self.coefficient_seconds, 2),
            "reconstruction_f0_hz": _round(self.reconstruction_f0_hz, 2),
            "reconstruction_midi": self.reconstruction_midi, "pitch_kept": kept,
            "result_from": self.winner,
            "seconds": _round(self.seconds, 2), "cpu_seconds": _round(self.cpu_seconds, 2),
            "compare_seconds": _round(self.compare_seconds, 2),
            "warnings": list(self.target.warnings) + list(self.warnings),
        }


@dataclass
class Inversion:
    """The notes found (in order) and the ones left out."""

    notes: list[InvertedNote]
    skipped: list[Skipped]
    settings: InvertSettings
    components: object | None = None  # the Components the coefficients are of

    @property
    def latents(self) -> np.ndarray:
        return np.stack([n.z for n in self.notes]).astype(np.float32)

    @property
    def coefficients(self) -> np.ndarray | None:
        if not self.notes or self.notes[0].coefficients is None:
            return None
        return np.stack([n.coefficients for n in self.notes]).astype(np.float32)

    def summary(self) -> dict:
        d = np.array([n.distance_db for n in self.notes])
        b = np.array([np.nan if n.baseline_db is None else n.baseline_db for n in self.notes])
        f = np.array([n.floor_db for n in self.notes])
        kept = [n.reconstruction_midi == n.pitch for n in self.notes if n.pitch is not None]
        noz = np.array([n.noz_distance_db for n in self.notes if n.noz_distance_db is not None])
        if len(noz) != len(d):
            noz = np.array([])
        return {
            "notes": len(self.notes), "skipped": len(self.skipped),
            "median_distance_db": _round(float(np.median(d)) if len(d) else None),
            "median_baseline_db": _round(float(np.nanmedian(b)) if np.isfinite(b).any() else None),
            "median_ratio_to_baseline": _round(float(np.nanmedian(d / b)) if np.isfinite(b).any() else None),
            "median_floor_db": _round(float(np.median(f)) if len(f) else None),
            # the notes noz plays from their fitted coefficients (with components)
            "median_noz_distance_db": _round(float(np.median(noz)) if len(noz) else None),
            "median_noz_ratio_to_baseline": _round(float(np.nanmedian(noz / b)) if len(noz) and np.isfinite(b).any()
                                                   else None),
            "pitch_kept_fraction": _round(float(np.mean(kept)) if kept else None),
            "median_seconds_per_note": _round(float(np.median([n.seconds for n in self.notes])), 2)
            if self.notes else None,
            "median_cpu_seconds_per_note": _round(float(np.median([n.cpu_seconds for n in self.notes])), 2)
            if self.notes else None,
        }


def _round(value, digits: int = 3):
    return None if value is None or not math.isfinite(value) else round(float(value), digits)
