"""Dataset speed: building notes into shards (`dataset make`, `dataset soundfont`) and loading batches.

Renders N GM notes (TimGM6mb, untimed) into a folder of [instrument]_[pitch].wav files, then times
`make_dataset` on it (validation + Mel-IF spectrograms + shards), `make_soundfont_dataset` for the same
N notes (rendering included), and DeviceBatcher throughput on CPU. Targets: 10,000 notes ≤ 300 s,
loader ≥ 2,000 spectrograms/s.

    python benchmarks/dataset_speed.py --notes 1000 --workers 2 --out bench-out/dataset_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402


def render_folder(root: Path, count: int, spectral) -> int:
    """Render up to `count` audible GM notes (program × pitch × velocity); returns how many were written.

    Silent renders (some programs have no samples at the extreme pitches) are skipped, as `dataset soundfont`
    skips them, so that `make` validates a clean folder.
    """
    from ganspacesynth.audio.io import write_wav
    from ganspacesynth.data.gm import PITCHED_PROGRAMS
    from ganspacesynth.data.soundfont import Renderer, default_soundfont

    renderer = Renderer(default_soundfont(), spectral.sample_rate)
    hold = int(0.75 * spectral.audio_length)
    k = 0
    for velocity in (100, 75, 50, 127, 25):
        for program in PITCHED_PROGRAMS:
            for pitch in range(24, 85):
                if k == count:
                    return k
                wave = renderer.render(program, pitch, velocity, spectral.audio_length, hold)
                wave = wave / max(1.0, float(np.abs(wave).max()))
                if np.sqrt(np.mean(np.square(wave, dtype=np.float64))) < 2e-3:  # -54 dBFS: clear of make's -60
                    continue
                write_wav(root / f"gm{program:03d}v{velocity:03d}_{pitch}.wav", wave, spectral.sample_rate)
                k += 1
    return k


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the worker pools)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def loader_rate(ds, batch_size: int, preload: bool, seconds: float) -> float:
    from ganspacesynth.data.dataset import DeviceBatcher

    batcher = DeviceBatcher(ds, "cpu", batch_size=batch_size, preload=preload, seed=0)
    it = iter(batcher)
    next(it)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        specs, _ = next(it)
        n += specs.shape[0]
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--notes", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--preset", default="mel_prog_hires")
    ap.add_argument("--loader-seconds", type=float, default=3.0)
    ap.add_argument("--skip-soundfont", action="store_true", help="only time `make` and the loader")
    ap.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temp dir, removed)")
    ap.add_argument("--out", type=Path, default=Path("bench-out/dataset_speed.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)

    from ganspacesynth.data.dataset import SpectrogramDataset
    from ganspacesynth.data.make import make_dataset, make_soundfont_dataset
    from ganspacesynth.model.config import PRESETS

    spectral = PRESETS[args.preset].spectral
    work = Path(tempfile.mkdtemp(prefix="gss-bench-", dir=args.workdir))
    result: dict = {"notes": args.notes, "workers": args.workers, "preset": args.preset,
                    "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                "processor": platform.processor(), "torch": torch.__version__},
                    "date": time.strftime("%Y-%m-%d")}
    try:
        t0 = time.perf_counter()
        (work / "notes").mkdir()
        written = render_folder(work / "notes", args.notes, spectral)
        if written < args.notes:
            raise SystemExit(f"only {written} audible notes could be rendered; ask for fewer")
        result["render_wavs_s"] = time.perf_counter() - t0

        t0, c0 = time.perf_counter(), cpu_seconds()
        make_dataset(work / "notes", work / "made", spectral=spectral, workers=args.workers, progress=False)
        make_s, make_cpu = time.perf_counter() - t0, cpu_seconds() - c0
        # On a shared machine wall time depends on others' load; CPU seconds / cores is the idle-machine time.
        idle_10k = make_cpu / max(1, args.workers) * 10000 / args.notes
        result["make"] = {"seconds": make_s, "cpu_seconds": make_cpu, "notes_per_s": args.notes / make_s,
                          "cpu_ms_per_note": 1000 * make_cpu / args.notes,
                          "extrapolated_10k_s": make_s * 10000 / args.notes, "extrapolated_10k_idle_s": idle_10k}
        print(f"make: {args.notes} notes in {make_s:.1f} s wall, {make_cpu:.1f} CPU s "
              f"({1000 * make_cpu / args.notes:.0f} ms/note) -> 10,000 notes ≈ {make_s * 10000 / args.notes:.0f} s "
              f"as measured, ≈ {idle_10k:.0f} s on {args.workers} idle cores (target ≤ 300 s)")

        if not args.skip_soundfont:
            from ganspacesynth.data.gm import PITCHED_PROGRAMS

            per_program = 61
            programs = list(PITCHED_PROGRAMS[: max(1, -(-args.notes // per_program))])
            t0, c0 = time.perf_counter(), cpu_seconds()
            h = make_soundfont_dataset(work / "gm", programs=programs, pitches=list(range(24, 85)),
                                       velocities=[100], spectral=spectral, workers=args.workers, progress=False)
            sf_s, sf_cpu = time.perf_counter() - t0, cpu_seconds() - c0
            n = h["count"] + len(h["skipped_silent"])
            sf_idle = sf_cpu / max(1, args.workers) * 10000 / n
            result["soundfont"] = {"seconds": sf_s, "cpu_seconds": sf_cpu, "notes": n, "notes_per_s": n / sf_s,
                                   "cpu_ms_per_note": 1000 * sf_cpu / n, "extrapolated_10k_s": sf_s * 10000 / n,
                                   "extrapolated_10k_idle_s": sf_idle}
            print(f"soundfont: {n} notes rendered + built in {sf_s:.1f} s wall, {1000 * sf_cpu / n:.0f} CPU ms/note "
                  f"-> 10,000 notes ≈ {sf_s * 10000 / n:.0f} s as measured, ≈ {sf_idle:.0f} s on idle cores")
            shutil.rmtree(work / "gm")

        ds = SpectrogramDataset(work / "made", "all")
        result["loader"] = {}
        for batch in (8, 16, 32):
            for preload in (False, True):
                rate = loader_rate(ds, batch, preload, args.loader_seconds)
                key = f"batch{batch}_{'preload' if preload else 'memmap'}"
                result["loader"][key] = rate
                print(f"loader {key}: {rate:.0f} spectrograms/s float32 on CPU (target ≥ 2000)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    from _common import run

    run(main)
