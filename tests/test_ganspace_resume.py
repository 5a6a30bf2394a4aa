"""Long GANSpace fits checkpoint their covariance sums and resume: interrupted after k batches and resumed, a fit
gives exactly the components of an uninterrupted one; mismatched or stale checkpoints are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from ganspacesynth.errors import UserError
from ganspacesynth.ganspace import estimators as E
from ganspacesynth.ganspace.checkpoint import checkpoint_file, default_checkpoint_path
from ganspacesynth.ganspace.components import Components
from ganspacesynth.ganspace.fit import fit_components
from ganspacesynth.ganspace.sampling import ActivationSampler
from ganspacesynth.interfaces.cli import main

COUNT, BATCH = 1000, 64
COMMON = dict(pitches=[40, 52], seed=11, batch_size=BATCH, regression_samples=0, n_components=24)


class Interrupted(Exception):
    pass


def interrupt_after(monkeypatch, calls: int):
    """Make the sampler fail on its (calls + 1)-th batch, as a kill would (the shift's pilot batch counts)."""
    real = ActivationSampler.batch
    seen = {"n": 0}

    def batch(self, start, stop):
        seen["n"] += 1
        if seen["n"] > calls:
            raise Interrupted
        return real(self, start, stop)

    monkeypatch.setattr(ActivationSampler, "batch", batch)


@pytest.fixture
def float32_chunks(monkeypatch):
    """The float32-product path at tiny size: chunks that batches straddle, so checkpoints hold pending rows."""
    monkeypatch.setattr(E, "FLOAT32_PRODUCTS_MIN_DIM", 1)
    monkeypatch.setattr(E, "CHUNK_ROWS", 150)


def arrays(comps):
    return {name: getattr(comps, name) for name in ("comp", "stdev", "var_ratio", "mean")}


@pytest.mark.parametrize("interrupt_at", [3, 9])
@pytest.mark.heavy
def test_resumed_fit_equals_uninterrupted(tiny_synth, tmp_path, monkeypatch, float32_chunks, interrupt_at):
    straight = fit_components(tiny_synth, "conv0", COUNT, **COMMON)
    assert straight.meta["solver"]["products"] == "float32"
    ckpt = tmp_path / "fit.ckpt.npz"
    with monkeypatch.context() as m:
        interrupt_after(m, 1 + interrupt_at)  # the pilot batch, then `interrupt_at` batches
        with pytest.raises(Interrupted):
            fit_components(tiny_synth, "conv0", COUNT, checkpoint=ckpt, checkpoint_every=1e-9, **COMMON)
    with np.load(ckpt) as data:
        meta = json.loads(str(data["meta"]))
        assert meta["next_index"] == interrupt_at * BATCH
        assert len(data["pending"]) == (interrupt_at * BATCH) % 150  # an unfinished float32 chunk
    logs = []
    resumed = fit_components(tiny_synth, "conv0", COUNT, checkpoint=ckpt, checkpoint_every=1e-9, resume=True,
                             log=logs.append, **COMMON)
    assert any(f"{interrupt_at * BATCH:,} of {COUNT:,} samples already in" in line for line in logs)
    for name, value in arrays(straight).items():
        np.testing.assert_array_equal(getattr(resumed, name), value, err_msg=name)
    assert resumed.meta["sample_count"] == COUNT


@pytest.mark.slow
def test_resume_with_regression_and_float64_products(tiny_synth, tmp_path, monkeypatch):
    common = dict(COMMON, regression_samples=10000, n_components=8)
    straight = fit_components(tiny_synth, "conv0", COUNT, **common)
    assert straight.meta["solver"]["products"] == "float64"
    ckpt = tmp_path / "c.npz"
    with monkeypatch.context() as m:
        interrupt_after(m, 1 + 5)
        with pytest.raises(Interrupted):
            fit_components(tiny_synth, "conv0", COUNT, checkpoint=ckpt, checkpoint_every=1e-9, **common)
    resumed = fit_components(tiny_synth, "conv0", COUNT, checkpoint=ckpt, resume=True, **common)
    for name in ("comp", "stdev", "var_ratio", "mean", "z_comp", "z_mean"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(straight, name), err_msg=name)


def test_checkpoint_refusals(tiny_synth, tmp_path, monkeypatch):
    ckpt = tmp_path / "c.npz"
    with pytest.raises(UserError, match="nothing to resume"):
        fit_components(tiny_synth, "conv0", COUNT, checkpoint=ckpt, resume=True, **COMMON)
    with monkeypatch.context() as m:
        interrupt_after(m, 1 + 2)
        with pytest.raises(Interrupted):
            fit_components(tiny_synth, "conv0", COUNT, checkpoint=ckpt, checkpoint_every=1e-9, **COMMON)
    assert ckpt.is_file()
    with pytest.raises(UserError, match="add --resume"):
        fit_components(tiny_synth, "conv0", COUNT, checkpoint=ckpt, **COMMON)
    with pytest.raises(UserError, match=r"batch_size 64 \(this run: 128\).*seed 11 \(this run: 12\)"):
        fit_components(tiny_synth, "conv0", COUNT, checkpoint=ckpt, resume=True,
                       **dict(COMMON, batch_size=128, seed=12))
    with pytest.raises(UserError, match="cov estimator"):
        fit_components(tiny_synth, "conv0", COUNT, checkpoint=ckpt, **dict(COMMON, estimator="ipca"))
    # A different component count reuses the sums: only the solve depends on it.
    comps = fit_components(tiny_synth, "conv0", COUNT, checkpoint=ckpt, resume=True, **dict(COMMON, n_components=4))
    assert comps.n_components == 4


def test_checkpoint_file_names(tmp_path):
    assert default_checkpoint_path(tmp_path / "comps.npz") == tmp_path / "comps.ckpt.npz"
    assert checkpoint_file(tmp_path / "c.ckpt.npz", 0, 1) == tmp_path / "c.ckpt.npz"
    assert checkpoint_file(tmp_path / "c.ckpt.npz", 1, 4) == tmp_path / "c.ckpt.rank1-of-4.npz"


@pytest.mark.heavy
def test_cli_resume_and_cleanup(tiny_model_path, tmp_path, monkeypatch):
    out = tmp_path / "comps.npz"
    args = ["ganspace", "--model", str(tiny_model_path), "--random-z-count", "700", "--pitch", "40",
            "--batch-size", "100", "--regression-samples", "0", "--components", "all", "--quiet", "--out", str(out)]
    res = CliRunner().invoke(main, args + ["--resume"])
    assert res.exit_code == 1 and "nothing to resume" in res.output and not out.exists()
    with monkeypatch.context() as m:
        interrupt_after(m, 1 + 3)
        res = CliRunner().invoke(main, args + ["--checkpoint-every", "0.000001"])
        assert isinstance(res.exception, Interrupted)
    ckpt = tmp_path / "comps.ckpt.npz"
    assert ckpt.is_file() and not out.exists()
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 1 and "--resume continues" in res.output
    res = CliRunner().invoke(main, args + ["--resume"])
    assert res.exit_code == 0, res.output
    assert "300 of 700 samples already in" in res.output and "512 components" in res.output
    assert out.is_file() and not ckpt.exists()  # the checkpoint goes once the components are written
    straight = tmp_path / "straight.npz"
    res = CliRunner().invoke(main, args[:-1] + [str(straight)])
    assert res.exit_code == 0, res.output
    a, b = Components.load(out), Components.load(straight)
    np.testing.assert_array_equal(a.comp, b.comp)
    np.testing.assert_array_equal(a.stdev, b.stdev)


def test_ctrl_c_checkpoints_the_batches_sampled_and_resume_finishes(tiny_synth, tmp_path, monkeypatch):
    """Ctrl-C (SIGINT) during sampling, long before the first periodic checkpoint: the batches already in the sums
    are saved, KeyboardInterrupt follows, and --resume ends where an uninterrupted fit does."""
    import os
    import signal

    # As a terminal gives it: a process started in the background (`cmd &` in a script) inherits SIGINT ignored.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _ctrl_c_then_resume(tiny_synth, tmp_path, monkeypatch, os, signal)
    finally:
        signal.signal(signal.SIGINT, inherited)


def _ctrl_c_then_resume(tiny_synth, tmp_path, monkeypatch, os, signal):
    straight = fit_components(tiny_synth, "conv0", COUNT, **COMMON)
    ckpt = tmp_path / "fit.ckpt.npz"
    real = ActivationSampler.batch
    seen = {"n": 0}

    def batch(self, start, stop):
        seen["n"] += 1
        if seen["n"] == 5:  # the pilot batch, then 4 batches: Ctrl-C arrives while the 4th is computed
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, start, stop)

    logs = []
    with monkeypatch.context() as m:
        m.setattr(ActivationSampler, "batch", batch)
        with pytest.raises(KeyboardInterrupt):
            fit_components(tiny_synth, "conv0", COUNT, checkpoint=ckpt, checkpoint_every=3600, log=logs.append, **COMMON)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is given back
    with np.load(ckpt) as data:
        assert json.loads(str(data["meta"]))["next_index"] == 4 * BATCH
    assert any("interrupted: 256 of 1,000 samples saved" in line for line in logs), logs
    resumed = fit_components(tiny_synth, "conv0", COUNT, checkpoint=ckpt, checkpoint_every=3600, resume=True, **COMMON)
    for name, value in arrays(straight).items():
        np.testing.assert_array_equal(getattr(resumed, name), value, err_msg=name)
