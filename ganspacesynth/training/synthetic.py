"""A small real dataset made on the fly: pitched tones of three timbre families, as Mel-IF spectrograms.

For tests, benchmarks and trying training without a dataset folder: `sine` (one partial), `square`
(odd harmonics, 1/k) and `reed` (a noisy, breathy tone: harmonics plus noise shaped around them),
each with a short attack and an exponential decay.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..audio.spectral import MelIF, SpectralConfig
from .data import TrainingData, in_memory

FAMILIES = ("sine", "square", "reed")
#: NSynth family names the synthetic families are filed under in a dataset folder.
NSYNTH_FAMILY = {"sine": "flute", "square": "synth_lead", "reed": "reed"}


def tone(family: str, pitch: int, spectral: SpectralConfig, rng: np.random.Generator) -> np.ndarray:
    """One note (float32 [audio_length]) of a timbre family at a MIDI pitch, with a little randomness."""
    sr, n = spectral.sample_rate, spectral.audio_length
    t = np.arange(n) / sr
    f0 = 440.0 * 2 ** ((pitch - 69) / 12) * (1 + rng.normal(0, 0.002))
    phase = rng.uniform(0, 2 * np.pi)
    if family == "sine":
        wave = np.sin(2 * np.pi * f0 * t + phase)
    elif family == "square":
        ks = [k for k in range(1, 40, 2) if k * f0 < sr / 2]
        wave = sum(np.sin(2 * np.pi * k * f0 * t + k * phase) / k for k in ks)
    elif family == "reed":
        ks = [k for k in range(1, 12) if k * f0 < sr / 2]
        wave = sum(np.sin(2 * np.pi * k * f0 * t + phase * k) / k**0.5 for k in ks)
        wave = 0.5 * wave + 2.0 * rng.standard_normal(n) * (0.5 + 0.5 * np.sin(2 * np.pi * f0 * t))
    else:
        raise ValueError(f"unknown family {family!r}")
    attack = np.minimum(t / 0.01, 1.0)
    decay = np.exp(-t * rng.uniform(1.0, 3.0))
    wave = wave * attack * decay
    return (0.5 * wave / (np.abs(wave).max() + 1e-9)).astype(np.float32)


def synthetic_data(spectral: SpectralConfig, pitches: Sequence[int] = (36, 48, 60, 72),
                   families: Sequence[str] = FAMILIES, per_class: int = 8, seed: int = 0) -> TrainingData:
    """`per_class` notes for every (pitch, family), labelled `pitch` and `instrument_family`."""
    waves, pitch_idx, family_idx = _tones(spectral, pitches, families, per_class, seed)
    with torch.no_grad():
        specs = MelIF(spectral).waves_to_specgrams(torch.from_numpy(np.stack(waves)))
    vocab = {"pitch": [str(p) for p in pitches], "instrument_family": list(families)}
    data = in_memory(specs.float(), {"pitch": pitch_idx, "instrument_family": family_idx}, vocab, spectral)
    data.source = f"synthetic:{len(waves)}"
    return data


def _tones(spectral, pitches, families, per_class, seed):
    rng = np.random.default_rng(seed)
    waves, pitch_idx, family_idx = [], [], []
    for pi, pitch in enumerate(pitches):
        for fi, family in enumerate(families):
            for _ in range(per_class):
                waves.append(tone(family, pitch, spectral, rng))
                pitch_idx.append(pi)
                family_idx.append(fi)
    return waves, pitch_idx, family_idx


def write_synthetic_dataset(out_dir, spectral: SpectralConfig, pitches: Sequence[int] = (36, 48, 60, 72),
                            families: Sequence[str] = FAMILIES, per_class: int = 4, seed: int = 0) -> None:
    """The same notes as a dataset folder (data/shards.py format, all in the train split)."""
    from ..data.labels import Note
    from ..data.shards import build_dataset

    waves, pitch_idx, family_idx = _tones(spectral, pitches, families, per_class, seed)
    notes = [Note(id=f"{families[f]}-{pitches[p]}-{i:03d}", instrument=f"synthetic_{families[f]}",
                  pitch=int(pitches[p]), source=("array", w), velocity=100, instrument_family=NSYNTH_FAMILY[families[f]],
                  instrument_source="synthetic")
             for i, (w, p, f) in enumerate(zip(waves, pitch_idx, family_idx))]
    build_dataset(out_dir, notes, spectral, built_from={"synthetic": True, "seed": seed}, valid_fraction=0.0,
                  seed=seed, workers=1, progress=False)
