"""Playable instruments (compose/instrument.py, audio/sf2.py, audio/sfz.py): the files, and real players.

Two kinds of instruments are played here. A synthetic one, made from known harmonic tones through the same
`build_instrument` → SoundFont/SFZ writers (30 ms of silence before each tone, levels 20 dB apart), checks what
must hold for any model: notes start at the MIDI onsets, every key (generated or transposed) sounds at its pitch,
loops do not click, loudness is matched. One from the tiny untrained model checks that the files carry the
model's own notes at the right root keys, with metadata that makes them again (its notes are noise, so pitch is
compared with the f0 agreement of the model's own notes).

Players: FluidSynth (Debian `fluidsynth`, headless `-ni -F`), TinySoundFont (the SoundFont reader of
data/soundfont.py), sf2utils (a third-party SF2 parser) and the project's own SFZ reader/renderer.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ganspacesynth.audio import sf2
from ganspacesynth.audio.io import resample
from ganspacesynth.audio.sfz import read_sfz, render_sfz, sfz_comment
from ganspacesynth.errors import UserError
from ganspacesynth.compose import instrument as I
from ganspacesynth.compose.midi import MidiNote, read_midi
from helpers import tone

FLUIDSYNTH = shutil.which("fluidsynth")
needs_fluidsynth = pytest.mark.skipif(FLUIDSYNTH is None,
                                      reason="FluidSynth not installed (apt-get install fluidsynth)")
SR = 16000
PLAY_RATE = 44100
LEAD_S = 0.03  # silence before each synthetic tone: a sampler playing the untrimmed note would start this late
KEYS = list(range(55, 68))  # roots 55, 58, 61, 64, 67 with every=3; the others transposed by ±1 semitone
HOLD_S, SPACING_S = 0.45, 0.7
#: Bounds stated in docs/user-guide.md (section 10, "Take the instrument with you").
ONSET_TOLERANCE_MS = 10.0
CENTS_TOLERANCE = 15.0
CLICK_RATIO = 1.5


# -- helpers --------------------------------------------------------------------------------------------------------
#: The synthetic notes (helpers.tone, at a level `amp`): three harmonics, LEAD_S of silence, a 20 ms attack, a steady
#: body and a fast decay in the last 0.15 s; float64.
SYNTHETIC = dict(seconds=1.024, sr=SR, partials=(0.6, 0.25, 0.1), phase=1.0, top=0.4, decay=0.0, lead=LEAD_S,
                 attack=0.02, release=0.15, normalize=False, noise=0.0, dtype=None)


def write_midi(path: Path, notes) -> Path:
    import mido

    tpq, tempo = 480, 500000
    mid = mido.MidiFile(ticks_per_beat=tpq)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=tempo))
    track.append(mido.Message("program_change", program=0))
    events = sorted([(n.start, 1, n.pitch, n.velocity) for n in notes] + [(n.end, 0, n.pitch, 0) for n in notes])
    now = 0
    for t, on, key, vel in events:
        tick = int(round(mido.second2tick(t, tpq, tempo)))
        kind = "note_on" if on else "note_off"
        track.append(mido.Message(kind, note=key, velocity=vel, time=tick - now))
        now = tick
    mid.save(str(path))
    return path


def song(keys=KEYS, held=()) -> list[MidiNote]:
    """Every key once (short notes, far enough apart for each release to end), then long notes at `held` keys."""
    notes = [MidiNote(k, 100, 0.3 + i * SPACING_S, 0.3 + i * SPACING_S + HOLD_S) for i, k in enumerate(keys)]
    t = notes[-1].end + 0.6
    for k in held:
        notes.append(MidiNote(k, 100, t, t + 2.5))
        t += 3.0
    return notes


def fluidsynth(sf2_path: Path, midi_path: Path, tmp: Path, rate: int = PLAY_RATE) -> np.ndarray:
    """FluidSynth's headless render (reverb and chorus off, so the notes are the samples alone), mono."""
    out = tmp / f"{Path(sf2_path).stem}-fluidsynth.wav"
    subprocess.run([FLUIDSYNTH, "-ni", "-q", "-R", "0", "-C", "0", "-g", "1.0", "-r", str(rate), "-F", str(out),
                    str(sf2_path), str(midi_path)], check=True, capture_output=True, timeout=120)
    audio, got = sf.read(str(out), dtype="float64", always_2d=True)
    assert got == rate
    return audio.mean(axis=1)


def tinysoundfont(sf2_path: Path, notes, rate: int = PLAY_RATE) -> np.ndarray:
    """The MIDI notes through TinySoundFont, events at their exact sample."""
    from tinysoundfont import _tinysoundfont as tsf

    font = tsf.SoundFont(str(sf2_path))
    font.set_output(tsf.OutputMode.Mono, rate, 0.0)
    preset = font.get_preset_index(0, 0)
    assert preset >= 0
    events = sorted([(n.start, 1, n.pitch, n.velocity) for n in notes] + [(n.end, 0, n.pitch, 0) for n in notes])
    out = np.zeros(int((max(n.end for n in notes) + 1.0) * rate), dtype=np.float32)
    pos = 0

    def render(upto: int) -> None:
        nonlocal pos
        if upto > pos:
            buf = np.zeros(upto - pos, dtype=np.float32)
            font.render(buf.view(np.uint8))
            out[pos:upto] = buf
            pos = upto

    for t, on, key, vel in events:
        render(int(round(t * rate)))
        if on:
            font.note_on(preset, key, vel / 127.0)
        else:
            font.note_off(preset, key)
    render(len(out))
    return out.astype(np.float64)


def onset_errors_ms(audio: np.ndarray, rate: int, notes) -> np.ndarray:
    """Per note: where the audio first reaches 5 % of the note's peak, minus the MIDI onset (ms)."""
    errs = []
    for n in notes:
        a, b = int((n.start - 0.03) * rate), int(n.end * rate)
        seg = np.abs(audio[a:b])
        errs.append(((a + int(np.argmax(seg >= 0.05 * seg.max()))) / rate - n.start) * 1000)
    return np.array(errs)


def tracked(audio: np.ndarray, rate: int, notes):
    """pYIN (evaluate/pitch.py) on each note's held part, at the model's rate."""
    from ganspacesynth.evaluate.pitch import track_f0

    y = resample(audio.astype(np.float32), rate, SR) if rate != SR else audio.astype(np.float32)
    segs = np.stack([y[int(n.start * SR): int(n.start * SR) + int(HOLD_S * SR)] for n in notes])
    return track_f0(segs, SR)


def cents_off(result, keys) -> np.ndarray:
    return 1200 * np.log2(result.median_hz / (440.0 * 2 ** ((np.asarray(keys) - 69) / 12)))


def click_ratio(audio: np.ndarray, rate: int, note: MidiNote, loop_end: int) -> float:
    """Largest |second difference| while the loop repeats, over the largest in the first pass through the sample
    (a root key plays the sample at its own speed: the loop end comes loop_end / 16000 s after the onset)."""
    a = int(note.start * rate)
    seam = a + int(loop_end / SR * rate)
    first = audio[a + int(0.05 * rate): seam - int(0.005 * rate)]
    looping = audio[seam - int(0.005 * rate): int(note.end * rate)]
    d2 = lambda s: float(np.abs(np.diff(s, 2)).max())  # noqa: E731
    return d2(looping) / d2(first)


# -- fixtures -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """The synthetic instrument: keys 55-67 from 5 tones (every 3rd key), levels spread over 20 dB, as SF2 + SFZ."""
    tmp = tmp_path_factory.mktemp("synthetic")
    plan = I.key_plan(KEYS, 3)
    levels = np.linspace(0.05, 0.5, len(plan))[[3, 0, 4, 1, 2]]  # 0.05 .. 0.5: 20 dB apart, not in key order
    waves = np.stack([tone(r, amp=lvl, **SYNTHETIC) for (r, _, _), lvl in zip(plan, levels)])
    inst = I.build_instrument(waves, plan, SR, name="synthetic", metadata={"format": I.INSTRUMENT_FORMAT})
    path = I.write_instrument(inst, tmp / "synthetic.sf2", sfz=True)
    midi = write_midi(tmp / "song.mid", song(held=(58, 64)))
    return {"inst": inst, "plan": plan, "path": path, "midi": midi, "tmp": tmp, "levels": levels, "waves": waves}


# -- the keyboard and its arguments -----------------------------------------------------------------------------------
def test_key_plan_covers_every_key_once_with_its_nearest_root():
    assert I.key_plan([24, 25, 26, 27, 28], 1) == [(k, k, k) for k in range(24, 29)]
    assert I.key_plan(list(range(24, 31)), 2) == [(24, 24, 25), (26, 26, 27), (28, 28, 29), (30, 30, 30)]
    assert I.key_plan(list(range(24, 33)), 3) == [(24, 24, 25), (27, 26, 28), (30, 29, 32)]
    for every in (1, 2, 3, 5):
        plan = I.key_plan(list(range(24, 85)), every)
        covered = [k for _, lo, hi in plan for k in range(lo, hi + 1)]
        assert covered == list(range(24, 85))  # contiguous, no key twice
        assert all(lo <= r <= hi and max(r - lo, hi - r) <= every // 2 + every % 2 for r, lo, hi in plan)
    assert I.velocity_ranges(1) == [(0, 127)]
    assert I.velocity_ranges(4) == [(0, 31), (32, 63), (64, 95), (96, 127)]


@pytest.mark.parametrize("call,message", [
    (lambda: I.key_plan([60], 0), "--every must be a whole number >= 1"),
    (lambda: I.key_plan([60], -2), "--every must be"),
    (lambda: I.key_plan([60], 1.5), "--every must be"),
    (lambda: I.key_plan([60], True), "--every must be"),
    (lambda: I.velocity_ranges(0), "--velocity-layers must be a whole number in 1..4"),
    (lambda: I.velocity_ranges(5), "--velocity-layers"),
    (lambda: I.parse_pitches("10-30", range(24, 85)), "pitches 10-23 are outside this model's range 24..84"),
    (lambda: I.parse_pitches("60,90,91", range(24, 85)), "pitches 90-91 are outside"),
    (lambda: I.parse_pitches("sixty", range(24, 85)), "bad pitch list"),
    (lambda: I.parse_pitches("60", []), "no pitch condition"),
    (lambda: I.build_instrument(np.zeros((1, 4000)), [(60, 60, 60)], SR, loop="sometimes"), "loop must be"),
])
def test_bad_arguments_get_one_clear_message(call, message):
    with pytest.raises(UserError, match=message.replace(".", r"\.").replace("(", r"\(")):
        call()


# -- loops ----------------------------------------------------------------------------------------------------------
def test_loops_are_found_in_tones_and_refused_in_noise():
    x = tone(60, amp=0.5, **SYNTHETIC)[int(LEAD_S * SR):]
    env = I.measure_envelope(x, SR)
    loop = I.find_loop(x, SR, env.attack_end, period=SR / 261.63)
    assert loop is not None and loop.match_error < 0.01 and loop.drift_db < 0.5
    assert x[loop.start - 1] < 0 <= x[loop.start] and x[loop.end - 1] < 0 <= x[loop.end]  # upward zero crossings
    assert I.MIN_LOOP_S * SR <= loop.length <= I.MAX_LOOP_S * SR
    assert loop.start >= env.attack_end  # after the attack
    y = I.apply_loop(x, loop)
    assert len(y) == loop.end + I.LOOP_GUARD and loop.seam_step <= 1.0
    # noise has no loop whose two ends match: one-shot
    rng = np.random.default_rng(0)
    assert I.find_loop(rng.standard_normal(16000) * 0.3, SR, 0) is None
    # a drifting level is refused even if the waveform repeats: a tone fading 30 dB over its body
    fading = x * np.exp(-np.arange(len(x)) / SR * 4.0)
    assert I.find_loop(fading, SR, env.attack_end, period=SR / 261.63) is None


def test_the_seam_measure_sees_a_click():
    x = tone(60, amp=0.5, **SYNTHETIC)[int(LEAD_S * SR):]
    loop = I.find_loop(x, SR, I.measure_envelope(x, SR).attack_end, period=SR / 261.63)
    y = I.apply_loop(x, loop)
    assert I.seam_step(y, loop.start, loop.end) <= 1.0
    assert I.seam_step(y, loop.start, loop.end - 7) > 2.0  # the same loop 7 samples short jumps


# -- the files ------------------------------------------------------------------------------------------------------
def test_a_third_party_parser_reads_every_sample_header_and_generator(synthetic):
    sf2parse = pytest.importorskip("sf2utils.sf2parse", reason="sf2utils not installed (pip install sf2utils)")
    inst, plan = synthetic["inst"], synthetic["plan"]
    with open(synthetic["path"], "rb") as f:
        font = sf2parse.Sf2File(f)
        samples = [s for s in font.samples if s.name != "EOS"]
        assert [s.name for s in samples] == [f"synthetic-{r:03d}" for r, _, _ in plan]
        for s, note in zip(samples, inst.notes):
            assert (s.original_pitch, s.pitch_correction, s.sample_rate, bool(s.is_mono)) == (note.root, 0, SR, True)
            assert s.end - s.start == len(note.data)
            assert (s.start_loop, s.end_loop) == (note.loop.start, note.loop.end)  # every tone loops
        insts = [i for i in font.instruments if i.name != "EOI"]
        presets = [p for p in font.presets if p.name != "EOP"]
        assert len(insts) == 1 and len(presets) == 1 and presets[0].bags[0].instrument.name == "synthetic"
        bags = insts[0].bags
        assert [tuple(b.key_range) for b in bags] == [(lo, hi) for _, lo, hi in plan]
        assert all(tuple(b.velocity_range) == (0, 127) for b in bags)
        assert [b.sample.original_pitch for b in bags] == [r for r, _, _ in plan]
        assert all(b.sample_loop for b in bags)
        # generator order the spec requires: keyRange, velRange first, sampleID last
        opers = [g.oper for g in font.raw.pdta["Igen"]]
        zones = [opers[b.gen_idx:b.gen_idx + b.gen_size] for b in bags]
        assert all(z[0] == 43 and z[1] == 44 and z[-1] == 53 for z in zones)
        assert font.info.version is not None and font.info.sound_engine == "EMU8000"
        assert json.loads(font.info.comments)["format"] == I.INSTRUMENT_FORMAT


def test_our_reader_and_the_written_data_agree(synthetic):
    inst, parsed = synthetic["inst"], sf2.read_sf2(synthetic["path"])
    assert parsed.info["ifil"] == (2, 1) and parsed.preset_name == parsed.instrument_name == "synthetic"
    for s, note, zone in zip(parsed.samples, inst.notes, parsed.zones):
        np.testing.assert_array_equal(s.data, sf2.Sample("", note.data, SR, 60).pcm())
        assert zone["sampleModes"] == sf2.LOOP_CONTINUOUS and zone["overridingRootKey"] == note.root
        assert zone["releaseVolEnv"] == sf2.timecents(note.release_s)


def test_loudness_is_matched_across_the_keyboard(synthetic):
    """The stated measure (RMS of the body) is equal for every note although the tones span 20 dB; measured here on
    the samples read back from the file, over each loop (the level a held key sustains)."""
    parsed = sf2.read_sf2(synthetic["path"])
    levels = [20 * np.log10(np.sqrt(np.mean((s.data[s.loop[0]:s.loop[1]] / 32767.0) ** 2))) for s in parsed.samples]
    src = 20 * np.log10(synthetic["levels"])
    assert src.max() - src.min() > 19.0
    assert max(levels) - min(levels) < 0.3, levels
    assert synthetic["inst"].loudness_spread_db < 0.05
    peak = max(np.abs(s.data.astype(np.int32)).max() for s in parsed.samples) / 32767.0
    assert 0.97 < peak <= 1.0  # the loudest peak at -0.1 dBFS


def test_onsets_are_trimmed_and_envelopes_come_from_the_notes(synthetic):
    inst = synthetic["inst"]
    for note in inst.notes:
        assert abs(note.onset - LEAD_S * SR) <= 0.002 * SR  # the 30 ms of silence is cut (1 ms pre-roll)
        assert 0.005 <= note.envelope.attack_s <= 0.03  # the tones' 20 ms attack
        # the tones decay 60 nepers/s = 521 dB/s at their end: release = 100 dB / 521 dB/s = 0.19 s
        assert note.release_s == pytest.approx(100 / (60 * 20 / np.log(10)), rel=0.15)
    meta = inst.metadata
    assert meta["loops"]["looped"] == 5 and meta["notes"]["release_measured"] == [True] * 5


def test_loop_none_makes_one_shots_that_play_to_their_end(synthetic, tmp_path):
    inst = I.build_instrument(synthetic["waves"], synthetic["plan"], SR, name="oneshot", loop="none")
    parsed = sf2.read_sf2(I.write_instrument(inst, tmp_path / "oneshot.sf2"))
    assert inst.looped == 0 and all(z["sampleModes"] == sf2.NO_LOOP for z in parsed.zones)
    for s, wave in zip(parsed.samples, synthetic["waves"]):
        assert len(s.data) == len(wave) - int(LEAD_S * SR) + 16  # the whole note after the onset (1 ms pre-roll)
        assert s.data[-1] == 0 and abs(int(s.data[0])) <= 1  # faded in and out: no click at either end


def test_the_loop_seams_in_the_file_are_zero_crossings_without_steps(synthetic):
    for s in sf2.read_sf2(synthetic["path"]).samples:
        x = s.data.astype(np.float64)
        a, b = s.loop
        assert x[a - 1] < 0 <= x[a] and x[b - 1] < 0 <= x[b]
        assert I.seam_step(x, a, b) <= 1.0  # the step played across the seam is no bigger than the loop's own
        np.testing.assert_array_equal(x[b:b + 8], x[a:a + 8])  # what interpolation reads past the end


# -- real players ---------------------------------------------------------------------------------------------------
def _check_playback(audio: np.ndarray, rate: int, synthetic, what: str) -> None:
    notes = song(held=(58, 64))
    short, held = notes[:len(KEYS)], notes[len(KEYS):]
    errs = onset_errors_ms(audio, rate, short)
    assert np.all(np.abs(errs) <= ONSET_TOLERANCE_MS), f"{what} onsets off by {errs} ms"
    result = tracked(audio, rate, short)
    assert np.array_equal(result.midi, KEYS), f"{what} played {result.midi} for {KEYS}"
    assert np.all(np.abs(cents_off(result, KEYS)) <= CENTS_TOLERANCE)
    ends = {n.root: n.loop.end for n in synthetic["inst"].notes}
    ratios = [click_ratio(audio, rate, n, ends[n.pitch]) for n in held]
    assert max(ratios) <= CLICK_RATIO, f"{what} clicks at the loop seams: {ratios}"


@needs_fluidsynth
def test_fluidsynth_plays_every_key_in_tune_on_time_and_loops_without_clicks(synthetic):
    audio = fluidsynth(synthetic["path"], synthetic["midi"], synthetic["tmp"])
    _check_playback(audio, PLAY_RATE, synthetic, "FluidSynth")


@needs_fluidsynth
def test_the_click_measure_does_see_a_bad_loop(synthetic, tmp_path):
    font = synthetic["inst"].soundfont()
    for s in font.samples:
        s.loop = (s.loop[0], s.loop[1] - 7)  # 7 samples short: a jump at every seam
    bad = sf2.write_sf2(tmp_path / "bad.sf2", font)
    audio = fluidsynth(bad, synthetic["midi"], tmp_path)
    held = song(held=(58, 64))[len(KEYS):]
    ends = {n.root: n.loop.end - 7 for n in synthetic["inst"].notes}
    assert min(click_ratio(audio, PLAY_RATE, n, ends[n.pitch]) for n in held) > 3 * CLICK_RATIO


def test_tinysoundfont_plays_it_too(synthetic):
    pytest.importorskip("tinysoundfont")
    notes = read_midi(synthetic["midi"])  # the same MIDI file, read by the project's MIDI reader
    assert [(n.pitch, round(n.start, 3)) for n in notes] == [(n.pitch, round(n.start, 3)) for n in song(held=(58, 64))]
    audio = tinysoundfont(synthetic["path"], notes)
    _check_playback(audio, PLAY_RATE, synthetic, "TinySoundFont")


def test_the_sfz_reads_back_as_the_same_instrument_and_plays(synthetic):
    inst, sfz_path = synthetic["inst"], synthetic["path"].with_suffix(".sfz")
    regions = read_sfz(sfz_path)
    parsed = sf2.read_sf2(synthetic["path"])
    assert len(regions) == len(parsed.zones)
    for reg, zone, s in zip(regions, parsed.zones, parsed.samples):
        assert (reg.lokey, reg.hikey) == zone["keyRange"] and reg.pitch_keycenter == s.root_key
        assert (reg.lovel, reg.hivel) == (1, 127)
        assert reg.loop_mode == "loop_continuous" and (reg.loop_start, reg.loop_end + 1) == s.loop
        assert reg.ampeg_release == pytest.approx(inst.notes[zone["sampleID"]].release_s, abs=1e-4)
        wav, rate = sf.read(str(reg.sample), dtype="int16")
        assert rate == SR and reg.sample.parent.name == "synthetic-samples"
        np.testing.assert_array_equal(wav, s.data)  # the WAVs are the SoundFont's samples
    assert sfz_comment(sfz_path)["format"] == I.INSTRUMENT_FORMAT
    audio = render_sfz(regions, song(held=(58, 64)), PLAY_RATE)
    _check_playback(audio, PLAY_RATE, synthetic, "the SFZ renderer")


def test_the_sfz_reader_handles_hand_written_files(tmp_path):
    (tmp_path / "my samples").mkdir()
    sf.write(str(tmp_path / "my samples" / "a b.wav"), np.zeros(100), SR)
    text = ("// a comment\n<control> default_path=my samples/\n<global> ampeg_release=0.5 loop_mode=no_loop\n"
            "<group> lovel=64 // soft ones elsewhere\n<region> sample=a b.wav key=c4\n"
            "<region> sample=a b.wav lokey=c#4 hikey=72 pitch_keycenter=d4 loop_mode=loop_continuous "
            "loop_start=10 loop_end=89\n<group>\n<region> sample=a b.wav lokey=0 hikey=127")
    (tmp_path / "x.sfz").write_text(text)
    r = read_sfz(tmp_path / "x.sfz")
    assert [(x.lokey, x.hikey, x.pitch_keycenter, x.lovel) for x in r] == [(60, 60, 60, 64), (61, 72, 62, 64),
                                                                           (0, 127, 60, 1)]
    assert r[0].sample == tmp_path / "my samples" / "a b.wav" and r[0].ampeg_release == 0.5
    assert r[1].loop_mode == "loop_continuous" and (r[1].loop_start, r[1].loop_end) == (10, 89)
    (tmp_path / "bad.sfz").write_text("sample=x.wav")
    with pytest.raises(UserError, match="opcode before any header"):
        read_sfz(tmp_path / "bad.sfz")


# -- from a model ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_export(tiny_synth, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("model")
    result = I.export_instrument(tiny_synth, tmp / "tiny pad.sf2", seed=5, pitches="48-60", every=2, sfz=True)
    return result


def test_the_file_carries_the_models_notes_at_their_root_keys(tiny_synth, model_export):
    """Each sample is the model's note for its root key (same z), only trimmed, scaled and faded: no wrong root."""
    parsed = sf2.read_sf2(model_export.path)
    roots = list(range(48, 61, 2))
    assert [s.root_key for s in parsed.samples] == roots and all(s.pitch_correction == 0 for s in parsed.samples)
    own = tiny_synth.generate(np.repeat(tiny_synth.random_z(1, 5), len(roots), axis=0), pitch=roots)
    for i, (s, note, wave) in enumerate(zip(parsed.samples, model_export.instrument.notes, own)):
        expect = wave[note.onset:note.onset + len(s.data)] * 10 ** (note.gain_db / 20)
        mid = slice(64, len(s.data) - int(I.FADE_OUT_S * SR) - 64)  # away from the fades
        if note.loop is not None:
            mid = slice(64, note.loop.end - int(I.CROSSFADE_S * SR))
        np.testing.assert_allclose(s.data[mid] / 32767.0, expect[mid], atol=2 / 32767)
        others = [w for j, w in enumerate(own) if j != i]  # another pitch's note would not fit
        assert max(abs(np.corrcoef(s.data[mid], o[note.onset:][mid])[0, 1]) for o in others) < 0.5


def test_metadata_names_model_timbre_and_keys_and_makes_it_again(tiny_synth, model_export, tmp_path):
    meta = I.read_metadata(model_export.path)
    assert meta["model"]["fingerprint"] == tiny_synth.fingerprint
    assert meta["model"]["file"] == Path(tiny_synth.path).name
    assert meta["timbre"]["seed"] == 5 and meta["timbre"]["mode"] == "z"
    np.testing.assert_array_equal(np.float32(meta["timbre"]["z"]), tiny_synth.random_z(1, 5)[0])
    assert meta["keyboard"] == {"pitches": "48-60", "every": 2, "roots": list(range(48, 61, 2)),
                                "ranges": [[48, 49], [50, 51], [52, 53], [54, 55], [56, 57], [58, 59], [60, 60]]}
    assert sfz_comment(model_export.sfz_path)["timbre"] == meta["timbre"]
    assert sf2.read_sf2(model_export.path).info["INAM"] == (f"GANSpaceSynth tiny-pad: model "
                                                            f"{tiny_synth.fingerprint[:12]}, seed 5, keys 48-60")
    # the recorded z (not the seed) makes the same instrument again
    again = I.export_instrument(tiny_synth, tmp_path / "again.sf2", z=np.float32([meta["timbre"]["z"]]),
                                pitches=meta["keyboard"]["pitches"], every=meta["keyboard"]["every"])
    a, b = sf2.read_sf2(model_export.path), sf2.read_sf2(again.path)
    assert all(np.array_equal(x.data, y.data) and x.loop == y.loop for x, y in zip(a.samples, b.samples))


@needs_fluidsynth
@pytest.mark.heavy
def test_fluidsynth_pitch_agrees_at_least_as_often_as_the_models_own_notes(tiny_synth, model_export, tmp_path):
    keys = list(range(48, 61))
    notes = song(keys)
    audio = fluidsynth(model_export.path, write_midi(tmp_path / "keys.mid", notes), tmp_path)
    rendered = tracked(audio, PLAY_RATE, notes)
    own = tiny_synth.generate(np.repeat(tiny_synth.random_z(1, 5), len(keys), axis=0), pitch=keys)
    from ganspacesynth.evaluate.pitch import track_f0

    model = track_f0(own[:, : int(HOLD_S * SR)], SR)
    agree = lambda r: float(np.mean(r.midi == np.array(keys)))  # noqa: E731
    assert agree(rendered) >= agree(model), (rendered.midi, model.midi)
    assert np.all(np.abs(onset_errors_ms(audio, PLAY_RATE, notes)) <= ONSET_TOLERANCE_MS)


@pytest.mark.heavy
def test_velocity_layers_share_samples_or_follow_a_velocity_condition(tiny_synth, tmp_path):
    r = I.export_instrument(tiny_synth, tmp_path / "two.sf2", seed=1, pitches="60-62", velocity_layers=2)
    parsed = sf2.read_sf2(r.path)
    assert len(parsed.samples) == 3 and len(parsed.zones) == 6  # shared samples, one zone per layer and root
    soft = [z for z in parsed.zones if z["velRange"] == (0, 63)]
    loud = [z for z in parsed.zones if z["velRange"] == (64, 127)]
    assert [z["sampleID"] for z in soft] == [z["sampleID"] for z in loud] == [0, 1, 2]
    assert all(z["initialFilterFc"] == sf2.hz_to_cents(10000.0) for z in soft)
    assert all("initialFilterFc" not in z for z in loud)
    # a model conditioned on velocity makes each layer's own notes
    from ganspacesynth.conditions import ConditionSpec
    from ganspacesynth.model.config import pitch_condition, preset
    from ganspacesynth.model.generator import Generator
    from ganspacesynth.synth import Synth

    import torch

    torch.manual_seed(1)
    cfg = preset("tiny", (pitch_condition(range(60, 63)), ConditionSpec("velocity", "categorical",
                                                                        ("25", "50", "75", "100", "127"))))
    synth = Synth(cfg, Generator(cfg), device="cpu")
    r = I.export_instrument(synth, tmp_path / "vel.sf2", velocity_layers=4)
    parsed = sf2.read_sf2(r.path)
    assert len(parsed.samples) == 12 and len(parsed.zones) == 12
    assert r.instrument.metadata["velocity_condition"] == ["25", "75", "100", "127"]
    assert not np.array_equal(parsed.samples[0].data, parsed.samples[3].data)
    with pytest.raises(UserError, match="either a velocity condition or several velocity layers"):
        I.export_instrument(synth, tmp_path / "x.sf2", velocity_layers=2, conditions={"velocity": "50"})


@pytest.fixture(scope="module")
def components(tiny_synth):
    from ganspacesynth.ganspace.fit import fit_components

    return fit_components(tiny_synth, "conv0", count=256, n_components=4, pitches=[60])


@pytest.mark.parametrize("mode", ["offset", "noz", "latent"])
@pytest.mark.heavy
def test_components_and_coefficients_make_the_timbre(tiny_synth, components, tmp_path, mode):
    from ganspacesynth.ganspace.edits import synthesize

    path = components.save(tmp_path / "comps.npz")
    from ganspacesynth.ganspace.components import Components

    comps = Components.load(path, tiny_synth)
    r = I.export_instrument(tiny_synth, tmp_path / f"{mode}.sf2", seed=2, components=comps,
                            coefficients=[1.5, -0.5], mode=mode, pitches="60-61")
    meta = I.read_metadata(r.path)
    assert meta["timbre"]["mode"] == mode and meta["timbre"]["coefficients"] == [1.5, -0.5]
    assert meta["timbre"]["components"]["layer"] == "conv0" and len(meta["timbre"]["components"]["sha256"]) == 64
    assert ("z" in meta["timbre"]) == (mode != "noz")
    wave = synthesize(tiny_synth, comps, [1.5, -0.5], 60, mode=mode, z=None if mode == "noz" else
                      tiny_synth.random_z(1, 2))[0]
    note = r.instrument.notes[0]
    s = sf2.read_sf2(r.path).samples[0].data / 32767.0
    mid = slice(64, min(len(s), 4000))
    np.testing.assert_allclose(s[mid], wave[note.onset:][mid] * 10 ** (note.gain_db / 20), atol=2 / 32767)


def test_components_of_another_model_are_refused(tiny_synth, components, tmp_path):
    import dataclasses

    other = dataclasses.replace(components, meta={**components.meta, "model_fingerprint": "0" * 64})
    with pytest.raises(UserError, match="another model"):
        I.export_instrument(tiny_synth, tmp_path / "x.sf2", components=other, coefficients=[1.0])
    with pytest.raises(UserError, match="5 coefficients given but the components file has only 4"):
        I.export_instrument(tiny_synth, tmp_path / "x.sf2", components=components, coefficients=[1] * 5)
    with pytest.raises(UserError, match="coefficients need a components file"):
        I.export_instrument(tiny_synth, tmp_path / "x.sf2", coefficients=[1.0])
    assert list(tmp_path.iterdir()) == []


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_unwritable_outputs_are_refused_before_generating(tiny_synth, tmp_path, monkeypatch):
    (tmp_path / "a file").write_text("not a folder")
    calls = []
    monkeypatch.setattr(I.export, "render_notes", lambda *a, **k: calls.append(1))
    for out, message in [(tmp_path / "a file" / "x.sf2", "is a file, not a folder"), (tmp_path / "x.wav", "must be a .sf2"),
                         (tmp_path, "must be a .sf2")]:
        with pytest.raises(UserError, match=message):
            I.export_instrument(tiny_synth, out)
    (tmp_path / "dir.sf2").mkdir()
    with pytest.raises(UserError, match="folder"):
        I.export_instrument(tiny_synth, tmp_path / "dir.sf2")
    (tmp_path / "busy-samples").mkdir()
    (tmp_path / "busy-samples" / "mine.txt").write_text("a user's file")
    with pytest.raises(UserError, match="busy-samples already exists"):
        I.export_instrument(tiny_synth, tmp_path / "busy.sf2", sfz=True)
    assert calls == [] and _leftovers(tmp_path) == ["a file", "busy-samples", "dir.sf2"]
    assert _leftovers(tmp_path / "busy-samples") == ["mine.txt"]


@pytest.mark.parametrize("fail_at", ["sf2", "sfz", "wav"])
def test_a_failed_write_leaves_nothing_half_written(tiny_synth, tmp_path, monkeypatch, fail_at):
    import ganspacesynth.audio.sfz as sfz_module

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    if fail_at == "sf2":
        monkeypatch.setattr(Path, "write_bytes", disk_full)
    elif fail_at == "sfz":
        monkeypatch.setattr(sfz_module, "sfz_text", disk_full)
    else:
        import soundfile

        real, calls = soundfile.write, []

        def second_fails(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                disk_full()
            return real(*args, **kwargs)

        monkeypatch.setattr(soundfile, "write", second_fails)
    with pytest.raises(UserError, match="No space left on device"):
        I.export_instrument(tiny_synth, tmp_path / "inst.sf2", pitches="60-62", sfz=True)
    assert _leftovers(tmp_path) == []  # no .sf2, no .sfz, no sample folder, no temporary files


@pytest.mark.heavy
def test_an_earlier_export_is_replaced_whole(tiny_synth, tmp_path):
    I.export_instrument(tiny_synth, tmp_path / "inst.sf2", pitches="60-63", sfz=True)
    I.export_instrument(tiny_synth, tmp_path / "inst.sf2", pitches="60-61", sfz=True, seed=3)
    wavs = sorted(p.name for p in (tmp_path / "inst-samples").glob("*.wav"))
    assert wavs == ["inst-060.wav", "inst-061.wav"]
    assert len(read_sfz(tmp_path / "inst.sfz")) == 2 and len(sf2.read_sf2(tmp_path / "inst.sf2").samples) == 2
    assert [p for p in _leftovers(tmp_path) if p.startswith(".")] == []
