"""The processes of a training run: one, or several under ``torchrun`` (DistributedDataParallel).

Rank 0 takes every decision that depends on time (stop, checkpoint, planned steps) and broadcasts it,
so all ranks step in lockstep; under torchrun RANK, WORLD_SIZE and LOCAL_RANK are set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn

__all__ = ["World"]


@dataclass(frozen=True)
class World:
    device: torch.device
    rank: int = 0
    size: int = 1

    @property
    def master(self) -> bool:
        return self.rank == 0

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @classmethod
    def setup(cls, device: str = "auto", threads: int = 0) -> "World":
        """This process's device and place in the world; joins the process group when there is one."""
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        want_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
        dev = torch.device("cuda", local) if want_cuda else torch.device("cpu")
        if want_cuda:
            torch.cuda.set_device(dev)
            # TF32 for the fp32 parts: the integer path is fake-quantized in training anyway
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True
        if size > 1:
            dist.init_process_group("nccl" if want_cuda else "gloo")
        if threads:
            torch.set_num_threads(threads)
        return cls(dev, rank, size)

    def say(self, *args) -> None:
        """Print on rank 0 only."""
        if self.master:
            print(*args, flush=True)

    def broadcast(self, values: list[float]) -> list[float]:
        """Rank 0's ``values`` on every rank."""
        if self.size == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.broadcast(t, 0)
        return t.tolist()

    def gather(self, obj) -> list:
        """Every rank's ``obj``, in rank order (plain data)."""
        if self.size == 1:
            return [obj]
        out = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` under DistributedDataParallel when there are several ranks.  Buffers are
        constants here (σ table, tanh table, coding tables): no per-step broadcast."""
        if self.size == 1:
            return module
        return nn.parallel.DistributedDataParallel(
            module, device_ids=[self.device.index] if self.cuda else None, broadcast_buffers=False)

    def close(self) -> None:
        if self.size > 1:
            dist.barrier()
            dist.destroy_process_group()
