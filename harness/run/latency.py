"""Latency bookkeeping for a run: per-batch wall time with CUDA synchronisation, warm-up excluded.

CUDA kernels are asynchronous; timing without synchronising measures the launch, not the work.  The first
batches pay for lazy initialisation (cuDNN autotuning, allocator growth, page faults) and are left out.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


@dataclass
class LatencyRecorder:
    device: str = "cpu"
    warmup_batches: int = 1
    batch_seconds: list[float] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)

    @contextmanager
    def measure(self, batch_size: int) -> Iterator[None]:
        synchronize(self.device)
        start = time.perf_counter()
        yield
        synchronize(self.device)
        self.batch_seconds.append(time.perf_counter() - start)
        self.batch_sizes.append(batch_size)

    def summary(self) -> dict[str, Any]:
        """images/s and per-batch latency percentiles (ms) over the batches after warm-up.

        With fewer batches than warm-up + 1, every batch is kept rather than reporting nothing, and the summary
        says ``reliable: False`` (the warm-up could not be excluded: "0.0 img/s" for a model whose one batch
        paid its lazy initialisation); leaderboards do not publish such numbers.
        """
        skip = self.warmup_batches if len(self.batch_seconds) > self.warmup_batches else 0
        seconds = np.asarray(self.batch_seconds[skip:], dtype=np.float64)
        sizes = np.asarray(self.batch_sizes[skip:], dtype=np.float64)
        if seconds.size == 0:
            return {"images_per_s": 0.0, "batches": 0, "reliable": False}
        milliseconds = seconds * 1000.0
        return {
            "images_per_s": float(sizes.sum() / seconds.sum()) if seconds.sum() > 0 else 0.0,
            "latency_mean_ms": float(milliseconds.mean()),
            "latency_p50_ms": float(np.percentile(milliseconds, 50)),
            "latency_p95_ms": float(np.percentile(milliseconds, 95)),
            "batches": int(seconds.size),
            "warmup_batches": int(skip),
            "batch_size": int(max(self.batch_sizes)),
            "device": self.device,
            "reliable": bool(skip >= self.warmup_batches),
        }
