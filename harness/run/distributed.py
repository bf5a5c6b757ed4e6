"""Several processes, one evaluation: torchrun's environment, exact shards, results gathered to rank 0.

Each rank takes one contiguous slice of the sample list (sizes differ by at most one, nothing is padded or
duplicated), so concatenating the ranks' per-sample states and prediction records in rank order gives exactly
the single-process order.  Rank 0 alone merges, scores and writes.  Backend: nccl for CUDA devices, gloo
otherwise.  A rank that fails does not leave the others hanging in a collective: failures are exchanged first
and every rank raises the same one-line error.
"""
from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Sequence, TypeVar

from harness.core.errors import BenchError

T = TypeVar("T")


@dataclass
class DistContext:
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    initialised: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device_for(self, device: str) -> str:
        """``cuda`` on a multi-GPU launch means this rank's GPU; an explicit ``cuda:N`` is kept."""
        if self.enabled and device == "cuda":
            return f"cuda:{self.local_rank}"
        return device

    def start(self, device: str) -> None:
        if not self.enabled or self.initialised:
            return
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = "nccl" if device.startswith("cuda") else "gloo"
            if backend == "nccl":
                torch.cuda.set_device(self.device_for(device))
            dist.init_process_group(backend=backend, timeout=timedelta(minutes=60))
            atexit.register(_shutdown)
        self.initialised = True

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's contiguous slice: ``[r*n//w, (r+1)*n//w)``."""
        n = len(items)
        return list(items[self.rank * n // self.world_size : (self.rank + 1) * n // self.world_size])

    def all_gather(self, obj: Any) -> list[Any]:
        if not self.enabled:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` on rank 0 (in rank order); None elsewhere."""
        if not self.enabled:
            return [obj]
        import torch.distributed as dist

        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def raise_if_any_failed(self, error: BaseException | None) -> None:
        """Collective: every rank raises when any rank failed, naming the first failure."""
        messages = self.all_gather(None if error is None else f"{type(error).__name__}: {error}")
        failed = [(rank, message) for rank, message in enumerate(messages) if message is not None]
        if error is not None:
            raise error
        if failed:
            rank, message = failed[0]
            raise BenchError(f"rank {rank} failed: {message}")

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()


def _shutdown() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


_CONTEXT: DistContext | None = None


def context() -> DistContext:
    """The process's context from torchrun's WORLD_SIZE / RANK / LOCAL_RANK (single process without them)."""
    global _CONTEXT
    if _CONTEXT is None:
        try:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
            local = int(os.environ.get("LOCAL_RANK", str(rank)))
        except ValueError:
            raise BenchError("WORLD_SIZE, RANK and LOCAL_RANK must be integers") from None
        if world < 1 or not 0 <= rank < world:
            raise BenchError(f"inconsistent torchrun environment: RANK={rank}, WORLD_SIZE={world}")
        _CONTEXT = DistContext(world_size=world, rank=rank, local_rank=local)
    return _CONTEXT
