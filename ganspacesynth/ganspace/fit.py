"""The GANSpace pipeline: sample latents → layer activations → estimator → latent regression → Components.

    comps = fit_components(synth, layer="conv0", count=8192, pitches=[32])
    comps.save("comps.npz")

Works in one process or under torchrun (see distributed.py): every process samples its share, the
statistics are all-reduced, process 0 solves and broadcasts, so every process returns the same Components.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from ..errors import UserError
from .components import Components
from .distributed import World, current_world
from .estimators import Decomposition, get_estimator
from .regression import MIN_REGRESSION_SAMPLES, RegressionAccumulator, orthonormality_error
from .sampling import STREAM_REGRESSION, ActivationSampler, resolve_pitches


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="z", dynamic_ncols=True, leave=False)


def _broadcast_decomposition(dec: Decomposition | None, k: int, dim: int, world: World, device) -> Decomposition:
    """Process 0's decomposition on every process."""
    if world.size == 1:
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


def fit_components(
    synth,
    layer: str = "conv0",
    count: int = 8192,
    *,
    estimator: str = "cov",
    n_components: int | None = None,
    pitches: int | str | Sequence[int] | None = None,
    conditions: Mapping[str, object] | None = None,
    seed: int = 0,
    batch_size: int = 256,
    regression_samples: int = MIN_REGRESSION_SAMPLES,
    world: World | None = None,
    progress: bool = False,
    log=None,
) -> Components:
    """Fit GANSpace components of `layer` from `count` seeded samples. `regression_samples=0` skips the latent
    regression (no z_comp). `log(str)` receives one-line reports (orthonormality, regression fit)."""
    world = world or current_world()
    log = log or (lambda msg: None)
    pitch_list = resolve_pitches(synth, pitches)
    sampler = ActivationSampler(synth, layer, pitch_list, seed=seed, batch_size=batch_size, conditions=conditions)
    dim = sampler.dim
    if count < 2:
        raise UserError("--random-z-count must be at least 2")
    est = get_estimator(estimator, n_components, dim, device=synth.device, seed=seed)
    k = est.n_components
    if world.size > 1 and estimator != "cov":
        raise UserError(f"only the cov estimator runs across processes (torchrun), not {estimator!r}")
    if not est.streaming and world.is_main:
        gib = count * dim * 4 / 2**30
        if gib > 4:
            log(f"note: {estimator} keeps all samples in memory ({gib:.1f} GiB); cov and ipca stream")

    start, stop = world.shard(count)
    bar = _progress(stop - start, f"{layer} activations", progress and world.is_main)
    for _, x in sampler.iterate(start, stop, bar):
        est.fit_partial(x)
    if bar is not None:
        bar.close()
    if world.size > 1:
        est.reduce(world.all_reduce)
    dec = est.components() if world.is_main else None
    dec = _broadcast_decomposition(dec, k, dim, world, synth.device)

    err, checked = orthonormality_error(dec.comp)
    if world.is_main:
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
        "processes": world.size,
        "orthonormality_error": err,
    }

    z_comp = z_mean = None
    if regression_samples:
        if regression_samples < MIN_REGRESSION_SAMPLES:
            raise UserError(f"latent regression needs at least {MIN_REGRESSION_SAMPLES} samples "
                            f"(GANSpace's minimum), got {regression_samples}; use 0 to skip it")
        reg = RegressionAccumulator(dec, synth.latent_size, device=synth.device)
        rsampler = ActivationSampler(synth, layer, pitch_list, seed=seed, batch_size=batch_size,
                                     conditions=conditions, stream=STREAM_REGRESSION)
        start, stop = world.shard(regression_samples)
        bar = _progress(stop - start, "latent regression", progress and world.is_main)
        for z, x in rsampler.iterate(start, stop, bar):
            reg.update(z, x)
        if bar is not None:
            bar.close()
        if world.size > 1:
            reg.stats.reduce(world.all_reduce)
        if world.is_main:
            result = reg.solve()
            z_comp, z_mean = result.z_comp, result.z_mean
            meta["regression"] = result.report
            log(f"latent regression on {result.report['samples']} samples: R² = {result.report['r2']:.3f}, "
                f"max |cos| between latent directions = {result.report['z_comp_max_abs_cosine']:.3f}")
        if world.size > 1:
            dev = synth.device if synth.device.type == "cuda" else "cpu"
            t = [torch.from_numpy(z_comp).to(dev) if world.is_main else torch.zeros(k, synth.latent_size, device=dev),
                 torch.from_numpy(z_mean).to(dev) if world.is_main else torch.zeros(synth.latent_size, device=dev)]
            world.broadcast(t)
            z_comp, z_mean = (v.cpu().numpy() for v in t)
    return Components(comp=dec.comp, stdev=dec.stdev, var_ratio=dec.var_ratio, mean=dec.mean, layer=layer,
                      layer_shape=sampler.shape, z_comp=z_comp, z_mean=z_mean, meta=meta)


def list_layers(synth) -> list[dict]:
    """Every layer: name, shape (C, H, W), size and the sample count a full PCA needs (size + 1)."""
    out = []
    for name in synth.layer_names():
        shape = tuple(synth.generator.layer_shape(name))
        size = int(np.prod(shape))
        out.append({"name": name, "shape": shape, "size": size, "min_samples_full_pca": size + 1})
    return out
