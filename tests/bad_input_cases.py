"""The bad-input cases, as data: what tests/test_bad_input.py and tests/test_reliability.py run in-process and
scripts/sweep_bad_input.py runs as a user would (each CLI case its own process; hostile OSC datagrams and HTTP
requests against servers), so the tests and the sweep cannot drift apart.

- CLI: `CASES` (command, arguments, what the one-line error must say) for every subcommand, `OPTIONAL` rows for
  commands other modules add, `generic_cases()` for commands without rows, `EXTRA` (the sweep's cases that need a
  real process, a signal or a real file system); `make_inputs` writes the files the cases name, `case_folders`
  the user's files every case runs beside, and `untouched` checks them afterwards.
- OSC: `MALFORMED_BUNDLES`, `hostile_datagrams()`.
- HTTP: `BAD_SEEDS`, `HOSTILE_BODIES`, `HOSTILE_POSTS`, `TRAVERSAL_URLS`.

The requests themselves are built by `helpers.osc_message` and `helpers.call`.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from ganspacesynth.interfaces.cli import main
from helpers import osc_message

CUDA = False
try:
    import torch

    CUDA = torch.cuda.is_available()
except ImportError:  # pragma: no cover
    pass

# -- CLI -------------------------------------------------------------------------------------------------------------
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
    ("train", "--data {data} --out {t}/run --preset tiny --nproc 0", r"--nproc.*not in the range"),
    ("train", "--data {data} --out {t}/run --preset tiny --nproc 2", r"not found|no manifest|not a dataset"),
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
    ("invert", M + " take.wav --out {t}/o", r"cannot read audio file take\.wav"),
    ("invert", M + " {dir} --out {t}/o", r"is a folder, not a sound file"),
    ("invert", M + " {t}/nope.wav --out {t}/o", r"sound file not found"),
    ("invert", M + " --out {t}/o", r"Missing argument 'SOUND\.\.\.'"),
    ("invert", M + " take.wav --out {user}", r"holds files no GANSpaceSynth command wrote there"),
    ("invert", M + " take.wav --out {file}", r"exists and is not a folder"),
    ("invert", M + " take.wav --out .", r"is the current folder"),
    ("invert", M + " take.wav --restarts 0 --out {t}/o", r"--restarts.*not in the range"),
    ("invert", M + " take.wav --seed -1 --out {t}/o", r"--seed.*not in the range"),
    ("invert", M + " take.wav --device tpu --out {t}/o", r"unknown device"),
]

#: Options any command may have, with a value that must be refused (for commands without a row above,
#: such as ones added later).
GENERIC = [("--seed", "-1"), ("--device", "tpu"), ("--model", "{junk}"), ("--batch-size", "0")]


#: The sweep's cases that the table test does not run in-process (they need a real process, a signal or a real
#: file system); {ro} is a read-only tmpfs mount (the sweep skips those cases where it cannot mount one), {work} the
#: working folder, {npz} a .npz archive, {zsteps}/{csteps} latent and coefficient steps files.
EXTRA = [
    ("generate", "--model {model} --pitch 60 --count 3 --out {user}/..", r"current folder|not empty"),
    ("generate", "--model {model} --pitch 60 --out {work}", r"current folder"),
    ("hallucinate", "--model {model} --out {ro}/p.wav", r"Read-only file system"),
    ("generate", "--model {model} --pitch 60 --out {ro}/notes", r"Read-only file system"),
    ("init", "--out {ro}/m.safetensors", r"Read-only file system"),
    ("instrument", "--model {model} --out {ro}/i.sf2", r"Read-only file system"),
    ("train", "--data {t}/nope --out {ro}/run --preset tiny", r"Read-only file system"),
    ("edit", "--model {model} --components {comps} --coeffs 1 --out {user}", r"is a folder"),
    ("generate", "--model {model} --pitch 60 --precision bfloat16 --out {t}/bf", r"bfloat16|wrote"),
    ("hallucinate", "--model {model} --components {comps} --score {zsteps} --out {t}/z.wav", r"components"),
    ("hallucinate", "--model {model} --score {csteps} --out {t}/c.wav", r"coefficient steps.*--components"),
    ("import-pca", "{model} --trust-pickle --out {t}/c.npz", r"refused|pickle"),
    ("generate", "--model {model} --pitch 60 --z {npz} --out {t}/o", r"not a \.npy array file"),
    ("edit", "--model {model} --components {model} --coeffs 1 --out {t}/x.wav", r"not a readable components file"),
    ("dataset make", "{t} {t}/ds2 --preset bogus", r"--preset"),
    ("describe", "--model {model} --components {comps} --out {devnull}", r"not a regular file"),
    ("grid", "--model {model} --components {comps} --out {devnull}", r"not a folder"),
    ("ganspace", "--model {model} --out {devnull} --random-z-count 64", r"not a regular file"),
    ("train", "--data {t}/nope --out {t}/run --preset tiny --device tpu", r"device|not found"),
]


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


def make_inputs(root: Path, model: Path) -> dict:
    """The files the cases name, written into `root` for `model` (a tiny one): its components, garbage, a NaN model,
    a crafted config, a MIDI file, a named pipe for {devnull}, … (the names of the table's comment and EXTRA's)."""
    import mido
    import numpy as np
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from ganspacesynth.assets import DEFAULT_COMPONENTS
    from ganspacesynth.ganspace.fit import fit_components
    from ganspacesynth.synth import Synth

    junk = root / "junk.bin"
    junk.write_bytes(b"\x00garbage, not any format\n" * 8)
    (root / "afolder").mkdir()
    plain = root / "plain.txt"
    plain.write_text("a plain file\n")
    state = load_file(str(model))
    with safe_open(str(model), framework="pt") as f:
        meta = f.metadata()
    name = sorted(state)[0]
    state[name] = state[name].clone()
    state[name].view(-1)[0] = float("nan")
    save_file(state, str(root / "nan.safetensors"), metadata=meta)
    config = json.loads(meta["config"])
    config.update(fmap_base=10**9, fmap_max=10**6)
    save_file({"generator.x": torch.zeros(1)}, str(root / "huge.safetensors"),
              metadata={**meta, "config": json.dumps(config)})
    comps = fit_components(Synth.load(model, device="cpu"), "conv0", count=256, n_components=4, pitches=[60])
    comps.save(root / "comps.npz")
    mid = mido.MidiFile()
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track += [mido.Message("note_on", note=60, velocity=100, time=0), mido.Message("note_off", note=60, time=240)]
    mid.save(str(root / "song.mid"))
    os.mkfifo(root / "null")  # stands in for /dev/null: older code replaced the real one when run as root
    zero = {"comp": np.zeros((0, comps.dim), np.float32), "stdev": np.zeros(0, np.float32),
            "var_ratio": np.zeros(0, np.float32), "mean": comps.mean}
    zero_meta = {"format": "ganspacesynth-components", "format_version": 1, "layer": comps.layer,
                 "layer_shape": list(comps.layer_shape), "n_components": 0, "descriptions": None}
    np.savez(root / "zero.npz", **zero, meta=np.array(json.dumps(zero_meta)))
    latent = comps.meta.get("latent_size") or 32
    np.save(root / "big-z.npy", np.full((1, latent), 1e30, np.float32))
    (root / "zsteps.json").write_text(json.dumps({"steps": [{"z": [0.0] * 32}, {"z": [1.0] * 32}]}))
    (root / "csteps.json").write_text(json.dumps({"steps": [{"coeffs": [1.0]}, {"coeffs": [0.0]}]}))
    np.savez(root / "arrays.npz", a=np.zeros(3))
    return {"devnull": root / "null", "model": model, "comps": root / "comps.npz", "junk": junk, "file": plain,
            "dir": root / "afolder", "nanmodel": root / "nan.safetensors", "hugemodel": root / "huge.safetensors",
            "midi": root / "song.mid", "data": root / "no-dataset", "asset": DEFAULT_COMPONENTS,
            "zerocomps": root / "zero.npz", "bigz": root / "big-z.npy", "zsteps": root / "zsteps.json",
            "csteps": root / "csteps.json", "npz": root / "arrays.npz"}


USER_NOTES = "the user's notes\n"


def case_folders(root: Path) -> tuple[Path, Path]:
    """A case's working folder `root/work` holding USER_FILES, and beside it `root/users-folder`, a folder of the
    user's own files (notes.txt) that {user} names."""
    work, user = root / "work", root / "users-folder"
    work.mkdir(parents=True)
    user.mkdir()
    for name, text in USER_FILES.items():
        (work / name).write_text(text)
    (user / "notes.txt").write_text(USER_NOTES)
    return work, user


def untouched(work: Path, user: Path) -> bool:
    """Every file of USER_FILES still in `work`, byte for byte, and the user's folder holding its notes alone."""
    return all((work / name).is_file() and (work / name).read_text() == text for name, text in USER_FILES.items()) \
        and sorted(p.name for p in user.iterdir()) == ["notes.txt"] and (user / "notes.txt").read_text() == USER_NOTES


# -- OSC -------------------------------------------------------------------------------------------------------------
BUNDLE = b"#bundle\x00" + b"\x00" * 7 + b"\x01"  # a bundle's header: "#bundle", time tag 1 (immediately)
#: (what is wrong, datagram): each gets `/error` naming it malformed, with id 0, and the server goes on.
MALFORMED_BUNDLES = [
    ("negative element size", BUNDLE + struct.pack(">i", -4)),  # python-osc loops forever on it
    ("an element that is no message", BUNDLE + struct.pack(">i", 8) + b"garbage!"),  # python-osc drops it silently
    ("element size beyond the datagram", BUNDLE + struct.pack(">i", 100) + b"/x\x00\x00,\x00\x00\x00"),
    ("element size not a multiple of 4", BUNDLE + struct.pack(">i", 3) + b"/x\x00"),
    ("time tag cut off", BUNDLE[:12]),
    ("trailing bytes", BUNDLE + struct.pack(">i", 12) + b"/ping\x00\x00\x00,\x00\x00\x00" + b"\x00\x00"),
]


def hostile_datagrams(secret: Path, model_dir: Path) -> list[bytes]:
    """The sweep's OSC datagrams: malformed packets and bundles, wrong types, NaN and huge values, and names for
    `/load` and `/load_ganspace_components` outside the allowed folders (`secret`, a file there, among them)."""
    bundles = dict(MALFORMED_BUNDLES)
    msg = osc_message
    root = secret.parent
    hostile = [b"", b"\x00" * 8, b"garbage", b"/ping\x00", b"/ping\x00\x00\x00,q\x00\x00", b"#bundle",
               bundles["time tag cut off"], bundles["negative element size"], bundles["an element that is no message"],
               bundles["element size beyond the datagram"], bundles["element size not a multiple of 4"],
               BUNDLE + struct.pack(">i", 0), b"#bundle\x00" * 20,
               msg("/nope"), msg("/pitch"), msg("/pitch", "x"), msg("/pitch", float("nan")), msg("/pitch", 1e30),
               msg("/pitch", -1), msg("/pitch", 60.5), msg("/pitch", 1, 2), msg("/randomize_z", -1),
               msg("/randomize_z", 1.5), msg("/randomize_z", 1e300), msg("/set_z", 1.0), msg("/set_z", *[1e30] * 32),
               msg("/set_z", *[float("inf")] * 32), msg("/slerp_z", 0.5, -1, 2), msg("/slerp_z", "a", 1, 2),
               msg("/slerp_z", 1e9, 1, 2), msg("/coefficients", 1.0), msg("/coefficient", 0, 1.0),
               msg("/synthesize", 500.0), msg("/synthesize", 60.0, 1.0, 2.0), msg("/synthesize_z", 60.0, 1.0),
               msg("/synthesize_noz", 60.0), msg("/synthesize_latent"), msg("/hallucinate", 1.0),
               msg("/hallucinate", 10000.0), msg("/hallucinate", 4.0, -1.0), msg("/hallucinate", 4.0, 1.0, 500.0),
               msg("/hallucinate_noz"), msg("/hallucinate_offset", "x"), msg("/step", 5.0), msg("/step", -1.0),
               msg("/add_step", 1.0), msg("/interp_steps", 1e9), msg("/interp_steps", 2.5),
               msg("/sample_spacing", -1.0), msg("/sample_spacing", 61.0), msg("/attack", float("nan")),
               msg("/release", "x"), msg("/save"), msg("/save", ""), msg("/save", "../x"), msg("/save", "a/b"),
               msg("/save", ".hidden"), msg("/save", "a\tb"), msg("/save", "x" * 300), msg("/save", "é" * 200),
               msg("/save", "ok", "nope"), msg("/load"), msg("/load", 1.0), msg("/load_ganspace_components", 1.0),
               msg("/ping", "id"), msg("/ping", "id", 1, 2), msg("/info", 1.0), msg("/get_step", 1.0),
               msg("/sustain", 1e300), msg("/start_trim", -0.0001)]
    traversal = ["/etc/passwd", "../../../../etc/passwd", str(secret), f"{root}/../{root.name}/secret.txt",
                 "~/.bashrc", "/proc/self/environ", "\x00", "a" * 5000, "/dev/zero", "/dev/null", ".",
                 "..", "/", f"{model_dir}/../secret.txt", "file:///etc/passwd",
                 "%2e%2e/%2e%2e/etc/passwd", "....//....//etc/passwd"]
    return hostile + [msg("/load", p) for p in traversal] + [msg("/load_ganspace_components", p) for p in traversal]


# -- HTTP ------------------------------------------------------------------------------------------------------------
#: (what, JSON body) for `/api/z`: seeds out of range, refused with 400 and the state unchanged.
BAD_SEEDS = [("seed -1", {"seed": -1}), ("seed 1.5", {"seed": 1.5}), ("seed 2**70", {"seed": 2**70})]
#: (what, body) POSTed to `/api/z` as they are: refused with 400, never a 500.
HOSTILE_BODIES = [("100000 nested lists", b"[" * 100_000 + b"]" * 100_000),
                  ("50000 nested objects", b'{"a": ' * 50_000 + b"1" + b"}" * 50_000), ("bad UTF-8", b"\xff\xfe"),
                  ("NaN", b"NaN")]
#: The sweep's requests with bad values (path, JSON body) to a session without components, and the bodies it posts
#: as they are.
HOSTILE_POSTS = [("/api/z", seed) for _, seed in BAD_SEEDS] + [
    ("/api/z", {"seed": "x"}), ("/api/z", {"t": "x"}), ("/api/z", {"t": 0.5, "a": -1}),
    ("/api/z", {"t": 1e30, "a": 1, "b": 2}), ("/api/synthesize", {"pitch": 72, "mode": "bogus"}),
    ("/api/synthesize", {"pitch": 500}), ("/api/synthesize", {"pitch": 72, "coefficients": "lots"}),
    ("/api/synthesize", {"pitch": 72, "coefficients": [1.0] * 3}), ("/api/synthesize", {"mode": None}),
    ("/api/hallucinate", {"mode": "z", "pitch": 72, "count": 10**9}),
    ("/api/hallucinate", {"mode": "z", "pitch": 72, "count": 3, "seed": -1}),
    ("/api/hallucinate", {"mode": "z", "pitch": 72, "settings": {"sample_spacing": 60, "interp_steps": 64}}),
    ("/api/hallucinate", {"mode": "noz", "pitch": 72, "steps": "x"}),
    ("/api/hallucinate", {"mode": "z", "settings": {"bogus": 1}}),
    ("/api/hallucinate", {"mode": "z", "settings": []})]
HOSTILE_RAW = [body for _, body in HOSTILE_BODIES] + [b"", b"[]", b"null", b"1e999", b'{"seed": 1e999}']
#: URLs that try to read outside the served folders: 404, never a file's content.
TRAVERSAL_URLS = ["/audio/../../etc/passwd", "/audio/..%2f..%2fetc%2fpasswd", "/download/%2e%2e%2fsecret",
                  "/static/../../../etc/passwd", "/static/..%2f..%2f..%2fetc/passwd", "/spectrogram/../x.png",
                  "/audio/note-000001.wav%00.txt", "/static/%2e%2e/%2e%2e/README.md", "/audio/" + "a" * 5000,
                  "/download/note-999999.wav", "/static//etc/passwd", "/static/\\..\\..\\etc\\passwd",
                  "/audio/note-1.wav", "/spectrogram/note-000001.wav.png", "/static/index.html/../../app.py",
                  "/download/../web/app.py", "/static/%252e%252e/app.py"]
