"""Cost of composing over plain generation: a 16-note hallucination vs generating the same 16 notes alone.

Full mel_prog_hires generator at random weights. Each repetition times, side by side in one process,
(a) `synth.generate` of the 16 latents and (b) `plan_latent` + `render` of a 4-key-point, 4-step
hallucination (4 + 3·4 = 16 notes: slerp, generation, envelopes, overlap-add, normalisation), in
alternating order; the ratio b / a is the composing overhead (target: at most 1.2). On a loaded machine
that ratio is noisy, so it also times the composing work alone (generation replaced by cached waves).

    python benchmarks/compose_speed.py [--threads 2] [--repeats 3] [--device cpu] [--out bench-out/compose_speed.json]
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

from ganspacesynth.compose.hallucinate import HallucinationSettings, plan_latent, render  # noqa: E402
from ganspacesynth.model.config import preset  # noqa: E402
from ganspacesynth.model.generator import Generator  # noqa: E402
from ganspacesynth.synth import Synth  # noqa: E402


def _sync(synth: Synth) -> None:
    if synth.device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    cfg = preset("mel_prog_hires")
    synth = Synth(cfg, Generator(cfg), device=args.device)
    params = HallucinationSettings.make(notes=4, steps=4, spacing=0.5, attack=0.5, sustain=0.5, release=0.5, pitch=32, seed=1)
    plan = plan_latent(synth, params)
    assert plan.count == 16
    z = plan.z.copy()

    def plain() -> float:
        _sync(synth)
        t = time.perf_counter()
        synth.generate(z, pitch=32, batch_size=args.batch_size)
        _sync(synth)
        return time.perf_counter() - t

    def composed() -> float:
        _sync(synth)
        t = time.perf_counter()
        audio, _ = render(synth, plan_latent(synth, params), batch_size=args.batch_size)
        _sync(synth)
        assert audio.shape == (15 * 8000 + 24000,)
        return time.perf_counter() - t

    plain(), composed()  # warm-up (allocations, kernels)
    t_plain, t_comp = [], []
    for i in range(args.repeats):
        order = (plain, composed) if i % 2 == 0 else (composed, plain)
        for fn in order:
            (t_plain if fn is plain else t_comp).append(fn())
    ratios = [c / p for c, p in zip(t_comp, t_plain)]

    # Composing work alone (plan, slerp, envelopes, overlap-add, normalisation) with generation replaced
    # by cached waves: immune to the machine's load, it bounds what composing adds to generation.
    waves = synth.generate(z, pitch=32, batch_size=args.batch_size)
    synth.generate = lambda zs, pitch=None, batch_size=8, **kw: waves[: len(zs)]
    t_over = []
    for _ in range(5):
        t = time.perf_counter()
        render(synth, plan_latent(synth, params), batch_size=args.batch_size)
        t_over.append(time.perf_counter() - t)
    del synth.generate
    result = {
        "notes": plan.count,
        "batch_size": args.batch_size,
        "device": args.device,
        "generate_s": t_plain,
        "hallucinate_s": t_comp,
        "ratio_of_best": min(t_comp) / min(t_plain),
        "ratio_median": statistics.median(ratios),
        "composing_only_s": min(t_over),
        "ratio_from_composing_only": (min(t_plain) + min(t_over)) / min(t_plain),
        "target_max_ratio": 1.2,
    }
    write_result("compose_speed", result, args.out)
    print(f"16 notes alone: best {min(t_plain):.2f} s; as a hallucination: best {min(t_comp):.2f} s; "
          f"ratio {result['ratio_of_best']:.3f} (best), {result['ratio_median']:.3f} (median of pairs); target <= 1.2\n"
          f"composing work alone (generation cached): {min(t_over) * 1000:.1f} ms "
          f"-> ratio {result['ratio_from_composing_only']:.4f}")


if __name__ == "__main__":
    from _common import run

    run(main)
