"""The CLI's core commands, run as a user would (subprocess for exit codes and stderr)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from ganspacesynth.fileio import OUTPUT_MARKER
from ganspacesynth.interfaces.cli import main


def run_cli(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "ganspacesynth", *map(str, args)], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


def test_every_command_has_help_with_example():
    runner = CliRunner()
    top = runner.invoke(main, ["--help"])
    assert top.exit_code == 0
    for name, cmd in main.commands.items():
        res = runner.invoke(main, [name, "--help"])
        assert res.exit_code == 0, name
        text = res.output
        if hasattr(cmd, "commands"):  # a group: check its subcommands
            for sub in cmd.commands:
                sub_help = runner.invoke(main, [name, sub, "--help"]).output
                assert "ganspacesynth" in sub_help and "xample" in sub_help, f"{name} {sub}"
        else:
            assert "xample" in text and "ganspacesynth" in text, name


@pytest.mark.integration
def test_init_generate_is_deterministic(tmp_path):
    model = tmp_path / "m.safetensors"
    run_cli("init", "--preset", "tiny", "--seed", "3", "--out", model)
    for out in ("a", "b"):
        run_cli("generate", "--model", model, "--pitch", 60, "--pitch", 64, "--count", 2, "--seed", 7,
                "--out", tmp_path / out)
    names = sorted(p.name for p in (tmp_path / "a").iterdir() if p.name != OUTPUT_MARKER)
    assert names == ["latents.npy", "p60_000.wav", "p60_001.wav", "p64_000.wav", "p64_001.wav"]
    for name in names[1:]:
        a, sr = sf.read(tmp_path / "a" / name)
        b, _ = sf.read(tmp_path / "b" / name)
        assert sr == 16000 and a.shape == (16384,)
        np.testing.assert_array_equal(a, b)
        assert np.abs(a).max() > 0.01
    # Another seed differs; the saved latents reproduce the notes.
    run_cli("generate", "--model", model, "--pitch", 60, "--count", 2, "--seed", 8, "--out", tmp_path / "c")
    assert not np.array_equal(sf.read(tmp_path / "a" / "p60_000.wav")[0], sf.read(tmp_path / "c" / "p60_000.wav")[0])
    run_cli("generate", "--model", model, "--pitch", 60, "--z", tmp_path / "a" / "latents.npy", "--out", tmp_path / "d")
    np.testing.assert_array_equal(sf.read(tmp_path / "a" / "p60_001.wav")[0], sf.read(tmp_path / "d" / "p60_001.wav")[0])


@pytest.mark.integration
def test_interpolate_endpoints_match_seeds(tmp_path, tiny_model_path):
    run_cli("interpolate", "--model", tiny_model_path, "--pitch", 48, "--seed-a", 1, "--seed-b", 2, "--steps", 4,
            "--out", tmp_path / "i")
    z = np.load(tmp_path / "i" / "latents.npy")
    assert z.shape == (4, 32)
    rng_a = np.random.default_rng(1).standard_normal((1, 32), dtype=np.float32)[0]
    np.testing.assert_allclose(z[0], rng_a, rtol=1e-5, atol=1e-6)
    # slerp keeps the norm roughly constant between two Gaussian samples
    norms = np.linalg.norm(z, axis=1)
    assert norms.min() > 0.8 * norms.max()
    assert len(list((tmp_path / "i").glob("p48_*.wav"))) == 4


@pytest.mark.parametrize("args, message", [
    (["generate", "--model", "{model}", "--pitch", "100", "--out", "{tmp}/x"], "pitch 100 is outside"),
    (["generate", "--model", "{tmp}/nope.safetensors", "--pitch", "60", "--out", "{tmp}/x"], "model file not found"),
    (["generate", "--model", "{model}", "--pitch", "60", "--condition", "instrument_family=guitar", "--out", "{tmp}/x"],
     "no condition 'instrument_family'"),
    (["generate", "--model", "{model}", "--pitch", "60", "--z", "{tmp}/missing.npy", "--out", "{tmp}/x"], "not found"),
    (["info", "--model", "{junk}"], "not a readable model file"),
])
@pytest.mark.integration
def test_user_errors_are_one_line(tmp_path, tiny_model_path, args, message):
    junk = tmp_path / "junk.safetensors"
    junk.write_text("garbage")
    args = [a.format(model=tiny_model_path, tmp=tmp_path, junk=junk) for a in args]
    proc = run_cli(*args, check=False)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()  # nothing half-written


def test_ctrl_c_inside_compiled_code_is_an_interruption_not_a_traceback():
    """numba turns a KeyboardInterrupt inside a jitted function (pYIN's Viterbi in `dataset chop --pitch auto`) into a
    SystemError chained to it: the CLI reports it as `interrupted`, exit 130; other SystemErrors stay errors."""
    import click

    from ganspacesynth.interfaces.cli import main

    @click.command("raise-chained")
    @click.option("--cause", default="interrupt")
    def raise_chained(cause):
        try:
            raise KeyboardInterrupt if cause == "interrupt" else ValueError("x")
        except BaseException as exc:
            raise SystemError("CPUDispatcher(<function _viterbi>) returned a result with an exception set") from exc

    main.add_command(raise_chained)
    try:
        result = CliRunner().invoke(main, ["raise-chained"])
        assert result.exit_code == 130 and "interrupted" in result.output and "Traceback" not in result.output
        result = CliRunner().invoke(main, ["raise-chained", "--cause", "other"])
        assert result.exit_code != 130 and isinstance(result.exception, SystemError)
    finally:
        main.commands.pop("raise-chained")
