"""Timbre diversity of a reconstruction-trained run's notes with latents drawn from N(0, I) and from its own codes.

    python scripts/latent_source_diversity.py RUN [RUN ...]

For each run (a training run folder whose objective has latent codes): 30 notes at pitch 48 and 30 at 60 with
random families, latents drawn (a) from N(0, I) as `Synth.random_z` does and (b) from randomly chosen codes
(their Gaussians where the codes have scales) with random families, and (c) from randomly chosen codes' means
with their own instruments' families (what the generator makes of the instruments it was trained to
reconstruct: its capacity, whatever the sampling); mean pairwise log-mel distance in dB (evaluate/timbre.py). Equal
numbers say the sampling is not what limits diversity. Prints one JSON line per run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ganspacesynth.evaluate.timbre import log_mel_db, mean_pairwise_distance
from ganspacesynth.synth import Synth
from ganspacesynth.training.checkpoint import latest_checkpoint


def diversity(run: Path, pitches=(48, 60), count: int = 30, seed: int = 0) -> dict:
    synth = Synth.load(run / "model.safetensors", device="cpu", precision="float32")
    ckpt = latest_checkpoint(run).renamed({"discriminator": "codes", "opt_g": "generator", "opt_d": "codes"})
    codes = ckpt.module_state("codes")
    mean = codes["codes"].numpy()
    scale = np.exp(codes["log_scale"].numpy()) if "log_scale" in codes else np.zeros_like(mean)
    families = list(synth.config.condition("instrument_family").classes)
    rng = np.random.default_rng(seed)
    own = code_families(run, families)
    out = {}
    for source in ("prior", "codes", "codes_own_family"):
        per_pitch = []
        for pitch in pitches:
            if source == "prior":
                z = synth.random_z(count, seed=pitch)
            else:
                rows = rng.choice(len(mean), count, replace=len(mean) < count)
                noise = scale[rows] * rng.standard_normal(mean[rows].shape) if source == "codes" else 0.0
                z = (mean[rows] + noise).astype(np.float32)
            fams = [families[i] for i in rng.integers(len(families), size=count)]
            if source == "codes_own_family":
                fams = [own[r] for r in rows]
            waves = synth.generate(z, pitch=pitch, conditions={"instrument_family": fams})
            per_pitch.append(mean_pairwise_distance(log_mel_db(waves, synth.sample_rate)))
        out[source] = float(np.mean(per_pitch))
    return {"run": str(run), "diversity_db": out, "code_scale_mean": float(scale.mean())}


def code_families(run: Path, families: list[str]) -> list[str]:
    """The family of each code's instrument (codes are numbered as LatentCodes numbers them: by sorted
    instrument index)."""
    from ganspacesynth.data.dataset import SpectrogramDataset
    from ganspacesynth.fileio import read_json

    data = SpectrogramDataset(read_json(run / "config.json")["data"], "train")
    inst, fam = data.labels["instrument"], data.labels["instrument_family"]
    return [data.vocab["instrument_family"][int(fam[inst == i][0])] for i in np.unique(inst)]


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(json.dumps(diversity(Path(arg))), flush=True)
