"""Processes started by `torchrun` (one per GPU, any number of nodes): training and GANSpace share this.

Training: every rank draws the whole global batch's randomness from the same counters and keeps its slice
`[rank::world]`, so a run on R processes computes the same averaged gradients as one process with the
same global batch (the minibatch-stddev groups too, see `local_rows`). Gradients are averaged with one
flat all-reduce per optimiser step instead of wrapping the networks in DistributedDataParallel: the
gradient penalty needs `torch.autograd.grad(create_graph=True)`, which DDP's reducer does not support,
and the discriminator runs three forward passes per step. The arithmetic is DDP's (mean over ranks).

GANSpace: each process samples a contiguous share of the latent indices (`DistInfo.shard`) and the
statistics are summed over processes. Latent i depends only on (seed, i), so the samples are exactly those
of a single-process run; only float64 summation order differs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the process group (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, count: int) -> tuple[int, int]:
        """This process's contiguous index range [start, stop) of `count` samples."""
        per, extra = divmod(count, self.world_size)
        start = self.rank * per + min(self.rank, extra)
        return start, start + per + (1 if self.rank < extra else 0)

    def all_reduce(self, tensors: Iterable[torch.Tensor]) -> None:
        """Sum tensors over processes, in place (no-op for one process)."""
        if self.enabled:
            for t in tensors:
                dist.all_reduce(t, op=dist.ReduceOp.SUM)

    def broadcast(self, tensors: Iterable[torch.Tensor], src: int = 0) -> None:
        if self.enabled:
            for t in tensors:
                dist.broadcast(t, src=src)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def current() -> DistInfo:
    """The initialised process group, or a single process."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(),
                        local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    return DistInfo()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "MASTER_ADDR" in os.environ


def setup(device: str | None = None) -> DistInfo:
    """Join the process group when started by torchrun; pick this rank's device (None: CUDA if present).

    On CUDA without an index each rank takes the GPU of its LOCAL_RANK.
    """
    world = launched_by_torchrun()
    local_rank = int(os.environ.get("LOCAL_RANK", "0")) if world else 0
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank if world else torch.cuda.current_device())
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo",
                                rank=int(os.environ["RANK"]), world_size=int(os.environ["WORLD_SIZE"]))
    info = current()
    return DistInfo(rank=info.rank, world_size=info.world_size, local_rank=local_rank, device=dev)


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def local_rows(global_batch: int, info: DistInfo) -> slice:
    """This rank's share of a global batch: every world_size-th row from `rank`.

    The stride keeps minibatch-stddev groups (rows i, i + B/g, …) on one rank when each rank has at
    least `group_size` rows, so R processes compute exactly what one process computes.
    """
    if global_batch % info.world_size:
        from ..errors import UserError

        raise UserError(f"batch size {global_batch} is not divisible by {info.world_size} processes")
    return slice(info.rank, None, info.world_size)


def average_gradients(params: Iterable[torch.nn.Parameter], info: DistInfo) -> None:
    """Replace each gradient by its mean over ranks (one flat all-reduce)."""
    if not info.enabled:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat.div_(info.world_size)
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n


def mean_over_ranks(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        values /= info.world_size
    return values


def max_over_ranks(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Element-wise max (ranks agree on stop requests and on the step time of timed schedules)."""
    if info.enabled:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return values


def broadcast_module(module: torch.nn.Module, info: DistInfo) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    if info.enabled:
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)
