"""FID, Inception Score, NDB, accuracy and the f0 pitch check on cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import tone

from ganspacesynth.evaluate.metrics import NDB, accuracy, fid, frechet_distance, \
    inception_score, mean_entropy, pooled_logmag
from ganspacesynth.evaluate.pitch import F0Settings, pitch_check, track_f0


def test_fid_of_identical_sets_is_zero_and_grows_with_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 16)) @ rng.normal(size=(16, 16))
    assert fid(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = np.zeros(16)
    shift[3] = 2.0
    # Same covariance, mean moved by 2: the distance is exactly ‖Δμ‖² = 4.
    assert fid(a, a + shift) == pytest.approx(4.0, rel=1e-6)
    assert fid(a, rng.permutation(a)) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_matches_closed_form_for_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)  # = 5 + 1 + 1
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_matches_scipy_sqrtm_on_random_covariances():
    import scipy.linalg

    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(40, 12)), rng.normal(size=(40, 12))
    s1, s2 = a.T @ a / 40, b.T @ b / 40 + 0.1 * np.eye(12)
    mu1, mu2 = rng.normal(size=12), rng.normal(size=12)
    reference = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * np.real(scipy.linalg.sqrtm(s1 @ s2)))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-8)


def test_inception_score_and_entropy_extremes():
    k = 8
    confident = np.eye(k)[np.arange(400) % k]  # sure of each class, all classes equally often
    assert inception_score(confident) == pytest.approx(k, rel=1e-6)
    assert mean_entropy(confident) == pytest.approx(0.0, abs=1e-6)
    one_class = np.tile(np.eye(k)[2], (100, 1))  # sure, but always the same class: no diversity
    assert inception_score(one_class) == pytest.approx(1.0, rel=1e-6)
    uniform = np.full((50, k), 1.0 / k)
    assert inception_score(uniform) == pytest.approx(1.0, rel=1e-6)
    assert mean_entropy(uniform) == pytest.approx(np.log(k))


def test_shuffled_labels_give_chance_accuracy():
    rng = np.random.default_rng(1)
    k, n = 10, 20000
    target = rng.integers(0, k, n)
    assert accuracy(target, target) == 1.0
    acc = accuracy(target, rng.permutation(target))
    assert abs(acc - 1.0 / k) < 4 * np.sqrt(0.1 * 0.9 / n)
    unknown = target.copy()
    unknown[: n // 2] = -1  # unknown labels are skipped, not counted as wrong
    assert accuracy(target, unknown) == 1.0


def _modes(n: int, centres: np.ndarray, rng) -> np.ndarray:
    return centres[rng.integers(0, len(centres), n)] + 0.05 * rng.normal(size=(n, centres.shape[1]))


def test_ndb_zero_for_identical_sets_and_counts_dropped_modes():
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(10, 8)) * 5
    train = _modes(2000, centres, rng)
    ndb = NDB(train, bins=10, seed=0)
    same = ndb.score(train)
    assert same.ndb == 0 and same.js_divergence == pytest.approx(0.0, abs=1e-12)
    fresh = ndb.score(_modes(2000, centres, rng))  # a new sample of the same distribution
    assert fresh.ndb <= 2
    collapsed = ndb.score(_modes(2000, centres[:5], rng))  # half the modes missing
    assert collapsed.ndb >= 9  # 5 empty bins + 5 over-full ones
    assert collapsed.js_divergence > 0.2
    assert collapsed.to_dict()["ndb_fraction"] == collapsed.ndb / 10


def test_pooled_logmag_shape_and_values():
    specs = np.zeros((3, 2, 128, 256), np.float32)
    specs[:, 0] = np.arange(3)[:, None, None]
    specs[:, 1] = 7.0  # the IF channel is ignored
    out = pooled_logmag(specs, (4, 8))
    assert out.shape == (3, 32)
    np.testing.assert_allclose(out, np.arange(3)[:, None] * np.ones((1, 32)))


#: Steady tones (helpers.tone): five harmonics at 1/h, scaled by 0.2, no envelope and no noise.
STEADY = dict(n=16384, sr=16000, partials=(1, 1 / 2, 1 / 3, 1 / 4, 1 / 5), amp=0.2, decay=0.0, attack=0.0,
              normalize=False, noise=0.0)


def test_f0_pitch_check_on_known_tones():
    pitches = np.array([24, 36, 48, 60, 72, 84])
    waves = np.stack([tone(p, **STEADY) for p in pitches])
    res = track_f0(waves, 16000)
    np.testing.assert_array_equal(res.midi, pitches)
    assert np.all(res.voiced_fraction > 0.8)
    assert pitch_check(res.midi, pitches) == {"f0_accuracy": 1.0, "octave_errors": 0.0, "unvoiced": 0.0, "count": 6}
    # Asking for an octave lower, a semitone off, and silence: octave error, plain miss, unvoiced.
    odd = track_f0(np.stack([tone(60, **STEADY), tone(61, **STEADY), np.zeros(16384, np.float32)]), 16000, F0Settings())
    check = pitch_check(odd.midi, np.array([48, 60, 60]))
    assert check["f0_accuracy"] == 0.0
    assert check["octave_errors"] == pytest.approx(1 / 3) and check["unvoiced"] == pytest.approx(1 / 3)


def test_log_spectral_distance_is_zero_for_equal_waves_and_grows_with_difference():
    from ganspacesynth.evaluate.metrics import log_spectral_distance

    t = np.arange(16000) / 16000
    noise = np.random.default_rng(0).standard_normal(16000)
    assert log_spectral_distance(noise, noise) == 0.0
    assert abs(log_spectral_distance(noise, 0.5 * noise) - 20 * np.log10(2)) < 0.05  # 6.02 dB at every bin
    a = np.sin(2 * np.pi * 440 * t)
    near = log_spectral_distance(a, np.sin(2 * np.pi * 445 * t))
    far = log_spectral_distance(a, np.sin(2 * np.pi * 880 * t))
    assert 0 < near < far


def test_grid_neighbour_distance_reads_a_grid_folder(tmp_path):
    import json

    from ganspacesynth.audio.io import write_wav
    from ganspacesynth.evaluate.metrics import grid_neighbour_distance

    noise = np.random.default_rng(1).standard_normal(8000)
    values = [-1.0, 0.0, 1.0]
    files = []
    for x in values:
        for y in values:  # loudness follows x only: y steps change nothing
            name = f"wave_{x},{y}.wav"
            write_wav(tmp_path / name, ((0.05 * 2 ** x) * noise).astype(np.float32), 16000)
            files.append({"file": name, "x": x, "y": y})
    (tmp_path / "grid.json").write_text(json.dumps({"values": values, "files": files}))
    result = grid_neighbour_distance(tmp_path)
    assert result["pairs"] == 12 and result["y_mean_db"] < 0.01
    assert abs(result["x_mean_db"] - 20 * np.log10(2)) < 0.1
