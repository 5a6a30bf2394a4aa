"""Every subcommand, fed bad values: a non-zero exit, one line on stderr, no traceback, and no file of the user's
touched. The cases are data in bad_input_cases.py (a new command gets rows there); scripts/sweep_bad_input.py runs
the same rows, and more, each as its own process."""

from __future__ import annotations

import errno
import os
import re
import tempfile

import pytest
from click.testing import CliRunner

from bad_input_cases import CASES, M, case_folders, generic_cases, leaf_commands, make_inputs, untouched
from ganspacesynth.interfaces.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_model_path):
    """The inputs the cases refer to, made once."""
    return make_inputs(tmp_path_factory.mktemp("bad-input"), tiny_model_path)


def run_case(files, tmp_path, monkeypatch, command, args):
    """Run one case in a working folder with files of the user's, beside a folder of the user's own files."""
    work, user = case_folders(tmp_path)
    values = {k: str(v) for k, v in files.items()}
    text = args.format(t=tmp_path, user=user, **values)
    monkeypatch.chdir(work)
    result = CliRunner().invoke(main, command.split() + text.split(), prog_name="ganspacesynth")
    return result, untouched(work, user)


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


@pytest.mark.timeout(120)
def test_a_busy_port_is_one_line_before_anything_loads(files, tmp_path, monkeypatch):
    """serve-web, serve-osc, serve-web's --osc-port and `demo --serve` on a port another program holds: one `error:`
    line naming the address and the option to change, exit 1, and the model never loaded (the servers open their
    sockets first, through one function: serving.open_socket)."""
    import socket

    from ganspacesynth.interfaces import options

    loaded = []
    monkeypatch.setattr(options, "load_synth", lambda *args, **kwargs: loaded.append(args))
    with socket.create_server(("127.0.0.1", 0)) as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        port = tcp.getsockname()[1]
        udp.bind(("127.0.0.1", port))  # the same number, taken for UDP too
        for command, args, protocol, option in [
                ("serve-web", f"{M} --port {port}", "TCP", "--port"),
                ("serve-osc", f"{M} --port {port}", "UDP", "--port"),
                ("serve-web", f"{M} --port 0 --osc-port {port}", "UDP", "--osc-port"),
                ("demo", f"--serve --port {port} --out {{t}}/demo", "TCP", "--port")]:
            case_dir = tmp_path / f"{command}-{option}"
            case_dir.mkdir()
            result, intact = run_case(files, case_dir, monkeypatch, command, args)
            assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
            assert result.stderr == (f"error: cannot listen on 127.0.0.1:{port}: {protocol} port {port} is in use (by "
                                     f"another program, or a server still running): choose another with {option}\n")
            assert not loaded and intact and not (case_dir / "demo").exists()
