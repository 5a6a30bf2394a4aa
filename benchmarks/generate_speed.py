"""Seconds per 4 s note for the full mel_prog_hires generator (random weights) on this machine.

Measures float32 and bfloat16 at batch 1 and 8, the spectrogram→wave inverse alone, and in the same run the
machine's float32 / bfloat16 matrix-multiply rate, to report the achieved fraction of it.

    python benchmarks/generate_speed.py [--repeats 3] [--rounds 3] [--out bench-out/generate_speed.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from ganspacesynth.model.config import preset  # noqa: E402
from ganspacesynth.model.inference import native, prepare, winograd  # noqa: E402
from ganspacesynth.model.generator import Generator  # noqa: E402
from ganspacesynth.synth import Synth  # noqa: E402


def generator_flops(cfg) -> float:
    """Multiply-adds ×2 of one forward pass (convs only; activations are negligible)."""
    total = 0.0
    in_ch = cfg.latent_vector_size + cfg.condition_dim
    for b in range(1, cfg.num_resolutions + 1):
        h, w = cfg.resolution(b)
        out = cfg.num_filters(b)
        k0 = (cfg.start_height * cfg.start_width) if b == 1 else cfg.kernel_size**2
        total += 2 * h * w * out * in_ch * k0
        total += 2 * h * w * out * out * cfg.kernel_size**2
        in_ch = out
    h, w = cfg.output_shape
    total += 2 * h * w * 2 * in_ch
    return total


def generator_flops_performed(cfg) -> float:
    """Multiply-adds ×2 of the float32 CPU path: each block's first conv runs as a stride-2 transposed conv holding
    the four 2×2 sub-pixel kernels (ganspacesynth/model/layers.upsample_conv3x3: 16 taps per 4 output pixels
    instead of 36), and wide second convs as Winograd F(6×6, 3×3) (model/inference/winograd.py: 64 products per 36 outputs
    instead of 324, tile transforms and edge tiles not counted)."""
    naive = generator_flops(cfg)
    saved = 0.0
    in_ch = cfg.num_filters(1)
    for b in range(2, cfg.num_resolutions + 1):
        h, w = cfg.resolution(b)
        out = cfg.num_filters(b)
        saved += 2 * h * w * out * in_ch * (9 - 4)
        min_channels = winograd.MIN_CHANNELS_COMPILED if native.available() else winograd.MIN_CHANNELS_PYTORCH
        if out >= min_channels and h >= winograd.MIN_HEIGHT:
            saved += 2 * h * w * out * out * (9 - 64 / 36)
        in_ch = out
    return naive - saved


def matmul_rate(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def time_per_note(synth: Synth, batch: int, repeats: int) -> dict:
    """Best of `repeats`: `Synth.generate` (generator and inverse, as every interface calls it) and, timed
    separately, the generator alone (`generate_specgrams`)."""
    z = synth.random_z(batch, seed=0)
    synth.generate(z, pitch=60, batch_size=batch)  # warm-up
    best_total, best_spec = float("inf"), float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        synth.generate(z, pitch=60, batch_size=batch)
        best_total = min(best_total, time.perf_counter() - t)
        t = time.perf_counter()
        synth.generate_specgrams(z, pitch=60, batch_size=batch)
        best_spec = min(best_spec, time.perf_counter() - t)
    return {"s_per_note": best_total / batch, "generator_s_per_note": best_spec / batch}


CONV_PATHS = {  # prepare() options: how float32 generation runs
    "winograd_compiled": {},  # the default: compiled kernels (Winograd from 64 channels, pixel norm)
    "winograd_pytorch": {"compiled": False},  # PyTorch only: Winograd transforms from 128 channels
    "direct": {"compiled": False, "winograd": False},  # PyTorch only, oneDNN's direct convs everywhere
}


def winograd_vs_direct(synth: Synth, pairs: int) -> dict:
    """float32 batch 8 with each way of running the 3×3 convs (CONV_PATHS), alternating batch by batch (order
    reversed every cycle) so all see the same machine speed; ratios are medians of per-cycle ratios to direct."""
    z = synth.random_z(8, seed=0)
    engines = {name: prepare(synth.generator, precision=synth.precision, **options)
               for name, options in CONV_PATHS.items()}
    default = synth.engine
    times: dict[str, list[float]] = {name: [] for name in CONV_PATHS}
    try:
        for k in range(pairs + 1):
            for name in list(CONV_PATHS) if k % 2 else list(CONV_PATHS)[::-1]:
                synth.engine = engines[name]
                t = time.perf_counter()
                synth.generate(z, pitch=60, batch_size=8)
                if k >= 1:  # the first cycle warms up
                    times[name].append((time.perf_counter() - t) / 8)
    finally:
        synth.engine = default
    out = {f"{name}_s_per_note": statistics.median(t) for name, t in times.items()}
    for name in ("winograd_compiled", "winograd_pytorch"):
        out[f"{name}_over_direct"] = statistics.median(a / b for a, b in zip(times[name], times["direct"]))
    out["compiled_over_pytorch_transforms"] = statistics.median(
        a / b for a, b in zip(times["winograd_compiled"], times["winograd_pytorch"]))
    out["ratio"] = out["winograd_compiled_over_direct"] if native.available() else out["winograd_pytorch_over_direct"]
    out["compiled_transforms_available"] = native.available()
    return out


def measure_round(cfg, gen, flops: float, repeats: int) -> dict:
    """One round: the matmul rates, then both precisions at batch 1 and 8, Winograd on/off, the inverse alone."""
    rates = {"float32": matmul_rate(torch.float32), "bfloat16": matmul_rate(torch.bfloat16)}
    results = {}
    specs_ref = None
    for precision in ("float32", "bfloat16"):
        synth = Synth(cfg, gen, device="cpu", precision=precision)
        row = {}
        for batch in (1, 8):
            r = time_per_note(synth, batch, repeats)
            r["achieved_gflops"] = flops / r["generator_s_per_note"] / 1e9
            r["fraction_of_matmul_rate"] = flops / r["generator_s_per_note"] / rates[precision]
            row[f"batch_{batch}"] = r
        z = synth.random_z(8, seed=1)
        specs = synth.generate_specgrams(z, pitch=60)
        if specs_ref is None:
            specs_ref = specs
        else:
            diff = (specs - specs_ref).abs()
            row["spectrogram_error_vs_float32"] = {"mean_abs": float(diff.mean()), "p99_abs": float(diff.flatten().kthvalue(int(0.99 * diff.numel())).values)}
        results[precision] = row
    synth = Synth(cfg, gen, device="cpu")
    results["float32_winograd_vs_direct"] = winograd_vs_direct(synth, repeats)
    specs = synth.generate_specgrams(synth.random_z(8, 0), pitch=60)
    t = time.perf_counter()
    synth.specgrams_to_waves(specs)
    return {"matmul_gflops": {k: v / 1e9 for k, v in rates.items()}, "inverse_s_per_note": (time.perf_counter() - t) / 8,
            "results": results}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (best kept)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="whole measurements in a row; the summary is their median (this VM's speed drifts)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    cfg = preset("mel_prog_hires")
    gen = Generator(cfg)
    flops = generator_flops(cfg)  # the published network's arithmetic (reported as effective GFLOPS)
    performed = generator_flops_performed(cfg)
    rounds = []
    for k in range(args.rounds):
        r = measure_round(cfg, gen, flops, args.repeats)
        rounds.append(r)
        res = r["results"]
        print(f"round {k + 1}: float32 batch 1 {res['float32']['batch_1']['s_per_note']:.3f} s/note, batch 8 "
              f"{res['float32']['batch_8']['s_per_note']:.3f}; bfloat16 batch 1 {res['bfloat16']['batch_1']['s_per_note']:.3f}, "
              f"batch 8 {res['bfloat16']['batch_8']['s_per_note']:.3f}; float32 Winograd / direct (paired) "
              f"{res['float32_winograd_vs_direct']['ratio']:.3f} (compiled / PyTorch transforms "
              f"{res['float32_winograd_vs_direct']['compiled_over_pytorch_transforms']:.3f}); matmul "
              f"{r['matmul_gflops']['float32']:.0f} / {r['matmul_gflops']['bfloat16']:.0f} GFLOPS")
    median = {p: {b: statistics.median(r["results"][p][b]["s_per_note"] for r in rounds) for b in ("batch_1", "batch_8")}
              for p in ("float32", "bfloat16")}
    winograd_ratio = statistics.median(r["results"]["float32_winograd_vs_direct"]["ratio"] for r in rounds)
    compiled_ratio = statistics.median(r["results"]["float32_winograd_vs_direct"]["compiled_over_pytorch_transforms"]
                                       for r in rounds)
    print(f"median of {len(rounds)} rounds: " + "; ".join(f"{p} batch 1 {m['batch_1']:.3f}, batch 8 {m['batch_8']:.3f} s/note"
                                                          for p, m in median.items())
          + f"; float32 Winograd / direct convs (paired, batch 8): {winograd_ratio:.3f}, compiled / PyTorch "
            f"transforms: {compiled_ratio:.3f}")
    write_result("generate_speed", {
        "architecture": "mel_prog_hires (random weights)",
        "generator_gflop_per_note": flops / 1e9,
        "generator_gflop_per_note_performed": performed / 1e9,
        "note": "fraction_of_matmul_rate uses the published network's FLOPs (effective rate); the sub-pixel "
                "first convs perform generator_gflop_per_note_performed of them. Each round measures the matmul "
                "rates again: the VM's speed drifts between rounds.",
        "median_s_per_note": median,
        "median_float32_winograd_over_direct_batch_8": winograd_ratio,
        "median_float32_compiled_over_pytorch_transforms_batch_8": compiled_ratio,
        "rounds": rounds,
        "reference_tensorflow_s_per_note": {"batch_1": 0.24, "batch_8": 0.18},
        "targets": {"float32_batch_8": 0.10, "bfloat16_batch_8": 0.05},
    }, args.out)


if __name__ == "__main__":
    from _common import run

    run(main)
