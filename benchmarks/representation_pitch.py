"""Does a spectrogram representation keep a note's pitch when a model blurs it? Real notes of a dataset go
through each representation and back to audio, as they are and with the blur a reconstruction-trained model
makes (the IF channel averaged over time; the magnitude also smoothed over 5 frames), and pYIN says whether
the result still has the note's pitch. Below MIDI 42 the 128 × 256 representation (nfft 512) keeps the pitch
only in frame-to-frame detail; GANSynth's nfft 2048 resolves the harmonics, so blurring costs nothing.

    python benchmarks/representation_pitch.py --data data/gm     # any dataset with audio (dataset soundfont)

Writes JSON (default bench-out/representation_pitch.json) and prints a table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import write_result

from ganspacesynth.audio.spectral import MelIF, SpectralConfig
from ganspacesynth.data.dataset import SpectrogramDataset
from ganspacesynth.evaluate.pitch import pitch_check, track_f0

LOW = 42  # below this MIDI pitch, harmonics lie under 3 bins apart at nfft 512 (31.25 Hz bins)
REPRESENTATIONS = {  # name: (nfft, hop); all 1.024 s at 16 kHz
    "128x256 (nfft 512, hop 128)": (512, 128),
    "64x512 (nfft 1024, hop 256)": (1024, 256),
    "32x1024 (nfft 2048, hop 512: GANSynth's)": (2048, 512),
}


def blurred(spec: torch.Tensor, smooth_magnitude: bool) -> torch.Tensor:
    """IF averaged over time; optionally log magnitude averaged over 5 frames."""
    out = spec.clone()
    out[:, 1] = spec[:, 1].mean(dim=1, keepdim=True)
    if smooth_magnitude:
        out[:, 0] = torch.nn.functional.avg_pool2d(spec[:, :1], (5, 1), 1, (2, 0), count_include_pad=False)[:, 0]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="dataset folder (held-out notes are used)")
    ap.add_argument("--per-pitch", type=int, default=5, help="notes per pitch")
    ap.add_argument("--pitch-step", type=int, default=3, help="every k-th pitch from the lowest")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    ds = SpectrogramDataset(args.data, "valid")
    pitches = ds.pitches
    chosen = range(int(pitches.min()), int(pitches.max()) + 1, args.pitch_step)
    rows = np.sort(np.concatenate([np.where(pitches == p)[0][: args.per_pitch] for p in chosen]))
    waves = ds.audio.take(rows).astype(np.float32) / 32767.0
    midi = pitches[rows]
    rate = ds.spectral.sample_rate
    t0 = time.perf_counter()

    def agreement(tracked: np.ndarray) -> dict:
        bands = {"below_42": midi < LOW, "from_42": midi >= LOW}
        return {band: pitch_check(tracked[m], midi[m])["f0_accuracy"] if m.any() else None for band, m in bands.items()}

    results = {"original audio": agreement(track_f0(waves, rate).midi)}
    for name, (n_fft, hop) in REPRESENTATIONS.items():
        spectral = MelIF(SpectralConfig(sample_rate=rate, audio_length=waves.shape[1], n_fft=n_fft, hop_length=hop,
                                        frames=-(-waves.shape[1] // hop)))
        spec = spectral.waves_to_specgrams(torch.from_numpy(waves))
        for variant, x in (("round trip", spec), ("IF averaged over time", blurred(spec, False)),
                           ("IF averaged, magnitude smoothed", blurred(spec, True))):
            tracked = track_f0(spectral.specgrams_to_waves(x).numpy(), rate).midi
            results[f"{name}: {variant}"] = agreement(tracked)
    print(f"f0 agreement (pYIN's median f0 rounds to the note's pitch), {len(rows)} notes")
    for name, r in results.items():
        print(f"{name:75s} below {LOW}: {r['below_42']}   from {LOW}: {r['from_42']}")
    write_result("representation_pitch", {"data": args.data, "notes": len(rows), "low_threshold": LOW,
                                          "seconds": time.perf_counter() - t0, "f0_agreement": results}, args.out)


if __name__ == "__main__":
    from _common import run

    run(main)
