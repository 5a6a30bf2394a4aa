"""The user guide, the composing guide and the training guide, run top to bottom as written, section by section,
so they cannot drift from the code.

Every `bash` block's commands run in one working folder per guide, in order, as a reader would type them, on small
made-up input (recordings and one-shots of pitched tones whose pitches span 48-77, a short MIDI file).
`ganspacesynth` commands run in-process; the few other programs the guides use (PROGRAMS) run as themselves.

Only sizes change, through the substitutions in SIZES (fewer samples, steps, notes and SoundFont programs; training
stops after 2 steps, and its resumption after 2 more, instead of running for hours), so the user guide takes about
3.5 minutes of CPU time (210 s measured) and the others one or less. Each substitution is listed with its reason,
`test_every_substitution_is_used` fails when one no longer matches, and a command no substitution matches runs
exactly as printed.

After each section the files it says it writes (PRODUCES) must exist, and at the end they must still hold what that
section wrote: no later section writes over an earlier one's output. The Python blocks run too; `json` blocks are
the files the text tells the reader to save (steps.json).
"""

from __future__ import annotations

import hashlib
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from ganspacesynth.interfaces.cli import main
from helpers import tone

REPO = Path(__file__).resolve().parents[1]

#: What every training command gets: a fixed thread count, no TensorBoard or progress bar, and the image-count
#: schedule (the presets' timed one would spend minutes even on 2 steps).
QUICK_TRAINING = "--threads 1 --no-tensorboard --no-progress --set train_time_limit=none"
#: (pattern, replacement, why): the only changes made to the documented commands.
SIZES = [
    (r"--random-z-count 65536", "--random-z-count 1024", "65,536 samples: minutes on a CPU"),
    (r"^(describe .*)$", r"\1 --top 2 --latents 1", "describing 16 directions: minutes on a CPU"),
    (r"^(train (?!.*--resume).*)$", r"\1 --max-steps 2 " + QUICK_TRAINING, "training takes hours: 2 steps"),
    (r"^(train .*--resume.*)$", r"\1 --max-steps 4 " + QUICK_TRAINING, "a second sitting: 2 more steps"),
    (r"--programs 0-111", "--programs 0,8,16,24,32,40 --pitches 48-60", "6,832 notes to render: minutes"),
    (r"^(train-classifier .*)$", r"\1 --steps 20 --batch-size 8", "2000 steps"),
    (r"--count 1000", "--count 8 --reference-count 8 --no-f0 --timbre-count 4 --timbre-latents 2",
     "1,000 notes, and 60 + 96 more for timbre: minutes on a CPU"),
]
#: Commands that are not run here, and where they are tested instead.
ELSEWHERE = {
    "python3 -m venv": "a new virtual environment (the test runs inside one)",
    ". .venv/bin/activate": "see above",
    "bash scripts/install.sh": "tests/test_reliability.py::test_install_never_pulls_the_cuda_build",
    "ganspacesynth demo": "tests/test_demo.py",
    "ganspacesynth serve-osc": "a server runs until stopped: tests/test_osc.py, tests/test_reliability.py",
    "ganspacesynth serve-web": "a server runs until stopped: tests/test_web.py",
    "tensorboard ": "TensorBoard's own viewer (the event files a run writes: tests/test_train_cli.py)",
    "torchrun ": "several processes: tests/test_train_ddp.py",
    "ganspacesynth train --nproc ": "several processes: tests/test_train_ddp.py",
}
#: Programs other than ganspacesynth that the guides run, and where a reader gets them.
PROGRAMS = {"fluidsynth": "apt install fluidsynth"}

#: What each section says its commands write (guide -> heading -> paths in the working folder, `/` at the end for a
#: folder). Every section that runs a command has an entry; each path must exist after its section, and a file
#: must still hold the same bytes at the end of the guide.
PRODUCES = {
    "user-guide.md": {
        "1. Turn recordings into 4 s clips": ["clips/chop.json", "clips/pad.json"],
        "2. Build a training set": ["data/mine/manifest.json", "data/gm/manifest.json", "clips-cpu/chop.json",
                                    "data/cpu/manifest.json"],
        "3. Train": ["runs/mine/model.safetensors", "runs/mine/config.json", "runs/gm/model.safetensors"],
        "Training on a CPU": ["runs/cpu/model.safetensors", "runs/cpu/stats.jsonl"],
        "4. Generate notes": ["notes/latents.npy", "notes/p48_000.wav", "notes/p60_003.wav", "interp/latents.npy"],
        "5. Find the directions (GANSpace)": ["mine_pca.npz", "describe/describe.md"],
        "6. Edit with coefficients": ["x.wav", "grid/grid.png", "grid/grid.json"],
        "7. Hallucinate": ["piece.wav", "piece.score.json", "piece-again.wav", "piece-again.score.json", "hallu.wav",
                           "hallu.score.json", "song.wav"],
        "9. Measure": ["classifier.safetensors", "report/report.md"],
        "10. Take the instrument with you (SoundFont and SFZ)": ["seed3.sf2", "note2.sf2", "pad.sf2", "pad.sfz",
                                                                  "pad-samples/", "pad-song.wav"],
        "11. Start from your own sound": ["mine/latents.npy", "mine/conditions.json", "mine/coefficients.npy",
                                          "mine/report.json", "mine/reconstruction-000.wav", "darker.wav"],
    },
    "composing.md": {
        "Composing: hallucinations, the Hallu step sequencer and MIDI": ["tiny.safetensors", "tiny_pca.npz"],
        "Hallucinate": ["piece.wav", "piece.score.json", "again.wav", "short.wav"],
        "Score format (also the Hallu / OSC / Pd message)": ["steps.json", "hallu.wav"],
        "From Python": ["piece-python.wav"],
    },
    "training.md": {
        "Training": ["data/gm/manifest.json", "runs/gm/config.json", "runs/gm/stats.jsonl",
                     "runs/gm/model.safetensors", "notes/p60_003.wav"],
        "Training on a CPU (the `cpu` preset)": ["data/gm-cpu/manifest.json", "runs/cpu/config.json",
                                                 "runs/cpu/model.safetensors"],
    },
}
#: Outputs of another program (PROGRAMS), checked where it is installed.
NEEDS = {"pad-song.wav": "fluidsynth"}


def sections(path: Path) -> list[tuple[str, list[tuple[str, str]]]]:
    """The document's sections in order: (heading without its `#`s, its fenced blocks as (language, text)). A fence
    indented in a list item counts; a `#` line inside a block is no heading."""
    out: list[tuple[str, list[tuple[str, str]]]] = [("", [])]
    fence: tuple[str, list[str]] | None = None
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if fence is not None:
            if line.strip() == "```":
                out[-1][1].append((fence[0], "".join(fence[1])))
                fence = None
            else:
                fence[1].append(line)
        elif opening := re.match(r"\s*```(\w*)\s*$", line):
            fence = (opening.group(1), [])
        elif heading := re.match(r"#{1,6} (.*)", line):
            out.append((heading.group(1).strip(), []))
    return out


def blocks(path: Path) -> list[tuple[str, str]]:
    return [block for _, section in sections(path) for block in section]


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


#: The made-up recordings (helpers.tone): three harmonics at 0.3, 0.15, 0.1 under a slow tremolo, no decay.
STEADY = dict(sr=16000, amp=0.3, decay=0.0, attack=0.0, tremolo=0.4, normalize=False, noise=0.0)


def make_inputs(work: Path) -> None:
    import mido

    (work / "recordings").mkdir()
    (work / "one-shots").mkdir()
    for i, midi in enumerate((48, 55, 60, 67, 77)):  # recordings of a reader's range: the model's is 48..77
        sf.write(work / "recordings" / f"take{i}.wav", tone(midi, seconds=6.0, **STEADY), 16000)
    for midi in (60, 64):
        hit = tone(midi, seconds=1.0, **STEADY) * np.linspace(1, 0, 16000)
        sf.write(work / "one-shots" / f"hit{midi}.wav", hit, 16000)
    mid = mido.MidiFile()
    track = mido.MidiTrack()
    mid.tracks.append(track)
    for note in (48, 60, 64, 60):
        track += [mido.Message("note_on", note=note, velocity=90, time=0),
                  mido.Message("note_off", note=note, velocity=0, time=240)]
    mid.save(str(work / "song.mid"))


def run_command(command: str, path: Path, work: Path) -> bool:
    """Run one documented command in `work` (False: another program that is not installed here)."""
    import torch

    program = command.split()[0]
    if program in PROGRAMS:
        if shutil.which(program) is None:
            return False
        proc = subprocess.run(shlex.split(command), cwd=work, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{path.name}: `{command}` failed:\n{proc.stdout}{proc.stderr}"
        return True
    assert program == "ganspacesynth", f"{path.name}: unexpected command {command!r} (add it to PROGRAMS or ELSEWHERE)"
    threads = torch.get_num_threads()
    result = CliRunner().invoke(main, shlex.split(sized(command))[1:], prog_name="ganspacesynth")
    torch.set_num_threads(threads)
    assert result.exit_code == 0 and result.exception is None, f"{path.name}: `{command}` failed:\n{result.output}"
    return True


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_guide(path: Path, work: Path) -> list[str]:
    """Run the guide's sections in order in `work` (the current folder); after each, check what it says it writes
    (PRODUCES), and at the end that no later section wrote over it. Returns the commands run."""
    ran: list[str] = []
    produces = PRODUCES[path.name]
    headings = [heading for heading, _ in sections(path)]
    assert not set(produces) - set(headings), f"{path.name}: PRODUCES names sections it lacks"
    written: dict[str, tuple[str, str]] = {}  # file -> (section, its bytes' digest after that section)
    for heading, section in sections(path):
        before = len(ran)
        for lang, block in section:
            if lang == "json" and '"steps"' in block:
                (work / "steps.json").write_text(block, encoding="utf-8")
            elif lang == "python":
                exec(compile(block, str(path), "exec"), {})
                ran.append("python block")
            elif lang == "bash":
                for command in commands(block):
                    if not any(command.startswith(prefix) for prefix in ELSEWHERE) and run_command(command, path, work):
                        ran.append(command)
        if len(ran) == before and heading not in produces:
            continue
        assert heading in produces, f"{path.name}: section {heading!r} runs commands: say what it writes in PRODUCES"
        for name in produces[heading]:
            if name in NEEDS and shutil.which(NEEDS[name]) is None:
                continue
            target = work / name
            assert target.is_dir() if name.endswith("/") else target.is_file(), \
                f"{path.name}, section {heading!r}: {name} is missing after it ran"
            if target.is_file():
                written[name] = (heading, digest(target))
    for name, (heading, sha) in written.items():
        assert digest(work / name) == sha, f"{path.name}: {name}, written in section {heading!r}, was replaced later"
    return ran


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.integration
def test_user_guide_runs_as_written(tmp_path, monkeypatch):
    from ganspacesynth.compose.instrument import read_metadata
    from ganspacesynth.synth import Synth

    make_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    # the guide's §7 uses the Hallu steps file of the composing guide
    steps = next(b for lang, b in blocks(REPO / "docs" / "composing.md") if lang == "json" and '"steps"' in b)
    (tmp_path / "steps.json").write_text(steps, encoding="utf-8")
    ran = run_guide(REPO / "docs" / "user-guide.md", tmp_path)
    assert len(ran) >= 20
    assert list((tmp_path / "clips").glob("hit60_*.wav"))  # the one-shots padded beside the chopped clips
    # the model of the reader's recordings has their range (not GANSynth's 24-84), and §10's instrument all of it
    assert Synth.load(tmp_path / "runs" / "mine").pitches == list(range(48, 78))
    assert read_metadata(tmp_path / "pad.sf2")["keyboard"]["pitches"] == "48-77"


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.integration
def test_composing_guide_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ran = run_guide(REPO / "docs" / "composing.md", tmp_path)
    assert "python block" in ran and len(ran) >= 6
    assert sf.read(tmp_path / "again.wav")[0].shape == (round((12 * 0.25 + 0.75) * 16000),)  # the score's length


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.integration
def test_training_guide_runs_as_written(tmp_path, monkeypatch):
    """Its sections in order: the 4 s set and run, then the CPU preset's own 1 s set and run, each resumed."""
    import json

    monkeypatch.chdir(tmp_path)
    ran = run_guide(REPO / "docs" / "training.md", tmp_path)
    assert sum(c.startswith("ganspacesynth train ") for c in ran) == 4
    for run, preset in (("gm", "fast"), ("cpu", "cpu")):
        config = json.loads((tmp_path / "runs" / run / "config.json").read_text())
        stats = (tmp_path / "runs" / run / "stats.jsonl").read_text().splitlines()
        steps = [json.loads(line)["step"] for line in stats]
        assert config["preset"] == preset and steps[-1] == 4, (run, steps)  # 2 steps, then 2 more after --resume


def documented_commands(doc: str) -> list[str]:
    return [c for lang, b in blocks(REPO / "docs" / doc) if lang == "bash" for c in commands(b)]


def test_every_substitution_is_used():
    """A substitution that no longer matches means the docs changed: review SIZES."""
    documented = [c for doc in PRODUCES for c in documented_commands(doc)]
    for pattern, replacement, why in SIZES:
        assert any(sized(c) != c and re.search(pattern, c.removeprefix("ganspacesynth ")) for c in documented), \
            (pattern, why)
    assert "--max-steps 2" in sized("ganspacesynth train --data d --out r")
    assert "--max-steps 4" in sized("ganspacesynth train --out r --resume") and \
        "--max-steps 2" not in sized("ganspacesynth train --out r --resume")


def test_every_section_that_runs_says_what_it_writes():
    """Without running anything: each guide's sections with commands have a PRODUCES entry, every command is
    ganspacesynth, another program the test runs (PROGRAMS) or tested elsewhere (ELSEWHERE), and no two
    sections claim one file."""
    for doc, produces in PRODUCES.items():
        claimed: dict[str, str] = {}
        for heading, section in sections(REPO / "docs" / doc):
            runs = [c for lang, b in section if lang == "bash" for c in commands(b)
                    if not any(c.startswith(prefix) for prefix in ELSEWHERE)]
            for command in runs:
                assert command.split()[0] in {"ganspacesynth", *PROGRAMS}, (doc, command)
            if runs or any(lang == "python" for lang, _ in section):
                assert heading in produces, (doc, heading)
            for name in produces.get(heading, []):
                assert name not in claimed, f"{doc}: {name} is written in {claimed[name]!r} and {heading!r}"
                claimed[name] = heading


def test_the_guides_range_is_what_info_prints(tmp_path):
    """The user guide quotes `info`'s pitch line for a model of its recordings (48-77): the same words."""
    import torch

    from ganspacesynth.model.config import pitch_condition, preset
    from ganspacesynth.model.files import save_model
    from ganspacesynth.model.generator import Generator

    torch.manual_seed(0)
    cfg = preset("tiny").replace(conditions=(pitch_condition(range(48, 78)),))
    save_model(tmp_path / "mine.safetensors", cfg, Generator(cfg).state_dict())
    result = CliRunner().invoke(main, ["info", "--model", str(tmp_path / "mine.safetensors")])
    assert result.exit_code == 0, result.output
    quoted = re.search(r"\(`(condition pitch [^`]*)`\)", (REPO / "docs" / "user-guide.md").read_text()).group(1)
    assert quoted in result.output.splitlines(), result.output
