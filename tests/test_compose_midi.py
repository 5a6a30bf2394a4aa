"""MIDI mode: reading with tempo changes, timbres in time, onsets to the sample, envelopes, velocity,
skipped-note counts, short files and refusals (compose/midi.py)."""

from __future__ import annotations

import mido
import numpy as np
import pytest

from ganspacesynth.errors import UserError
from ganspacesynth.compose.envelope import envelope_curve
from ganspacesynth.compose.hallucinate import Limits
from ganspacesynth.compose.interpolate import slerp
from ganspacesynth.compose.midi import MidiNote, MidiParams, plan_midi, read_midi, render_midi, timbre_points

SR = 16000


def write_midi(path, notes, tempo=500_000, tpb=480, tempo_change=None):
    """notes: (pitch, velocity, start_tick, end_tick, channel). tempo_change: (tick, tempo)."""
    events = []
    for pitch, vel, on, off, ch in notes:
        events.append((on, 1, mido.Message("note_on", note=pitch, velocity=vel, channel=ch)))
        events.append((off, 0, mido.Message("note_off", note=pitch, velocity=0, channel=ch)))
    if tempo_change:
        events.append((tempo_change[0], -1, mido.MetaMessage("set_tempo", tempo=tempo_change[1])))
    events.sort(key=lambda e: (e[0], e[1]))
    mid = mido.MidiFile(ticks_per_beat=tpb)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))
    now = 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    mid.save(str(path))
    return path


class ConstSynth:
    """Tiny synth whose notes are constant waves of value 1 + z[0] (mix predictable exactly)."""

    def __init__(self, synth):
        self._synth = synth
        self.generate_calls = 0

    def __getattr__(self, name):
        return getattr(self._synth, name)

    def generate(self, z, pitch=None, conditions=None, *, batch_size=8, **kw):
        self.generate_calls += 1
        z = self._synth.check_z(z)
        return np.repeat(1.0 + z[:, :1], self.config.spectral.audio_length, axis=1).astype(np.float32)


def test_read_midi_applies_tempo_and_pairs_notes(tmp_path):
    # 120 bpm at 480 ticks/beat: 480 ticks = 0.5 s; at tick 960 the tempo halves to 60 bpm (480 ticks = 1 s)
    path = write_midi(tmp_path / "a.mid", [(60, 100, 480, 720, 0), (64, 50, 960, 1440, 0), (62, 127, 0, 1440, 1)],
                      tempo_change=(960, 1_000_000))
    notes = read_midi(path)
    assert [(n.pitch, n.velocity, n.channel) for n in notes] == [(62, 127, 1), (60, 100, 0), (64, 50, 0)]
    assert notes[0].start == pytest.approx(0.0) and notes[0].end == pytest.approx(2.0)
    assert notes[1].start == pytest.approx(0.5) and notes[1].end == pytest.approx(0.75)
    assert notes[2].start == pytest.approx(1.0) and notes[2].end == pytest.approx(2.0)


def test_read_midi_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_midi(tmp_path / "none.mid")
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not a midi file at all")
    with pytest.raises(UserError, match="cannot read MIDI"):
        read_midi(bad)


def test_onsets_envelopes_and_velocity_to_the_sample(tiny_synth, tmp_path):
    synth = ConstSynth(tiny_synth)
    length = synth.config.spectral.audio_length  # 16384
    path = write_midi(tmp_path / "b.mid", [
        (60, 127, 0, 96, 0),        # 0.1 s note
        (62, 64, 300, 1260, 0),     # 0.3125 s, 1.3125 s long: sustain capped by the model's length
        (65, 100, 2000, 2000, 0),   # zero length: attack + release only
    ])
    plan = plan_midi(synth, read_midi(path), MidiParams(seed=4))
    np.testing.assert_array_equal(plan.onsets, [0, 5000, round(2000 / 960 * SR)])
    assert plan.attack == 160 and plan.release == 4800
    np.testing.assert_array_equal(plan.sustains, [1600 - 160, length - 160 - 4800, 0])
    audio = render_midi(synth, plan, peak=None)
    expected = np.zeros(plan.length)
    for i in range(3):
        curve = envelope_curve(160, int(plan.sustains[i]), 4800).astype(np.float64)
        expected[plan.onsets[i]:plan.onsets[i] + len(curve)] += (1 + plan.z[i, 0]) * curve * plan.gains[i]
    np.testing.assert_allclose(audio, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(plan.gains, [1.0, 64 / 127, 100 / 127])
    assert len(audio) == plan.onsets[2] + 160 + 4800
    # the third note rises from silence exactly at its onset sample (attack gain i / 160)
    on = plan.onsets[2]
    assert on == 33333 and not audio[21384:on + 1].any()
    assert audio[on + 1] == pytest.approx((1 + plan.z[2, 0]) * (100 / 127) / 160, rel=1e-5)


def test_timbres_are_slerped_at_note_starts(tiny_synth):
    notes = [MidiNote(60, 100, t, t + 0.5) for t in (0.0, 3.0, 6.0, 9.0, 12.0)]  # ends at 12.5 s
    plan = plan_midi(tiny_synth, notes, MidiParams(secs_per_instrument=6.0, seed=8), Limits(max_seconds=60))
    np.testing.assert_allclose(plan.timbre_times, [0.0, 12.5])  # int(12.5 / 6) = 2 timbres
    np.testing.assert_array_equal(plan.timbres, tiny_synth.random_z(2, 8))
    np.testing.assert_allclose(plan.z[0], plan.timbres[0], atol=1e-6)
    np.testing.assert_allclose(plan.z[2], slerp(plan.timbres[0], plan.timbres[1], 6.0 / 12.5), atol=1e-6)
    np.testing.assert_allclose(plan.z[4], slerp(plan.timbres[0], plan.timbres[1], 12.0 / 12.5), atol=1e-6)
    many = plan_midi(tiny_synth, notes, MidiParams(secs_per_instrument=2.0, seed=8), Limits(max_seconds=60))
    assert len(many.timbres) == 6
    np.testing.assert_allclose(many.z[2], slerp(many.timbres[2], many.timbres[3], (6.0 - 5.0) / 2.5), atol=1e-6)


def test_short_file_with_one_timbre_works(tiny_synth, tmp_path):
    assert list(timbre_points(1.5, 6.0)) == [0.0]
    path = write_midi(tmp_path / "short.mid", [(60, 90, 0, 240, 0), (67, 90, 240, 480, 0)])
    plan = plan_midi(tiny_synth, read_midi(path), MidiParams(seed=1))
    assert len(plan.timbres) == 1
    np.testing.assert_array_equal(plan.z, np.repeat(plan.timbres, 2, axis=0))
    audio = render_midi(tiny_synth, plan)
    assert audio.shape == (plan.length,) and np.abs(audio).max() == pytest.approx(0.99, abs=1e-6)
    again = render_midi(tiny_synth, plan_midi(tiny_synth, read_midi(path), MidiParams(seed=1)))
    np.testing.assert_array_equal(audio, again)  # deterministic by seed


def test_out_of_range_and_drum_notes_are_counted(tiny_synth):
    notes = [MidiNote(60, 100, 0.0, 0.5), MidiNote(10, 100, 0.1, 0.5), MidiNote(100, 100, 0.2, 0.5),
             MidiNote(38, 100, 0.3, 0.5, channel=9)]
    plan = plan_midi(tiny_synth, notes, MidiParams(seed=0))
    assert plan.count == 1 and plan.skipped == {"out_of_range": 2, "drums": 1}
    with_drums = plan_midi(tiny_synth, notes, MidiParams(seed=0, include_drums=True))
    assert with_drums.pitches == [60, 38] and with_drums.skipped == {"out_of_range": 2, "drums": 0}
    with pytest.raises(UserError, match="no playable notes: 2 notes in the file, 1 outside"):
        plan_midi(tiny_synth, [MidiNote(10, 100, 0.0, 0.5), MidiNote(40, 1, 0.0, 0.1, channel=9)])


def test_limits_refuse_before_generation(tiny_synth):
    synth = ConstSynth(tiny_synth)
    notes = [MidiNote(60, 100, 0.1 * i, 0.1 * i + 0.2) for i in range(30)]
    with pytest.raises(UserError, match="30 notes requested; the limit is 20"):
        plan_midi(synth, notes, limits=Limits(max_notes=20))
    with pytest.raises(UserError, match="limit is 2 s"):
        plan_midi(synth, notes, limits=Limits(max_seconds=2))
    assert synth.generate_calls == 0
    with pytest.raises(UserError):
        MidiParams(secs_per_instrument=0)
