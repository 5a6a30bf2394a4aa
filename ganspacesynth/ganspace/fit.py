"""The GANSpace pipeline: sample latents → layer activations → estimator → latent regression → Components.

    comps = fit_components(synth, layer="conv0", count=8192, pitches=[32])
    comps.save("comps.npz")

Works in one process or under torchrun (see training/distributed.py): every process samples its share, the
statistics are all-reduced, process 0 solves and broadcasts, so every process returns the same Components.

Long fits checkpoint the estimator's state (`checkpoint=PATH`, every `checkpoint_every` seconds, atomically)
and continue from it with `resume=True`; the result equals an uninterrupted run (see checkpoint.py). The
estimator is used through its protocol alone (protocol.py): what it can do, it declares.

By default every sample is centred on the conditional mean of its own pitch and conditions (centring.py), so the
components describe how notes vary at one pitch rather than how pitches differ; `centring="none"` fits the raw
activations (as fits before it did).
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from ..errors import UserError
from .centring import CENTRE_LATENTS, CENTRE_SEED, NO_CENTRING, PER_CONDITION, Centring, check_centring, group_means
from .components import Components
from ..training.distributed import DistInfo, current
from .estimators import Decomposition, capable, get_estimator
from .regression import MIN_REGRESSION_SAMPLES, RegressionAccumulator, orthonormality_error
from .sampling import STREAM_REGRESSION, ActivationSampler, resolve_pitches

#: Components kept unless asked otherwise. Every control uses the first few (8 sliders in the web explorer and
#: Pd, the coefficients of hallucination keys, `describe`'s top directions), and 256 is the latent size of
#: mel_prog_hires: its conv0 activations at one pitch vary mainly along that many directions (the first layer is
#: linear in z), which carry 87 % of the variance at random weights, with a cliff after them. Kept files are
#: 32× smaller than all 8192 components (8 MB), and the top 256 are solved without a full eigendecomposition.
DEFAULT_COMPONENTS = 256
#: The covariance sums are taken about the mean of the first SHIFT_SAMPLES samples (every process computes the
#: same), which keeps them centred whatever the layer's mean.
SHIFT_SAMPLES = 256
#: Seconds between checkpoints of the accumulator (when a checkpoint path is given).
CHECKPOINT_EVERY = 300.0
#: Default latents per generator pass: up to MAX_BATCH, fewer for wide layers (≤ BATCH_VALUES values a batch).
MAX_BATCH = 1024
BATCH_VALUES = 1 << 24


def auto_batch_size(dim: int) -> int:
    """Latents per pass for a layer of `dim` values: 1024 for conv0 (a pass per 1024 latents runs the first
    layers ~1.6× faster than per 256 on CPUs), a power of two down to 16 for wide layers (≤ 64 MB a batch)."""
    per = max(1, BATCH_VALUES // max(1, dim))
    return max(16, min(MAX_BATCH, 1 << (per.bit_length() - 1)))


def resolve_n_components(n_components: int | str | None, dim: int) -> int:
    """"default" → min(DEFAULT_COMPONENTS, dim); None or "all" → dim; an int (or its text) → itself, checked."""
    if n_components is None or n_components == "all":
        return dim
    if n_components == "default":
        return min(DEFAULT_COMPONENTS, dim)
    try:
        k = int(n_components)
    except (TypeError, ValueError):
        raise UserError(f"--components takes a number or 'all', not {n_components!r}") from None
    if not 1 <= k <= dim:
        raise UserError(f"--components must be between 1 and the layer size {dim}, got {k}")
    return k


def _progress(total: int, desc: str, enabled: bool, initial: int = 0):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="z", dynamic_ncols=True, leave=False, smoothing=0.05)


def _processes_with(world: DistInfo, flag: bool, device="cpu") -> int:
    """How many processes have `flag` set (all of them agree on the answer; `device`: the process group's)."""
    if world.world_size == 1:
        return int(flag)
    t = torch.tensor([float(flag)], device=device)
    world.all_reduce([t])
    return int(round(t.item()))


def _broadcast_decomposition(dec: Decomposition | None, k: int, dim: int, world: DistInfo, device) -> Decomposition:
    """Process 0's decomposition on every process."""
    if world.world_size == 1:
        return dec
    dev = device if torch.device(device).type == "cuda" else "cpu"
    if world.is_main:
        tensors = [torch.from_numpy(a).to(dev) for a in (dec.comp, dec.stdev, dec.var_ratio, dec.mean)]
        tensors.append(torch.tensor([float(dec.count)], device=dev))
    else:
        tensors = [torch.zeros(k, dim, device=dev), torch.zeros(k, device=dev), torch.zeros(k, device=dev),
                   torch.zeros(dim, device=dev), torch.zeros(1, device=dev)]
    world.broadcast(tensors)
    comp, stdev, var_ratio, mean, count = (t.cpu().numpy() for t in tensors)
    return Decomposition(comp, stdev, var_ratio, mean, int(count[0]))


@contextlib.contextmanager
def _interrupt_after_batch(active: bool):
    """While sampling with checkpoints: the first Ctrl-C (SIGINT) sets the yielded event, so the loop checkpoints
    after the batch in hand and stops; a second one interrupts at once. Elsewhere (no checkpoint, not the main
    thread) Ctrl-C interrupts as usual."""
    event = threading.Event()
    if not active or threading.current_thread() is not threading.main_thread():
        yield event
        return

    def handle(signum, frame):
        if event.is_set():
            raise KeyboardInterrupt
        event.set()

    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield event
    finally:
        signal.signal(signal.SIGINT, previous)


def fit_components(
    synth,
    layer: str = "conv0",
    count: int = 8192,
    *,
    estimator: str = "cov",
    n_components: int | str | None = "default",
    pitches: int | str | Sequence[int] | None = None,
    conditions: Mapping[str, object] | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    regression_samples: int = MIN_REGRESSION_SAMPLES,
    world: DistInfo | None = None,
    progress: bool = False,
    log=None,
    checkpoint: str | Path | None = None,
    checkpoint_every: float = CHECKPOINT_EVERY,
    resume: bool = False,
    solver: str = "auto",
    timings: dict | None = None,
    centring: str = PER_CONDITION,
) -> Components:
    """Fit GANSpace components of `layer` from `count` seeded samples. `regression_samples=0` skips the latent
    regression (no z_comp). `log(str)` receives one-line reports (solver, orthonormality, regression fit).

    `n_components`: "default" (DEFAULT_COMPONENTS, or the layer size if smaller), "all"/None, or a number.
    `batch_size` None: `auto_batch_size` of the layer.
    The estimator is driven through its protocol (protocol.py): several processes need a `reducible` one,
    checkpoints a `checkpointable` one (both: cov); a `shifted` one gets the mean of the first SHIFT_SAMPLES
    samples as its shift. `checkpoint`: file for the estimator's state, written atomically every
    `checkpoint_every` seconds (0: never) and once more when sampling ends if any was written; `resume=True`
    continues from it (it must exist and match this fit). The caller removes it once the components are saved
    (`checkpoint.remove_checkpoint` on `checkpoint.checkpoint_file(path, rank, size)`; the CLI does). `solver`:
    "auto", "iterative" or "lapack" (cov: eigen.choose_solver). `timings`, a dict, receives the seconds spent
    sampling + accumulating, solving and regressing. `centring`: "per-condition" (each sample minus the conditional
    mean of its pitch and conditions, centring.py; recorded in the file's metadata) or "none"."""
    from .checkpoint import checkpoint_file, load_checkpoint, save_checkpoint

    world = world or current()
    log = log or (lambda msg: None)
    pitch_list = resolve_pitches(synth, pitches)
    centre = Centring(check_centring(centring), CENTRE_LATENTS, CENTRE_SEED)
    if batch_size is None:
        batch_size = auto_batch_size(int(np.prod(synth.generator.layer_shape(layer))))
    sampler = ActivationSampler(synth, layer, pitch_list, seed=seed, batch_size=batch_size, conditions=conditions)
    dim = sampler.dim
    if count < 2:
        raise UserError("--random-z-count must be at least 2")
    k = resolve_n_components(n_components, dim)
    # The subspace iteration's block must span the generator's input: latent plus the pitches that vary.
    est = get_estimator(estimator, k, dim, device=synth.device, seed=seed, solver=solver,
                        min_block=synth.latent_size + max(0, len(pitch_list) - 1))
    if world.world_size > 1 and not est.reducible:
        names = capable("reducible")
        raise UserError(f"only the {_names(names)} estimator{'s run' if len(names) > 1 else ' runs'} across "
                        f"processes (torchrun), not {estimator!r}")
    if (checkpoint is not None or resume) and not est.checkpointable:
        names = capable("checkpointable")
        raise UserError(f"checkpoints and --resume work with the {_names(names)} estimator"
                        f"{'s' if len(names) > 1 else ''}, not {estimator!r}")
    if not est.streaming and world.is_main:
        gib = count * dim * 4 / 2**30
        if gib > 4:
            log(f"note: {estimator} keeps all samples in memory ({gib:.1f} GiB); {_names(capable('streaming'))} "
                "stream")

    start, stop = world.shard(count)
    timings = timings if timings is not None else {}
    t_start = time.perf_counter()
    ckpt, position, resumed, run = None, start, False, {}
    if resume and checkpoint is None:
        raise UserError("--resume needs the checkpoint to continue (--checkpoint)")
    if checkpoint is not None:
        # What the state depends on: a checkpoint made by another fit is refused.
        run = {"model_fingerprint": synth.fingerprint, "layer": layer, "layer_shape": list(sampler.shape),
               "seed": int(seed), "pitches": pitch_list,
               "conditions": {str(a): str(b) for a, b in (conditions or {}).items()},
               "count": int(count), "batch_size": int(batch_size), "rank": world.rank, "processes": world.world_size,
               "shard": [start, stop], "estimator": est.config(dim)}
        if centre.method != NO_CENTRING:  # uncentred fits keep the run identity of earlier versions
            run["centring"] = centre.meta()
        ckpt = checkpoint_file(checkpoint, world.rank, world.world_size)
        have = _processes_with(world, ckpt.is_file(), synth.device if synth.device.type == "cuda" else "cpu")
        if resume and have < world.world_size:
            raise UserError(f"nothing to resume: no checkpoint at {ckpt}" if world.world_size == 1 else
                            f"nothing to resume: only {have} of {world.world_size} processes found their checkpoint "
                            f"({ckpt} on this one)")
        if not resume and have:
            raise UserError(f"a checkpoint of an earlier fit exists ({ckpt}): add --resume to continue it, "
                            "or delete it to start over")
        if resume:
            state, position = load_checkpoint(ckpt, run, est.state_keys)
            try:
                est.load_state_dict(state)
            except ValueError as exc:
                raise UserError(f"checkpoint {ckpt} is damaged ({exc})") from None
            resumed = True
            if world.is_main:
                log(f"resuming from {ckpt}: {position - start:,} of {stop - start:,} samples already in")
    centres = None
    if centre.method == PER_CONDITION:  # every request checked: now the means of the sample groups
        centres = group_means(synth, layer, pitch_list, conditions, centre).to(synth.device)
        sampler = dataclasses.replace(sampler, centres=centres)
    if est.shifted and not resumed:
        _, pilot = sampler.batch(0, min(count, SHIFT_SAMPLES))
        est.set_shift(pilot.double().mean(0).cpu().numpy())

    bar = _progress(stop - start, f"{layer} activations", progress and world.is_main, initial=position - start)
    last_save, saved = time.monotonic(), False
    with _interrupt_after_batch(ckpt is not None and checkpoint_every > 0) as interrupted:
        for _, x in sampler.iterate(position, stop, bar):
            est.fit_partial(x)
            position += len(x)
            if interrupted.is_set():  # Ctrl-C: keep what was sampled (a batch is never half in the sums)
                save_checkpoint(ckpt, est, run, position)
                if bar is not None:
                    bar.close()
                log(f"interrupted: {position - start:,} of {stop - start:,} samples saved in {ckpt}; "
                    f"--resume continues")
                raise KeyboardInterrupt
            if (ckpt is not None and checkpoint_every > 0 and position < stop
                    and time.monotonic() - last_save >= checkpoint_every):
                save_checkpoint(ckpt, est, run, position)
                last_save, saved = time.monotonic(), True
    if bar is not None:
        bar.close()
    long_run = saved or resumed or time.perf_counter() - t_start >= checkpoint_every
    if ckpt is not None and checkpoint_every > 0 and long_run:
        save_checkpoint(ckpt, est, run, position)  # sampling done: a failed solve need not sample again
    if world.world_size > 1:
        est.reduce(world.all_reduce)
    timings["activations_s"] = time.perf_counter() - t_start
    t0 = time.perf_counter()
    dec = est.components() if world.is_main else None
    timings["solve_s"] = time.perf_counter() - t0
    dec = _broadcast_decomposition(dec, k, dim, world, synth.device)

    err, checked = orthonormality_error(dec.comp)
    if world.is_main:
        if centres is not None:
            log(f"centred on the conditional means of {len(centres)} pitch/condition group"
                f"{'s' if len(centres) > 1 else ''} ({centre.latents} latents each)")
        if dec.info:
            log(_describe_solver(dec.info, k, dim))
        log(f"orthonormality check: max |C·Cᵀ - I| = {err:.2e} over the first {checked} components")
        if k > count - 1:
            log(f"note: {count} samples span at most {count - 1} directions; components beyond that have zero variance")
    meta = {
        "estimator": estimator,
        "sample_count": int(dec.count),
        "seed": int(seed),
        "pitches": pitch_list,
        "conditions": {str(a): b for a, b in (conditions or {}).items()},
        "model_fingerprint": synth.fingerprint,
        "latent_size": synth.latent_size,
        "processes": world.world_size,
        "orthonormality_error": err,
        **centre.meta(),
    }
    if dec.info:
        meta["solver"] = _json_clean(dec.info)

    t0 = time.perf_counter()
    z_comp = z_mean = None
    if regression_samples:
        if regression_samples < MIN_REGRESSION_SAMPLES:
            raise UserError(f"latent regression needs at least {MIN_REGRESSION_SAMPLES} samples "
                            f"(GANSpace's minimum), got {regression_samples}; use 0 to skip it")
        reg = RegressionAccumulator(dec, synth.latent_size, device=synth.device)
        rsampler = ActivationSampler(synth, layer, pitch_list, seed=seed, batch_size=batch_size,
                                     conditions=conditions, stream=STREAM_REGRESSION, centres=centres)
        start, stop = world.shard(regression_samples)
        bar = _progress(stop - start, "latent regression", progress and world.is_main)
        for z, x in rsampler.iterate(start, stop, bar):
            reg.update(z, x)
        if bar is not None:
            bar.close()
        if world.world_size > 1:
            reg.stats.reduce(world.all_reduce)
        if world.is_main:
            result = reg.solve()
            z_comp, z_mean = result.z_comp, result.z_mean
            meta["regression"] = result.report
            log(f"latent regression on {result.report['samples']} samples: R² = {result.report['r2']:.3f}, "
                f"max |cos| between latent directions = {result.report['z_comp_max_abs_cosine']:.3f}")
        if world.world_size > 1:
            dev = synth.device if synth.device.type == "cuda" else "cpu"
            t = [torch.from_numpy(z_comp).to(dev) if world.is_main else torch.zeros(k, synth.latent_size, device=dev),
                 torch.from_numpy(z_mean).to(dev) if world.is_main else torch.zeros(synth.latent_size, device=dev)]
            world.broadcast(t)
            z_comp, z_mean = (v.cpu().numpy() for v in t)
    timings["regression_s"] = time.perf_counter() - t0
    mean = dec.mean if centres is None else _global_mean(dec, centres, count)
    return Components(comp=dec.comp, stdev=dec.stdev, var_ratio=dec.var_ratio, mean=mean, layer=layer,
                      layer_shape=sampler.shape, z_comp=z_comp, z_mean=z_mean, meta=meta)


def _global_mean(dec: Decomposition, centres: torch.Tensor, count: int) -> np.ndarray:
    """The mean of the raw samples of a centred fit: their centred mean plus the group means, weighted by the
    samples of each group (sample i is in group i % n). Components files keep it as `mean`: what older readers
    start noz notes from."""
    n = centres.shape[0]
    weights = np.array([count // n + (j < count % n) for j in range(n)], np.float64) / count
    return (dec.mean.astype(np.float64) + weights @ centres.cpu().numpy().astype(np.float64)).astype(np.float32)


def _names(names: Sequence[str]) -> str:
    """"cov", "cov and ipca", "a, b and c"."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _json_clean(info: dict) -> dict:
    return {str(a): (b if isinstance(b, (str, int, bool, type(None), list)) else float(b)) for a, b in info.items()}


def _describe_solver(info: dict, k: int, dim: int) -> str:
    method = info.get("method", "?")
    if method == "subspace-iteration":
        return (f"eigensolver: top {k} of {dim} by subspace iteration ({info['float32_rounds']} float32 + "
                f"{info['float64_rounds']} float64 rounds, block {info['block']}), max residual "
                f"{info['max_relative_residual']:.1e} of the largest eigenvalue")
    text = f"eigensolver: {'all' if k == dim else f'top {k} of'} {dim} by {method}"
    if info.get("precision"):
        text += f" ({info['precision']})"
    if info.get("note"):
        text += f"; {info['note']}"
    return text


def list_layers(synth) -> list[dict]:
    """Every layer: name, shape (C, H, W), size and the sample count a full PCA needs (size + 1)."""
    out = []
    for name in synth.layer_names():
        shape = tuple(synth.generator.layer_shape(name))
        size = int(np.prod(shape))
        out.append({"name": name, "shape": shape, "size": size, "min_samples_full_pca": size + 1})
    return out
