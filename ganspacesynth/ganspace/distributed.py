"""Scale-out for GANSpace: each process samples its share of indices, then the statistics are all-reduced.

Under `torchrun` (RANK / WORLD_SIZE / MASTER_ADDR in the environment) `setup()` joins the process group
(NCCL on CUDA, gloo on CPU). Because latent i depends only on (seed, i), splitting the index range between
processes gives exactly the samples of a single-process run; only float64 summation order differs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, count: int) -> tuple[int, int]:
        """This process's contiguous index range [start, stop) of `count` samples."""
        per, extra = divmod(count, self.size)
        start = self.rank * per + min(self.rank, extra)
        return start, start + per + (1 if self.rank < extra else 0)

    def all_reduce(self, tensors: list[torch.Tensor]) -> None:
        """Sum tensors over processes, in place (no-op for one process)."""
        if self.size > 1:
            for t in tensors:
                dist.all_reduce(t, op=dist.ReduceOp.SUM)

    def broadcast(self, tensors: list[torch.Tensor], src: int = 0) -> None:
        if self.size > 1:
            for t in tensors:
                dist.broadcast(t, src=src)

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()


def current_world() -> World:
    """The initialised process group, or a single process."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "MASTER_ADDR" in os.environ


def setup(device: str | None = None) -> tuple[World, str | None]:
    """Join the torchrun process group if launched by torchrun. Returns (world, device for this process)."""
    if not launched_by_torchrun() or (dist.is_available() and dist.is_initialized()):
        return current_world(), device
    use_cuda = torch.cuda.is_available() and (device is None or str(device).startswith("cuda"))
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return current_world(), device or "cpu"


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
