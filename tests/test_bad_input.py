"""Every subcommand, fed bad values: a non-zero exit, one line on stderr, no traceback, and no file of the user's
touched (issue #17's table-driven check; scripts/sweep_bad_input.py runs a larger set as subprocesses)."""

from __future__ import annotations

import errno
import os
import re
import tempfile

import pytest
from click.testing import CliRunner

from ganspacesynth.interfaces.cli import main

CUDA = False
try:
    import torch

    CUDA = torch.cuda.is_available()
except ImportError:  # pragma: no cover
    pass

M = "--model {model}"
#: The files of the user's in every case's working folder (checked byte for byte after each case): outputs the
#: cases name by these relative paths must be refused, never written over.
USER_FILES = {"mine.txt": "the user's file\n", "take.wav": "the user's recording\n",
              "piece.score.json": '{"the user\'s": "score"}\n', "pad.sfz": "// the user's own SFZ\n",
              "mine.sf2": "the user's SoundFont\n"}
# (command, arguments, what the one-line error must say). {model} a tiny model, {comps} its components,
# {junk} a garbage file, {file} an existing plain file, {dir} an existing folder, {user} a folder of the user's
# own files, {nanmodel} a model holding a NaN weight, {hugemodel} a crafted config (fmap_base=1e9), {midi} a
# MIDI file, {data} a missing dataset folder, {devnull} a named pipe standing in for /dev/null (a special file:
# the real /dev/null is never used, so code that replaced it would break only the test's copy), {asset} the
# installed package's bundled components (never written: its bytes are checked), {zerocomps} a components file
# holding 0 components, {bigz} latents of 1e30; the USER_FILES by name (relative to the working folder).
EXISTS = r"already exists; add --overwrite to replace it"
CASES = [
    ("init", "--seed -1 --out {t}/m.safetensors", r"--seed.*not in the range"),
    ("init", "--out {dir}", r"is a folder"),
    ("init", "--out {devnull}", r"not a regular file"),
    ("init", "--preset huge --out {t}/m.safetensors", r"--preset"),
    ("info", "--model {junk}", r"not a readable model file"),
    ("info", "--model {nanmodel}", r"holds NaN or infinite values"),
    ("info", "--model {hugemodel}", r"fmap_base must be a whole number"),
    ("generate", M + " --pitch 60 --seed -1 --out {t}/o", r"--seed.*not in the range"),
    ("generate", M + " --pitch 60 --device tpu --out {t}/o", r"unknown device 'tpu'"),
    ("generate", M + " --pitch 60 --device cuda:x --out {t}/o", r"unknown device"),
    ("generate", M + " --pitch 60 --batch-size 0 --out {t}/o", r"--batch-size.*not in the range"),
    ("generate", M + " --pitch 60 --batch-size -1 --out {t}/o", r"--batch-size.*not in the range"),
    ("generate", M + " --pitch 60 --count 0 --out {t}/o", r"--count.*not in the range"),
    ("generate", M + " --pitch 60 --out {file}", r"exists and is not a folder"),
    ("generate", M + " --pitch 60 --out {devnull}", r"exists and is not a folder"),
    ("generate", M + " --pitch 60 --out .", r"is the current folder"),
    ("generate", M + " --pitch 60 --out {user}", r"holds files no GANSpaceSynth command wrote there"),
    ("generate", M + " --pitch 60 --z {junk} --out {t}/o", r"is not a \.npy array file"),
    ("generate", M + " --pitch 200 --out {t}/o", r"pitch 200 is outside"),
    ("generate", M + " --pitch 60 --precision fp8 --out {t}/o", r"--precision"),
    ("generate", M + " --pitch 60 --gain 1e9 --out {t}/o", r"--gain.*not in the range"),
    ("generate", M + " --pitch 60 --gain nan --out {t}/o", r"--gain"),
    ("generate", M + " --pitch 60 --gain 3 --normalize --out {t}/o", r"either --gain or --normalize"),
    ("calibrate", "{junk} --data {data}", r"not a readable model file"),
    ("calibrate", "{t}/nope.safetensors --data {data}", r"model file not found"),
    ("calibrate", "{model} --data {data} --out {t}/m.safetensors", r"not a dataset|not found"),
    ("calibrate", "{model} --data {data} --count 0", r"--count.*not in the range"),
    ("calibrate", "{model} --data {data} --out {dir}", r"is a folder"),
    ("calibrate", "{model} --data {data} --seed -1", r"--seed.*not in the range"),
    ("interpolate", M + " --pitch 60 --seed-a -1 --out {t}/o", r"--seed-a.*not in the range"),
    ("interpolate", M + " --pitch 60 --steps 1 --out {t}/o", r"--steps"),
    ("interpolate", M + " --pitch 60 --out {file}", r"exists and is not a folder"),
    ("import-magenta", "{t}/nope --out {t}/m.safetensors", r"not found|no such|does not exist"),
    ("import-magenta", "{dir} --out {t}/m.safetensors", r"experiment\.json|checkpoint|stage"),
    ("import-pca", "{junk} --out {t}/c.npz", r"--trust-pickle"),
    ("import-pca", "{junk} --trust-pickle --out {t}/c.npz", r"was refused|pickle"),
    ("export-pca", "{junk} --out {t}/p.pickle", r"not a readable components file"),
    ("export-pca", "{t}/nope.npz --out {t}/p.pickle", r"not found"),
    ("dataset chop", "{t}/nope {t}/clips", r"input folder not found"),
    ("dataset chop", "{dir} {t}/clips --length 0", r"--length.*not in the range"),
    ("dataset chop", "{dir} {t}/clips --sample-rate 0", r"--sample-rate.*not in the range"),
    ("dataset chop", "{dir} {user}", r"holds files no GANSpaceSynth command wrote there|no audio files"),
    ("dataset pad", "{dir} {t}/p --pitch 200", r"MIDI note|pitch"),
    ("dataset pad", "{dir} {file}", r"exists and is not a folder|no audio files"),
    ("dataset make", "{t}/nope {t}/ds", r"not found|does not exist"),
    ("dataset make", "{dir} {t}/ds --valid-fraction 2", r"--valid-fraction"),
    ("dataset make", "{dir} {t}/ds --seed -1", r"--seed.*not in the range"),
    ("dataset make", "{dir} {user}", r"holds files no GANSpaceSynth command wrote there"),
    ("dataset soundfont", "{t}/gm --programs 200", r"program"),
    ("dataset soundfont", "{t}/gm --soundfont {t}/nope.sf2", r"SoundFont not found"),
    ("dataset soundfont", "{user}", r"holds files no GANSpaceSynth command wrote there"),
    ("dataset info", "{t}/nope", r"not found|no manifest|not a dataset"),
    ("dataset info", "{dir}", r"manifest"),
    ("hallucinate", M + " --seed -1 --out {t}/p.wav", r"--seed.*not in the range"),
    ("hallucinate", M + " --attack -1 --out {t}/p.wav", r"--attack"),
    ("hallucinate", M + " --notes 0 --out {t}/p.wav", r"--notes"),
    ("hallucinate", M + " --attack 5 --out {t}/p.wav", r"longer than this model's notes"),
    ("hallucinate", M + " --out {dir}", r"is a folder"),
    ("hallucinate", M + " --out {devnull}", r"not a regular file"),
    ("hallucinate", M + " --batch-size 0 --out {t}/p.wav", r"--batch-size"),
    ("hallucinate", M + " --from {t}/nope.json --out {t}/p.wav", r"score file not found"),
    ("hallucinate", M + " --score {junk} --out {t}/p.wav", r"not valid JSON"),
    ("hallucinate", M + " --max-seconds 0 --out {t}/p.wav", r"--max-seconds"),
    ("hallucinate", M + " --notes 1000 --steps 1000 --out {t}/p.wav", r"notes requested; the limit"),
    ("midi", M + " {t}/nope.mid {t}/s.wav", r"MIDI file not found"),
    ("midi", M + " {junk} {t}/s.wav", r"cannot read MIDI file"),
    ("midi", M + " --components {comps} --coeffs 1e30 {midi} {t}/s.wav", r"within ±1000"),
    ("midi", M + " --components {comps} --coeffs nan {midi} {t}/s.wav", r"finite"),
    ("midi", M + " --seed -1 {midi} {t}/s.wav", r"--seed.*not in the range"),
    ("midi", M + " --secs-per-instrument 0 {midi} {t}/s.wav", r"--secs-per-instrument"),
    ("midi", M + " {midi} {dir}", r"is a folder"),
    ("midi", M + " --gain -1e9 {midi} {t}/s.wav", r"--gain"),
    ("hallucinate", M + " --gain 5 --normalize --out {t}/p.wav", r"either --gain or --normalize"),
    ("serve-osc", M + " --seed -1", r"--seed.*not in the range"),
    ("serve-osc", M + " --device tpu", r"unknown device"),
    ("serve-osc", M + " --port 70000", r"--port"),
    ("serve-osc", M + " --components {junk}", r"not a readable components file"),
    ("serve-osc", M + " --out-dir {file}", r"not a folder"),
    ("serve-osc", M + " --max-seconds 0", r"--max-seconds"),
    ("serve-web", M + " --seed -1", r"--seed.*not in the range"),
    ("serve-web", M + " --device tpu", r"unknown device"),
    ("serve-web", M + " --port -1", r"--port"),
    ("serve-web", M + " --components {junk}", r"not a readable components file"),
    ("serve-web", M + " --max-notes 0", r"--max-notes"),
    ("ganspace", M + " --seed -1 --out {t}/c.npz", r"--seed.*not in the range"),
    ("ganspace", M + " --batch-size 0 --out {t}/c.npz", r"--batch-size"),
    ("ganspace", M + " --random-z-count 0 --out {t}/c.npz", r"--random-z-count"),
    ("ganspace", M + " --components 0 --out {t}/c.npz", r"--components"),
    ("ganspace", M + " --layer bogus --random-z-count 64 --out {t}/c.npz", r"bogus"),
    ("ganspace", M + " --out {dir}", r"is a folder"),
    ("edit", M + " --components {comps} --coeffs 1e30 --out {t}/x.wav", r"within ±1000"),
    ("edit", M + " --components {comps} --coeffs nan --out {t}/x.wav", r"finite"),
    ("edit", M + " --components {comps} --coeffs , --out {t}/x.wav", r"at least one number"),
    ("edit", M + " --components {comps} --coeffs 1 --out {dir}", r"is a folder"),
    ("edit", M + " --components {comps} --coeffs 1 --out {devnull}", r"not a regular file"),
    ("edit", M + " --components {comps} --coeffs 1 --seed -1 --out {t}/x.wav", r"--seed.*not in the range"),
    ("edit", M + " --components {comps} --coeffs 1 --z-index -1 --out {t}/x.wav", r"--z-index"),
    ("edit", M + " --components {junk} --coeffs 1 --out {t}/x.wav", r"not a readable components file"),
    ("grid", M + " --components {comps} --steps 0 --out {t}/g", r"--steps"),
    ("grid", M + " --components {comps} --range 1e30 1 --out {t}/g", r"--range"),
    ("grid", M + " --components {comps} --x -1 --out {t}/g", r"--x"),
    ("grid", M + " --components {comps} --x 99 --out {t}/g", r"component|range"),
    ("grid", M + " --components {comps} --out {file}", r"exists and is not a folder"),
    ("grid", M + " --components {comps} --out {user}", r"holds files no GANSpaceSynth command wrote there"),
    ("grid", M + " --components {comps} --seed -1 --out {t}/g", r"--seed.*not in the range"),
    ("train", "--data {data} --out {t}/run --preset tiny", r"not found|no manifest|not a dataset|does not exist"),
    ("train", "--preset bogus --out {t}/run", r"--preset"),
    ("train", "--set nonsense --dry-run", r"key=value"),
    ("train", "--device tpu --dry-run", r"unknown device 'tpu'"),
    ("train-classifier", "--data {data} --out {t}/c.safetensors", r"not found|no manifest|not a dataset"),
    ("train-classifier", "--data {data} --steps 0 --out {t}/c.safetensors", r"--steps"),
    ("train-classifier", "--data {data} --seed -1 --out {t}/c.safetensors", r"--seed.*not in the range"),
    ("train-classifier", "--data {data} --device tpu --out {t}/c.safetensors", r"unknown device"),
    ("evaluate", M + " --data {data} --classifier {junk} --count 1 --out {t}/r", r"--count"),
    ("evaluate", M + " --data {data} --classifier {junk} --seed -1 --out {t}/r", r"--seed.*not in the range"),
    ("evaluate", M + " --data {data} --classifier {junk} --out {user}", r"holds files no GANSpaceSynth command"),
    ("evaluate", M + " --data {data} --classifier {junk} --out {t}/r", r"cannot read classifier"),
    ("describe", M + " --components {comps} --values 1,2", r"at least 3 different"),
    ("describe", M + " --components {comps} --values 1e30,0,1", r"within ±1000"),
    ("describe", M + " --components {comps} --seed -1", r"--seed.*not in the range"),
    ("describe", M + " --components {comps} --top 0", r"--top"),
    ("describe", M + " --components {comps} --report {user}", r"holds files no GANSpaceSynth command wrote there"),
    ("describe", M + " --components {comps} --device tpu", r"unknown device"),
    ("demo", "--seed -1", r"--seed.*not in the range"),
    ("demo", "--out {user}", r"holds files no GANSpaceSynth command wrote there"),
    ("demo", "--out .", r"is the current folder"),
    ("demo", "--out {file}", r"exists and is not a folder"),
    ("demo", "--model {model}", r"also give --components"),
    ("demo", "--device tpu", r"unknown device"),
    # a single-file output never replaces a user's file, the command's own input or the package's files
    ("midi", M + " --seed 1 {midi} {midi}", r"song\.mid is also this command's input"),
    ("midi", M + " --seed 1 --overwrite {midi} {midi}", r"song\.mid is also this command's input"),
    ("midi", M + " --seed 1 {midi} take.wav", r"take\.wav " + EXISTS),
    ("hallucinate", M + " --seed 1 --out mine.txt", r"mine\.txt " + EXISTS),
    ("hallucinate", M + " --seed 1 --out piece.wav", r"piece\.score\.json " + EXISTS),
    ("hallucinate", M + " --from piece.score.json --out piece.wav", r"piece\.score\.json is also this"),
    ("edit", M + " --components {comps} --coeffs 1 --out take.wav", r"take\.wav " + EXISTS),
    ("edit", M + " --components {comps} --coeffs 1 --overwrite --out {comps}", r"comps\.npz is also this command"),
    ("edit", M + " --components {comps} --coeffs 1 --overwrite --out {asset}", r"inside the installed ganspacesynth"),
    ("export-pca", "{comps} --out mine.txt", r"mine\.txt " + EXISTS),
    ("export-pca", "{comps} --overwrite --out {comps}", r"is also this command's input"),
    ("describe", "--components {asset} --top 10000 --report {t}/r", r"inside the installed ganspacesynth package"),
    ("describe", "--components {asset} --overwrite --report {t}/r", r"inside the installed ganspacesynth package"),
    ("describe", M + " --components {comps} --top 10000 --out {t}/c.npz", r"--top 10000: .* holds 4 components"),
    ("describe", M + " --components {comps}", r"comps\.npz already exists; without --out, describe writes"),
    ("describe", M + " --components {comps} --out mine.txt", r"mine\.txt " + EXISTS),
    ("ganspace", M + " --random-z-count 64 --out mine.txt", r"mine\.txt " + EXISTS),
    ("ganspace", M + " --random-z-count 64 --checkpoint mine.txt --out {t}/c.npz", r"mine\.txt already exists"),
    ("init", "--out mine.txt", r"mine\.txt " + EXISTS),
    ("calibrate", "{model} --data {data}", r"already exists; without --out, calibrate rewrites it in place"),
    ("calibrate", "{model} --data {data} --out mine.txt", r"mine\.txt " + EXISTS),
    ("import-pca", "{junk} --trust-pickle --out mine.txt", r"mine\.txt " + EXISTS),
    ("import-magenta", "{dir} --out mine.txt", r"mine\.txt " + EXISTS),
    ("train-classifier", "--data {data} --out mine.txt", r"mine\.txt " + EXISTS),
    # misleading messages, each said as it is
    ("edit", M + " --components {zerocomps} --coeffs 1 --out {t}/x.wav", r"holds no components"),
    ("describe", M + " --components {zerocomps} --out {t}/c.npz", r"holds no components"),
    ("info", "--model {devnull}", r"null is a device, pipe or socket, not a model file"),
    ("generate", "--model {devnull} --pitch 60 --out {t}/o", r"is a device, pipe or socket, not a model file"),
    ("generate", M + " --pitch 60 --z {devnull} --out {t}/o", r"null is a device, pipe or socket, not a file"),
    ("dataset chop", "{file} {t}/clips", r"plain\.txt is a file, not a folder"),
    ("generate", M + " --pitch 60 --out {file}/notes", r"plain\.txt is a file, not a folder"),
    ("hallucinate", M + " --out {file}/p.wav", r"plain\.txt is a file, not a folder"),
    ("train", "--data {data} --out {user} --preset tiny", r"holds other files \(notes\.txt\), not a training run"),
    ("train", "--out {user} --resume", r"not a training run: it has no config\.json \(it holds notes\.txt\)"),
    ("train", "--data {data} --out {file} --preset tiny", r"plain\.txt is a file, not a folder"),
    ("edit", M + " --components {comps} --coeffs 1,,2 --out {t}/x.wav", r"--coeffs has an empty entry \(number 2"),
    ("midi", M + " --components {comps} --coeffs 1,2, {midi} {t}/s.wav", r"--coeffs has an empty entry"),
    ("generate", M + " --pitch 60 --z {bigz} --out {t}/o", r"latents must lie within ±1000"),
    ("edit", M + " --components {comps} --coeffs 1 --mode offset --z {bigz} --out {t}/x.wav", r"within ±1000"),
]
if not CUDA:
    CASES += [(cmd, M + " --pitch 60 --device cuda --out {t}/o", r"CUDA is not available") for cmd in ("generate",)]
    CASES += [("serve-osc", M + " --device cuda", r"CUDA is not available"),
              ("demo", "--device cuda", r"CUDA is not available"),
              ("edit", M + " --components {comps} --coeffs 1 --device cuda --out {t}/x.wav", r"CUDA is not available"),
              ("hallucinate", M + " --device cuda:0 --out {t}/p.wav", r"CUDA is not available"),
              ("train-classifier", "--data {data} --device cuda --out {t}/c.safetensors", r"CUDA is not available")]

#: Rows for commands other modules add (used while they are registered).
OPTIONAL = [
    ("instrument", M + " --out {dir}", r"."),
    ("instrument", M + " --out {devnull}", r"."),
    ("instrument", M + " --seed -1 --out {t}/i.sf2", r"--seed"),
    ("instrument", M + " --components {comps} --coefficients 1e30 --out {t}/i.sf2", r"."),
    ("instrument", M + " --every 0 --out {t}/i.sf2", r"."),
    ("instrument", M + " --device tpu --out {t}/i.sf2", r"unknown device"),
    ("instrument", M + " --out mine.sf2", r"mine\.sf2 " + EXISTS),
    ("instrument", M + " --sfz --out pad.sf2", r"pad\.sfz " + EXISTS),
    ("instrument", M + " --sfz --overwrite --out {t}/i.sf2 --z {bigz}", r"within ±1000"),
    ("instrument", M + " --overwrite --out {asset}.sf2", r"inside the installed ganspacesynth package"),
]

#: Options any command may have, with a value that must be refused (for commands without a row above,
#: such as ones added later).
GENERIC = [("--seed", "-1"), ("--device", "tpu"), ("--model", "{junk}"), ("--batch-size", "0")]


def leaf_commands(group=main, prefix=""):
    out = {}
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            out.update(leaf_commands(cmd, f"{prefix}{name} "))
        else:
            out[f"{prefix}{name}"] = cmd
    return out


def generic_cases():
    leaves = leaf_commands()
    cases = [case for case in OPTIONAL if case[0] in leaves]
    covered = {c for c, _, _ in CASES} | {c for c, _, _ in cases}
    for name, cmd in sorted(leaf_commands().items()):
        if name in covered:
            continue
        options = {opt for p in cmd.params for opt in getattr(p, "opts", [])}
        cases += [(name, f"{opt} {value}", r".") for opt, value in GENERIC if opt in options]
    return cases


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_model_path):
    """The inputs the cases refer to, made once."""
    import mido
    import numpy as np
    import torch
    from safetensors.torch import load_file, save_file

    from ganspacesynth.ganspace.fit import fit_components
    from ganspacesynth.synth import Synth

    root = tmp_path_factory.mktemp("bad-input")
    junk = root / "junk.bin"
    junk.write_bytes(b"\x00garbage, not any format\n" * 8)
    (root / "afolder").mkdir()
    plain = root / "plain.txt"
    plain.write_text("a plain file\n")
    state = load_file(str(tiny_model_path))
    from safetensors import safe_open

    with safe_open(str(tiny_model_path), framework="pt") as f:
        meta = f.metadata()
    name = sorted(state)[0]
    state[name] = state[name].clone()
    state[name].view(-1)[0] = float("nan")
    save_file(state, str(root / "nan.safetensors"), metadata=meta)
    import json

    config = json.loads(meta["config"])
    config.update(fmap_base=10**9, fmap_max=10**6)
    save_file({"generator.x": torch.zeros(1)}, str(root / "huge.safetensors"), metadata={**meta, "config": json.dumps(config)})
    comps = fit_components(Synth.load(tiny_model_path, device="cpu"), "conv0", count=256, n_components=4, pitches=[60])
    comps.save(root / "comps.npz")
    mid = mido.MidiFile()
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track += [mido.Message("note_on", note=60, velocity=100, time=0), mido.Message("note_off", note=60, time=240)]
    mid.save(str(root / "song.mid"))
    os.mkfifo(root / "null")
    return {"devnull": root / "null", "model": tiny_model_path, "comps": root / "comps.npz", "junk": junk, "file": plain,
            "dir": root / "afolder", "nanmodel": root / "nan.safetensors", "hugemodel": root / "huge.safetensors",
            "midi": root / "song.mid", "data": root / "no-dataset", "_np": np, **more_inputs(root, comps)}


def more_inputs(root, comps) -> dict:
    """{asset}, {zerocomps} and {bigz} (scripts/sweep_bad_input.py makes its inputs with this too)."""
    import json

    import numpy as np

    from ganspacesynth.assets import DEFAULT_COMPONENTS

    zero = {"comp": np.zeros((0, comps.dim), np.float32), "stdev": np.zeros(0, np.float32),
            "var_ratio": np.zeros(0, np.float32), "mean": comps.mean}
    meta = {"format": "ganspacesynth-components", "format_version": 1, "layer": comps.layer,
            "layer_shape": list(comps.layer_shape), "n_components": 0, "descriptions": None}
    np.savez(root / "zero.npz", **zero, meta=np.array(json.dumps(meta)))
    latent = comps.meta.get("latent_size") or 32
    np.save(root / "big-z.npy", np.full((1, latent), 1e30, np.float32))
    return {"asset": DEFAULT_COMPONENTS, "zerocomps": root / "zero.npz", "bigz": root / "big-z.npy"}


def user_files_intact(work) -> bool:
    """Every file of USER_FILES still in `work`, byte for byte."""
    return all((work / name).is_file() and (work / name).read_text() == text for name, text in USER_FILES.items())


def run_case(files, tmp_path, monkeypatch, command, args):
    """Run one case in a working folder with a file of the user's and a folder of the user's own files."""
    work = tmp_path / "work"
    work.mkdir()
    for name, text in USER_FILES.items():
        (work / name).write_text(text)
    user = tmp_path / "users-folder"
    user.mkdir()
    (user / "notes.txt").write_text("the user's notes\n")
    values = {k: str(v) for k, v in files.items() if not k.startswith("_")}
    text = args.format(t=tmp_path, user=user, **values)
    monkeypatch.chdir(work)
    result = CliRunner().invoke(main, command.split() + text.split(), prog_name="ganspacesynth")
    intact = user_files_intact(work) and \
        (user / "notes.txt").read_text() == "the user's notes\n" and sorted(p.name for p in user.iterdir()) == ["notes.txt"]
    return result, intact


@pytest.mark.timeout(120)
@pytest.mark.parametrize("command, args, message", CASES + generic_cases(),
                         ids=[f"{c} {a}" for c, a, _ in CASES + generic_cases()])
def test_bad_values_give_one_line_and_touch_nothing(files, tmp_path, monkeypatch, command, args, message):
    result, intact = run_case(files, tmp_path, monkeypatch, command, args)
    assert result.exit_code != 0, f"exit 0 for {command} {args}: {result.output}"
    assert isinstance(result.exception, SystemExit), f"uncaught {result.exception!r}"  # a traceback for a user
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("warning:")]
    assert len(lines) == 1, result.stderr
    assert re.search(message, lines[0]), lines[0]
    assert intact, "a file of the user's was changed or deleted"


def test_every_subcommand_is_covered():
    covered = {c for c, _, _ in CASES} | {c for c, _, _ in generic_cases()}
    missing = sorted(set(leaf_commands()) - covered)
    assert not missing, f"no bad-input cases for {missing}"


def test_read_only_file_system_is_one_line(files, tmp_path, monkeypatch):
    """EROFS (or any OS error) while writing: one line naming the file, not a traceback."""
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    for command, args in [("init", "--out {t}/m.safetensors"),
                          ("generate", M + " --pitch 60 --out {t}/notes"),
                          ("hallucinate", M + " --seed 1 --out {t}/p.wav")]:
        case_dir = tmp_path / command
        case_dir.mkdir()
        result, intact = run_case(files, case_dir, monkeypatch, command, args)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert result.stderr.count("\n") == 1 and "Read-only file system" in result.stderr, result.stderr
        assert intact


def test_a_read_only_file_system_is_said_before_any_work(files, tmp_path, monkeypatch):
    """A read-only mount is named as such (not "permission denied", which os.access also answers there), before
    any work, for file and folder outputs alike."""
    class ReadOnly:
        f_flag = os.ST_RDONLY

    monkeypatch.setattr(os, "statvfs", lambda path: ReadOnly())
    monkeypatch.setattr(os, "access", lambda path, mode, **kwargs: not mode & os.W_OK)  # as root on such a mount
    for command, args in [("instrument", M + " --out {t}/i.sf2"),
                          ("edit", M + " --components {comps} --coeffs 1 --out {t}/x.wav"),
                          ("generate", M + " --pitch 60 --out {t}/notes"),
                          ("train", "--data {data} --out {t}/run --preset tiny")]:
        case_dir = tmp_path / command
        case_dir.mkdir()
        result, intact = run_case(files, case_dir, monkeypatch, command, args)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert result.stderr.count("\n") == 1 and "Read-only file system" in result.stderr, result.stderr
        assert "permission denied" not in result.stderr and intact
