"""torch DistributedDataParallel for Kelly training, by torch's own recipe: ``torchrun`` starts the
processes and sets ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` / ``MASTER_ADDR``; we join the group
(gloo on CPU, nccl when CUDA is present), wrap the loss module in ``DistributedDataParallel``, deal data
with ``DistributedSampler`` (``windows.py``) and let rank 0 alone write checkpoints, history and reports.

    torchrun --nproc-per-node 2 -m toolchain.cli train --store STORE --batch-size 64

Without torchrun (no ``WORLD_SIZE`` above 1) nothing here does anything: a single process is the default.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def launched_world() -> int:
    """The world size torchrun announced (1 when run without it)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def start() -> Context:
    """Join the process group torchrun set up (idempotent); a plain process gets ``Context()``."""
    world = launched_world()
    if world <= 1:
        return Context()
    import torch.distributed as dist

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    return Context(dist.get_rank(), dist.get_world_size(), local_rank, backend)


def wrap(module: torch.nn.Module, context: Context) -> torch.nn.Module | None:
    """``module`` inside ``DistributedDataParallel`` under torchrun, else None (use the plain loss)."""
    if not context.active:
        return None
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[context.local_rank] if context.backend == "nccl" else None)


def barrier(context: Context) -> None:
    if context.active:
        import torch.distributed as dist

        dist.barrier()


def stop(context: Context) -> None:
    if context.active:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
