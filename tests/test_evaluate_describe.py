"""Descriptors and direction labelling on known cases: a toy generator whose directions control brightness,
sustain, and nothing."""

from __future__ import annotations

import numpy as np
import pytest

from ganspacesynth.evaluate.describe import describe_directions, direction_stats, label_direction
from ganspacesynth.evaluate.descriptors import DESCRIPTORS, describe_waves

SR, N = 16000, 16384
T = np.arange(N) / SR


def toy_note(pitch: int, tilt: float, decay: float, seed: int, noise: float = 0.0) -> np.ndarray:
    """A harmonic note: harmonic h has amplitude h**tilt (random per-seed detail), exponential decay."""
    rng = np.random.default_rng(seed)
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    detail = rng.uniform(0.5, 1.0, 40)
    wave = sum(detail[h - 1] * h**tilt * np.sin(2 * np.pi * f0 * h * T + rng.uniform(0, 6))
               for h in range(1, 41) if f0 * h < SR / 2)
    wave = wave * np.exp(-decay * T) * np.minimum(1.0, T / 0.01)
    wave = wave + noise * np.random.default_rng(seed + 1).normal(0, 1, N)
    return (0.1 * wave / np.sqrt(np.mean(wave[: N // 4] ** 2))).astype(np.float32)  # same level in the onset


def toy_render(pitch: int, seed: int):
    """Direction 0 tilts the spectrum (brighter), direction 1 slows the decay, direction 2 does nothing."""
    def render(coeffs: np.ndarray) -> np.ndarray:
        return np.stack([toy_note(pitch, -2.0 + 0.5 * c[0], 6.0 * 2.0 ** (-0.75 * c[1]), seed) for c in coeffs])
    return render


def test_descriptors_follow_known_changes():
    base = toy_note(60, -2.0, 3.0, 0)
    waves = np.stack([base, toy_note(60, -0.5, 3.0, 0), toy_note(60, -2.0, 12.0, 0), 2 * base,
                      toy_note(60, -2.0, 3.0, 0, noise=0.5), toy_note(72, -2.0, 3.0, 0)])
    d = describe_waves(waves, SR)
    assert set(d) == set(DESCRIPTORS) and all(v.shape == (6,) for v in d.values())
    assert d["centroid_hz"][1] > 1.5 * d["centroid_hz"][0]  # flatter tilt → brighter
    assert d["sustain_s"][2] < 0.5 * d["sustain_s"][0]  # faster decay → shorter
    assert d["loudness_db"][3] - d["loudness_db"][0] == pytest.approx(20 * np.log10(2), abs=0.05)
    assert d["centroid_hz"][3] == pytest.approx(d["centroid_hz"][0], rel=1e-3)  # level does not change timbre
    assert d["flatness"][4] > 10 * d["flatness"][0] and d["harmonicity_db"][4] < d["harmonicity_db"][0] - 6
    assert d["pitch_midi"][0] == pytest.approx(60, abs=0.1) and d["pitch_midi"][5] == pytest.approx(72, abs=0.1)
    assert d["f0_std_cents"][0] < 5
    assert d["attack_s"][0] < 0.03


def test_toy_generator_directions_are_labelled():
    renders = [toy_render(p, s) for p in (48, 64) for s in (1, 2)]
    out = describe_directions(renders, 3, SR, values=(-2, -1, 0, 1, 2))
    assert len(out) == 3
    bright, sustain, nothing = out
    assert bright["label"].split(", ")[0] == "brighter"
    assert bright["stats"]["centroid_hz"]["rho"] == pytest.approx(1.0)
    curve = bright["stats"]["centroid_hz"]["curve"]
    assert all(b > a for a, b in zip(curve, curve[1:]))
    assert sustain["label"].split(", ")[0] == "longer sustain"
    assert "brighter" not in sustain["label"] and "sustain" not in bright["label"]
    assert nothing["label"] == "" and nothing["changes"] == []
    assert all(s["rho"] == 0.0 for s in nothing["stats"].values())


def test_labels_need_monotone_and_audible_changes():
    values = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    up = np.array([[1000, 1100, 1300, 1600, 2000.0]] * 2)  # monotone, +1 octave
    zigzag = np.array([[1000, 2000, 1000, 2000, 1000.0]] * 2)  # large but not monotone
    tiny = np.array([[1000, 1001, 1002, 1003, 1004.0]] * 2)  # monotone but inaudible
    s_up, s_zz, s_tiny = (direction_stats(values, m, "centroid_hz") for m in (up, zigzag, tiny))
    assert s_up["change"] == pytest.approx(np.polyfit(values, np.log2(up[0]), 1)[0] * 4)
    assert label_direction({"centroid_hz": s_up})[0] == "brighter"
    assert label_direction({"centroid_hz": s_zz})[0] == ""
    assert label_direction({"centroid_hz": s_tiny})[0] == ""
    down = direction_stats(values, up[:, ::-1], "centroid_hz")
    assert label_direction({"centroid_hz": down})[0] == "darker"


def test_pitch_drift_counts_the_notes_a_direction_moves():
    """Direction 0 transposes (2 semitones per unit), direction 1 brightens: pYIN against the unedited note."""
    def render(coeffs: np.ndarray) -> np.ndarray:
        return np.stack([toy_note(57 + int(round(2 * c[0])), -2.0 + 0.5 * c[1], 6.0, 3) for c in coeffs])

    transpose, bright = describe_directions([render], 2, SR, values=(-2, -1, 0, 1, 2))
    assert transpose["pitch_drift"] == {"changed": 1.0, "median_semitones": pytest.approx(3.0, abs=0.3), "notes": 4}
    assert bright["pitch_drift"] == {"changed": 0.0, "median_semitones": 0.0, "notes": 4}
    assert transpose["description_version"] == 2
