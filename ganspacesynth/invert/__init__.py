"""Find a recording's place in a model: the latent (and conditions) whose note sounds closest to it.

    result = invert(synth, audio, sample_rate)          # or synth.invert(audio, sample_rate)
    result.latents                                      # [N, L] float32: one row per note found
    result.notes[0].pitch, .conditions, .distance_db, .baseline_db, .coefficients
    write_inversion(result, folder, synth)              # latents.npy, conditions.json, WAVs, report.json

What it does, note by note (docs/user-guide.md, "Start from your own sound"):

1. **Notes.** The audio, at the model's sample rate and mixed to mono, is cut at its onsets (librosa's onset
   detector, kept where the level rises by `ONSET_RISE_DB`, plus the first sound of the file; each start moved
   to 1 ms before the note's first frame within 40 dB of its loudest, `compose.instrument.analysis.onset_index`),
   or at `start`/`length` seconds. A note is the model's note length from its onset (the next onset cuts it
   short, with a 5 ms fade), zero-padded.
2. **Pitch.** pYIN (`data.pitch.estimate_pitch`, what `dataset chop --pitch auto` labels clips with), unless
   given. A note pYIN finds no steady pitch in (noise, a drum) or whose lowest harmonics are missing (a chord or
   an interval: pYIN then hears their common root) is refused, or, with a given pitch, inverted with a warning.
3. **Conditions.** Given ones are used as they are; each other categorical condition (instrument_family, …)
   is searched: every combination of classes gets its own first guesses, and the restarts go to the best of
   all of them (so the class is chosen by how close its notes come). Multi-label conditions not given stay empty.
4. **First guesses.** `guesses` random latents per combination, at the note's pitch; the best `restarts -
   random_starts` of all (by the log-mel distance below) start the refinement, with `random_starts` plain
   random latents at the best combination.
5. **Refinement.** Adam on the latents of all restarts at once, `steps` steps, on the spectral loss of the
   generator's *audio* (the Mel-IF → inverse-STFT path of audio/spectral.py is torch, so the gradient flows
   through it): the log-mel distance below (level-free: each note relative to its own maximum) plus
   `stft_weight` × a multi-resolution STFT distance (spectral convergence + log-magnitude L1 at 512 and 2048
   points, on unit-RMS waves), plus, for a model whose random latents are N(0, I), `prior_weight`·(|z|²/L − 1)²,
   which keeps z on the shell where they lie (the generator pixel-normalises z with the labels, so |z| sets how
   loud the labels speak); a model whose latents come from its codes gets none, as each code has its own norm.
   Why audio and not the Mel-IF magnitude channel: measured, see `LOSS_NOTE`.
6. **Choice.** The restart (or first guess) whose note has the smallest log-mel distance wins, unless pYIN hears
   it off its pitch: then the closest one pYIN hears at the pitch, if it is within `pitch_slack` (1.5) × that
   distance (the generator misses the pitch of a few latents; measured in docs/reports/invert/).
7. **Coefficients** (with `components`). The projection of the latent's activation at the components' layer
   (`coefficients_of`), then `coefficient_steps` Adam steps on all of them against the recording through the
   `noz` path (`search.refine_coefficients`, each kept within ±`coefficient_limit` σ): the layer holds more than
   the latents reach, so the note `noz` plays from them comes closer than the latent's own (5.0 against 6.3 dB
   at the median of 8 FluidR3_GM notes on the bundled model). Kept where it is closer and pYIN hears it at the
   pitch (or the projection's note misses the pitch too); `noz_distance_db` and `noz_midi` report that note.

The **log-mel distance** (dB) is the one docs/evaluation.md uses between notes (`evaluate.timbre.log_mel_db`:
80 mels, n_fft 1024, hop 256, fmin 20 Hz, each note in dB relative to its own maximum, floored at −80 dB; the
RMS difference over all bins), computed here in torch (`SpectralDistance`, the same numbers to 0.01 dB) so that
hundreds of candidate notes cost milliseconds. 0 means identical up to level. Every note's report gives it for
the result, for the best of `baseline` random latents at the same pitch and conditions (what random search
finds), and for the recording's own Mel-IF round trip (the floor: what the representation itself loses).

Modules: notes.py (the notes of a recording: onsets, pitch, conditions), distance.py (the log-mel distance and the
loss), search.py (first guesses and Adam, one note), files.py (the result folder), results.py (settings, results).
"""

from __future__ import annotations

import time
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from ..errors import UserError
from .distance import LOSS_NOTE, RESOLUTIONS, SpectralDistance
from .files import (CONDITIONS_FORMAT, REPORT_FORMAT, REPORT_FORMAT_VERSION, edit_command, original_name,
                    reconstruction_name, write_inversion)
from .notes import (CUT_FADE_S, HARMONIC_FLOOR_DB, MAX_COMBINATIONS, MAX_LOWEST_HARMONIC, MIN_GAP_S,
                    MIN_PITCH_CONFIDENCE, MIN_SECONDS, ONSET_RISE_DB, ONSET_WINDOW_S, SILENT_DBFS, PitchAnalysis,
                    analyse_pitch, check_conditions, combinations, cut_note, find_onsets, harmonic_levels,
                    prepare_notes, searched_conditions)
from .results import InvertedNote, Inversion, InvertSettings, Skipped, Target
from .search import CHUNK, differentiable_melif, invert_note, refine, refine_coefficients

__all__ = [
    "CHUNK", "CONDITIONS_FORMAT", "CUT_FADE_S", "HARMONIC_FLOOR_DB", "LOSS_NOTE", "MAX_COMBINATIONS",
    "MAX_LOWEST_HARMONIC", "MIN_GAP_S", "MIN_PITCH_CONFIDENCE", "MIN_SECONDS", "ONSET_RISE_DB", "ONSET_WINDOW_S",
    "REPORT_FORMAT", "REPORT_FORMAT_VERSION", "RESOLUTIONS", "SILENT_DBFS",
    "InvertSettings", "InvertedNote", "Inversion", "PitchAnalysis", "Skipped", "SpectralDistance", "Target",
    "analyse_pitch", "check_conditions", "coefficients_of", "combinations", "cut_note", "differentiable_melif",
    "edit_command", "find_onsets", "harmonic_levels", "invert", "invert_note", "invert_notes", "original_name",
    "prepare_notes", "reconstruction_name", "refine", "refine_coefficients", "refusal", "searched_conditions",
    "write_inversion",
]


def coefficients_of(synth, components, z: np.ndarray, pitches: Sequence[int] | None,
                    conditions: Sequence[dict]) -> np.ndarray:
    """GANSpace coefficients `[N, K]` (standard deviations) of notes made from latents at their pitches and
    conditions: the projection of each note's activation at the components' layer, minus the conditional mean
    a `noz` note starts from, onto the components. `edit --mode noz --coeffs C` plays the note's projection
    (all of the note when the components span the layer); `--mode offset --z latents.npy` starts from the note
    itself at coefficients 0."""
    from ..ganspace.centring import centring_of, conditional_means

    components.check_model(synth, check_fingerprint=False)
    names = sorted({k for c in conditions for k in c})
    values = {k: [c[k] for c in conditions] for k in names} or None
    pitches = None if pitches is None else list(pitches)
    act = synth.activations(z, pitches, components.layer, values).reshape(len(z), -1).double().cpu()
    centring = centring_of(components)
    base = conditional_means(synth, components.layer, pitches, values, len(z), latents=centring.latents,
                             seed=centring.seed).reshape(len(z), -1).double()
    comp = torch.from_numpy(components.comp).double()
    stdev = torch.from_numpy(components.stdev).double().clamp_min(1e-12)
    return (((act - base) @ comp.T) / stdev).numpy().astype(np.float32)


def invert_notes(synth, targets: Sequence[Target], skipped: Sequence[Skipped] = (), *,
                 settings: InvertSettings = InvertSettings(), components=None,
                 progress: Callable[[int, int], None] | None = None) -> Inversion:
    """Invert prepared notes (`prepare_notes`), then measure the results: pYIN of every reconstruction and, with
    `components`, each note's coefficients and how close its `noz` rendering comes."""
    from ..evaluate.pitch import track_f0

    if not targets:
        raise UserError("no notes to invert")
    distance = SpectralDistance(synth.sample_rate, synth.device)
    melif = differentiable_melif(synth)
    notes = []
    for i, target in enumerate(targets):
        notes.append(invert_note(synth, target, settings, index=i, distance=distance, melif=melif))
        if progress is not None:
            progress(i + 1, len(targets))
    z = np.stack([n.z for n in notes])
    pitches = [n.pitch for n in notes]
    conds = [n.conditions for n in notes]
    pitch_arg = pitches if "pitch" in synth.conditions.names else None
    names = sorted({k for c in conds for k in c})
    values = {k: [c[k] for c in conds] for k in names} or None
    raw = synth.generate(z, pitch=pitch_arg, conditions=values, raw=True)
    for note, wave in zip(notes, raw):
        note.reconstruction = wave
    if pitch_arg is not None:
        f0 = track_f0(raw, synth.sample_rate)
        for note, hz, midi in zip(notes, f0.median_hz, f0.midi):
            note.reconstruction_f0_hz = float(hz) if np.isfinite(hz) else None
            note.reconstruction_midi = int(midi) if midi >= 0 else None
            if note.reconstruction_midi is None:
                note.warnings.append("pYIN finds no pitch in the reconstruction")
            elif note.reconstruction_midi != note.pitch:
                note.warnings.append(f"pYIN hears the reconstruction at MIDI {note.reconstruction_midi}, not "
                                     f"{note.pitch}")
    if components is not None:
        _measure_coefficients(synth, components, notes, pitch_arg, values, settings, distance, melif)
    return Inversion(notes, list(skipped), settings, components)


def _measure_coefficients(synth, components, notes: list, pitch_arg, values, settings: InvertSettings,
                          distance: SpectralDistance, melif) -> None:
    """Each note's `noz` coefficients and how close `noz` plays them: the projection of its latent's activation,
    refined against the recording (`refine_coefficients`) where that comes closer and keeps the pitch pYIN hears
    (or the projection misses it too)."""
    from ..evaluate.pitch import track_f0
    from ..ganspace.coefficients import MAX_COEFFICIENT
    from ..ganspace.edits import synthesize_specgrams

    def noz_distances(coeffs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        specs = synthesize_specgrams(synth, components, np.clip(coeffs, -MAX_COEFFICIENT, MAX_COEFFICIENT),
                                     pitch_arg, "noz", None, values)
        waves = synth.specgrams_to_waves(specs, raw=True)
        d = np.array([distance.distance_db(w[None], distance.log_mel_db(n.target.audio))[0]
                      for n, w in zip(notes, waves)])
        heard = None if pitch_arg is None else np.asarray(track_f0(waves, synth.sample_rate).midi)
        return d, heard

    z = np.stack([n.z for n in notes])
    coeffs = coefficients_of(synth, components, z, pitch_arg, [n.conditions for n in notes])
    for note, c in zip(notes, coeffs):
        if np.abs(c).max() > MAX_COEFFICIENT:
            note.warnings.append(f"its coefficients reach {np.abs(c).max():.3g}, beyond the ±{MAX_COEFFICIENT:g} "
                                 f"the players take: its noz rendering was measured with them clipped")
    dist, heard = noz_distances(coeffs)
    if settings.coefficient_steps:
        refined = []
        for note, c in zip(notes, coeffs):
            start = time.perf_counter()
            refined.append(refine_coefficients(synth, components, distance, note.target, c,
                                               note.pitch if pitch_arg is not None else None, note.conditions,
                                               settings, melif))
            note.coefficient_seconds = time.perf_counter() - start
        r_dist, r_heard = noz_distances(np.stack(refined))
        for i, note in enumerate(notes):
            keeps = heard is None or r_heard[i] == note.pitch or heard[i] != note.pitch
            if r_dist[i] < dist[i] and keeps:
                coeffs[i], dist[i] = refined[i], r_dist[i]
                if heard is not None:
                    heard[i] = r_heard[i]
    for i, note in enumerate(notes):
        note.coefficients, note.noz_distance_db = coeffs[i], float(dist[i])
        note.noz_midi = None if heard is None or heard[i] < 0 else int(heard[i])


def invert(synth, audio: np.ndarray, sample_rate: int, *, pitch=None, conditions: Mapping[str, object] | None = None,
           start: float | None = None, length: float | None = None, settings: InvertSettings = InvertSettings(),
           components=None, source: str = "audio", progress: Callable[[int, int], None] | None = None) -> Inversion:
    """Every note of one recording (`audio` `[n]` or `[n, channels]` at `sample_rate`): see the module docstring.
    A recording in which no note can be inverted is refused with the reason (UserError)."""
    targets, skipped = prepare_notes(synth, audio, sample_rate, source=source, pitch=pitch, conditions=conditions,
                                     start=start, length=length)
    if not targets:
        raise UserError(refusal(skipped))
    return invert_notes(synth, targets, skipped, settings=settings, components=components, progress=progress)


def refusal(skipped: Sequence[Skipped]) -> str:
    """The one-line reason nothing could be inverted."""
    if len(skipped) == 1:
        return f"{skipped[0].source}: {skipped[0].reason}"
    if not skipped:
        return "no notes found"
    return f"no note could be inverted ({len(skipped)} found); the first, {skipped[0].message()}"
