"""Hallucinations: note counts, paths between key points, onsets and envelopes to the sample,
determinism, the score round trip, the model's other conditions (an instrument family) and the refusals
(compose/hallucinate.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ganspacesynth.errors import UserError
from ganspacesynth.compose.envelope import envelope_curve
from ganspacesynth.compose.hallucinate import (
    HallucinationSettings, Limits, load_score, note_onsets, plan_coefficients, plan_from_score, plan_latent, render,
    save_score, score_from_plan,
)
from ganspacesynth.compose.interpolate import lerp, slerp

SHORT = dict(attack=0.05, sustain=0.2, release=0.1)  # fits the tiny model's 1.024 s notes


class ConstSynth:
    """The tiny synth, except each note is a constant wave equal to its z[0] (so mixes can be predicted
    exactly); counts generate calls to prove refusals happen before any work."""

    def __init__(self, synth):
        self._synth = synth
        self.generate_calls = 0
        self.random_z_calls = 0

    def __getattr__(self, name):
        return getattr(self._synth, name)

    def random_z(self, count, seed=0):
        self.random_z_calls += 1
        return self._synth.random_z(count, seed)

    def generate(self, z, pitch=None, conditions=None, *, batch_size=8, **kw):
        self.generate_calls += 1
        z = self._synth.check_z(z)
        self._synth.labels(len(z), pitch)  # same pitch validation as the real one
        return np.repeat(z[:, :1], self.config.spectral.audio_length, axis=1).astype(np.float32)


@pytest.fixture()
def const_synth(tiny_synth):
    return ConstSynth(tiny_synth)


@pytest.mark.parametrize("n,m", [(1, 0), (1, 5), (2, 0), (3, 2), (4, 4)])
def test_note_count_and_path(tiny_synth, n, m):
    plan = plan_latent(tiny_synth, HallucinationSettings.make(notes=n, steps=m, seed=7, **SHORT))
    assert plan.count == n + (n - 1) * m == plan.z.shape[0]
    assert plan.z.shape[1] == tiny_synth.latent_size
    keys = tiny_synth.random_z(n, 7)
    np.testing.assert_array_equal(plan.keys, keys)
    np.testing.assert_array_equal(plan.z[:: m + 1], keys)  # key points sit every m+1 notes, unchanged
    for i in range(n - 1):
        for j in range(1, m + 1):
            np.testing.assert_allclose(plan.z[i * (m + 1) + j], slerp(keys[i], keys[i + 1], j / (m + 1)), atol=1e-6)
    assert plan.pitches == [32] * plan.count


def test_onsets_and_mix_to_the_sample(const_synth):
    sr = const_synth.sample_rate
    params = HallucinationSettings.make(notes=3, steps=2, spacing=0.1234, start_trim=0.01, seed=3, **SHORT)
    plan = plan_latent(const_synth, params)
    audio, _ = render(const_synth, plan, batch_size=3, peak=None)
    onsets = note_onsets(plan.count, 0.1234, sr)
    np.testing.assert_array_equal(onsets, [round(k * 0.1234 * sr) for k in range(7)])
    assert onsets[1] == 1974 and onsets[6] == 11846
    curve = envelope_curve(800, 3200, 1600)
    assert len(audio) == onsets[-1] + len(curve)
    expected = np.zeros(len(audio))
    for k, onset in enumerate(onsets):
        expected[onset:onset + len(curve)] += plan.z[k, 0] * curve.astype(np.float64)
    np.testing.assert_allclose(audio, expected, rtol=1e-6, atol=1e-6)
    assert const_synth.generate_calls == 3  # 7 notes in batches of 3


def test_single_note_has_the_envelope_shape(tiny_synth):
    params = HallucinationSettings.make(notes=1, steps=0, start_trim=0.02, attack=0.1, sustain=0.3, release=0.25, seed=11)
    plan = plan_latent(tiny_synth, params)
    audio, _ = render(tiny_synth, plan, peak=None)
    wave = tiny_synth.generate(tiny_synth.random_z(1, 11), pitch=32)[0]
    trim, a, s, r = 320, 1600, 4800, 4000
    assert len(audio) == a + s + r
    np.testing.assert_allclose(audio, wave[trim:trim + a + s + r] * envelope_curve(a, s, r), rtol=1e-5, atol=1e-6)
    gain = audio / np.where(wave[trim:trim + len(audio)] == 0, 1, wave[trim:trim + len(audio)])
    np.testing.assert_allclose(gain[1:a:100], np.arange(1, a, 100) / a, atol=1e-5)  # linear attack
    np.testing.assert_allclose(gain[a:a + s], 1.0, atol=1e-5)
    assert audio[0] == 0.0 and audio[-1] == 0.0


@pytest.mark.heavy
def test_render_matches_the_notes_generated_alone(tiny_synth):
    params = HallucinationSettings.make(notes=2, steps=2, spacing=0.3, seed=2, **SHORT)
    plan = plan_latent(tiny_synth, params)
    audio, _ = render(tiny_synth, plan, peak=None)
    waves = tiny_synth.generate(plan.z, pitch=32, batch_size=16)
    curve = envelope_curve(800, 3200, 1600)
    expected = np.zeros(len(audio))
    for k in range(plan.count):
        expected[4800 * k:4800 * k + len(curve)] += waves[k, :len(curve)] * curve
    np.testing.assert_allclose(audio, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    normalised, _ = render(tiny_synth, plan)
    assert np.abs(normalised).max() == pytest.approx(0.99, abs=1e-6)


@pytest.mark.heavy
def test_deterministic_by_seed(tiny_synth):
    params = HallucinationSettings.make(notes=3, steps=1, spacing=0.2, seed=5, **SHORT)
    a, score_a = render(tiny_synth, plan_latent(tiny_synth, params))
    b, score_b = render(tiny_synth, plan_latent(tiny_synth, params))
    c, _ = render(tiny_synth, plan_latent(tiny_synth, HallucinationSettings.make(notes=3, steps=1, spacing=0.2, seed=6, **SHORT)))
    np.testing.assert_array_equal(a, b)
    assert score_a == score_b
    assert np.abs(a - c).max() > 0.05
    one_by_one, _ = render(tiny_synth, plan_latent(tiny_synth, params), batch_size=1)
    # Batched and one-by-one passes may take different oneDNN kernels: up to 1.3e-4 apart on an AVX2-only AMD
    # EPYC after peak normalisation (under 5 steps of 16-bit audio).
    np.testing.assert_allclose(one_by_one, a, atol=5e-4)


@pytest.mark.heavy
def test_score_round_trip_renders_identically(tiny_synth, tmp_path):
    params = HallucinationSettings.make(notes=3, steps=2, spacing=0.15, start_trim=0.01, pitch=40, seed=None, **SHORT)
    plan = plan_latent(tiny_synth, params)
    assert isinstance(plan.params.seed, int)  # a fresh seed is chosen and recorded
    audio, score = render(tiny_synth, plan)
    path = save_score(tmp_path / "piece.score.json", score)
    loaded = load_score(path)
    assert loaded["seed"] == plan.params.seed and loaded["mode"] == "z"
    assert loaded["interpolation_steps"] == 2 and loaded["spacing"] == 0.15 and loaded["start_trim"] == 0.01
    assert (loaded["attack"], loaded["sustain"], loaded["release"]) == (0.05, 0.2, 0.1)
    assert [s["pitch"] for s in loaded["steps"]] == [40, 40, 40] and loaded["note_count"] == 7
    assert loaded["model"]["fingerprint"] == tiny_synth.fingerprint
    again = plan_from_score(tiny_synth, loaded)
    np.testing.assert_array_equal(again.keys, plan.keys)
    np.testing.assert_array_equal(again.z, plan.z)
    audio2, score2 = render(tiny_synth, again)
    np.testing.assert_array_equal(audio2, audio)
    assert score2 == json.loads(json.dumps(score))


def test_score_with_own_key_points_and_pitches(tiny_synth):
    keys = tiny_synth.random_z(2, 99)
    score = {"mode": "z", "steps": [{"z": keys[0].tolist(), "pitch": 50}, {"z": keys[1].tolist(), "pitch": 55}],
             "interpolation_steps": 1, "spacing": 0.2, **SHORT}
    plan = plan_from_score(tiny_synth, score)
    assert plan.pitches == [50, 50, 55]
    np.testing.assert_array_equal(plan.z[[0, 2]], keys)


def test_coefficient_plan_lerps_and_changes_pitch_per_step(tiny_synth):
    coeffs = [[0.0, 1.0], [2.0, -1.0], [4.0, 0.0]]
    plan = plan_coefficients(tiny_synth, coeffs, [60, 64, 67], HallucinationSettings.make(steps=2, seed=1, **SHORT), "offset")
    assert plan.count == 7 and plan.mode == "offset"
    assert plan.pitches == [60, 60, 60, 64, 64, 64, 67]
    np.testing.assert_allclose(plan.coeffs[1], lerp(np.array(coeffs[0]), np.array(coeffs[1]), 1 / 3), atol=1e-6)
    np.testing.assert_allclose(plan.coeffs[5], [10 / 3, -1 / 3], atol=1e-6)
    np.testing.assert_array_equal(plan.base_z, tiny_synth.random_z(1, 1)[0])  # offset edits the seed's timbre
    noz = plan_coefficients(tiny_synth, coeffs, None, HallucinationSettings.make(steps=0, pitch=45, **SHORT), "noz")
    assert noz.base_z is None and noz.pitches == [45, 45, 45]


def test_refusals_happen_before_any_generation(const_synth):
    with pytest.raises(UserError, match="longer than this model's notes"):
        plan_latent(const_synth, HallucinationSettings.make(attack=0.5, sustain=0.5, release=0.5))
    with pytest.raises(UserError, match="limit is 10"):
        plan_latent(const_synth, HallucinationSettings.make(notes=4, steps=3, **SHORT), Limits(max_notes=10))  # 13 notes
    with pytest.raises(UserError, match="5 s"):
        plan_latent(const_synth, HallucinationSettings.make(notes=10, steps=2, spacing=0.2, **SHORT), Limits(max_seconds=5))
    with pytest.raises(UserError, match="outside this model's range"):
        plan_latent(const_synth, HallucinationSettings.make(pitch=100, **SHORT))
    with pytest.raises(UserError, match="limit"):
        plan_from_score(const_synth, {"mode": "noz", "steps": [{"coeffs": [1.0]}] * 20, **SHORT}, Limits(max_notes=50))
    assert const_synth.generate_calls == 0 and const_synth.random_z_calls == 0
    # the limit counts interpolated notes too: 3 + 2·20 = 43
    assert HallucinationSettings.make(notes=3, steps=20).note_count == 43


@pytest.mark.parametrize("score,match", [
    ({"steps": []}, "non-empty"),
    ({"steps": [{"z": [0.0] * 32}], "atack": 0.1}, "unknown score fields"),
    ({"steps": [{"z": [0.0] * 5}], **SHORT}, r"shape \[N, 32\]"),
    ({"steps": [{"z": [0.0] * 32}, {"z": [0.0] * 31}]}, "different lengths"),
    ({"steps": [{"z": ["a"] * 32}]}, "list of numbers"),
    ({"steps": [{"z": [0.0] * 32, "pitch": 60.5}], **SHORT}, "integer"),
    ({"mode": "bogus", "steps": [{"z": [0.0] * 32}]}, "mode must be"),
    ({"format": "something-else", "steps": [{"z": [0.0] * 32}]}, "not a hallucination score"),
    ({"steps": [{"z": [0.0] * 32}], "interpolation_steps": -1, **SHORT}, "interpolation steps"),
    ({"steps": [{"coeffs": [1.0, float("nan")]}], **SHORT}, "NaN"),
])
def test_bad_scores_get_one_line_errors(tiny_synth, score, match):
    with pytest.raises(UserError, match=match):
        plan_from_score(tiny_synth, score)


# -- the model's other conditions (an instrument family) ----------------------------------------------------------
FAMILY_TIMES = dict(notes=3, steps=1, spacing=0.15, start_trim=0.01, pitch=60, seed=4, **SHORT)


def _expected_mix(plan, waves, sample_rate: int) -> np.ndarray:
    """The mix `render` must make of `waves` (one per note, generated alone): enveloped, placed, summed."""
    trim, a, s, r = plan.params.envelope.sample_counts(sample_rate)
    curve = envelope_curve(a, s, r).astype(np.float64)
    onsets = note_onsets(plan.count, plan.params.spacing, sample_rate)
    out = np.zeros(int(onsets[-1]) + len(curve))
    for wave, onset in zip(waves, onsets):
        out[onset:onset + len(curve)] += wave[trim:trim + len(curve)] * curve
    return out


@pytest.fixture(scope="module")
def family_comps(family_synth, tmp_path_factory):
    from helpers import family_components

    from ganspacesynth.ganspace.components import Components

    return Components.load(family_components(family_synth, tmp_path_factory.mktemp("comps")), family_synth)


@pytest.mark.heavy
def test_conditions_play_every_latent_note_and_change_the_piece(family_synth):
    params = HallucinationSettings.make(**FAMILY_TIMES)
    pieces = {}
    for family in ("bass", "guitar"):
        plan = plan_latent(family_synth, params, conditions={"instrument_family": family})
        assert plan.conditions == {"instrument_family": family}
        audio, score = render(family_synth, plan, peak=None)
        assert score["conditions"] == {"instrument_family": family}
        waves = family_synth.generate(plan.z, pitch=plan.pitches, conditions={"instrument_family": family})
        expected = _expected_mix(plan, waves, family_synth.sample_rate)
        np.testing.assert_allclose(audio, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
        pieces[family] = audio
    plain, plain_score = render(family_synth, plan_latent(family_synth, params), peak=None)
    assert "conditions" not in plain_score  # none given: nothing recorded, as before
    scale = np.abs(pieces["bass"]).max()
    assert np.abs(pieces["bass"] - pieces["guitar"]).max() > 0.1 * scale  # same z, other family: another piece
    assert np.abs(pieces["bass"] - plain).max() > 0.1 * scale


@pytest.mark.heavy
@pytest.mark.parametrize("mode", ["noz", "offset"])
def test_conditions_play_every_ganspace_note(family_synth, family_comps, mode):
    from ganspacesynth.ganspace.edits import synthesize

    coeffs = [[0.0, 1.0], [2.0, -1.0]]
    params = HallucinationSettings.make(**FAMILY_TIMES)
    pieces = {}
    for family in ("bass", "organ"):
        conditions = {"instrument_family": family}
        plan = plan_coefficients(family_synth, coeffs, [60, 64], params, mode, conditions=conditions)
        audio, score = render(family_synth, plan, family_comps, peak=None)
        assert score["conditions"] == conditions
        z = None if plan.base_z is None else np.repeat(plan.base_z[None], plan.count, axis=0)
        waves = synthesize(family_synth, family_comps, plan.coeffs, plan.pitches, mode=mode, z=z,
                           conditions=conditions)
        expected = _expected_mix(plan, waves, family_synth.sample_rate)
        np.testing.assert_allclose(audio, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
        pieces[family] = audio
    assert np.abs(pieces["bass"] - pieces["organ"]).max() > 0.1 * np.abs(pieces["bass"]).max()


@pytest.mark.heavy
def test_score_round_trips_its_conditions_bit_for_bit(family_synth, family_comps, tmp_path):
    for plan, comps in ((plan_latent(family_synth, HallucinationSettings.make(**FAMILY_TIMES),
                                     conditions={"instrument_family": "organ"}), None),
                        (plan_coefficients(family_synth, [[1.0], [-1.0]], None, HallucinationSettings.make(**FAMILY_TIMES),
                                           "offset", conditions={"instrument_family": "guitar"}), family_comps)):
        audio, score = render(family_synth, plan, comps)
        loaded = load_score(save_score(tmp_path / "piece.score.json", score))
        assert loaded["conditions"] == plan.conditions and loaded["format_version"] == 1
        again = plan_from_score(family_synth, loaded)
        assert again.conditions == plan.conditions and again.mode == plan.mode
        audio2, score2 = render(family_synth, again, comps)
        np.testing.assert_array_equal(audio2, audio)
        assert score2 == json.loads(json.dumps(score))


@pytest.mark.heavy
def test_a_score_without_conditions_still_loads(family_synth, tiny_synth):
    # A score written before conditions were recorded: no `conditions` field, format version 1.
    plan = plan_latent(family_synth, HallucinationSettings.make(**FAMILY_TIMES))
    audio, score = render(family_synth, plan)
    old = {k: v for k, v in score.items() if k != "conditions"}
    assert old == score and old["format_version"] == 1
    again = plan_from_score(family_synth, json.loads(json.dumps(old)))
    assert again.conditions == {}
    np.testing.assert_array_equal(render(family_synth, again)[0], audio)
    # the caller's conditions fill in for a score that names none, and lose to one that does
    filled = plan_from_score(family_synth, old, conditions={"instrument_family": "bass"})
    assert filled.conditions == {"instrument_family": "bass"}
    own = plan_from_score(family_synth, {**old, "conditions": {"instrument_family": "organ"}},
                          conditions={"instrument_family": "bass"})
    assert own.conditions == {"instrument_family": "organ"}
    # a pitch-only model's scores are unchanged
    plain = plan_from_score(tiny_synth, {"steps": [{"z": [0.0] * 32}], **SHORT})
    assert plain.conditions == {} and "conditions" not in score_from_plan(plain)


@pytest.mark.parametrize("conditions,match", [
    ({"instrument_family": "kazoo"}, r"instrument_family='kazoo' is not known to this model \(choose from: bass"),
    ({"timbre": "warm"}, r"this model has no condition 'timbre' \(it has: pitch, instrument_family\)"),
    ({"pitch": "60"}, "the pitch is not one of the conditions"),
    ({"instrument_family": ["bass"]}, "must be one class name"),
    ({"instrument_family": 3}, "must be one class name"),
    ("instrument_family=bass", "must be an object"),
])
def test_bad_conditions_are_refused_in_one_line_before_any_generation(family_synth, conditions, match):
    const = ConstSynth(family_synth)
    params = HallucinationSettings.make(**FAMILY_TIMES)
    score = {"steps": [{"z": [0.0] * 32}], "conditions": conditions, **SHORT}
    for attempt in (lambda: plan_latent(const, params, conditions=conditions),
                    lambda: plan_coefficients(const, [[1.0]], None, params, "offset", conditions=conditions),
                    lambda: plan_from_score(const, score)):
        with pytest.raises(UserError, match=match) as info:
            attempt()
        assert "\n" not in str(info.value)
    assert const.generate_calls == 0 and const.random_z_calls == 0


def test_load_score_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_score(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="JSON"):
        load_score(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(UserError, match="object"):
        load_score(bad)
