"""A model's output gain, measured against its training data (`ganspacesynth calibrate`).

A GAN does not learn its data's loudness exactly: the bundled model's notes sat 13 dB under its SoundFont set
(median RMS −40.9 against −29.2 dBFS). The gain that closes the gap is measured once and stored in the model
file (`info.output_gain_db`, model/files.py); `Synth` applies it to every note (audio/levels.finish_notes).

Measure: the median RMS (dBFS, whole notes) of the dataset's real notes, minus the median RMS of the model's raw
notes for random latents (seeded) with labels drawn from the same notes (pitch, and every other condition the
model has). Medians, so a few near-silent generated notes do not pull the gain up.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .audio.levels import MAX_GAIN_DB, rms_dbfs
from .errors import UserError

#: Notes generated (and real notes drawn for their labels) by default.
DEFAULT_COUNT = 200


def _real_rms(dataset, chunk: int = 512) -> np.ndarray:
    out = []
    for start in range(0, len(dataset), chunk):
        rows = np.arange(start, min(len(dataset), start + chunk))
        out.append(rms_dbfs(dataset.audio.take(rows).astype(np.float32) / 32768.0))
    return np.concatenate(out)


def _labels(synth, examples: list[dict]) -> tuple[list[int], dict[str, list]]:
    """The model's labels for dataset notes: pitch, and each other condition the dataset names (else skipped)."""
    pitches = [int(e["pitch"]) for e in examples]
    conditions: dict[str, list] = {}
    for spec in synth.conditions.specs:
        if spec.name == "pitch":
            continue
        values = [e.get(spec.name) for e in examples]
        if spec.kind == "categorical":
            values = [str(v) for v in values]
            if all(v in spec.classes for v in values):
                conditions[spec.name] = values
        else:
            values = [[str(q) for q in (v or [])] for v in values]
            if all(q in spec.classes for v in values for q in v):
                conditions[spec.name] = values
    return pitches, conditions


def measure_output_gain(synth, dataset_dir: str | os.PathLike, count: int = DEFAULT_COUNT, seed: int = 0,
                        batch_size: int = 32, split: str = "all") -> dict:
    """The gain (dB) that brings `synth`'s notes to the level of the dataset's notes, and how it was measured.

    Returns {"output_gain_db", "target_rms_dbfs" (real median), "raw_rms_dbfs" (generated median), "count",
    "seed", "real_notes", "dataset", "measure"}. The generated notes are raw (no gain, whatever `synth` is set
    to); their labels are those of `count` real notes drawn with `seed` among the ones the model can play.
    """
    from .data.dataset import SpectrogramDataset

    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise UserError(f"count must be a whole number >= 1, not {count!r}")
    data = SpectrogramDataset(dataset_dir, split=split)
    spectral, ours = data.spectral, synth.config.spectral
    if (spectral.sample_rate, spectral.audio_length) != (ours.sample_rate, ours.audio_length):
        raise UserError(f"dataset {dataset_dir} holds {spectral.audio_length}-sample notes at {spectral.sample_rate} "
                        f"Hz, the model makes {ours.audio_length} at {ours.sample_rate}: calibrate with the set it was "
                        f"trained on (or one built with the same --preset)")
    real = _real_rms(data)
    playable = [i for i, e in enumerate(data.examples) if int(e.get("pitch", -1)) in set(synth.pitches)]
    if not playable:
        raise UserError(f"dataset {dataset_dir} has no notes in the model's pitch range "
                        f"{synth.pitches[0]}..{synth.pitches[-1]}")
    rng = np.random.default_rng(seed)
    rows = rng.choice(playable, size=count, replace=len(playable) < count)
    pitches, conditions = _labels(synth, [data.examples[int(r)] for r in rows])
    z = synth.random_z(count, seed)
    levels = []
    for start in range(0, count, max(1, batch_size)):
        sl = slice(start, min(count, start + max(1, batch_size)))
        waves = synth.generate(z[sl], pitch=pitches[sl], conditions={k: v[sl] for k, v in conditions.items()} or None,
                               batch_size=batch_size, raw=True)
        levels.append(rms_dbfs(waves))
    generated = np.concatenate(levels)
    target = float(np.median(real))
    raw = float(np.median(generated))
    gain = float(np.clip(target - raw, -MAX_GAIN_DB, MAX_GAIN_DB))
    return {
        "output_gain_db": round(gain, 2),
        "target_rms_dbfs": round(target, 2),
        "raw_rms_dbfs": round(raw, 2),
        "count": int(count),
        "seed": int(seed),
        "conditions": sorted(conditions),
        "real_notes": int(len(real)),
        "dataset": Path(dataset_dir).resolve().name,
        "measure": "median RMS (dBFS) of whole notes: real notes of the dataset minus raw generated notes",
    }


def calibrate_model_file(model, dataset_dir: str | os.PathLike, out: str | os.PathLike | None = None, *,
                         count: int = DEFAULT_COUNT, seed: int = 0, device: str | None = "cpu",
                         precision: str = "float32", batch_size: int = 32) -> tuple[Path, dict]:
    """Measure a model file's output gain against a dataset and write it into the file's info (atomically, to
    `out` or in place; the weights stay byte for byte the same). Returns (path written, measurement)."""
    from .model.files import OUTPUT_GAIN_KEY, resolve_model_path, set_model_info
    from .synth import Synth

    path = resolve_model_path(model)
    synth = Synth.load(path, device=device, precision=precision)
    result = measure_output_gain(synth, dataset_dir, count=count, seed=seed, batch_size=batch_size)
    record = {k: v for k, v in result.items() if k != "output_gain_db"}
    written = set_model_info(path, {OUTPUT_GAIN_KEY: result["output_gain_db"], "calibration": record}, out)
    return written, result
