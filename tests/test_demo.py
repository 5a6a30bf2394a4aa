"""`ganspacesynth demo` on the bundled default model: everything it promises, in seconds."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from ganspacesynth.assets import default_components_path, default_model_path


@pytest.mark.skipif(default_model_path() is None, reason="no bundled default model in this checkout")
@pytest.mark.integration
def test_demo_writes_notes_grid_hallucination_and_directions(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ganspacesynth", "demo", "--out", str(tmp_path / "demo")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "demo"
    notes = sorted((out / "notes").glob("p*_000.wav"))
    assert len(notes) == 5
    for note in notes:
        audio, sr = sf.read(note)
        assert sr == 16000 and np.abs(audio).max() > 0.01
    assert len(list((out / "grid").glob("*.wav"))) == 25
    assert (out / "grid" / "grid.png").read_bytes()[:4] == b"\x89PNG"
    audio, sr = sf.read(out / "hallucination.wav")
    score = json.loads((out / "hallucination.json").read_text())
    assert score["note_count"] == 3 + 2 * 3
    assert len(audio) == round(score["seconds"] * sr)
    lines = (out / "directions.txt").read_text().splitlines()
    assert len(lines) == 8 and all(line.startswith(f"direction {i}:") for i, line in enumerate(lines))
    assert str(out) in proc.stdout
    # Running it again replaces the folder (and reproduces the same notes).
    first = sf.read(notes[0])[0]
    subprocess.run([sys.executable, "-m", "ganspacesynth", "demo", "--out", str(out)], check=True,
                   capture_output=True, cwd=tmp_path)
    np.testing.assert_array_equal(sf.read(notes[0])[0], first)


def test_bundled_components_belong_to_the_bundled_model():
    if default_model_path() is None or default_components_path() is None:
        pytest.skip("no bundled default in this checkout")
    from ganspacesynth.ganspace.components import Components
    from ganspacesynth.synth import Synth

    synth = Synth.load(None, device="cpu")
    comps = Components.load(None, synth)  # checks the fingerprint
    assert comps.layer in ("conv0", "conv1") and comps.meta["sample_count"] >= 65536
    assert comps.descriptions is not None and len(comps.descriptions) >= 8
