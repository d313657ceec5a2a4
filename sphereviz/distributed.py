"""This process's place in a ``torchrun`` job: join the process group, sum over processes.

Without ``torchrun`` (WORLD_SIZE unset or 1) a run is rank 0 of 1 and nothing here touches
``torch.distributed``; with it, ``process_group`` joins the group (NCCL on CUDA, gloo on the
CPU) for the block and tears it down on leaving. The trainer is its one user.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

__all__ = ["Distributed", "init_distributed", "process_group", "sum_over_processes"]


@dataclass
class Distributed:
    """This process's place in a ``torchrun`` job (rank 0 of 1 without one)."""

    rank: int = 0
    world_size: int = 1
    initialised_here: bool = False
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> Distributed:
    """Join the process group when launched by torchrun with WORLD_SIZE > 1 (env:// init)."""
    import torch.distributed as dist

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed(device=device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    initialised_here = not dist.is_initialized()
    if initialised_here:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), initialised_here, device)


def sum_over_processes(values: torch.Tensor, dist_info: Distributed) -> torch.Tensor:
    if dist_info.world_size > 1:
        import torch.distributed as dist

        dist.all_reduce(values)
    return values


@contextlib.contextmanager
def process_group(device: torch.device) -> Iterator[Distributed]:
    """This process's place in a ``torchrun`` job (:func:`init_distributed`), for the block.

    On leaving, a process group initialised here is destroyed: after a garbage collection, so
    that the DDP wrapper's reducer, which holds the group, is freed first and the group (and
    gloo's worker threads) is torn down here rather than during interpreter exit, where that
    teardown can abort the process ("terminate called without an active exception").
    """
    dist_info = init_distributed(device)
    try:
        yield dist_info
    finally:
        if dist_info.initialised_here:
            gc.collect()
            torch.distributed.destroy_process_group()
