"""The bundled default model plays in tune: new latents at pitches across its range, heard by pYIN."""

from __future__ import annotations

import numpy as np
import pytest

from ganspacesynth.evaluate.pitch import F0Settings, pitch_check, track_f0
from ganspacesynth.ganspace.components import Components
from ganspacesynth.synth import Synth

#: The bundled model scores 0.956 by `evaluate` on 500 notes (docs/reports/cpu-default) and 30 of these 32; an
#: early model 0.71, the noise stand-in 0.02 (chance: 1 in 61). The bound (26 of 32) leaves room for other CPUs'
#: rounding.
MIN_F0_AGREEMENT = 0.8


@pytest.fixture(scope="module")
def synth():
    return Synth.load(None)


@pytest.mark.heavy
def test_new_latents_sound_at_the_requested_pitch(synth):
    pitches = [p for p in synth.pitches if p % 4 == 0]  # 24, 28, …, 84
    z = synth.random_z(len(pitches) * 2, seed=123)
    asked = np.array(pitches * 2)
    families = synth.config.condition("instrument_family").classes
    waves = synth.generate(z, pitch=list(asked), conditions={"instrument_family": [families[i % len(families)]
                                                                                   for i in range(len(asked))]})
    result = pitch_check(track_f0(waves, synth.sample_rate, F0Settings()).midi, asked)
    assert result["f0_accuracy"] >= MIN_F0_AGREEMENT, result
    assert result["unvoiced"] <= 0.1, result


def test_bundled_components_belong_to_the_bundled_model(synth):
    components = Components.load(None, synth)
    assert components.layer in ("conv0", "conv1") and components.n_components >= 8
    assert np.all(np.diff(components.var_ratio[:8]) <= 1e-9)  # sorted by explained variance


def test_the_top_directions_change_timbre_steadily_without_moving_pitch(synth):
    """The bundled components are fitted per condition (docs/ganspace.md): their top directions keep the pitch
    (tests/test_ganspace_pitch.py) and change a timbre descriptor monotonically. On this model three of the top 8
    are labelled at ±2σ (4 "quieter", 5 "brighter", 6 "louder"; docs/reports/cpu-default/describe) and a fourth (7)
    changes harmonicity monotonically just under the audibility threshold; the first four move between
    instruments, which no single descriptor follows monotonically (their most monotone ones reach |ρ| 0.5-0.7). So
    this holds what was measured: at least 4 of the top 8 change one descriptor with |Spearman ρ| ≥ 0.8 by at least
    half its threshold, and none moves describe's tracked pitch in more than 15 % of its 24 notes (measured at most
    4 %; conv1 components fitted with the family left out as zeros, outside the model's trained inputs, moved 8 %)."""
    from ganspacesynth.interfaces.cli_demo import direction_lines

    components = Components.load(None, synth)
    descriptions = (components.descriptions or [])[:8]
    assert len(descriptions) == 8
    steady = [any(abs(s.get("rho", 0)) >= 0.8 and abs(s.get("effect", 0)) >= 0.5 and np.sign(s["rho"]) == np.sign(s["effect"])
                  for name, s in d["stats"].items() if name not in ("pitch_midi", "f0_std_cents") and isinstance(s, dict))
              for d in descriptions]
    assert sum(steady) >= 4, steady
    assert all(d["pitch_drift"]["changed"] <= 0.15 for d in descriptions), [d["pitch_drift"] for d in descriptions]
    lines = direction_lines(components)
    assert len(lines) == 8 and all("{" not in line for line in lines)  # readable, not a dict's repr
