#!/usr/bin/env python3
"""Feed every ganspacesynth subcommand bad input, as a new user would, and count how each run ends.

Each CLI case runs as its own process (`python -m ganspacesynth …`, as a user types it) in a fresh working
folder holding files of the user's (the table's USER_FILES), beside a folder of the user's own files; the
outcome is one of

    clean       non-zero exit, one line on stderr that says what the case expects
    misleading  non-zero exit and one line, but not the expected message (a wrong or unhelpful reason)
    multi-line  non-zero exit, no traceback, but more than one line
    traceback   a Python traceback (or a crash by signal)
    exit-0      exit status 0 although the input is bad
    deleted     a file of the user's was changed or deleted (counted whatever the exit)

The cases are those of tests/test_bad_input.py (every subcommand) plus the ones below. The OSC and HTTP
parts send hostile messages and requests to servers in this process and count replies, 500s and files read
outside the allowed folders. The counts are recorded in docs/reliability.md.

    python scripts/sweep_bad_input.py                       # all parts, summary on stdout
    python scripts/sweep_bad_input.py --json sweep.json     # plus every case's outcome
    PYTHONPATH=/path/to/older/checkout python scripts/sweep_bad_input.py   # the same sweep on other code
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import re
import shlex
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Cases the table test does not run in-process (they need a real process, a signal or a real file system).
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


@functools.lru_cache(maxsize=None)
def table_module():
    """tests/test_bad_input.py: its case table, the user's files every case runs beside, the extra inputs."""
    spec = importlib.util.spec_from_file_location("bad_input_table", REPO / "tests" / "test_bad_input.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_table():
    module = table_module()
    return module.CASES + module.generic_cases()


#: The user's files in every case's working folder (the table's; checked byte for byte after each case).
USER_FILES = table_module().USER_FILES


def make_inputs(root: Path) -> dict:
    """The files the cases name: a tiny model and its components, garbage, a NaN model, a crafted config …"""
    import mido
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from ganspacesynth.ganspace.fit import fit_components
    from ganspacesynth.model.config import preset
    from ganspacesynth.model.files import save_model
    from ganspacesynth.model.generator import Generator
    from ganspacesynth.synth import Synth

    torch.manual_seed(0)
    cfg = preset("tiny")
    model = save_model(root / "tiny.safetensors", cfg, Generator(cfg).state_dict())
    comps = fit_components(Synth.load(model, device="cpu"), "conv0", count=256, n_components=4, pitches=[60])
    comps.save(root / "comps.npz")
    junk = root / "junk.bin"
    junk.write_bytes(b"\x00garbage, not any format\n" * 8)
    (root / "afolder").mkdir()
    (root / "plain.txt").write_text("a plain file\n")
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
    mid = mido.MidiFile()
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track += [mido.Message("note_on", note=60, velocity=100, time=0), mido.Message("note_off", note=60, time=240)]
    mid.save(str(root / "song.mid"))
    (root / "zsteps.json").write_text(json.dumps({"steps": [{"z": [0.0] * 32}, {"z": [1.0] * 32}]}))
    (root / "csteps.json").write_text(json.dumps({"steps": [{"coeffs": [1.0]}, {"coeffs": [0.0]}]}))
    import numpy as np

    np.savez(root / "arrays.npz", a=np.zeros(3))
    os.mkfifo(root / "null")  # stands in for /dev/null: older code replaced the real one when run as root
    return {"devnull": root / "null", "model": model, "comps": root / "comps.npz", "junk": junk, "file": root / "plain.txt",
            "dir": root / "afolder", "nanmodel": root / "nan.safetensors", "hugemodel": root / "huge.safetensors",
            "midi": root / "song.mid", "data": root / "no-dataset", "zsteps": root / "zsteps.json",
            "csteps": root / "csteps.json", "npz": root / "arrays.npz", **table_module().more_inputs(root, comps)}


def read_only_folder(root: Path) -> Path | None:
    """A read-only tmpfs mount (needs root), else None: those cases are then skipped."""
    ro = root / "ro"
    ro.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], capture_output=True)
    return ro if proc.returncode == 0 else None


def run_cli_case(command: str, args: str, expect: str, files: dict, root: Path, index: int, env: dict,
                 timeout: float) -> dict:
    case = root / f"case{index:03d}"
    work, user, t = case / "work", case / "users-folder", case / "t"
    for d in (work, user, t):
        d.mkdir(parents=True)
    for name, content in USER_FILES.items():
        (work / name).write_text(content)
    (user / "notes.txt").write_text("the user's notes\n")
    values = {k: str(v) for k, v in files.items()}
    text = args.format(t=t, user=user, work=work, **values)
    argv = [sys.executable, "-m", "ganspacesynth", *command.split(), *shlex.split(text)]
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=timeout, env=env,
                              stdin=subprocess.DEVNULL)
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc, out, err = None, exc.stdout or "", (exc.stderr or "") if isinstance(exc.stderr, str) else ""
    intact = all((work / name).is_file() and (work / name).read_text() == content
                 for name, content in USER_FILES.items()) and \
        sorted(p.name for p in user.iterdir()) == ["notes.txt"] and \
        (user / "notes.txt").read_text() == "the user's notes\n"
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning:")]
    if not intact:
        outcome = "deleted"
    elif rc is None:
        outcome = "timeout"
    elif "Traceback" in err or rc < 0 or rc > 2 and rc != 130:
        outcome = "traceback"
    elif rc == 0:
        outcome = "exit-0" if not re.search(expect, out + err) else "accepted"
    elif len(lines) != 1:
        outcome = "multi-line"
    elif not re.search(expect, lines[0]):
        outcome = "misleading"
    else:
        outcome = "clean"
    return {"command": f"{command} {args}", "outcome": outcome, "exit": rc, "stderr": err[-600:],
            "seconds": round(time.monotonic() - start, 1)}


def osc_part(files: dict, root: Path) -> dict:
    """Hostile OSC datagrams: every one must get exactly one reply (an /error for the bad ones) and the server
    must still answer afterwards; nothing may be read outside the allowed folders."""
    from pythonosc.osc_message import OscMessage
    from pythonosc.osc_message_builder import OscMessageBuilder

    from ganspacesynth.interfaces.osc import OSCServer
    from ganspacesynth.interfaces.session import Session
    from ganspacesynth.synth import Synth

    def msg(address, *args):
        b = OscMessageBuilder(address)
        for a in args:  # floats beyond float32 go as OSC doubles ('d')
            b.add_arg(a, "d" if isinstance(a, float) and abs(a) > 3e38 and a == a and abs(a) != float("inf") else None)
        return b.build().dgram

    bundle = b"#bundle\x00" + b"\x00" * 7 + b"\x01"
    secret = root / "secret.txt"
    secret.write_text("outside the allowed folders")
    hostile = [b"", b"\x00" * 8, b"garbage", b"/ping\x00", b"/ping\x00\x00\x00,q\x00\x00", b"#bundle",
               bundle[:12], bundle + struct.pack(">i", -4), bundle + struct.pack(">i", 8) + b"garbage!",
               bundle + struct.pack(">i", 100) + b"/x\x00\x00,\x00\x00\x00", bundle + struct.pack(">i", 3) + b"/x\x00",
               bundle + struct.pack(">i", 0), b"#bundle\x00" * 20,
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
                 "..", "/", f"{files['model'].parent}/../secret.txt", "file:///etc/passwd",
                 "%2e%2e/%2e%2e/etc/passwd", "....//....//etc/passwd"]
    hostile += [msg("/load", p) for p in traversal] + [msg("/load_ganspace_components", p) for p in traversal]
    synth = Synth.load(files["model"], device="cpu")
    session = Session(synth, allowed_dirs=[files["model"].parent / "allowed"], out_dir=root / "osc-out", queue_size=4)
    (files["model"].parent / "allowed").mkdir(exist_ok=True)
    server = OSCServer(session, "127.0.0.1", 0).start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(30)
    counts = {"messages": 0, "error_replies": 0, "other_replies": 0, "no_reply": 0, "read_outside": 0,
              "alive_after": False, "malformed_with_id_0": 0, "malformed": 0}
    for data in hostile:
        counts["messages"] += 1
        sock.sendto(data, server.address)
        try:
            reply, _ = sock.recvfrom(65535)
        except socket.timeout:
            counts["no_reply"] += 1
            continue
        m = OscMessage(reply)
        if m.address == "/error":
            counts["error_replies"] += 1
            if "malformed" in str(m.params[0]):
                counts["malformed"] += 1
                counts["malformed_with_id_0"] += m.params[-1] == 0
            if any(word in str(m.params[0]) for word in ("root:", "outside the allowed folders\n")):
                counts["read_outside"] += 1
        else:
            counts["other_replies"] += 1
            counts.setdefault("answered", []).append(f"{data[:24]!r} -> {m.address}")
        if m.address == "/loaded" or m.address == "/components_loaded":
            counts["read_outside"] += 1
        while True:  # drain follow-up replies (/z then /ok, …)
            sock.settimeout(0.3)
            try:
                sock.recvfrom(65535)
            except socket.timeout:
                break
        sock.settimeout(30)
    sock.sendto(msg("/ping", "id", 99), server.address)
    try:
        counts["alive_after"] = OscMessage(sock.recvfrom(65535)[0]).address == "/pong"
    except socket.timeout:
        pass
    sock.close()
    server.shutdown()
    session.close()
    return counts


def http_part(files: dict, root: Path) -> dict:
    """Hostile HTTP requests to the web API: no 500s, refused requests change no state, no file outside."""
    import urllib.error
    import urllib.request

    from ganspacesynth.interfaces.session import Session
    from ganspacesynth.interfaces.web.app import WebServer
    from ganspacesynth.synth import Synth

    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    synth = Synth.load(files["model"], device="cpu")
    session = Session(synth, allowed_dirs=[], out_dir=root / "web-out", queue_size=4)
    server = WebServer(session, "127.0.0.1", 0).start()

    def call(path, body=None, method=None):
        req = urllib.request.Request(server.url.rstrip("/") + path, data=body,
                                     method=method or ("GET" if body is None else "POST"),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as res:
                return res.status, res.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    state = lambda: json.loads(call("/api/state")[1])  # noqa: E731
    posts = [("/api/z", {"seed": -1}), ("/api/z", {"seed": 1.5}), ("/api/z", {"seed": 2**70}),
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
    raw = [b"[" * 100_000 + b"]" * 100_000, b'{"a": ' * 50_000 + b"1" + b"}" * 50_000, b"\xff\xfe", b"NaN",
           b"", b"[]", b"null", b"1e999", b'{"seed": 1e999}']
    traversal = ["/audio/../../etc/passwd", "/audio/..%2f..%2fetc%2fpasswd", "/download/%2e%2e%2fsecret",
                 "/static/../../../etc/passwd", "/static/..%2f..%2f..%2fetc/passwd", "/spectrogram/../x.png",
                 "/audio/note-000001.wav%00.txt", "/static/%2e%2e/%2e%2e/README.md", "/audio/" + "a" * 5000,
                 "/download/note-999999.wav", "/static//etc/passwd", "/static/\\..\\..\\etc\\passwd",
                 "/audio/note-1.wav", "/spectrogram/note-000001.wav.png", "/static/index.html/../../app.py",
                 "/download/../web/app.py", "/static/%252e%252e/app.py"]
    counts = {"requests": 0, "status_500": 0, "state_changed_by_refusal": 0, "refused": 0, "read_outside": 0}
    for path, data in posts:
        before = state()
        status, body = call(path, json.dumps(data).encode())
        counts["requests"] += 1
        counts["status_500"] += status >= 500
        if status >= 400:
            counts["refused"] += 1
            counts["state_changed_by_refusal"] += state() != before
    for body in raw:
        status, _ = call("/api/z", body)
        counts["requests"] += 1
        counts["status_500"] += status >= 500
        counts["refused"] += status >= 400
    for path in traversal:
        status, body = call(path)
        counts["requests"] += 1
        counts["status_500"] += status >= 500
        counts["read_outside"] += status == 200 and (b"root:" in body or b"import" in body)
    counts["next_request_ok"] = call("/api/hallucinate", json.dumps({"mode": "z", "count": 2}).encode())[0] == 200
    server.shutdown()
    session.close()
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=None, help="Also write every case's outcome here.")
    parser.add_argument("--only", choices=["cli", "osc", "http"], default=None)
    parser.add_argument("--timeout", type=float, default=180.0, help="Seconds per CLI case.")
    args = parser.parse_args()
    import ganspacesynth

    print(f"ganspacesynth from {Path(ganspacesynth.__file__).parent}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="gss-sweep-"))
    live_before = set(Path(tempfile.gettempdir()).glob("ganspacesynth-live-*"))
    try:
        return sweep(args, root, live_before, str(Path(ganspacesynth.__file__).parent))
    finally:
        import shutil

        shutil.rmtree(root, ignore_errors=True)


def sweep(args, root: Path, live_before: set, code: str) -> int:
    files = make_inputs(root)
    report: dict = {"code": code}
    if args.only in (None, "cli"):
        ro = read_only_folder(root)
        files_ro = {**files, "ro": ro or root / "no-read-only-mount"}
        cases = load_table() + [c for c in EXTRA if ro is not None or "{ro}" not in c[1]]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
        results = []
        try:
            for i, (command, case_args, expect) in enumerate(cases):
                r = run_cli_case(command, case_args, expect, files_ro, root, i, env, args.timeout)
                results.append(r)
                print(f"{r['outcome']:<11} {r['command']}", flush=True)
        finally:
            if ro is not None:
                subprocess.run(["umount", str(ro)], capture_output=True)
        summary = {}
        for r in results:
            summary[r["outcome"]] = summary.get(r["outcome"], 0) + 1
        report["cli"] = {"cases": len(results), "commands": len({r["command"].split(" --")[0].split(" {")[0]
                                                                 for r in results}),
                         "outcomes": summary, "results": results}
        print(f"\nCLI: {len(results)} cases: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.items())))
    if args.only in (None, "osc"):
        report["osc"] = osc_part(files, root)
        print(f"OSC: {report['osc']}")
    if args.only in (None, "http"):
        report["http"] = http_part(files, root)
        print(f"HTTP: {report['http']}")
    leftovers = set(Path(tempfile.gettempdir()).glob("ganspacesynth-live-*")) - live_before
    report["live_folders_left_in_tmp"] = len(leftovers)  # temporary server folders this sweep left behind
    print(f"server folders left in {tempfile.gettempdir()}: {len(leftovers)}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    bad = report.get("cli", {}).get("outcomes", {})
    failures = sum(bad.get(k, 0) for k in ("traceback", "exit-0", "deleted", "timeout"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
