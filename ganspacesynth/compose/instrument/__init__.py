"""Playable instruments: one timbre across the keyboard, exported as a SoundFont 2 (and optionally SFZ + WAVs).

    result = export_instrument(synth, "pad.sf2", seed=3)                       # or synth.export_instrument(...)
    result = export_instrument(synth, "pad.sf2", components=comps, coefficients=[1.5, -0.5], mode="offset",
                               pitches="36-84", every=2, velocity_layers=2, sfz=True)

What happens, note by note (every measure below is also recorded in the file's metadata):

1. **Notes.** One note per root key (every `every`-th chosen pitch) at one timbre, generated in one batch: the same
   z (or GANSpace coefficients, see `ganspace/edits.py`) for every pitch. Each root key's zone covers the skipped
   keys nearest to it (ties go to the lower root). With a `velocity` condition in the model, each velocity layer
   is its own notes; otherwise the layers share the samples and soft layers are darker (a low-pass filter one
   octave lower per layer below the top).
2. **Onset.** Leading silence is cut: the sample starts 1 ms before the first 1 ms frame within 40 dB of the
   note's loudest frame, so a sampler's note starts at the MIDI onset. A 1 ms fade-in removes any start click.
3. **Envelope, from the model's own note.** Attack end: the first 10 ms frame within 3 dB of the loudest. The
   sample keeps the model's attack (the volume envelope only adds the players' 1 ms default). The release time is
   the model's own decay: after the last frame within 12 dB of the loudest, the level's fall rate (dB/s, until
   60 dB down or the note's end); releaseVolEnv = 100 dB / that rate (the SoundFont release runs to 100 dB down),
   clamped to 0.02–4 s; notes that do not decay take the median of the others (0.3 s if none does).
4. **Loudness.** Stated measure: RMS (dBFS) of the note's body, the 0.5 s from its attack end. Every note is
   scaled to the median body level (at most +24 dB, so a near-silent note is not blown up into noise), then all
   by one factor so the loudest peak is −0.1 dBFS. The spread left over is recorded.
5. **Loops.** In the stable part of the note (the longest run of 10 ms frames within 10 dB of the loudest, after
   the attack), loop points are searched at upward zero crossings for lengths of 0.1–1 s. The match error of a
   loop is the relative RMS difference between the waveform around its end and around its start,
   `sqrt(Σ (x[end+k] − x[start+k])² / Σ x[start+k]²)` over k in ±max(4 ms, one period) (0: identical,
   about 1.4: unrelated). A loop is used when its match error is ≤ `MAX_LOOP_ERROR` (0.25, −12 dB) and its level
   drift (first vs last 20 ms of the loop) is ≤ `MAX_LOOP_DRIFT_DB` (1.5 dB); then the last 10 ms before the loop
   end are cross-faded into the 10 ms before the loop start, so the played seam continues the waveform, and the
   measured discontinuity
   (`seam_step`: the step played across the seam over the largest step inside the loop; ≤ 1 is click-free) is
   recorded. Otherwise the note is a one-shot: it plays to its end (a 20 ms fade-out) with the release envelope.
6. **Files.** A SoundFont 2 (audio/sf2.py: one preset, one instrument, 16-bit samples, loop points and pitch
   correction 0 in the sample headers), written under a temporary name and renamed; with `sfz`, also NAME.sfz and
   its WAVs in NAME-samples/ beside it (audio/sfz.py). Names and metadata (INFO ICMT, SFZ comment) say which model
   file (fingerprint), z or coefficients, conditions and pitches made it, enough to make it again.

The modules, in that order: `options` (InstrumentOptions: every setting, checked once, for the CLI, the live
session and `Synth.export_instrument`), `keyboard` (pitches, key plan, velocity layers), `analysis` (onset,
envelope, loops of one note), `model` (Instrument, NoteSample: zones, names, the SoundFont), `build` (notes →
Instrument), `export` (model → notes → files), `files` (output checks, atomic writing, metadata).
"""

from __future__ import annotations

from .analysis import (CROSSFADE_S, LOOP_GUARD, MAX_LOOP_DRIFT_DB, MAX_LOOP_ERROR, MAX_LOOP_S, MIN_LOOP_S, Envelope,
                       Loop, apply_loop, find_loop, measure_envelope, onset_index, seam_step)
from .build import FADE_IN_S, FADE_OUT_S, MAX_GAIN_DB, build_instrument
from .export import ExportResult, export_instrument, render_notes, safe_name
from .files import (INSTRUMENT_FORMAT, INSTRUMENT_FORMAT_VERSION, check_output, read_metadata, sfz_paths,
                    write_instrument)
from .keyboard import MAX_VELOCITY_LAYERS, key_plan, parse_pitches, velocity_ranges
from .model import Instrument, NoteSample, notes_table
from .options import LOOP_CHOICES, InstrumentOptions

__all__ = ["export_instrument", "InstrumentOptions", "build_instrument", "write_instrument", "read_metadata",
           "check_output", "key_plan", "parse_pitches", "velocity_ranges", "find_loop", "apply_loop", "seam_step",
           "onset_index", "measure_envelope", "Instrument", "NoteSample", "Loop", "Envelope", "ExportResult",
           "LOOP_CHOICES", "MAX_VELOCITY_LAYERS", "INSTRUMENT_FORMAT"]
