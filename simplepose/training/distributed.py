"""PyTorch's own distributed engine for training: process group, ranks, consistent decisions.

Launch with ``torchrun --nproc-per-node G [--nnodes N ...] -m simplepose train ...``:
torchrun sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
``init_distributed`` reads them (env:// rendezvous) and picks NCCL on CUDA, gloo on CPU.
Without ``WORLD_SIZE > 1`` everything runs in one process and the helpers are no-ops.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

_logger = logging.getLogger(__name__)

__all__ = ["DistInfo", "all_reduce_flag", "cleanup", "init_distributed"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job.

    Attributes:
        rank: global rank (0 logs, evaluates and writes checkpoints).
        world_size: number of processes.
        local_rank: rank on this machine (selects the GPU).
        device: the device this process trains on.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")  # noqa: RUF009 - immutable

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0."""
        return self.rank == 0


def init_distributed(device: str | None = None) -> DistInfo:
    """Join the process group when launched by torchrun (``WORLD_SIZE > 1``).

    Args:
        device: ``"cpu"``, ``"cuda"`` or ``None`` (CUDA when available). Under torchrun each
            process takes ``cuda:LOCAL_RANK``.

    Returns:
        This process's ``DistInfo``.
    """
    use_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo(device=torch.device(device or ("cuda" if use_cuda else "cpu")))
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        target = torch.device("cuda", local_rank)
    else:
        target = torch.device("cpu")
    if not dist.is_initialized():
        backend = "nccl" if use_cuda else "gloo"
        dist.init_process_group(backend=backend)
        _logger.info("rank %d/%d joined the %s process group", rank, world_size, backend)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=target)


def all_reduce_flag(flag: bool, info: DistInfo) -> bool:
    """True on every rank when ``flag`` is True on any rank.

    Used to skip a batch on all ranks together: a rank that skips alone leaves the others
    waiting in the gradient all-reduce forever (the authors' DDP hang).
    """
    if not info.distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def cleanup() -> None:
    """Leave the process group (no-op when not distributed)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
