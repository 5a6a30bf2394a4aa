"""Envelope shapes, sample rounding, length refusals and overlap-add mixing (compose/envelope.py)."""

from __future__ import annotations

import numpy as np
import pytest

from ganspacesynth.errors import UserError
from ganspacesynth.compose.envelope import Envelope, Mixer, envelope_curve, normalize_peak, to_samples


def test_curve_is_linear_attack_flat_sustain_linear_release():
    curve = envelope_curve(4, 3, 4)
    np.testing.assert_array_equal(curve, [0, 0.25, 0.5, 0.75, 1, 1, 1, 0.75, 0.5, 0.25, 0])
    assert curve.dtype == np.float32


def test_curve_edge_cases():
    np.testing.assert_array_equal(envelope_curve(0, 2, 0), [1, 1])
    np.testing.assert_array_equal(envelope_curve(0, 0, 2), [0.5, 0.0])  # release only: starts below 1, ends at 0
    np.testing.assert_array_equal(envelope_curve(2, 0, 0), [0.0, 0.5])
    long = envelope_curve(1000, 10, 800)
    assert len(long) == 1810
    np.testing.assert_allclose(np.diff(long[:1000]), 1 / 1000, atol=1e-6)
    np.testing.assert_allclose(np.diff(long[1010:]), -1 / 800, atol=1e-6)


def test_seconds_round_to_nearest_sample():
    assert 1.001 * 16000 < 16016  # float arithmetic lands just below; truncation would lose a sample
    assert to_samples(1.001, 16000) == 16016
    assert to_samples(0.00003, 16000) == 0 and to_samples(0.00004, 16000) == 1  # 0.48 and 0.64 samples
    env = Envelope(start_trim=0.01, attack=1.001, sustain=0.1, release=0.3)
    assert env.sample_counts(16000) == (160, 16016, 1600, 4800)
    assert len(env.curve(16000)) == 16016 + 1600 + 4800


def test_envelope_longer_than_note_is_refused_and_exact_fit_accepted():
    sr, length = 16000, 16384
    Envelope(start_trim=0.0, attack=0.024, sustain=0.5, release=0.5).check(sr, length)  # 384 + 8000 + 8000 = 16384
    with pytest.raises(UserError, match="longer than this model's notes"):
        Envelope(start_trim=0.001, attack=0.024, sustain=0.5, release=0.5).check(sr, length)  # one trim of 16 too many
    with pytest.raises(UserError, match="1.5 s"):
        Envelope(attack=0.5, sustain=0.5, release=0.5).check(sr, length)
    with pytest.raises(UserError, match="empty"):
        Envelope(attack=0, sustain=0, release=0).check(sr, length)


@pytest.mark.parametrize("field", ["start_trim", "attack", "sustain", "release"])
def test_negative_or_nan_envelope_refused(field):
    with pytest.raises(UserError, match=field.replace("_", " ")):
        Envelope(**{field: -0.1})
    with pytest.raises(UserError):
        Envelope(**{field: float("nan")})


def test_mixer_overlap_adds_with_trim_and_gain():
    mix = Mixer(10)
    wave = np.arange(8, dtype=np.float32)
    mix.add(wave, onset=1, curve=np.ones(3, np.float32), trim=2)           # wave[2:5] at 1..3
    mix.add(np.ones(5, np.float32), onset=3, curve=np.full(4, 0.5, np.float32), gain=2.0)  # 1.0 at 3..6
    np.testing.assert_array_equal(mix.result(peak=None), [0, 2, 3, 5, 1, 1, 1, 0, 0, 0])
    out = mix.result(peak=0.5)
    assert np.abs(out).max() == pytest.approx(0.5, abs=1e-7)
    np.testing.assert_allclose(out, np.array([0, 2, 3, 5, 1, 1, 1, 0, 0, 0]) * 0.1, atol=1e-7)


def test_mixer_refuses_notes_outside_buffer_or_too_short():
    mix = Mixer(5)
    with pytest.raises(ValueError):
        mix.add(np.ones(4), onset=3, curve=np.ones(3))
    with pytest.raises(ValueError):
        mix.add(np.ones(4), onset=0, curve=np.ones(3), trim=2)


def test_normalize_peak():
    np.testing.assert_array_equal(normalize_peak(np.zeros(4)), np.zeros(4))
    out = normalize_peak(np.array([0.0, -4.0, 2.0]), 0.8)
    np.testing.assert_allclose(out, [0.0, -0.8, 0.4], rtol=1e-6)
    with pytest.raises(UserError, match="NaN"):
        normalize_peak(np.array([0.0, np.nan]))
