"""Seconds to export a playable instrument (compose/instrument.py) from a random-weight model on this machine.

End to end, as `ganspacesynth instrument` runs it after loading the model: one note per key at one timbre
(batched generation), onset/envelope/loudness/loop analysis, and the SoundFont written (atomically). Measured for
float32 and bfloat16, best of --repeats after one warm-up, with the three stages timed separately (a precision
the CPU cannot run is recorded as null, with the reason). The issue's
target: a 61-key instrument (24-84, --every 1) from the full mel_prog_hires architecture in <= 15 s on the 2-core
development VM (bfloat16 allowed).

    python benchmarks/instrument_speed.py [--preset mel_prog_hires] [--keys 24-84] [--repeats 3] [--out FILE]
    python benchmarks/instrument_speed.py --preset tiny --keys 24-36 --repeats 1     # a quick check that it runs
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from ganspacesynth.compose import instrument as I  # noqa: E402
from ganspacesynth.model.config import preset  # noqa: E402
from ganspacesynth.model.generator import Generator  # noqa: E402
from ganspacesynth.errors import UserError  # noqa: E402
from ganspacesynth.runtime import cpu_model  # noqa: E402
from ganspacesynth.synth import Synth  # noqa: E402

TARGET_S = 15.0


def stages(synth: Synth, keys: str, every: int, out: Path) -> dict:
    """One export, stage by stage (the same calls export_instrument makes)."""
    plan = I.key_plan(I.parse_pitches(keys, synth.pitches), every)
    t0 = time.perf_counter()
    waves = I.render_notes(synth, plan, synth.random_z(1, 0), None, None, "z", None, None, batch_size=8)
    t1 = time.perf_counter()
    inst = I.build_instrument(waves, plan, synth.sample_rate, name="bench")
    t2 = time.perf_counter()
    I.write_instrument(inst, out)
    t3 = time.perf_counter()
    return {"generate_s": t1 - t0, "analyse_s": t2 - t1, "write_s": t3 - t2, "looped": inst.looped,
            "bytes": out.stat().st_size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="mel_prog_hires")
    ap.add_argument("--keys", default="24-84")
    ap.add_argument("--every", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="timed exports per precision (best kept)")
    ap.add_argument("--precisions", default="float32,bfloat16")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cpu = cpu_model()
    print(f"CPU: {cpu}, {torch.get_num_threads()} torch threads")
    torch.manual_seed(0)
    cfg = preset(args.preset)
    gen = Generator(cfg)
    chosen = I.parse_pitches(args.keys, cfg.pitches)
    keys = len(chosen)
    results, best = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.sf2"
        for precision in args.precisions.split(","):
            try:  # Synth refuses a precision this CPU cannot run; oneDNN may still fail at the first conv
                synth = Synth(cfg, gen, device="cpu", precision=precision)
                I.export_instrument(synth, out, pitches=chosen[:2])  # warm-up (kernels, caches, imports)
            except (RuntimeError, UserError) as exc:  # e.g. bfloat16 convolutions need AVX-512 or AVX-NE-CONVERT
                reason = str(exc).strip().splitlines()[0][:200]
                print(f"{precision}: unavailable on this CPU ({reason})")
                best[precision], results[precision] = None, reason
                continue
            runs = []
            for _ in range(max(1, args.repeats)):
                t = time.perf_counter()
                I.export_instrument(synth, out, seed=0, pitches=args.keys, every=args.every)
                total = time.perf_counter() - t
                runs.append({"total_s": total, **stages(synth, args.keys, args.every, out)})
            best[precision] = min(r["total_s"] for r in runs)
            results[precision] = runs
            stage = min(runs, key=lambda r: r["total_s"])
            print(f"{precision}: {keys} keys in {best[precision]:.2f} s (best of {len(runs)}; stages: generate "
                  f"{stage['generate_s']:.2f} s, analyse {stage['analyse_s']:.2f} s, write {stage['write_s']:.2f} s; "
                  f"{stage['looped']} looped, {stage['bytes'] / 1e6:.1f} MB)")
    timed = [v for v in best.values() if v is not None]
    if not timed:
        raise SystemExit("no precision could run on this machine")
    print(f"target: a 61-key mel_prog_hires instrument in <= {TARGET_S:g} s; fastest here {min(timed):.2f} s "
          f"for {keys} keys of {args.preset}")
    write_result("instrument_speed", {
        "preset": args.preset, "keys": keys, "every": args.every, "cpu_model": cpu,
        "note": "random weights; total_s: export_instrument end to end (generation, analysis, SoundFont write), "
                "model loading excluded; the stages come from a second, separate export",
        "seconds": best, "runs": results, "target_s": TARGET_S,
    }, args.out)


if __name__ == "__main__":
    from _common import run

    run(main)
