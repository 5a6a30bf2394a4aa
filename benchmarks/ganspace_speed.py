"""GANSpace speed: exact streamed PCA (`cov`) side by side with scikit-learn's IncrementalPCA (the original
GANSpaceSynth estimator) on the same activations of `conv0` of the full mel_prog_hires generator (random
weights, 8192 dimensions), keeping all components.

For each sample count: end-to-end `cov` time (sampling + statistics + eigendecomposition), split into parts.
IncrementalPCA runs on the first `--ipca-batches` chunks of 8192 samples (the same activations); its time for
the larger counts is extrapolated linearly from its steady-state chunk time (said so in the JSON). The top-16
directions of both are compared (|cosine| per direction) on the largest sample count IncrementalPCA fully ran.

    python benchmarks/ganspace_speed.py [--samples 8192 65536] [--ipca-batches 2] [--threads 2]
    python benchmarks/ganspace_speed.py --device cuda --samples 4194304 --ipca-batches 0   # on a GPU
    python benchmarks/ganspace_speed.py --preset tiny --samples 2048 4096                  # a quick try
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from ganspacesynth.ganspace.estimators import CovarianceEstimator  # noqa: E402
from ganspacesynth.ganspace.sampling import ActivationSampler  # noqa: E402
from ganspacesynth.model.config import preset  # noqa: E402
from ganspacesynth.model.generator import Generator  # noqa: E402
from ganspacesynth.synth import Synth  # noqa: E402

TOP = 16


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def run_cov(sampler: ActivationSampler, count: int, device, keep: int = 0) -> tuple[dict, object, np.ndarray | None]:
    """Exact streamed PCA over `count` samples; returns timings, the decomposition and the first `keep` rows."""
    est = CovarianceEstimator(device=device)
    t_sample = t_stats = 0.0
    kept = []
    start = time.perf_counter()
    for lo in range(0, count, sampler.batch_size):
        t0 = time.perf_counter()
        _, x = sampler.batch(lo, min(count, lo + sampler.batch_size))
        sync(device)
        t1 = time.perf_counter()
        est.fit_partial(x)
        sync(device)
        t_stats += time.perf_counter() - t1
        t_sample += t1 - t0
        if lo < keep:
            kept.append(x[: keep - lo].cpu().numpy())
    t0 = time.perf_counter()
    dec = est.components()
    t_solve = time.perf_counter() - t0
    total = time.perf_counter() - start
    timing = {"samples": count, "total_s": total, "sampling_s": t_sample, "statistics_s": t_stats,
              "eigendecomposition_s": t_solve}
    return timing, dec, (np.concatenate(kept) if kept else None)


def run_ipca(x: np.ndarray, dim: int, batches: int) -> tuple[list[float], object]:
    """partial_fit of IncrementalPCA(all components) on consecutive chunks of `dim` rows; seconds per chunk."""
    from sklearn.decomposition import IncrementalPCA

    model = IncrementalPCA(n_components=dim)
    times = []
    for b in range(batches):
        t0 = time.perf_counter()
        model.partial_fit(x[b * dim:(b + 1) * dim])
        times.append(time.perf_counter() - t0)
        print(f"  ipca chunk {b + 1}/{batches}: {times[-1]:.1f} s", flush=True)
    return times, model


def agreement(a: np.ndarray, b: np.ndarray) -> list[float]:
    a = a[:TOP] / np.linalg.norm(a[:TOP], axis=1, keepdims=True)
    b = b[:TOP] / np.linalg.norm(b[:TOP], axis=1, keepdims=True)
    return [float(v) for v in np.abs(np.sum(a * b, axis=1))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="mel_prog_hires")
    ap.add_argument("--layer", default="conv0")
    ap.add_argument("--samples", type=int, nargs="+", default=[8192, 65536])
    ap.add_argument("--ipca-batches", type=int, default=2, help="IncrementalPCA chunks actually run (0: skip it).")
    ap.add_argument("--batch-size", type=int, default=1024, help="Latents per generator pass.")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import scipy.linalg  # noqa: F401  (load every BLAS before limiting their threads)
    import sklearn.decomposition  # noqa: F401
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    limits = threadpool_limits(args.threads)  # noqa: F841  (kept alive: the same BLAS threads for scipy/sklearn as torch)
    torch.manual_seed(0)
    cfg = preset(args.preset)
    synth = Synth(cfg, Generator(cfg), device=args.device)
    sampler = ActivationSampler(synth, args.layer, [32], seed=0, batch_size=args.batch_size)
    dim = sampler.dim
    print(f"{args.preset} {args.layer}: {sampler.shape} = {dim} dimensions, device {args.device}, "
          f"{args.threads} threads", flush=True)

    samples = sorted(args.samples)
    keep = args.ipca_batches * dim
    results, kept, decs = [], None, {}
    for n in samples:
        timing, dec, rows = run_cov(sampler, n, args.device, keep=keep if n == samples[-1] else 0)
        decs[n] = dec
        if rows is not None:
            kept = rows
        results.append(timing)
        print(f"cov {n} samples: {timing['total_s']:.1f} s (sampling {timing['sampling_s']:.1f}, statistics "
              f"{timing['statistics_s']:.1f}, eigendecomposition {timing['eigendecomposition_s']:.1f})", flush=True)

    out = {"preset": args.preset, "layer": args.layer, "dimensions": dim, "components": dim, "device": args.device,
           "threads": args.threads, "batch_size": args.batch_size, "cov": results,
           "note": "shared 2-core machine: other jobs may run at the same time, so timings are noisy"}
    if args.ipca_batches > 0 and kept is not None and len(kept) >= dim:
        chunks = min(args.ipca_batches, len(kept) // dim)
        times, model = run_ipca(kept, dim, chunks)
        per_sample_sampling = results[-1]["sampling_s"] / samples[-1]
        steady = times[-1] if chunks > 1 else times[0]
        ipca = {"chunks_run": chunks, "chunk_size": dim, "chunk_s": times,
                "extrapolated": "IncrementalPCA times for sample counts beyond the chunks run are its first chunk time "
                                "plus (chunks - 1) × its last (steady-state) chunk time, plus the same sampling time as "
                                "cov; linear in the sample count"}
        comparisons = []
        for timing in results:
            n = timing["samples"]
            n_chunks = max(1, n // dim)
            fit = times[0] + (n_chunks - 1) * steady if n_chunks > chunks else sum(times[:n_chunks])
            ipca_total = fit + per_sample_sampling * n
            comparisons.append({"samples": n, "ipca_total_s": ipca_total, "ipca_extrapolated": n_chunks > chunks,
                                "cov_total_s": timing["total_s"], "speedup": ipca_total / timing["total_s"]})
            print(f"{n} samples: cov {timing['total_s']:.1f} s, ipca {ipca_total:.1f} s"
                  f"{' (extrapolated)' if n_chunks > chunks else ''}: {ipca_total / timing['total_s']:.1f}x", flush=True)
        ipca["comparisons"] = comparisons
        # Agreement on exactly the same activations: cov over the first `chunks·dim` samples vs IncrementalPCA.
        same = CovarianceEstimator()
        same.fit_partial(torch.from_numpy(kept[:chunks * dim]))
        cos = agreement(same.components().comp, model.components_)
        ipca["top16_abs_cosine"] = cos
        ipca["top16_all_at_least_0.99"] = bool(min(cos) >= 0.99)
        ipca["agreement_samples"] = chunks * dim
        print(f"top-{TOP} |cosine| cov vs IncrementalPCA on the same {chunks * dim} activations: min {min(cos):.4f}")
        out["ipca"] = ipca
    if args.device == "cpu" and args.preset == "mel_prog_hires":
        out["gpu_target"] = "4,194,304 samples in <= 2 min on a GPU: run with --device cuda --samples 4194304 --ipca-batches 0"
    write_result("ganspace_speed", out, args.out)


if __name__ == "__main__":
    main()
