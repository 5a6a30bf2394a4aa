"""Play a MIDI file with a model: Magenta GANSynth's MIDI mode.

Random timbres (latent vectors) are placed evenly in time, one every `secs_per_instrument` seconds;
each note gets the slerp of the two timbres around its start time. Every note has a 10 ms linear
attack, sustains for the note's length (capped so the note fits in the model's audio length), then a
0.3 s linear release; it is scaled by velocity / 127, placed at sample round(start · rate) and the
mix is peak-normalised. Notes outside the model's pitch range (and drum notes, unless asked for) are
skipped and counted, never dropped silently.

    notes = read_midi("song.mid")
    plan = plan_midi(synth, notes, MidiParams(seed=1))
    audio = render_midi(synth, plan)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..choices import Z_EDIT_MODES
from ..errors import UserError
from .envelope import Mixer, envelope_curve, to_samples
from .hallucinate import Limits, resolve_seed
from .interpolate import slerp

DRUM_CHANNEL = 9  # MIDI channel 10, General MIDI percussion


@dataclass(frozen=True)
class MidiNote:
    pitch: int
    velocity: int
    start: float  # seconds
    end: float
    channel: int = 0


def read_midi(path: str | os.PathLike) -> list[MidiNote]:
    """All notes of a MIDI file (type 0 or 1), in seconds with tempo changes applied, sorted by start."""
    import mido

    path = Path(path)
    if not path.is_file():
        raise UserError(f"MIDI file not found: {path}")
    try:
        mid = mido.MidiFile(str(path))
        messages = list(mid)  # merged tracks; .time is the delta in seconds (tempo map applied by mido)
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as exc:
        reason = str(exc) or ("the file ends early" if isinstance(exc, EOFError) else type(exc).__name__)
        raise UserError(f"cannot read MIDI file {path}: {reason}") from None
    notes: list[MidiNote] = []
    active: dict[tuple[int, int], list[tuple[float, int]]] = {}
    now = 0.0
    for msg in messages:
        now += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            active.setdefault((msg.channel, msg.note), []).append((now, msg.velocity))
        elif msg.type == "note_off" or (msg.type == "note_on" and msg.velocity == 0):
            started = active.get((msg.channel, msg.note))
            if started:  # a note-off without a note-on is ignored, as every sequencer does
                start, velocity = started.pop(0)
                notes.append(MidiNote(msg.note, velocity, start, now, msg.channel))
    for (channel, pitch), started in active.items():  # notes never released end with the file
        notes.extend(MidiNote(pitch, velocity, start, now, channel) for start, velocity in started)
    notes.sort(key=lambda n: (n.start, n.pitch, n.channel))
    return notes


@dataclass(frozen=True)
class MidiParams:
    secs_per_instrument: float = 6.0
    attack: float = 0.010
    release: float = 0.3
    seed: int | None = None
    include_drums: bool = False

    def __post_init__(self):
        if not np.isfinite(self.secs_per_instrument) or self.secs_per_instrument <= 0:
            raise UserError(f"seconds per instrument must be > 0, not {self.secs_per_instrument}")
        if min(self.attack, self.release) < 0:
            raise UserError("attack and release must be >= 0")


@dataclass
class MidiPlan:
    """Per-note inputs of a MIDI rendering (all positions in samples)."""

    notes: list[MidiNote]
    pitches: list[int]
    z: np.ndarray            # [N, latent]
    onsets: np.ndarray       # [N]
    sustains: np.ndarray     # [N]
    gains: np.ndarray        # [N] velocity / 127
    attack: int
    release: int
    length: int              # samples in the mix
    timbres: np.ndarray      # [T, latent]
    timbre_times: np.ndarray  # [T] seconds
    seed: int
    skipped: dict = field(default_factory=dict)  # reason -> count

    @property
    def count(self) -> int:
        return len(self.pitches)


def timbre_points(total_seconds: float, secs_per_instrument: float) -> np.ndarray:
    """Times of the random timbres: int(total / secs) of them (at least one), evenly from 0 to the end."""
    count = max(1, int(total_seconds / secs_per_instrument))
    return np.linspace(0.0, total_seconds, count) if count > 1 else np.zeros(1)


def timbres_at(times: np.ndarray, timbres: np.ndarray, timbre_times: np.ndarray) -> np.ndarray:
    """Each time's latent: the slerp of the timbres either side of it (the only one if there is one)."""
    if len(timbres) == 1:
        return np.repeat(timbres[:1], len(times), axis=0).astype(np.float32)
    idx = np.clip(np.searchsorted(timbre_times, times, side="right") - 1, 0, len(timbre_times) - 2)
    left, right = timbre_times[idx], timbre_times[idx + 1]
    t = np.clip((np.asarray(times) - left) / (right - left), 0.0, 1.0)
    return np.stack([slerp(timbres[i], timbres[i + 1], ti) for i, ti in zip(idx, t)]).astype(np.float32)


def plan_midi(synth, notes: list[MidiNote], params: MidiParams = MidiParams(), limits: Limits = Limits()) -> MidiPlan:
    """Choose timbres and per-note envelopes; refuses (before any generation) what `limits` does not allow."""
    sr, length = synth.sample_rate, synth.config.spectral.audio_length
    attack, release = to_samples(params.attack, sr), to_samples(params.release, sr)
    if attack + release > length:
        raise UserError(f"attack + release ({params.attack + params.release:g} s) exceed the model's notes "
                        f"({length / sr:g} s)")
    allowed = set(synth.pitches)
    skipped = {"out_of_range": 0, "drums": 0}
    playable = []
    for n in notes:
        if n.channel == DRUM_CHANNEL and not params.include_drums:
            skipped["drums"] += 1
        elif allowed and n.pitch not in allowed:
            skipped["out_of_range"] += 1
        else:
            playable.append(n)
    if not playable:
        raise UserError(f"no playable notes: {len(notes)} notes in the file, {skipped['out_of_range']} outside "
                        f"the model's pitch range, {skipped['drums']} on the drum channel")
    onsets = np.array([to_samples(n.start, sr) for n in playable], dtype=np.int64)
    durations = np.array([to_samples(n.end - n.start, sr) for n in playable], dtype=np.int64)
    sustains = np.clip(durations - attack, 0, length - attack - release)
    end = int((onsets + attack + sustains + release).max())
    limits.check(len(playable), end / sr)

    seed = resolve_seed(params.seed)
    timbre_times = timbre_points(max(n.end for n in playable), params.secs_per_instrument)
    timbres = synth.random_z(len(timbre_times), seed)
    z = timbres_at(np.array([n.start for n in playable]), timbres, timbre_times)
    return MidiPlan(
        notes=playable, pitches=[n.pitch for n in playable], z=z, onsets=onsets, sustains=sustains,
        gains=np.array([n.velocity / 127.0 for n in playable]), attack=attack, release=release, length=end,
        timbres=timbres, timbre_times=timbre_times, seed=seed, skipped=skipped,
    )


def render_midi(synth, plan: MidiPlan, components=None, coeffs=None, mode: str = "offset", *,
                batch_size: int = 16, peak: float = 0.99, progress=None, conditions=None) -> np.ndarray:
    """Generate the notes in batches (optionally GANSpace-edited by `coeffs`), envelope and mix them.
    `conditions`: the model's other conditions for every note ({name: value}, as `Synth.generate` takes them)."""
    if coeffs is not None:
        if components is None:
            raise UserError("--coeffs needs --components")
        if mode not in Z_EDIT_MODES:
            raise UserError(f"MIDI notes keep their own timbre: mode must be {' or '.join(Z_EDIT_MODES)}, "
                            f"not {mode!r}")
        from ..ganspace.edits import coefficient_matrix, synthesize

        coeffs = coefficient_matrix(components, coeffs)  # refuses too many / non-finite coefficients up front
        components.check_model(synth, check_fingerprint=False)
        if mode == "latent" and components.z_comp is None:
            raise UserError("mode 'latent' needs components with latent directions (z_comp); use offset")
    mixer = Mixer(plan.length)
    batch_size = max(1, int(batch_size))
    for start in range(0, plan.count, batch_size):
        sl = slice(start, min(plan.count, start + batch_size))
        if coeffs is None:
            waves = synth.generate(plan.z[sl], pitch=plan.pitches[sl], conditions=conditions, batch_size=batch_size)
        else:
            n = sl.stop - sl.start
            waves = synthesize(synth, components, np.repeat(coeffs, n, axis=0), plan.pitches[sl], mode=mode,
                               z=plan.z[sl], conditions=conditions, batch_size=batch_size)
        for i, wave in zip(range(sl.start, sl.stop), waves):
            curve = envelope_curve(plan.attack, int(plan.sustains[i]), plan.release)
            mixer.add(wave, int(plan.onsets[i]), curve, 0, float(plan.gains[i]))
        if progress is not None:
            progress(sl.stop, plan.count)
    return mixer.result(peak)
