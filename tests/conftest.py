"""Shared fixtures: a tiny untrained model, the Magenta reference fixture, quiet threads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
# `--precision auto` is float32 in every test and every process a test starts, whatever the CPU: tests that compare
# numbers then compare the same arithmetic on AVX2, AVX-512, AVX512-BF16 and AMX machines (where auto would pick
# bfloat16). Tests of bfloat16 ask for it by name; tests of auto's choice pass CPU flags or clear this.
os.environ.setdefault("GANSPACESYNTH_AUTO_PRECISION", "float32")

MAGENTA_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "magenta"
#: The markers that keep a test out of the quick tier (docs/DEVELOPING.md, "Tests").
NOT_QUICK = ("heavy", "slow", "integration", "pd", "browser")


@pytest.hookimpl(tryfirst=True)  # before `-m` selects
def pytest_collection_modifyitems(config, items):
    """`quick` on every test without a NOT_QUICK marker: `python3 -m pytest -m quick`, about 2 minutes."""
    for item in items:
        if not any(item.get_closest_marker(name) for name in NOT_QUICK):
            item.add_marker(pytest.mark.quick)


@pytest.fixture(scope="session")
def magenta_fixture_dir() -> Path:
    """Magenta's own checkpoint and outputs (tests/fixtures/magenta/README.md)."""
    return MAGENTA_FIXTURE


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """An untrained `tiny` model (seed 0), written once per test session."""
    from ganspacesynth.model.config import preset
    from ganspacesynth.model.files import save_model
    from ganspacesynth.model.generator import Generator

    torch.manual_seed(0)
    cfg = preset("tiny")
    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    save_model(path, cfg, Generator(cfg).state_dict(), info={"untrained": True})
    return path


@pytest.fixture(scope="session")
def tiny_synth(tiny_model_path):
    from ganspacesynth.synth import Synth

    return Synth.load(tiny_model_path, device="cpu")


@pytest.fixture(scope="session")
def family_synth(tmp_path_factory):
    """An untrained `tiny` model conditioned on pitch and instrument family (helpers.family_model), loaded."""
    from helpers import family_model

    from ganspacesynth.synth import Synth

    return Synth.load(family_model(tmp_path_factory.mktemp("family") / "family.safetensors"))


@pytest.fixture
def wide_tiny_generator():
    """`make(fmap_base, fmap_max, pitches, seed)` -> (channels-last eval Generator, z, condition vector): the tiny
    architecture with wider layers, for the generation fast paths that start at 32-128 channels."""
    from ganspacesynth.model.conditions import ConditionSet
    from ganspacesynth.model.config import preset
    from ganspacesynth.model.generator import Generator

    def make(fmap_base: int, fmap_max: int, pitches=(3, 9), seed: int = 0):
        torch.manual_seed(seed)
        cfg = preset("tiny").replace(fmap_base=fmap_base, fmap_max=fmap_max)
        gen = Generator(cfg).eval().to(memory_format=torch.channels_last)
        z = torch.randn(len(pitches), cfg.latent_vector_size)
        cond = ConditionSet(cfg.conditions).encode({"pitch": torch.tensor(list(pitches))})
        return gen, z, cond

    return make


@pytest.fixture
def one_thread():
    """torch on one thread for the test (training comparisons repeat their arithmetic bit for bit that way)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
