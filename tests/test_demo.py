"""`ganspacesynth demo` on the bundled default model: everything it promises, in seconds."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ganspacesynth.assets import default_components_path, default_model_path

REPO = Path(__file__).resolve().parents[1]


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
    assert f"open {out}/hallucination.wav first" in proc.stdout and f"{out}/README.txt" in proc.stdout
    assert "\n".join(lines) in proc.stdout  # the CLI prints directions.txt as it is: numbered from 0
    assert (out / "README.txt").read_text().startswith("GANSpaceSynth demo")
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


@pytest.fixture(scope="module")
def tiny_components(tiny_synth):
    from ganspacesynth.ganspace.fit import fit_components

    return fit_components(tiny_synth, "conv0", count=256, n_components=4, pitches=[60])


@pytest.mark.heavy
def test_the_demo_folder_explains_itself(tiny_synth, tiny_components, tmp_path):
    """README.txt says what to open first and names every file the demo wrote (any model: here the tiny one)."""
    from ganspacesynth.interfaces.cli_demo import run_demo

    out = tmp_path / "demo"
    summary = run_demo(tiny_synth, tiny_components, out, seed=0, log=lambda line: None)
    readme = (out / "README.txt").read_text()
    first = re.search(r"^Open first: (\S+)", readme, re.M).group(1)
    assert first == summary["open_first"] == "hallucination.wav" and (out / first).is_file()
    listed = re.findall(r"^  (\S+)", readme, re.M)
    for path in out.rglob("*"):
        name = path.relative_to(out).as_posix()
        if path.is_file():  # each file matches a listed name (<pitch>, <x>, <y> standing for numbers)
            assert any(re.fullmatch(re.sub(r"<\w+>", r"[-0-9.]+", re.escape(item).replace(r"\<", "<")
                                            .replace(r"\>", ">")), name) for item in listed), name
    assert "numbered from 0" in readme and f"pitch {tiny_synth.pitches[0]}" not in readme.split("What each")[0]
    assert json.loads((out / "demo.json").read_text())["readme"] == "README.txt"


def test_grid_png_has_plus_up_and_marks_in_seconds_and_hertz(tiny_synth):
    """Tile (row from the top, column) shows y = values[-1 - row] and x = values[column]; the tiles are marked
    in seconds across and Hz/kHz up, within the note."""
    from ganspacesynth.ganspace.grid import grid_figure

    spectral = tiny_synth.config.spectral
    values = np.linspace(-2.0, 2.0, 3)
    specs = np.arange(9, dtype=np.float32)[:, None, None] * np.ones((1, *spectral.shape), np.float32)
    fig = grid_figure(specs, values, 0, 1, "t", spectral)
    fig.canvas.draw()
    axes = np.array(fig.axes).reshape(3, 3)
    # grid order is row-major from the lowest y: index = iy * steps + ix
    assert axes[0, 0].images[0].get_array().mean() == 2 * 3 + 0  # top left: y = +2, x = -2
    assert axes[2, 2].images[0].get_array().mean() == 0 * 3 + 2  # bottom right: y = -2, x = +2
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["+2", "0", "-2"]
    assert [ax.get_xlabel() for ax in axes[-1]] == ["-2", "0", "+2"]
    assert "+ up" in fig.get_supylabel() and "+ to the right" in fig.get_supxlabel()
    seconds = [t.get_text() for t in axes[-1, 0].get_xticklabels() if t.get_text()]
    hertz = [t.get_text() for t in axes[-1, 0].get_yticklabels() if t.get_text()]
    assert len(seconds) >= 2 and all(re.fullmatch(r"[0-9.]+ s", s) for s in seconds), seconds
    assert max(float(s[:-2]) for s in seconds) <= spectral.audio_length / spectral.sample_rate
    assert len(hertz) >= 3 and all(re.fullmatch(r"[0-9.]+ k?Hz", h) for h in hertz) and "1 kHz" in hertz, hertz
    import matplotlib.pyplot as plt

    plt.close(fig)
    fig = grid_figure(specs, values[::-1], 0, 1, "t", spectral)  # --range 2 -2: still + up and to the right
    axes = np.array(fig.axes).reshape(3, 3)
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["+2", "0", "-2"]
    assert axes[0, 0].images[0].get_array().mean() == 0 * 3 + 2  # y = +2 is values[0] now, x = -2 values[2]
    plt.close(fig)


def test_frequency_marks_are_where_a_tone_is():
    """The Hz of a bin (the marks' positions) is where the representation puts a sine of that frequency."""
    import torch

    from ganspacesynth.audio.spectral import MelIF
    from ganspacesynth.model.config import preset

    spectral = preset("cpu").spectral
    t = np.arange(spectral.audio_length) / spectral.sample_rate
    for hz in (220.0, 1000.0, 4000.0):
        wave = torch.tensor(0.5 * np.sin(2 * np.pi * hz * t), dtype=torch.float32)[None]
        specs = MelIF(spectral).waves_to_specgrams(wave)
        peak = int(specs[0, 0].mean(0).argmax())
        assert abs(spectral.bin_hertz()[peak] - hz) < max(0.03 * hz, 16.0), (hz, spectral.bin_hertz()[peak])


def pd_sliders(path: Path) -> dict[str, int]:
    """{slider label: the coefficient index it writes} for every horizontal slider in a Pd patch's top canvas
    labelled direction_N, following its connections (through [t b f]) to the [pack f INDEX] that names it."""
    records = re.split(r"(?<!\\);\s*\n", path.read_text())
    objects: list[str] = []
    connections: dict[int, list[int]] = {}
    depth = 0
    for record in records:
        record = " ".join(record.split())
        if record.startswith("#N canvas"):
            depth += 1
        elif record.startswith("#X restore"):
            depth -= 1
            if depth == 1:
                objects.append(record)
        elif depth == 1 and re.match(r"#X (obj|msg|text|floatatom|symbolatom|listbox) ", record):
            objects.append(record)
        elif depth == 1 and record.startswith("#X connect "):
            a, _, b, _ = map(int, record.split()[2:6])
            connections.setdefault(a, []).append(b)
    out = {}
    for i, record in enumerate(objects):
        label = re.search(r" hsl .* (direction_\d+) ", record)
        if not label:
            continue
        seen, frontier = set(), [i]
        for _ in range(3):
            frontier = [b for a in frontier for b in connections.get(a, []) if b not in seen]
            seen.update(frontier)
            packs = [int(m.group(1)) for b in frontier if (m := re.search(r" pack f (\d+)$", objects[b]))]
            if packs:
                out[label.group(1)] = packs[0]
                break
    return out


def test_unlabelled_directions_say_what_they_do():
    """A direction without a label: a monotone change under the audibility threshold is named as such; audible
    changes that no descriptor follows steadily (a direction between instruments) give the steadiest of them; a
    direction that changes nothing audibly says so."""
    from types import SimpleNamespace

    from ganspacesynth.interfaces.cli_demo import direction_lines

    stats = [{"centroid_hz": {"rho": -0.9, "effect": -0.6}, "loudness_db": {"rho": 0.3, "effect": 2.0}},
             {"centroid_hz": {"rho": -0.73, "effect": -4.0}, "attack_s": {"rho": 0.79, "effect": 1.8},
              "pitch_midi": {"rho": 0.95, "effect": 3.0}},
             {"centroid_hz": {"rho": 0.5, "effect": 0.4}},
             {"loudness_db": {"rho": 1.0, "effect": 2.4}}]
    descriptions = [{"label": None, "changes": [], "stats": s} for s in stats[:3]]
    descriptions.append({"label": "louder", "changes": [{"descriptor": "loudness_db", **stats[3]["loudness_db"]}],
                         "stats": stats[3]})
    comps = SimpleNamespace(descriptions=descriptions, n_components=4, layer="conv1", var_ratio=[0.4, 0.3, 0.2, 0.1])
    lines = direction_lines(comps)
    assert lines[0].endswith("no clear change (under the audibility threshold: centroid_hz: rho -0.90, effect -0.6)")
    assert lines[1].endswith("several changes at once (none steady; the steadiest attack_s: rho +0.79, effect +1.8)")
    assert lines[2].endswith("no clear change (no descriptor changes monotonically)")
    assert lines[3].endswith("louder (loudness_db: rho +1.00, effect +2.4)")


def test_directions_are_numbered_from_0_everywhere(tiny_components):
    """The CLI's directions.txt (and what demo prints), the web page's slider labels and the Pd patches' all call
    the direction that coefficient index 0 moves `direction 0`, as `--x 0`, `--coeffs` and OSC `/coefficient 0` do."""
    from ganspacesynth.interfaces.cli_demo import direction_lines

    lines = direction_lines(tiny_components)
    assert [line.split(":")[0] for line in lines] == [f"direction {i}" for i in range(len(lines))]
    app = (REPO / "ganspacesynth" / "interfaces" / "web" / "static" / "app.js").read_text()
    label = re.search(r"name\.textContent = `direction \$\{(.*?)\}`", app)
    slider = re.search(r"id: `c\$\{(.*?)\}`", app)  # the slider whose value is coefficient i
    assert label and slider and label.group(1) == slider.group(1) == "i", (label, slider)
    for patch in ("ganspacesynth.pd", "ganspacesynth_noz.pd", "hallu.pd"):
        sliders = pd_sliders(REPO / "pd" / patch)
        assert len(sliders) == 8, (patch, sliders)
        assert all(name == f"direction_{index}" for name, index in sliders.items()), (patch, sliders)
