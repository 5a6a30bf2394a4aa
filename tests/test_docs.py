"""The user guide and the composing guide, run top to bottom as written, so they cannot drift from the code.

Every `bash` block's `ganspacesynth` commands run in one working folder, in order, on small made-up input
(recordings and one-shots of pitched tones, a short MIDI file). Only sizes change, through the substitutions in
SIZES (fewer samples, steps, notes and SoundFont programs, so the whole guide runs in a minute or two on a CPU);
each is listed with its reason, and a command no substitution matches runs exactly as printed. The Python blocks
run too; `json` blocks are the files the text tells the reader to save (steps.json).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from ganspacesynth.interfaces.cli import main

REPO = Path(__file__).resolve().parents[1]

#: (pattern, replacement, why): the only changes made to the documented commands.
SIZES = [
    (r"--random-z-count 65536", "--random-z-count 1024", "65,536 samples: minutes on a CPU"),
    (r"^(describe .*)$", r"\1 --top 2 --latents 1", "describing 16 directions: minutes on a CPU"),
    (r"^(train .*)$", r"\1 --max-steps 2 --threads 1 --no-tensorboard --no-progress --set train_time_limit=none",
     "training takes hours (and the presets' time-based schedule spends minutes even on 2 steps)"),
    (r"--programs 0-111", "--programs 0,8,16,24,32,40 --pitches 48-60", "6,832 notes to render: minutes"),
    (r"^(train-classifier .*)$", r"\1 --steps 20 --batch-size 8", "2000 steps"),
    (r"--count 1000", "--count 8 --reference-count 8 --no-f0", "1,000 notes: minutes on a CPU"),
]
#: Commands that are not run here, and where they are tested instead.
ELSEWHERE = {
    "python3 -m venv": "a new virtual environment (the test runs inside one)",
    ". .venv/bin/activate": "see above",
    "bash scripts/install.sh": "tests/test_reliability.py::test_install_never_pulls_the_cuda_build",
    "ganspacesynth demo": "tests/test_demo.py",
    "ganspacesynth serve-osc": "a server runs until stopped: tests/test_osc.py, tests/test_reliability.py",
    "ganspacesynth serve-web": "a server runs until stopped: tests/test_web.py",
}


def blocks(path: Path) -> list[tuple[str, str]]:
    return re.findall(r"```(\w*)\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def commands(block: str) -> list[str]:
    """The shell commands of a bash block: continuation lines joined, comments dropped, `&&` split."""
    text = block.replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        out += [part.strip() for part in shlex.join(words).split(" && ") if part.strip()]
    return out


def sized(command: str) -> str:
    """The command with SIZES applied (patterns see it without the leading `ganspacesynth `)."""
    rest = command.removeprefix("ganspacesynth ")
    for pattern, replacement, _ in SIZES:
        rest = re.sub(pattern, replacement, rest)
    return "ganspacesynth " + rest


def tone(midi: int, seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    f = 440.0 * 2 ** ((midi - 69) / 12)
    wave = sum(0.3 / k * np.sin(2 * np.pi * k * f * t) for k in (1, 2, 3))
    return (wave * (0.6 + 0.4 * np.cos(2 * np.pi * 0.5 * t))).astype(np.float32)


def make_inputs(work: Path) -> None:
    import mido

    (work / "recordings").mkdir()
    (work / "one-shots").mkdir()
    for i, midi in enumerate((36, 48, 60, 64, 84)):  # recordings across the keyboard: the model's range 36..84
        sf.write(work / "recordings" / f"take{i}.wav", tone(midi, 6.0), 16000)
    for midi in (60, 64):
        sf.write(work / "one-shots" / f"hit{midi}.wav", tone(midi, 1.0) * np.linspace(1, 0, 16000), 16000)
    mid = mido.MidiFile()
    track = mido.MidiTrack()
    mid.tracks.append(track)
    for note in (48, 60, 64, 60):
        track += [mido.Message("note_on", note=note, velocity=90, time=0),
                  mido.Message("note_off", note=note, velocity=0, time=240)]
    mid.save(str(work / "song.mid"))


def run_guide(path: Path, work: Path) -> list[str]:
    import torch

    ran = []
    threads = torch.get_num_threads()
    for lang, block in blocks(path):
        if lang == "json" and '"steps"' in block:
            (work / "steps.json").write_text(block, encoding="utf-8")
        elif lang == "python":
            exec(compile(block, str(path), "exec"), {})
            ran.append("python block")
        elif lang == "bash":
            for command in commands(block):
                if any(command.startswith(prefix) for prefix in ELSEWHERE):
                    continue
                assert command.startswith("ganspacesynth "), f"{path.name}: unexpected command {command!r}"
                args = shlex.split(sized(command))[1:]
                result = CliRunner().invoke(main, args, prog_name="ganspacesynth")
                torch.set_num_threads(threads)
                assert result.exit_code == 0 and result.exception is None, \
                    f"{path.name}: `{command}` failed:\n{result.output}"
                ran.append(command)
    return ran


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.integration
def test_user_guide_runs_as_written(tmp_path, monkeypatch):
    make_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    # the guide's §7 uses the Hallu steps file of the composing guide
    steps = next(b for lang, b in blocks(REPO / "docs" / "composing.md") if lang == "json" and '"steps"' in b)
    (tmp_path / "steps.json").write_text(steps, encoding="utf-8")
    ran = run_guide(REPO / "docs" / "user-guide.md", tmp_path)
    assert len(ran) >= 20
    assert (tmp_path / "clips" / "hit60_60.wav").is_file() or list((tmp_path / "clips").glob("hit60_*.wav"))
    for produced in ("runs/mine/model.safetensors", "notes/latents.npy", "mine_pca.npz", "grid/grid.png",
                     "piece-again.wav", "hallu.wav", "song.wav", "report/report.md", "describe/describe.md"):
        assert (tmp_path / produced).exists(), produced


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.integration
def test_composing_guide_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ran = run_guide(REPO / "docs" / "composing.md", tmp_path)
    assert "python block" in ran and len(ran) >= 6
    for produced in ("piece.wav", "again.wav", "short.wav", "hallu.wav"):
        assert (tmp_path / produced).is_file(), produced
    assert sf.read(tmp_path / "again.wav")[0].shape == (round((12 * 0.25 + 0.75) * 16000),)  # the score's length


def test_every_substitution_is_used():
    """A substitution that no longer matches means the docs changed: review SIZES."""
    documented = [c for doc in ("user-guide.md", "composing.md") for lang, b in blocks(REPO / "docs" / doc)
                  if lang == "bash" for c in commands(b)]
    for pattern, replacement, why in SIZES:
        assert any(sized(c) != c and re.search(pattern, c.removeprefix("ganspacesynth ")) for c in documented), \
            (pattern, why)
    assert "--max-steps 2" in sized("ganspacesynth train --data d --out r")
