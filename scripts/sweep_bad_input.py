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

The cases are data in tests/bad_input_cases.py: the table tests/test_bad_input.py runs in-process (every
subcommand) plus EXTRA (cases that need a real process or file system). The OSC and HTTP parts send that module's
hostile messages and requests to servers in this process and count replies, 500s and files read outside the
allowed folders. The counts are recorded in docs/reliability.md.

    python scripts/sweep_bad_input.py                       # all parts, summary on stdout
    python scripts/sweep_bad_input.py --json sweep.json     # plus every case's outcome
    python scripts/sweep_bad_input.py --only cli --match '^info '   # a few CLI cases
    PYTHONPATH=/path/to/older/checkout python scripts/sweep_bad_input.py   # the same sweep on other code
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the cases and the request builders the tests use

import bad_input_cases as cases  # noqa: E402
from helpers import call, osc_message  # noqa: E402


def make_inputs(root: Path) -> dict:
    """A tiny model and the files the cases name beside it (bad_input_cases.make_inputs)."""
    import torch

    from ganspacesynth.model.config import preset
    from ganspacesynth.model.files import save_model
    from ganspacesynth.model.generator import Generator

    torch.manual_seed(0)
    cfg = preset("tiny")
    model = save_model(root / "tiny.safetensors", cfg, Generator(cfg).state_dict())
    return cases.make_inputs(root, model)


def read_only_folder(root: Path) -> Path | None:
    """A read-only tmpfs mount (needs root), else None: those cases are then skipped."""
    ro = root / "ro"
    ro.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], capture_output=True)
    return ro if proc.returncode == 0 else None


def run_cli_case(command: str, args: str, expect: str, files: dict, root: Path, index: int, env: dict,
                 timeout: float) -> dict:
    case = root / f"case{index:03d}"
    work, user = cases.case_folders(case)
    t = case / "t"
    t.mkdir()
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
    intact = cases.untouched(work, user)
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

    from ganspacesynth.interfaces.osc import OSCServer
    from ganspacesynth.interfaces.session import Session
    from ganspacesynth.synth import Synth

    secret = root / "secret.txt"
    secret.write_text("outside the allowed folders")
    hostile = cases.hostile_datagrams(secret, files["model"].parent)
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
    sock.sendto(osc_message("/ping", "id", 99), server.address)
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
    from ganspacesynth.interfaces.session import Session
    from ganspacesynth.interfaces.web.app import WebServer
    from ganspacesynth.synth import Synth

    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    synth = Synth.load(files["model"], device="cpu")
    session = Session(synth, allowed_dirs=[], out_dir=root / "web-out", queue_size=4)
    server = WebServer(session, "127.0.0.1", 0).start()

    state = lambda: json.loads(call(server, "/api/state")[1])  # noqa: E731
    counts = {"requests": 0, "status_500": 0, "state_changed_by_refusal": 0, "refused": 0, "read_outside": 0}
    for path, data in cases.HOSTILE_POSTS:
        before = state()
        status, body = call(server, path, data)
        counts["requests"] += 1
        counts["status_500"] += status >= 500
        if status >= 400:
            counts["refused"] += 1
            counts["state_changed_by_refusal"] += state() != before
    for body in cases.HOSTILE_RAW:
        status, _ = call(server, "/api/z", raw=body)
        counts["requests"] += 1
        counts["status_500"] += status >= 500
        counts["refused"] += status >= 400
    for path in cases.TRAVERSAL_URLS:
        status, body = call(server, path)
        counts["requests"] += 1
        counts["status_500"] += status >= 500
        counts["read_outside"] += status == 200 and (b"root:" in body or b"import" in body)
    counts["next_request_ok"] = call(server, "/api/hallucinate", {"mode": "z", "count": 2})[0] == 200
    server.shutdown()
    session.close()
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=None, help="Also write every case's outcome here.")
    parser.add_argument("--only", choices=["cli", "osc", "http"], default=None)
    parser.add_argument("--timeout", type=float, default=180.0, help="Seconds per CLI case.")
    parser.add_argument("--match", default=None, metavar="REGEX",
                        help="Only the CLI cases whose command line (command and arguments) matches this.")
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
        rows = cases.CASES + cases.generic_cases() + [c for c in cases.EXTRA if ro is not None or "{ro}" not in c[1]]
        rows = [c for c in rows if args.match is None or re.search(args.match, f"{c[0]} {c[1]}")]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
        results = []
        try:
            for i, (command, case_args, expect) in enumerate(rows):
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
