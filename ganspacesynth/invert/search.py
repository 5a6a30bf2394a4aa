"""One note's latent and conditions: first guesses for every combination of searched conditions, then Adam on the
best of them through the differentiable Mel-IF -> audio path, and the closest result."""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import torch

from .distance import SpectralDistance
from .notes import combinations, searched_conditions
from .results import InvertedNote, InvertSettings, Target


def _labels(synth, pitch, conditions: Sequence[dict], count: int):
    """Condition vectors `[count, D]` for one pitch and per-row condition dicts."""
    names = sorted({k for c in conditions for k in c})
    values = {k: [c[k] for c in conditions] for k in names}
    labels = synth.labels(count, pitch, values or None)
    return synth.conditions.encode(labels, batch=count, device=synth.device)


def _rng(settings: InvertSettings, index: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng([settings.seed, index, purpose])


def _raw_waves(synth, z: np.ndarray, pitch, conditions: Sequence[dict] | dict | None) -> np.ndarray:
    if isinstance(conditions, dict):
        conditions = [conditions] * len(z)
    names = sorted({k for c in conditions for k in c}) if conditions else []
    values = {k: [c[k] for c in conditions] for k in names}
    return synth.generate(z, pitch=pitch, conditions=values or None, batch_size=64, raw=True)


#: Notes generated at a time for distances (bounds memory: 256 notes of the bundled model are 16 MB).
CHUNK = 256


def _distances(synth, distance: "SpectralDistance", z: np.ndarray, pitch, conditions: Sequence[dict] | dict,
               target_db: torch.Tensor) -> np.ndarray:
    """Log-mel distances `[N]` of the notes of latents `z` (at `pitch`, with per-row or shared conditions)."""
    out = []
    for start in range(0, len(z), CHUNK):
        conds = conditions if isinstance(conditions, dict) else conditions[start:start + CHUNK]
        out.append(distance.distance_db(_raw_waves(synth, z[start:start + CHUNK], pitch, conds), target_db))
    return np.concatenate(out)


def differentiable_melif(synth):
    """A MelIF of the synth's representation for autograd: its own constants, never made in inference mode
    (the synth's are, and autograd cannot save those)."""
    from ..audio.spectral import MelIF

    return MelIF(synth.config.spectral)


def _pitch_keeping_choice(synth, z: np.ndarray, conditions: list[dict], pitch: int | None, distances: np.ndarray,
                          slack: float) -> int:
    """The closest candidate whose note pYIN hears at `pitch`, among those within `slack` × the closest distance;
    the closest when none is (or the model has no pitch, or slack is 1). About 40 ms of pYIN per candidate heard."""
    order = np.argsort(distances, kind="stable")
    if pitch is None or slack <= 1.0:
        return int(order[0])
    from ..evaluate.pitch import track_f0

    for i in order:
        if distances[i] > slack * distances[order[0]]:
            break
        wave = synth.generate(z[i:i + 1], pitch=pitch, conditions=dict(conditions[i]) or None, raw=True)
        if int(track_f0(wave, synth.sample_rate).midi[0]) == pitch:
            return int(i)
    return int(order[0])


def refine(synth, distance: SpectralDistance, target: dict, z0: np.ndarray, cond: torch.Tensor,
           settings: InvertSettings, melif=None) -> np.ndarray:
    """Adam on latents `[R, L]` (each with its condition row) against one note: the best latent of each row."""
    melif = melif or differentiable_melif(synth)
    latent = synth.latent_size
    # The shell term suits N(0, I), whose latents all lie near |z|² = L. Each code of a prior of codes has its own
    # norm, and pulling every latent to their mean shell cost the bundled model 0.75 dB at the median of 8 notes.
    shell_weight = settings.prior_weight if synth.prior.is_standard else 0.0
    z = torch.tensor(z0, dtype=torch.float32, device=synth.device, requires_grad=True)
    opt = torch.optim.Adam([z], lr=settings.learning_rate)
    best = z0.copy()
    best_loss = np.full(len(z0), np.inf)
    generator = synth.generator
    threads = torch.get_num_threads()
    if synth.device.type == "cpu":  # small convolutions and their backward: one core each beats two sharing
        torch.set_num_threads(1)    # (tests beside a busy core: 10x slower on two threads)
    try:
        with torch.enable_grad():
            for _ in range(settings.steps):
                opt.zero_grad(set_to_none=True)
                specs = generator(z, cond).float()
                waves = melif.specgrams_to_waves(specs)
                per_note = distance.loss(waves, target, settings.stft_weight)
                shell = (z.square().sum(dim=1) / latent - 1.0).square()
                loss = per_note + shell_weight * shell
                values = loss.detach().cpu().numpy()
                better = values < best_loss
                best[better], best_loss[better] = z.detach().cpu().numpy()[better], values[better]
                loss.sum().backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    return best


def invert_note(synth, target: Target, settings: InvertSettings, *, index: int = 0,
                distance: SpectralDistance | None = None, melif=None) -> InvertedNote:
    """The latent and conditions of one note (see the module docstring for the steps), then its comparisons:
    the best of `settings.baseline` random latents at the chosen pitch and conditions, and the floor."""
    start, cpu_start = time.perf_counter(), time.process_time()
    distance = distance or SpectralDistance(synth.sample_rate, synth.device)
    target_db = distance.log_mel_db(target.audio)
    combos = combinations(synth, target.conditions)
    searched = [s.name for s in searched_conditions(synth, target.conditions)]
    # 4. first guesses: `guesses` random latents for every combination of the searched conditions
    rng = _rng(settings, index, 1)
    guess_z = synth.prior.draw(rng, settings.guesses * len(combos))  # where the model's random latents are
    guess_c = [c for c in combos for _ in range(settings.guesses)]
    guess_d = _distances(synth, distance, guess_z, target.pitch, guess_c, target_db)
    order = np.argsort(guess_d, kind="stable")
    chosen = list(order[:settings.restarts - settings.random_starts])
    start_z = [guess_z[i] for i in chosen]
    start_c = [guess_c[i] for i in chosen]
    kinds = ["refined first guess"] * len(chosen)
    if settings.random_starts:
        start_z += list(synth.prior.draw(_rng(settings, index, 2), settings.random_starts))
        start_c += [guess_c[order[0]]] * settings.random_starts
        kinds += ["refined random latent"] * settings.random_starts
    # 5. refinement of all restarts at once
    cond = _labels(synth, target.pitch, start_c, len(start_z))
    refined = refine(synth, distance, distance.target(target.audio), np.stack(start_z), cond, settings, melif)
    # 6. the closest note of the refined latents and the best first guess itself
    final_z = np.concatenate([refined, guess_z[order[:1]]])
    final_c = start_c + [guess_c[order[0]]]
    kinds.append("first guess")
    final_d = _distances(synth, distance, final_z, target.pitch, final_c, target_db)
    best = _pitch_keeping_choice(synth, final_z, final_c, target.pitch, final_d, settings.pitch_slack)
    z, conditions = final_z[best].astype(np.float32), dict(final_c[best])
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    # the comparisons (timed apart: they measure the result, they do not make it)
    baseline = None
    if settings.baseline:
        base_z = synth.random_z(settings.baseline, settings.seed)
        baseline = float(_distances(synth, distance, base_z, target.pitch, conditions, target_db).min())
    with torch.inference_mode():
        trip = synth.spectral.specgrams_to_waves(synth.spectral.waves_to_specgrams(target.audio[None])).cpu().numpy()
    floor = float(distance.distance_db(trip, target_db)[0])
    return InvertedNote(target, z, target.pitch, conditions, searched, float(final_d[best]), float(guess_d[order[0]]),
                        baseline, floor, seconds, cpu_seconds, winner=kinds[best],
                        compare_seconds=time.perf_counter() - start - seconds)


def refine_coefficients(synth, components, distance: SpectralDistance, target: Target, coefficients: np.ndarray,
                        pitch, conditions: dict, settings: InvertSettings, melif=None) -> np.ndarray:
    """The note's `noz` coefficients `[K]`, refined: Adam on all of them (each kept within
    ±`settings.coefficient_limit` standard deviations, the sliders' range) so that the note `noz` plays from them
    comes closer to the recording. The latent's projection (`coefficients_of`) is where it starts; it plays the
    note only as far as the components span the layer, and the layer's activation carries more than the latent
    reaches, so the refined coefficients come closer than the latent itself (docs/reports/invert/)."""
    from ..ganspace.centring import centring_of, conditional_means

    limit = float(settings.coefficient_limit)
    start = np.clip(np.asarray(coefficients, np.float64), -limit, limit)
    melif = melif or differentiable_melif(synth)
    centring = centring_of(components)
    base = conditional_means(synth, components.layer, pitch, conditions or None, 1, latents=centring.latents,
                             seed=centring.seed).to(synth.device)
    comp = torch.from_numpy(np.asarray(components.comp, np.float32)).to(synth.device)
    stdev = torch.from_numpy(np.asarray(components.stdev, np.float32)).to(synth.device)
    cond = _labels(synth, pitch, [conditions], 1)
    goal = distance.target(target.audio)
    c = torch.tensor(start[None], dtype=torch.float32, device=synth.device, requires_grad=True)
    opt = torch.optim.Adam([c], lr=settings.coefficient_learning_rate)
    best, best_loss = start.astype(np.float32), np.inf
    threads = torch.get_num_threads()
    if synth.device.type == "cpu":  # as in refine: one core each for these small convolutions
        torch.set_num_threads(1)
    try:
        with torch.enable_grad():
            for _ in range(settings.coefficient_steps):
                opt.zero_grad(set_to_none=True)
                act = base + ((c * stdev) @ comp).reshape(base.shape)
                specs = synth.generator(None, cond, start_at=components.layer, start_activation=act).float()
                loss = distance.loss(melif.specgrams_to_waves(specs), goal, settings.stft_weight)
                value = float(loss.detach())
                if value < best_loss:
                    best, best_loss = c.detach().cpu().numpy()[0].copy(), value
                loss.sum().backward()
                opt.step()
                with torch.no_grad():
                    c.clamp_(-limit, limit)
    finally:
        torch.set_num_threads(threads)
    return best
