"""GANSpace on the bundled model keeps the pitch: noz plays the pitch asked for (API, the `edit` command, old
components files), and the bundled directions keep the pitch at ±2σ (pYIN)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from ganspacesynth.evaluate.describe import measure_pitch_keeping
from ganspacesynth.evaluate.pitch import track_f0
from ganspacesynth.ganspace.components import Components
from ganspacesynth.ganspace.edits import synthesize
from ganspacesynth.interfaces.cli import main
from ganspacesynth.synth import Synth

pytestmark = pytest.mark.heavy  # its tests take over about 1 s each: outside the quick tier (docs/DEVELOPING.md)

#: The bundled components' top 8 directions at ±2σ, 8 contexts (a random latent each in offset mode; pitches
#: 24…84): measured 1.000 of 128 notes in both modes (the family left out plays as the mean of its classes; given as
#: zeros, outside the model's trained inputs, conv1 components fitted there kept 0.945 and 0.891). The bounds leave room for other CPUs' rounding (at most 6 of 128 notes moved by half a semitone or
#: more); components fitted across pitches kept 0.836 (offset) on an earlier model.
MIN_KEPT = {"offset": 0.95, "noz": 0.95}


@pytest.fixture(scope="module")
def synth():
    return Synth.load(None)


@pytest.fixture(scope="module")
def bundled(synth):
    return Components.load(None, synth)


def tracked(synth, waves) -> list[int]:
    return [int(m) for m in track_f0(np.asarray(waves), synth.sample_rate).midi]


def test_noz_plays_the_pitch_asked_for(synth, bundled):
    waves = synthesize(synth, bundled, [[1.0, 0.5], [1.0, 0.5]], [36, 72], mode="noz")
    assert np.abs(waves[0] - waves[1]).max() > 0.01
    assert tracked(synth, waves) == [36, 72]


def test_edit_command_noz_plays_the_pitch_asked_for(synth, tmp_path):
    waves = []
    for pitch in (36, 72):
        out = tmp_path / f"n{pitch}.wav"
        res = CliRunner().invoke(main, ["edit", "--coeffs", "1,0.5", "--pitch", str(pitch), "--out", str(out)])
        assert res.exit_code == 0, res.output
        waves.append(sf.read(out, dtype="float32")[0])
    assert not np.array_equal(waves[0], waves[1])
    assert tracked(synth, np.stack(waves)) == [36, 72]


def test_old_components_files_play_noz_at_the_pitch_asked_for(synth, tmp_path):
    """Components fitted across pitches without centring, in the file format written before it: noz starts from
    the conditional mean of the pitch asked for (it started from the stored mean, near MIDI 23 whatever the pitch)."""
    from ganspacesynth.ganspace.fit import fit_components

    raw = fit_components(synth, "conv1", 2048, pitches="all", n_components=8, regression_samples=0, centring="none")
    raw.meta = {k: v for k, v in raw.meta.items() if not k.startswith("centr")}
    old = Components.load(raw.save(tmp_path / "old.npz"), synth)
    assert "centring" not in old.meta
    waves = synthesize(synth, old, [[0.5], [0.5]], [36, 72], mode="noz")
    assert tracked(synth, waves) == [36, 72]


@pytest.mark.parametrize("mode", ["offset", "noz"])
def test_bundled_directions_keep_the_pitch(synth, bundled, mode):
    assert bundled.meta.get("centring") == "per-condition"
    result = measure_pitch_keeping(synth, bundled, mode=mode, top=8, values=(-2.0, 2.0), notes=8, seed=0)
    assert result["notes"] == 8 * 8 * 2
    assert result["kept"] >= MIN_KEPT[mode], {d["component"]: d["changed"] for d in result["per_direction"] if d["changed"]}


def test_live_noz_requests_play_the_pitch_asked_for(synth, bundled, tmp_path):
    """What OSC `/synthesize_noz <pitch> <c1> …` (the Pd noz patch) and the web page's noz mode run."""
    from ganspacesynth.interfaces.session import Session

    session = Session(synth, components=bundled, out_dir=tmp_path / "out", queue_size=1)
    try:
        waves = [session.note_request("noz", pitch=p, coeffs=[1.0, 0.5]).run().wave for p in (36.0, 72.0)]
    finally:
        session.close()
    assert tracked(synth, np.stack(waves)) == [36, 72]
