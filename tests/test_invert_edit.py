"""An inverted note is a note like any other (issue #29, item 4): GANSpace directions move it as they move random
notes, a hallucination between two inverted notes passes through both, and `invert` → `edit --z` works from the
command line. All on the bundled model and its components, with TimGM6mb notes (velocity 100, MIDI 60) that the
model never made, inverted with the instrument family given. The numbers in the docstrings were measured with
these settings on one core (2-core AMD EPYC beside a training run)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from ganspacesynth import invert as inv
from ganspacesynth.data.gm import GM_PROGRAMS
from ganspacesynth.data.soundfont import Renderer, default_soundfont
from ganspacesynth.evaluate.describe import label_direction
from ganspacesynth.evaluate.descriptors import DESCRIPTORS, describe_waves
from ganspacesynth.interfaces.cli import main

#: One thread: the refinement's backward passes on two threads beside a busy core took 10x longer.
pytestmark = pytest.mark.usefixtures("one_thread")

PITCH = 60
#: Small but sufficient: with the family given (no search), 1.3 s of one core a note, 5.5-7.8 dB from the four
#: edited SoundFont notes (the defaults: 4.8-6.0 dB, 5.6 s a note).
SETTINGS = inv.InvertSettings(guesses=8, restarts=2, random_starts=1, steps=15, baseline=0)
#: The first General MIDI program of four families, at MIDI 60 (chosen before measuring, not for the result).
EDITED = (0, 24, 40, 56)  # Acoustic Grand Piano, Acoustic Guitar (nylon), Violin, Trumpet
#: Two keyboards, for the hallucination (its notes share one set of conditions).
HALLUCINATED = (0, 6)  # Acoustic Grand Piano, Harpsichord
COEFFICIENT = 2.0  # ±2 standard deviations: the sweep `describe` labels directions from
RANDOM_LATENTS = 8


@pytest.fixture(scope="module")
def bundled():
    from ganspacesynth.ganspace.components import Components
    from ganspacesynth.synth import Synth

    synth = Synth.load(None, device="cpu")
    return synth, Components.load(None, synth)


def soundfont_note(synth, program: int, pitch: int = PITCH) -> np.ndarray:
    """A TimGM6mb note as `dataset soundfont` (and benchmarks/invert.py) renders it: held 3/4 of the note."""
    length = synth.config.spectral.audio_length
    return Renderer(default_soundfont(), synth.sample_rate).render(program, pitch, 100, length,
                                                                    int(round(0.75 * length)))


@pytest.fixture(scope="module")
def inverted(bundled):
    """{program: InvertedNote} for every note the tests use, inverted once, on one thread."""
    synth, _ = bundled
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = {}
        for program in sorted(set(EDITED) | set(HALLUCINATED)):
            family = GM_PROGRAMS[program].family
            result = synth.invert(soundfont_note(synth, program), synth.sample_rate, start=0.0, settings=SETTINGS,
                                  conditions={"instrument_family": family}, source=f"TimGM6mb-{program:03d}")
            (note,) = result.notes
            assert note.pitch == PITCH and note.conditions == {"instrument_family": family}
            out[program] = note
        return out
    finally:
        torch.set_num_threads(threads)


def described_direction(components) -> tuple[int, str, int]:
    """(component, descriptor, sign) of the first direction whose description names a descriptor that moves
    monotonically with it: `describe`'s own rule (`label_direction`, |ρ| ≥ 0.8), with the size threshold relaxed
    to half an audible change (what the previous model's components, none labelled, needed; on these it finds the
    same direction as the whole threshold). For the bundled components: component 4, loudness, down ("quieter":
    ρ −1.00, effect −1.1)."""
    for index, description in enumerate(components.descriptions or []):
        _, kept = label_direction(description["stats"], min_rho=0.8, min_effect=0.5)
        if kept:
            return index, kept[0]["descriptor"], int(np.sign(kept[0]["effect"]))
    pytest.fail("no direction of the bundled components has a description that moves monotonically")


def feature_change(synth, components, component: int, descriptor: str, z: np.ndarray, conditions) -> np.ndarray:
    """Per latent: the descriptor (on describe's comparison scale, e.g. octaves for the centroid) at coefficient
    +c minus at −c on `component`, mode offset (what `edit --z … --mode offset` plays)."""
    from ganspacesynth.ganspace.edits import synthesize

    coeffs = np.zeros((2 * len(z), component + 1))
    coeffs[0::2, component], coeffs[1::2, component] = COEFFICIENT, -COEFFICIENT
    waves = synthesize(synth, components, coeffs, PITCH, mode="offset", z=np.repeat(z, 2, axis=0),
                       conditions=conditions)
    values = DESCRIPTORS[descriptor].scaled(describe_waves(waves, synth.sample_rate)[descriptor]).reshape(-1, 2)
    return values[:, 0] - values[:, 1]


@pytest.mark.heavy
def test_a_ganspace_direction_moves_inverted_notes_as_it_moves_random_ones(bundled, inverted):
    """The bundled components' first described direction (4, "quieter") at ±2σ (mode offset) moves the four
    inverted notes as it moves random notes of their pitch and family. Measured (loudness at +2 minus at −2, dB;
    inverted vs the median of 8 random latents; ratio): piano −4.67 vs −1.68 (2.78), guitar −2.33 vs −1.50 (1.56),
    violin −2.47 vs −1.70 (1.45), trumpet −4.88 vs −1.17 (4.19); 7 or 8 of the 8 random notes move down. On an earlier model's "darker" direction single
    notes varied more (ratios 0.14-2.58; a random note's change under 0.3x the median of 8 others in 20 % of 96
    random notes), so the test asks every note for the sign and the median and 3 of 4 notes for 0.3x."""
    synth, components = bundled
    component, descriptor, sign = described_direction(components)
    assert (component, descriptor, sign) == (4, "loudness_db", -1)  # the bundled components' "quieter" direction
    rows = []
    for program in EDITED:
        note = inverted[program]
        random_change = feature_change(synth, components, component, descriptor,
                                       synth.random_z(RANDOM_LATENTS, 1), note.conditions)
        (inverted_change,) = feature_change(synth, components, component, descriptor, note.z[None], note.conditions)
        rows.append((program, float(inverted_change), float(np.median(random_change)),
                     float(np.mean(np.sign(random_change) == sign))))
    print("\n".join(f"program {p}: inverted {i:+.3f}, random median {r:+.3f} (ratio {i / r:.2f}); "
                    f"{share:.0%} of random notes move {'up' if sign > 0 else 'down'}" for p, i, r, share in rows))
    for program, inverted_change, random_median, share in rows:
        assert np.sign(random_median) == sign and share >= 0.75, (program, rows)  # the description holds here
        assert np.sign(inverted_change) == np.sign(random_median), (program, rows)  # and for the inverted note
    ratios = np.array([i / r for _, i, r, _ in rows])
    assert np.median(ratios) >= 0.3 and np.sum(ratios >= 0.3) >= 3, (ratios, rows)


@pytest.mark.heavy
def test_hallucinating_between_two_inverted_notes_passes_through_both(bundled, inverted):
    """A z-mode hallucination with two inverted latents as its key points (and their family) starts with the first
    inverted note and ends with the second (the model's notes of those latents, to float rounding); the notes between
    are neither. Measured (log-mel, dB): the key notes 0.00 from the reconstructions, which are 16.95 apart; the
    three between 5.84, 8.95 and 4.04 from the nearer one, nearer the first, then the last."""
    from ganspacesynth.compose.hallucinate import HallucinationSettings, plan_latent, render

    synth, _ = bundled
    first, last = (inverted[p] for p in HALLUCINATED)
    assert first.conditions == last.conditions
    length = synth.config.spectral.audio_length
    seconds = length / synth.sample_rate
    # whole notes, one after the other, unscaled: the mix is the notes themselves, side by side
    params = HallucinationSettings.make(notes=2, steps=3, spacing=seconds, attack=0.0, sustain=seconds, release=0.0,
                                        pitch=PITCH, seed=0)
    plan = plan_latent(synth, params, keys=np.stack([first.z, last.z]), key_pitches=[PITCH, PITCH],
                       conditions=first.conditions)
    audio, score = render(synth, plan, peak=None)
    assert plan.count == 5 and audio.shape == (5 * length,)
    np.testing.assert_array_equal(plan.z[0], first.z)
    np.testing.assert_array_equal(plan.z[-1], last.z)
    assert [step["z"] for step in score["steps"]] == [first.z.tolist(), last.z.tolist()]
    assert score["conditions"] == first.conditions
    notes = audio.reshape(5, length)
    expected = synth.generate(np.stack([first.z, last.z]), PITCH, first.conditions)
    np.testing.assert_allclose(notes[[0, -1]], expected, atol=1e-5 * np.abs(expected).max())
    # the notes `invert` reconstructed (its raw waves, finished as reconstruction-<i>.wav is: the 4 ms onset fade
    # alone moves the log-mel distance by 1.9-2.7 dB), and the ones between are new
    distance = inv.SpectralDistance(synth.sample_rate)
    reference = distance.log_mel_db(synth.finish_waves(np.stack([first.reconstruction, last.reconstruction])))
    to_first = distance.distance_db(notes, reference[:1])
    to_last = distance.distance_db(notes, reference[1:])
    print(f"log-mel distance to the first inverted note {np.round(to_first, 2)}, to the last {np.round(to_last, 2)}")
    assert to_first[0] < 0.05 and to_last[-1] < 0.05, (to_first, to_last)
    assert to_first[-1] > 3.0  # the two inverted notes differ audibly
    assert np.minimum(to_first, to_last)[1:-1].min() > 1.0, (to_first, to_last)  # interpolation really happens
    assert to_first[1] < to_first[3] and to_last[3] < to_last[1]  # and goes from one to the other


@pytest.mark.heavy
def test_invert_then_edit_from_the_command_line(tmp_path, bundled):
    """The user guide's two lines on the bundled model: `invert note.wav --out mine/`, then `edit --z
    mine/latents.npy --coeffs 1.5 --mode offset --out darker.wav` plays the note moved along component 0
    (coefficient 0: the reconstruction itself). Measured: 2.10 dB (log-mel) from the reconstruction. Not darker for
    this inversion (2 restarts, 10 steps): centroid 746 → 753 Hz, +0.066 octaves from −2 to +2, where random
    keyboard notes at MIDI 60 move −0.21 (the same note inverted with the test's API settings: −0.23)."""
    synth, _ = bundled
    note = tmp_path / "note.wav"
    sf.write(note, soundfont_note(synth, 0), synth.sample_rate)
    runner = CliRunner()
    mine = tmp_path / "mine"
    result = runner.invoke(main, ["invert", str(note), "--condition", "instrument_family=keyboard", "--restarts",
                                  "2", "--steps", "10", "--baseline", "0", "--no-progress", "--out", str(mine)])
    assert result.exit_code == 0, result.output
    assert (mine / "coefficients.npy").is_file()  # the bundled components, without --components
    recon, rate = sf.read(mine / "reconstruction-000.wav", dtype="float32")
    waves = {}
    for name, coeffs in (("same", "0"), ("darker", "1.5")):
        out = tmp_path / f"{name}.wav"
        edit = runner.invoke(main, ["edit", "--z", str(mine / "latents.npy"), "--coeffs", coeffs, "--mode", "offset",
                                    "--out", str(out)])
        assert edit.exit_code == 0, edit.output
        waves[name], edit_rate = sf.read(out, dtype="float32")
        assert edit_rate == rate == synth.sample_rate
    np.testing.assert_array_equal(waves["same"], recon)
    assert np.abs(waves["darker"] - recon).max() > 1e-3
    distance = inv.SpectralDistance(synth.sample_rate)
    moved = distance.distance_db(waves["darker"][None], distance.log_mel_db(recon[None]))[0]
    centroid = describe_waves(np.stack([recon, waves["darker"]]), synth.sample_rate)["centroid_hz"]
    print(f"edited: {moved:.2f} dB (log-mel) from the reconstruction, centroid {centroid[0]:.0f} -> "
          f"{centroid[1]:.0f} Hz")
    assert moved > 1.0


@pytest.mark.heavy
def test_refined_coefficients_play_a_closer_note_in_noz_mode(bundled):
    """With components, the note's noz coefficients are refined against the recording: the note noz plays from them
    comes closer than from the latent's projection, stays within the sliders' ±4σ and at the pitch, and is what the
    report says. Measured on this note (the tests' quick latent search): the latent 7.79 dB, noz from the
    projection 8.54, from the refined coefficients 4.18. On 8 FluidR3_GM notes with the default settings: 6.34 dB for the
    latents, 5.06 for the refined coefficients (docs/reports/invert/)."""
    from ganspacesynth.ganspace.edits import synthesize_specgrams

    synth, components = bundled
    wave = soundfont_note(synth, 24)  # nylon guitar, MIDI 60
    family = {"instrument_family": GM_PROGRAMS[24].family}
    notes = [synth.invert(wave, synth.sample_rate, start=0.0, conditions=family, components=components,
                          settings=inv.InvertSettings(**{**SETTINGS.to_dict(), "coefficient_steps": steps})).notes[0]
             for steps in (0, 100)]
    projected, refined = notes
    print(f"latent {refined.distance_db:.2f} dB, noz from the projection {projected.noz_distance_db:.2f}, "
          f"refined {refined.noz_distance_db:.2f}")
    np.testing.assert_array_equal(projected.z, refined.z)  # the latent search is the same
    assert refined.noz_distance_db < projected.noz_distance_db - 0.5
    assert np.abs(refined.coefficients).max() <= inv.InvertSettings().coefficient_limit + 1e-6
    assert refined.noz_midi == PITCH
    specs = synthesize_specgrams(synth, components, refined.coefficients[None], PITCH, "noz", None, family)
    again = synth.specgrams_to_waves(specs, raw=True)
    d = inv.SpectralDistance(synth.sample_rate)
    replay = d.distance_db(again, d.log_mel_db(refined.target.audio))[0]
    assert abs(replay - refined.noz_distance_db) < 0.05, (replay, refined.noz_distance_db)
