"""Training speed: images/s of one full training step (D step with gradient penalty + G step + EMA) per
progressive stage, for the `tiny` and `mel_prog_hires` presets.

    python benchmarks/train_speed.py                      # CPU, both presets, every stage
    python benchmarks/train_speed.py --device cuda --presets fast,mel_prog_hires --steps 20
    python benchmarks/train_speed.py --mode loop --presets cpu     # the real `train` command, beside the bare step

`--mode loop` runs the actual `ganspacesynth train` command (data loading, statistics, EMA, checkpoints
included) through every stage on a small SoundFont set, once per arrangement of the two cores (one process
with every thread, `--threads auto`, one thread, two torchrun processes of one thread each), optionally with a
competing CPU-bound process beside it (`--compete`), and reports each stage's images/s from the run's own
wall clock next to the bare step's (`train_step` alone, same batch and threads) measured in the same run.

Writes JSON (default bench-out/train_speed.json) and prints a table. The reference: Magenta's TensorFlow
GANSynth takes about 22 s per training step at batch 8 at the final stage on the 2-core development
machine; `speedup_vs_tf` is 22 s divided by our seconds per step at that stage and batch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from ganspacesynth.model.conditions import ConditionSet
from ganspacesynth.model.config import pitch_condition
from ganspacesynth.model.generator import Generator
from ganspacesynth.runtime import keep_training_allocations_in_heap
from ganspacesynth.training import distributed
from ganspacesynth.training.config import resolve_config
from ganspacesynth.training.data import in_memory
from ganspacesynth.training.objectives import ObjectiveContext, StepClock, make_objective
from ganspacesynth.training.schedule import StagePoint

TF_SECONDS_PER_STEP = 22.0  # Magenta TF, batch 8, final stage, this 2-core machine when idle


def bench_preset(name: str, device: torch.device, steps: int, warmup: int, batch: int | None, precision: str,
                 channels_last: bool, max_blocks: int | None, stages: list[int] | None = None,
                 gp_interval: int = 1, overrides: dict | None = None, variant: str = "") -> list[dict]:
    """Seconds per training step at each stage. With `gp_interval` k > 1 (lazy gradient penalty) the timed steps
    cycle through one penalised and k-1 plain steps, and the mean over whole cycles is reported. `overrides`:
    settings as `--set` takes them (e.g. another objective), the rows tagged with `variant`."""
    overrides = dict(overrides or {})
    if gp_interval > 1:
        overrides["gradient_penalty_interval"] = gp_interval
    cfg = resolve_config(name, overrides or None)
    model = cfg.model.replace(conditions=(pitch_condition(),))
    n = 32
    g = torch.Generator().manual_seed(0)
    specs = torch.rand(n, 2, *model.output_shape, generator=g) * 2 - 1
    data = in_memory(specs, {"pitch": torch.randint(61, (n,), generator=g)}, {"pitch": model.conditions[0].classes},
                     model.spectral).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    torch.manual_seed(0)
    G = Generator(model).to(device, memory_format=fmt)
    info = distributed.DistInfo(device=device)
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bfloat16" else nullcontext()
    conditions = ConditionSet(model.conditions)
    objective = make_objective(ObjectiveContext(G, model, cfg.train, data, conditions, info, amp, fmt,
                                                message=lambda text: None))
    rows = []
    steps = -(-steps // gp_interval) * gp_interval  # whole cycles of a lazy penalty
    for k in range(1, (max_blocks or model.num_resolutions) + 1):
        if stages and k not in stages:
            continue
        bs = batch or cfg.train.batch_size(k, model.num_resolutions)
        if device.type == "cpu":  # as `train` does
            keep_training_allocations_in_heap(model, bs)
        point = StagePoint(stage_id=2 * (k - 1), num_blocks=k, alpha=1.0, batch_size=bs)
        times, cpu_times = [], []
        warm = -(-warmup // gp_interval) * gp_interval  # whole cycles, so the timed ones start penalised
        for step in range(warm + steps):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0, c0 = time.perf_counter(), time.process_time()
            objective.step(StepClock(step, step * bs, 0.0, point))  # a lazy penalty on steps divisible by k
            if device.type == "cuda":
                torch.cuda.synchronize()
            if step >= warm:
                times.append(time.perf_counter() - t0)
                cpu_times.append(time.process_time() - c0)
        # median: the machine is shared; a lazy penalty's cycle needs the mean
        per_step = sorted(times)[len(times) // 2] if gp_interval == 1 else sum(times) / len(times)
        h, w = model.resolution(k)
        cpu = sorted(cpu_times)[len(cpu_times) // 2]
        rows.append({"preset": name, "variant": variant, "num_blocks": k, "resolution": f"{h}x{w}", "batch_size": bs,
                     "gradient_penalty_interval": gp_interval, "step_seconds": times, "seconds_per_step": per_step, "images_per_s": bs / per_step, "cpu_seconds_per_step": cpu})
        print(f"{name + (' ' + variant if variant else ''):15s} {k}  {h:4d}x{w:<5d} batch {bs:4d}  {per_step * 1000:9.1f} ms/step  {bs / per_step:9.1f} img/s  (process CPU {cpu:.2f} s)",
              flush=True)
    return rows


# -- the real `train` command -----------------------------------------------------------------------
ARRANGEMENTS = {  # name: (processes, --threads, extra environment)
    "1x2": (1, "2", {}), "auto": (1, "auto", {}), "1x1": (1, "1", {}), "2x1": (2, "1", {}),
    "1x2-passive": (1, "2", {"OMP_WAIT_POLICY": "PASSIVE"}), "auto-passive": (1, "auto", {"OMP_WAIT_POLICY": "PASSIVE"}),
}


def _busy_loop() -> None:
    while True:
        pass


def stage_rates(stats: list[dict]) -> dict[int, dict]:
    """Images/s of each stage by the run's wall clock, from its second logged record to its last (the first
    interval pays for the new stage's kernels)."""
    by_stage: dict[int, list[dict]] = {}
    for record in stats:
        by_stage.setdefault(int(record["stage"]), []).append(record)
    out = {}
    for stage, records in sorted(by_stage.items()):
        if len(records) < 3:
            continue
        first, last = records[1], records[-1]
        out[stage] = {"num_blocks": last["num_blocks"], "batch_size": last["batch_size"],
                      "images_per_s": (last["images"] - first["images"]) / max(last["wall"] - first["wall"], 1e-9),
                      "threads": last.get("threads")}
    return out


def bench_loop(preset: str, arrangements: list[str], images_per_stage: int, compete: bool, work: Path) -> dict:
    import multiprocessing
    import subprocess
    import sys

    from ganspacesynth.training.config import resolve_config
    from ganspacesynth.training.stats import read_stats

    cfg = resolve_config(preset)
    data = work / "data"
    if not (data / "manifest.json").is_file():
        subprocess.run([sys.executable, "-m", "ganspacesynth", "dataset", "soundfont", str(data), "--preset", preset,
                        "--programs", "0,24,40,56,73", "--velocities", "100"], check=True, stdout=subprocess.DEVNULL)
    settings = {"train_time_limit": "none", "stable_stage_num_images": images_per_stage,
                "transition_stage_num_images": images_per_stage,
                "total_num_images": images_per_stage * (2 * cfg.model.num_resolutions - 1),
                "log_every_steps": 5, "checkpoint_every_images": images_per_stage * 2,
                "save_summaries_num_images": images_per_stage * 4}
    results = {}
    for name in arrangements:
        processes, threads, extra_env = ARRANGEMENTS[name]
        run = work / f"run-{name}"
        if run.exists():
            import shutil

            shutil.rmtree(run)
        launcher = [sys.executable, "-m", "ganspacesynth"] if processes == 1 else [
            sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            "-m", "ganspacesynth.interfaces.cli"]
        cmd = launcher + ["train", "--data", str(data), "--out", str(run), "--preset", preset, "--conditions", "pitch",
                          "--threads", threads, "--no-progress", "--device", "cpu"]
        for key, value in settings.items():
            cmd += ["--set", f"{key}={value}"]
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
        if threads != "auto":  # auto must see no OMP_NUM_THREADS, or it keeps that count
            env["OMP_NUM_THREADS"] = threads
        env.update(extra_env)
        rival = multiprocessing.Process(target=_busy_loop, daemon=True) if compete else None
        if rival is not None:
            rival.start()
        t0 = time.perf_counter()
        try:
            subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        finally:
            if rival is not None:
                rival.terminate()
                rival.join()
        rates = stage_rates(read_stats(run))
        results[name] = {"processes": processes, "threads": threads, "wall_seconds": time.perf_counter() - t0,
                         "stages": rates}
        print(f"{name:5s} " + " ".join(f"{s}:{r['images_per_s']:.0f}" for s, r in rates.items()), flush=True)
    return results


def main_loop(args) -> None:
    from _common import machine

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    arrangements = args.arrangements.split(",")
    report = {"benchmark": "train_speed_loop", "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"),
              "settings": {"preset": args.presets, "images_per_stage": args.images_per_stage, "compete": args.compete},
              "loop": bench_loop(args.presets, arrangements, args.images_per_stage, args.compete, work)}
    # The bare step at the same batch sizes, with every core and with one thread, in the same run.
    cfg_train = resolve_config(args.presets).train
    bare = {}
    for threads in sorted({int(ARRANGEMENTS[a][1]) for a in arrangements if ARRANGEMENTS[a][1] != "auto"} | {os.cpu_count()}):
        torch.set_num_threads(threads)
        bare[threads] = bench_preset(args.presets, torch.device("cpu"), args.steps, args.warmup, None, "float32", False,
                                     None, None, cfg_train.gradient_penalty_interval)
    report["bare_step"] = {str(t): rows for t, rows in bare.items()}
    ratios = {}
    for name, result in report["loop"].items():
        procs, threads, _ = ARRANGEMENTS[name]
        per_thread = os.cpu_count() if threads == "auto" else int(threads)
        ref = {r["num_blocks"]: r["images_per_s"] * procs for r in bare[per_thread]}
        ratios[name] = {str(s): r["images_per_s"] / ref[r["num_blocks"]] for s, r in result["stages"].items()}
        print(f"{name:5s} loop / bare step: " + " ".join(f"{s}:{v:.2f}" for s, v in ratios[name].items()))
    report["loop_over_bare"] = ratios
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["step", "loop"], default="step",
                    help="step: the bare training step; loop: the real train command beside it")
    ap.add_argument("--arrangements", default="1x2,auto,2x1", help=f"loop mode: any of {', '.join(ARRANGEMENTS)}")
    ap.add_argument("--images-per-stage", type=int, default=480, help="loop mode: images in every stage")
    ap.add_argument("--compete", action="store_true", help="loop mode: a CPU-bound process runs beside training")
    ap.add_argument("--work", default="bench-out/train-loop", help="loop mode: scratch folder (data, runs)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--presets", default="tiny,mel_prog_hires")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per stage (median reported)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch", type=int, default=None, help="batch size for every stage (default: the preset's)")
    ap.add_argument("--precision", choices=["float32", "bfloat16"], default=None,
                    help="default: bfloat16 on CUDA, float32 on CPU")
    ap.add_argument("--channels-last", action="store_true", default=None)
    ap.add_argument("--max-blocks", type=int, default=None, help="stop after this many stages")
    ap.add_argument("--stages", default=None, help="comma-separated num_blocks to measure (default: all)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--gradient-penalty-interval", type=int, default=1,
                    help="lazy gradient penalty every k steps (1: Magenta, every step)")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE[,KEY=VALUE]",
                    help="step mode: time the preset again with these settings (e.g. 'critic:objective=glo+gan'); "
                         "repeatable, each variant measured after the plain preset, ratios in the summary")
    ap.add_argument("--out", default="bench-out/train_speed.json")
    args = ap.parse_args()
    if args.mode == "loop":
        return main_loop(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    precision = args.precision or ("bfloat16" if device.type == "cuda" else "float32")
    channels_last = args.channels_last if args.channels_last is not None else device.type == "cuda"
    from ganspacesynth.training.config import parse_overrides

    variants = [("", {})]
    for item in args.variant:
        label, _, settings = item.partition(":")
        variants.append((label, parse_overrides([kv for kv in settings.split(",") if kv])))
    results = []
    for name in args.presets.split(","):
        for label, overrides in variants:
            results += bench_preset(name, device, args.steps, args.warmup, args.batch, precision, channels_last,
                                    args.max_blocks, [int(s) for s in args.stages.split(",")] if args.stages else None,
                                    args.gradient_penalty_interval, overrides, label)
    summary = {}
    for row in results:  # each variant's step time against the plain preset's at the same stage
        plain = [r for r in results if r["preset"] == row["preset"] and r["num_blocks"] == row["num_blocks"]
                 and not r["variant"]]
        if row["variant"] and plain:
            ratio = row["seconds_per_step"] / plain[0]["seconds_per_step"]
            summary[f"{row['preset']}/{row['variant']}/{row['num_blocks']}_blocks_step_ratio"] = round(ratio, 3)
            print(f"{row['preset']} {row['variant']} at {row['num_blocks']} blocks: {ratio:.2f}x the plain step")
    final = [r for r in results if r["preset"] == "mel_prog_hires" and r["num_blocks"] == 7 and r["batch_size"] == 8]
    if final:
        summary["mel_prog_hires_final_stage_seconds_per_step"] = final[0]["seconds_per_step"]
        summary["speedup_vs_tf"] = TF_SECONDS_PER_STEP / final[0]["seconds_per_step"]
        print(f"mel_prog_hires final stage, batch 8: {final[0]['seconds_per_step']:.2f} s/step, "
              f"{summary['speedup_vs_tf']:.1f}x faster than TensorFlow's {TF_SECONDS_PER_STEP:.0f} s")
    report = {
        "benchmark": "train_speed",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
                    "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                    "load_average": os.getloadavg()},
        "settings": {"precision": precision, "channels_last": channels_last, "steps": args.steps,
                     "gradient_penalty_interval": args.gradient_penalty_interval, "variants": args.variant},
        "reference": {"tensorflow_seconds_per_step_final_stage_batch8": TF_SECONDS_PER_STEP},
        "summary": summary,
        "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    from _common import run

    run(main)
