"""Two CPU processes (gloo) give the same components as one process."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ganspacesynth.training.distributed import DistInfo
from ganspacesynth.ganspace.fit import fit_components

COUNT, REG = 1000, 10000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, model_path: str, out_dir: str) -> None:
    from ganspacesynth.synth import Synth

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        synth = Synth.load(model_path, device="cpu")
        comps = fit_components(synth, "conv0", COUNT, pitches=[40, 52], seed=7, batch_size=128,
                               regression_samples=REG, world=DistInfo(rank, world_size))
        comps.save(f"{out_dir}/rank{rank}.npz")
    finally:
        dist.destroy_process_group()


def test_world_shards_cover_the_range_once():
    for size in (1, 2, 3, 7):
        ranges = [DistInfo(r, size).shard(1001) for r in range(size)]
        assert ranges[0][0] == 0 and ranges[-1][1] == 1001
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))


@pytest.mark.integration
@pytest.mark.slow
def test_two_processes_equal_one(tiny_model_path, tiny_synth, tmp_path):
    from ganspacesynth.ganspace.components import Components

    mp.start_processes(_worker, args=(2, _free_port(), str(tiny_model_path), str(tmp_path)), nprocs=2,
                       join=True, start_method="spawn")
    single = fit_components(tiny_synth, "conv0", COUNT, pitches=[40, 52], seed=7, batch_size=300,
                            regression_samples=REG)
    ranks = [Components.load(tmp_path / f"rank{r}.npz") for r in range(2)]
    np.testing.assert_array_equal(ranks[0].comp, ranks[1].comp)  # rank 0 solved and broadcast
    multi = ranks[0]
    assert multi.meta["processes"] == 2 and multi.meta["sample_count"] == COUNT
    assert multi.meta["regression"]["samples"] == REG
    np.testing.assert_allclose(multi.mean, single.mean, atol=1e-6)
    np.testing.assert_allclose(multi.stdev, single.stdev, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(multi.var_ratio, single.var_ratio, rtol=1e-5, atol=1e-8)
    # Leading directions (well-separated eigenvalues) agree entry by entry; signs are canonical.
    np.testing.assert_allclose(multi.comp[:32], single.comp[:32], atol=1e-4)
    np.testing.assert_allclose(multi.z_comp[:32], single.z_comp[:32], atol=1e-3)
    np.testing.assert_allclose(multi.z_mean, single.z_mean, atol=1e-6)


def test_non_streaming_estimators_refuse_several_processes(tiny_synth):
    from ganspacesynth.errors import UserError

    with pytest.raises(UserError, match="only the cov estimator"):
        fit_components(tiny_synth, "conv0", 100, estimator="ipca", n_components=4, world=DistInfo(0, 2),
                       regression_samples=0)


def _resume_worker(rank: int, world_size: int, port: int, model_path: str, out_dir: str, interrupt: bool) -> None:
    from ganspacesynth.ganspace.sampling import ActivationSampler
    from ganspacesynth.synth import Synth

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        if interrupt:  # fail on the 4th batch of each process (the shift's pilot batch counts), as a kill would
            real, seen = ActivationSampler.batch, {"n": 0}

            def batch(self, start, stop):
                seen["n"] += 1
                if seen["n"] > 4:
                    raise KeyboardInterrupt
                return real(self, start, stop)

            ActivationSampler.batch = batch
        synth = Synth.load(model_path, device="cpu")
        try:
            comps = fit_components(synth, "conv0", COUNT, pitches=[40, 52], seed=7, batch_size=128, n_components=16,
                                   regression_samples=0, world=DistInfo(rank, world_size), resume=not interrupt,
                                   checkpoint=f"{out_dir}/c.npz", checkpoint_every=1e-9)
        except KeyboardInterrupt:
            return
        if rank == 0:
            comps.save(f"{out_dir}/resumed.npz")
    finally:
        dist.destroy_process_group()


@pytest.mark.integration
@pytest.mark.slow
def test_two_processes_checkpoint_and_resume(tiny_model_path, tiny_synth, tmp_path):
    """Under torchrun each process checkpoints its own share; resumed, the fit equals a single process's."""
    from ganspacesynth.ganspace.components import Components

    for interrupt in (True, False):
        mp.start_processes(_resume_worker, args=(2, _free_port(), str(tiny_model_path), str(tmp_path), interrupt),
                           nprocs=2, join=True, start_method="spawn")
        if interrupt:
            assert sorted(p.name for p in tmp_path.glob("c.rank*")) == ["c.rank0-of-2.npz", "c.rank1-of-2.npz"]
    single = fit_components(tiny_synth, "conv0", COUNT, pitches=[40, 52], seed=7, batch_size=300, n_components=16,
                            regression_samples=0)
    resumed = Components.load(tmp_path / "resumed.npz")
    assert resumed.meta["processes"] == 2 and resumed.meta["sample_count"] == COUNT
    np.testing.assert_allclose(resumed.mean, single.mean, atol=1e-6)
    np.testing.assert_allclose(resumed.stdev, single.stdev, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(resumed.comp, single.comp, atol=1e-4)
