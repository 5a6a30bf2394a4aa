"""Generated notes start clean (no onset click) and come at a calibrated level, on every path.

Onsets: the model's notes start on the second half of an impulse (the inverse STFT puts the attack frames'
energy at their centres, and frame 1's centre is the first output sample; docs/user-guide.md §4). Synth fades every
note in over 4 ms (audio/levels.finish_notes): the first 4 samples stay under 0.02 of the note's peak (median over
notes) and no note starts with an isolated spike.

Level: a model file carries `info.output_gain_db`, measured by `ganspacesynth calibrate` (calibration.py) as the
median RMS of the training set's notes minus that of the model's raw notes. The bundled model's notes must sit
within 3 dB of real notes rendered here the way its dataset was (TimGM6mb, velocity 100, held 3/4 of the note), and
of the level stored in the file; the gain never clips; files without it play at their raw level.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from ganspacesynth.assets import default_model_path
from ganspacesynth.audio.levels import (ONSET_FADE_S, finish_notes, onset_click, onset_fade, onset_spike, peak_safe,
                                        rms_dbfs)
from ganspacesynth.errors import UserError
from ganspacesynth.interfaces.cli import main
from ganspacesynth.model.files import OUTPUT_GAIN_KEY, load_model, save_model, set_model_info
from ganspacesynth.synth import Synth

pytestmark = pytest.mark.heavy  # its tests take over about 1 s each: outside the quick tier (docs/DEVELOPING.md)

needs_bundled = pytest.mark.skipif(default_model_path() is None, reason="no bundled default model in this checkout")

MAX_CLICK = 0.02  # first 4 samples over the note's peak, median over notes
LEVEL_TOLERANCE_DB = 3.0


def _labels(synth, count: int, seed: int):
    """Pitches across the range and families in turn, as a dataset would ask for them."""
    rng = np.random.default_rng(seed)
    pitches = [int(p) for p in rng.choice(synth.pitches, count)]
    conditions = {}
    if "instrument_family" in synth.conditions.names:
        families = synth.config.condition("instrument_family").classes
        conditions["instrument_family"] = [families[i % len(families)] for i in range(count)]
    return pitches, conditions or None


def assert_clean_onsets(waves: np.ndarray) -> None:
    clicks = onset_click(waves)
    assert float(np.median(clicks)) <= MAX_CLICK, np.round(clicks, 3)
    assert not onset_spike(waves).any(), np.round(clicks, 3)


@pytest.fixture(scope="module")
def bundled():
    if default_model_path() is None:
        pytest.skip("no bundled default model in this checkout")
    return Synth.load(None, device="cpu")


# ------------------------------------------------------------------------------------------------- the measures

def test_measures_and_the_fade():
    sr = 16000
    n = int(round(ONSET_FADE_S * sr))
    t = np.arange(sr) / sr
    note = (0.5 * np.sin(2 * np.pi * 220 * t) * np.exp(-3 * t) * np.minimum(1.0, t / 0.005)).astype(np.float32)
    clicky = note.copy()
    clicky[:4] += np.float32([0.45, 0.3, 0.1, 0.02])  # the half impulse generated notes start with
    assert onset_click(note)[0] < 0.1 and not onset_spike(note)[0]
    assert onset_click(clicky)[0] > 0.5 and onset_spike(clicky)[0]
    faded = onset_fade(clicky[None], sr)
    assert faded.dtype == np.float32 and faded[0, 0] == 0.0 and onset_click(faded)[0] < 0.01
    np.testing.assert_array_equal(faded[0, n:], clicky[n:])  # only the first 4 ms change
    assert np.all(np.diff(np.sin(0.5 * np.pi * np.arange(n) / n) ** 2) > 0)
    np.testing.assert_allclose(rms_dbfs(np.full((1, 100), 0.1)), [-20.0])
    assert rms_dbfs(np.zeros((1, 8)))[0] == -200.0


def test_finish_notes_gain_guard_and_normalize():
    sr = 16000
    rng = np.random.default_rng(0)
    waves = (rng.standard_normal((3, 4000)) * np.float32([[0.01], [0.1], [0.3]])).astype(np.float32)
    raw = finish_notes(waves, sr)  # 0 dB: the fade only
    np.testing.assert_array_equal(raw, onset_fade(waves, sr))
    louder = finish_notes(waves, sr, gain_db=20.0)
    assert np.abs(louder).max() <= 1.0
    np.testing.assert_allclose(louder[0], raw[0] * 10.0, rtol=1e-6)  # not near clipping: exactly the gain
    assert np.abs(louder[2]).max() == pytest.approx(0.99)  # would clip: put just below full scale
    normalised = finish_notes(waves, sr, normalize=0.5)
    np.testing.assert_allclose(np.abs(normalised).max(axis=1), 0.5, rtol=1e-6)


# ----------------------------------------------------------------------------------------------------- onsets

@needs_bundled
def test_bundled_notes_start_clean_through_synth(bundled):
    pitches, conditions = _labels(bundled, 32, seed=3)
    z = bundled.random_z(32, seed=3)
    raw = bundled.generate(z, pitch=pitches, conditions=conditions, raw=True)
    assert float(np.median(onset_click(raw))) > 0.1  # what the fade-in is for (0.25 measured)
    assert_clean_onsets(bundled.generate(z, pitch=pitches, conditions=conditions))
    # the GANSpace paths (edit, grid, servers) turn spectrograms into waves through the same finish
    specs = bundled.generate_specgrams(z[:8], pitch=pitches[:8],
                                       conditions={k: v[:8] for k, v in (conditions or {}).items()} or None)
    assert_clean_onsets(bundled.specgrams_to_waves(specs))


def test_tiny_model_notes_start_clean(tiny_synth):
    z = tiny_synth.random_z(16, seed=1)
    pitches = [tiny_synth.pitches[i % len(tiny_synth.pitches)] for i in range(16)]
    waves = tiny_synth.generate(z, pitch=pitches)
    assert_clean_onsets(waves)
    np.testing.assert_array_equal(waves, onset_fade(tiny_synth.generate(z, pitch=pitches, raw=True),
                                                    tiny_synth.sample_rate))  # no gain in the file: raw level


@needs_bundled
def test_generate_command_writes_clean_onsets(tmp_path):
    out = tmp_path / "notes"
    result = CliRunner().invoke(main, ["generate", "--pitch", "36", "--pitch", "60", "--pitch", "72", "--count", "4",
                                       "--seed", "5", "--no-progress", "--out", str(out)])
    assert result.exit_code == 0, result.output
    waves = np.stack([sf.read(p, dtype="float32")[0] for p in sorted(out.glob("p*.wav"))])
    assert len(waves) == 12
    assert_clean_onsets(waves)


@needs_bundled
def test_soundfont_export_starts_clean(bundled, tmp_path):
    from ganspacesynth.audio.sf2 import read_sf2

    result = bundled.export_instrument(tmp_path / "pad.sf2", seed=2, pitches="36-72", every=6, loop="none")
    samples = [s.data.astype(np.float64) / 32767.0 for s in read_sf2(result.path).samples]
    assert samples
    clicks = [onset_click(s)[0] for s in samples]
    assert float(np.median(clicks)) <= MAX_CLICK and max(clicks) < 0.1, np.round(clicks, 3)
    assert not any(onset_spike(s)[0] for s in samples)


# ------------------------------------------------------------------------------------------------------ level

def _real_soundfont_notes(count: int, seed: int, spectral) -> tuple[np.ndarray, list[int], list[str]]:
    """Notes rendered as `dataset soundfont --programs 0-111 --velocities 100` does (silent ones skipped)."""
    pytest.importorskip("tinysoundfont")
    from ganspacesynth.data.gm import GM_PROGRAMS
    from ganspacesynth.data.shards import SILENCE_DB
    from ganspacesynth.data.soundfont import Renderer, default_soundfont

    renderer = Renderer(default_soundfont(), spectral.sample_rate)
    rng = np.random.default_rng(seed)
    hold = int(round(0.75 * spectral.audio_length))
    waves, pitches, families = [], [], []
    while len(waves) < count:
        program, pitch = int(rng.integers(0, 112)), int(rng.integers(24, 85))
        wave = renderer.render(program, pitch, 100, spectral.audio_length, hold)
        if rms_dbfs(wave[None])[0] < SILENCE_DB:
            continue
        waves.append(wave)
        pitches.append(pitch)
        families.append(GM_PROGRAMS[program].family)
    return np.stack(waves), pitches, families


@needs_bundled
def test_bundled_model_plays_at_its_training_sets_level(bundled):
    calibration = bundled.info.get("calibration")
    assert bundled.model_gain_db > 3.0 and isinstance(calibration, dict)  # +4.61 dB measured on the full set
    real, pitches, families = _real_soundfont_notes(48, seed=11, spectral=bundled.config.spectral)
    z = bundled.random_z(len(pitches), seed=11)
    waves = bundled.generate(z, pitch=pitches, conditions={"instrument_family": families})
    generated = float(np.median(rms_dbfs(waves)))
    real_level = float(np.median(rms_dbfs(real)))
    raw = float(np.median(rms_dbfs(bundled.generate(z, pitch=pitches, conditions={"instrument_family": families},
                                                    raw=True))))
    print(f"median RMS: generated {generated:.2f}, raw {raw:.2f}, real {real_level:.2f}, stored target "
          f"{calibration['target_rms_dbfs']}")
    assert abs(generated - real_level) <= LEVEL_TOLERANCE_DB
    assert abs(generated - calibration["target_rms_dbfs"]) <= LEVEL_TOLERANCE_DB
    assert raw < real_level - 3.0  # the gap the gain closes
    assert np.abs(waves).max() <= 1.0


@needs_bundled
def test_gain_never_clips(bundled):
    z = bundled.random_z(16, seed=4)
    pitches, conditions = _labels(bundled, 16, seed=4)
    try:
        loud = bundled.set_level(gain_db=40.0).generate(z, pitch=pitches, conditions=conditions)
    finally:
        bundled.set_level()
    assert np.abs(loud).max() <= 1.0
    np.testing.assert_allclose(np.abs(loud).max(axis=1), 0.99, rtol=1e-6)  # every note would clip at +40 dB


@needs_bundled
def test_bundled_file_is_the_same_model_with_a_gain(bundled):
    from ganspacesynth.ganspace.components import Components

    mf = load_model(None)
    assert mf.output_gain_db == bundled.model_gain_db and mf.fingerprint == bundled.fingerprint
    Components.load(None, bundled)  # the bundled components' fingerprint still matches
    from safetensors.torch import load_file

    from ganspacesynth.model.prior import CENTRES_TENSOR

    tensors = load_file(str(default_model_path()))
    # Half-precision weights; the latent prior's codes stay float32, so random latents are drawn exactly as trained.
    assert {str(t.dtype) for name, t in tensors.items() if name != CENTRES_TENSOR} == {"torch.float16"}
    assert tensors[CENTRES_TENSOR].dtype == torch.float32 and bundled.prior.centres.shape[0] == 101


def test_old_file_without_gain_plays_raw_and_set_model_info_keeps_weights(tiny_model_path, tmp_path):
    from safetensors.torch import load_file

    synth = Synth.load(tiny_model_path, device="cpu")
    assert OUTPUT_GAIN_KEY not in synth.info and synth.model_gain_db == 0.0 and synth.output_gain_db == 0.0
    z = synth.random_z(4, seed=2)
    raw = synth.generate(z, pitch=60, raw=True)
    np.testing.assert_array_equal(synth.generate(z, pitch=60), onset_fade(raw, synth.sample_rate))

    # a float16 file: the gain goes into the metadata, the tensors stay byte for byte the same
    mf = load_model(tiny_model_path)
    half = save_model(tmp_path / "half.safetensors", mf.config, mf.generator_state, info={"x": 1}, half=True)
    gained = set_model_info(half, {OUTPUT_GAIN_KEY: 6.0, "calibration": {"target_rms_dbfs": -30.0}},
                            out=tmp_path / "gained.safetensors")
    before, after = load_file(str(half)), load_file(str(gained))
    assert before.keys() == after.keys()
    assert all(after[k].dtype == before[k].dtype and (after[k] == before[k]).all() for k in before)
    loud = Synth.load(gained, device="cpu")
    assert loud.info["x"] == 1 and loud.model_gain_db == 6.0 and loud.fingerprint == load_model(half).fingerprint
    quiet = Synth.load(half, device="cpu")
    a, b = quiet.generate(z, pitch=60), loud.generate(z, pitch=60)
    ok = np.abs(a).max(axis=1) * 10 ** 0.3 < 0.99  # notes the guard leaves alone
    np.testing.assert_allclose(b[ok], peak_safe(a[ok] * np.float32(10 ** 0.3)), rtol=1e-5, atol=1e-7)
    assert np.abs(b).max() <= 1.0
    # removing it again (None) gives the raw level back
    plain = set_model_info(gained, {OUTPUT_GAIN_KEY: None}, out=tmp_path / "plain.safetensors")
    assert Synth.load(plain, device="cpu").model_gain_db == 0.0


@pytest.mark.parametrize("value", ["loud", 1e9, float("nan"), True])
def test_damaged_gain_is_refused(tiny_model_path, tmp_path, value):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(tiny_model_path), framework="pt") as f:
        meta = f.metadata()
    info = json.loads(meta["info"])
    info[OUTPUT_GAIN_KEY] = value
    path = tmp_path / "bad.safetensors"
    save_file(load_file(str(tiny_model_path)), str(path), metadata={**meta, "info": json.dumps(info)})
    with pytest.raises(UserError, match="output_gain_db"):
        load_model(path)


def test_set_level_checks(tiny_synth):
    with pytest.raises(UserError, match="not both"):
        tiny_synth.set_level(gain_db=3.0, normalize=True)
    with pytest.raises(UserError, match="within"):
        tiny_synth.set_level(gain_db=100.0)
    assert tiny_synth.set_level(normalize=True).normalize == 0.99
    assert tiny_synth.set_level().normalize is None and tiny_synth.output_gain_db == 0.0


# --------------------------------------------------------------------------------------- the commands' options

def _notes(folder):
    return np.stack([sf.read(p, dtype="float32")[0] for p in sorted(folder.glob("p*.wav"))])


def test_generate_gain_and_normalize_options(tiny_model_path, tmp_path):
    runner = CliRunner()

    def generate(name, *extra):
        out = tmp_path / name
        result = runner.invoke(main, ["generate", "--model", str(tiny_model_path), "--pitch", "60", "--count", "4",
                                      "--seed", "1", "--no-progress", *extra, "--out", str(out)])
        assert result.exit_code == 0, result.output
        return _notes(out)

    plain, zero = generate("plain"), generate("zero", "--gain", "0")
    np.testing.assert_array_equal(plain, zero)  # no gain in the file: the raw level
    # the untrained tiny model peaks near 43 (raw): -40 dB and -52 dB are both below clipping
    quiet, quieter = generate("quiet", "--gain", "-40"), generate("quieter", "--gain", "-52")
    synth = Synth.load(tiny_model_path, device="cpu").set_level(gain_db=-40.0)
    np.testing.assert_allclose(quiet, synth.generate(synth.random_z(4, 1), pitch=60), atol=1.0 / 32768)
    np.testing.assert_allclose(quieter, quiet * 10 ** (-12 / 20), atol=2.0 / 32768)
    normalised = generate("normalised", "--normalize")
    np.testing.assert_allclose(np.abs(normalised).max(axis=1), 0.99, atol=1.0 / 32768)
    result = runner.invoke(main, ["generate", "--model", str(tiny_model_path), "--pitch", "60", "--gain", "3",
                                  "--normalize", "--out", str(tmp_path / "both")])
    assert result.exit_code == 1 and "not both" in result.stderr and not (tmp_path / "both").exists()


def test_hallucinate_and_midi_level_options(tiny_model_path, tmp_path):
    import mido

    runner = CliRunner()
    args = ["--model", str(tiny_model_path), "--notes", "2", "--steps", "1", "--seed", "3", "--no-progress"]

    def run(name, *extra):
        out = tmp_path / name
        result = runner.invoke(main, ["hallucinate", *args, *extra, "--out", str(out)])
        assert result.exit_code == 0, result.output
        return sf.read(out, dtype="float32")[0]

    normalised = run("n.wav")  # a mix is peak-normalised unless told otherwise, as before
    assert np.abs(normalised).max() == pytest.approx(0.99, abs=1 / 32768)
    kept = run("k.wav", "--no-normalize")  # the untrained model's raw level (peaks near 43): the guard scales it
    assert np.abs(kept).max() == pytest.approx(0.99, abs=1 / 32768)
    quiet, quieter = run("q.wav", "--gain", "-50"), run("qq.wav", "--gain", "-60")
    assert 0.05 < np.abs(quiet).max() < 0.99  # kept at the notes' level, not normalised
    np.testing.assert_allclose(quieter, quiet * 10 ** (-10 / 20), atol=2.0 / 32768)

    mid = mido.MidiFile()
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track += [mido.Message("note_on", note=60, velocity=100, time=0), mido.Message("note_off", note=60, time=240)]
    mid.save(str(tmp_path / "song.mid"))
    cases = [((), lambda a: np.abs(a).max() == pytest.approx(0.99, abs=1 / 32768)),
             (("--gain", "-60"), lambda a: 0.001 < np.abs(a).max() < 0.5)]
    for extra, check in cases:
        result = runner.invoke(main, ["midi", "--model", str(tiny_model_path), "--seed", "1", "--no-progress", *extra,
                                      "--overwrite", str(tmp_path / "song.mid"), str(tmp_path / "song.wav")])
        assert result.exit_code == 0, result.output
        assert check(sf.read(tmp_path / "song.wav", dtype="float32")[0])


# ---------------------------------------------------------------------------------------------- calibrate

@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """A dataset at the tiny model's representation: a few tones at two pitches."""
    from helpers import write_note_folder

    from ganspacesynth.data.make import make_dataset
    from ganspacesynth.model.config import preset

    root = tmp_path_factory.mktemp("level-data")
    write_note_folder(root / "notes", instruments=("flute", "horn"), pitches=(48, 60))
    make_dataset(root / "notes", root / "ds", spectral=preset("tiny").spectral, workers=1, progress=False)
    return root / "ds"


def test_calibrate_command_measures_and_stores_the_gain(tiny_model_path, tiny_dataset, tmp_path):
    from ganspacesynth.calibration import measure_output_gain
    from ganspacesynth.data.dataset import SpectrogramDataset

    out = tmp_path / "calibrated.safetensors"
    result = CliRunner().invoke(main, ["calibrate", str(tiny_model_path), "--data", str(tiny_dataset), "--count", "24",
                                       "--seed", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    mf = load_model(out)
    calibration = mf.info["calibration"]
    assert mf.info["untrained"] is True and mf.fingerprint == load_model(tiny_model_path).fingerprint
    ds = SpectrogramDataset(tiny_dataset, split="all")
    real = float(np.median(rms_dbfs(ds.audio.take(np.arange(len(ds))).astype(np.float32) / 32768)))
    assert calibration["target_rms_dbfs"] == pytest.approx(real, abs=0.01)
    assert mf.output_gain_db == pytest.approx(calibration["target_rms_dbfs"] - calibration["raw_rms_dbfs"], abs=0.02)
    # the same measurement on the calibrated model, at its level: the generated median now is the target's
    synth = Synth.load(out, device="cpu")
    again = measure_output_gain(synth, tiny_dataset, count=24, seed=2)
    assert again["raw_rms_dbfs"] == calibration["raw_rms_dbfs"]  # measured raw, whatever the file's gain
    rows = np.random.default_rng(2).choice(len(ds), 24)
    waves = synth.generate(synth.random_z(24, 2), pitch=[ds.examples[int(r)]["pitch"] for r in rows])
    assert abs(float(np.median(rms_dbfs(waves))) - real) <= LEVEL_TOLERANCE_DB
    assert np.abs(waves).max() <= 1.0
    info = CliRunner().invoke(main, ["info", "--model", str(out)])
    assert f"output gain: {mf.output_gain_db:+.2f} dB" in info.output


@pytest.fixture(scope="module")
def long_dataset(tmp_path_factory):
    """A dataset of 4 s notes (64000 samples, the `fast` / `mel_prog_hires` length)."""
    from helpers import tone

    from ganspacesynth.data.make import make_dataset
    from ganspacesynth.model.config import preset

    root = tmp_path_factory.mktemp("long-data")
    spectral = preset("fast").spectral
    (root / "notes").mkdir()
    for i, pitch in enumerate((48, 60)):
        sf.write(root / "notes" / f"flute_{pitch}.wav", tone(pitch, n=spectral.audio_length, seed=i), 16000,
                 subtype="PCM_16")
    make_dataset(root / "notes", root / "long", spectral=spectral, workers=1, progress=False)
    return root / "long"


def test_calibrate_refuses_a_dataset_of_another_note_length(tiny_model_path, long_dataset):
    before = tiny_model_path.read_bytes()  # the tiny model makes 1.024 s notes
    result = CliRunner().invoke(main, ["calibrate", str(tiny_model_path), "--data", str(long_dataset), "--overwrite"])
    assert result.exit_code == 1 and "64000-sample notes" in result.stderr
    assert tiny_model_path.read_bytes() == before


def test_magenta_import_gets_a_gain_only_with_a_dataset(magenta_fixture_dir, long_dataset, tmp_path):
    from ganspacesynth.imports.magenta import import_magenta_to_file

    plain = load_model(import_magenta_to_file(magenta_fixture_dir / "ckpt", tmp_path / "plain.safetensors"))
    assert OUTPUT_GAIN_KEY not in plain.info and plain.output_gain_db == 0.0
    calibrated = load_model(import_magenta_to_file(magenta_fixture_dir / "ckpt", tmp_path / "cal.safetensors",
                                                   data=long_dataset, count=4))
    calibration = calibrated.info["calibration"]
    assert calibrated.output_gain_db == pytest.approx(calibration["target_rms_dbfs"] - calibration["raw_rms_dbfs"],
                                                      abs=0.02)
    assert calibrated.fingerprint == plain.fingerprint and calibrated.info["source"] == "magenta"


def test_live_notes_and_hallucinations_start_clean_at_the_calibrated_level(bundled, tmp_path):
    """What OSC and the web page play (interfaces/session.py requests): notes in every mode and a hallucination start
    clean, and a note comes out exactly as `Synth.generate` finishes it (the calibrated gain; the level over many
    latents is held by test_bundled_model_plays_at_its_training_sets_level)."""
    from ganspacesynth.ganspace.components import Components
    from ganspacesynth.interfaces.session import Session

    session = Session(bundled, components=Components.load(None, bundled), out_dir=tmp_path / "out", queue_size=1)
    try:
        z = session.z.copy()
        plain = session.note_request("z", pitch=60.0).run().wave
        notes = []
        for i, pitch in enumerate((36.0, 48.0, 60.0, 72.0)):
            for mode in ("z", "offset", "latent", "noz"):
                notes.append(session.note_request(mode, pitch=pitch, coeffs=[0.5 * (i - 1.5), 0.5]).run().wave)
        piece = session.hallucination_request("noz", pitch=48.0).run().wave
    finally:
        session.close()
    waves = np.stack(notes)
    assert_clean_onsets(waves)
    assert_clean_onsets(piece[None])
    np.testing.assert_allclose(plain, bundled.generate(z, pitch=60)[0], rtol=0, atol=1e-6)
    assert bundled.output_gain_db > 3  # the bundled file's calibration (+4.61 dB) is what both applied
