"""Latency bookkeeping for a run: each batch's stages timed apart, warm-up excluded, memory peaks.

A batch's clock has two edges (``StageClock.start`` / ``stop``), the only places it synchronises with the device;
in between, ``mark(stage)`` books the time since the previous mark to ``stage`` (data wait, cache, transfer,
model, postprocess, metric; the detectron2 way of reporting data time apart from compute).  On the CPU a mark
reads ``time.perf_counter``; on CUDA it records an event on the device's current stream, and the events are read
after the closing synchronisation, so kernels queued by the model are timed where they run without stalling the
pipeline at every stage.  Timelines are injectable: tests drive the accounting with a fake clock and a fake
synchronise.

The first batches pay for lazy initialisation (cuDNN autotuning, allocator growth, page faults) and for every
new input shape (cuDNN benchmarks each; padded shapes keep changing on datasets of mixed sizes): warm-up is a
set number of batches, extended until a batch brings no shape not seen before (at most half of the batches).
Throughput is never published without an excluded warm-up: with no batch left after it, ``images_per_s`` is
None and the summary says ``reliable: False``.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Callable, Protocol, Sequence

import numpy as np

#: stages that run inside ``Adapter.predict``: their sum is the batch latency (and images/s) reported
MODEL_STAGES = ("transfer", "model", "postprocess")
#: every stage, in the order a batch goes through them
STAGES = ("data_wait", "cache", *MODEL_STAGES, "metric")
#: batches always left out of the timed ones before the shape rule applies
WARMUP_BATCHES = 1


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


class Timeline(Protocol):
    """Where a clock's marks come from: ``stamp`` is cheap and never waits, ``seconds`` is read after
    ``synchronize``."""

    def stamp(self) -> Any: ...

    def seconds(self, start: Any, end: Any) -> float: ...

    def synchronize(self) -> None: ...


@dataclass
class HostTimeline:
    """Wall time on the host; ``sync`` waits for the device when there is one (CPU: nothing to wait for)."""

    clock: Callable[[], float] = time.perf_counter
    sync: Callable[[], None] = lambda: None

    def stamp(self) -> float:
        return self.clock()

    def seconds(self, start: float, end: float) -> float:
        return end - start

    def synchronize(self) -> None:
        self.sync()


class CudaTimeline:
    """CUDA events recorded on the device's current stream; elapsed times are read only after ``synchronize``.

    Written for GPUs and not exercised here (no GPU is lent to this project's CI); ``benchmarks/gpu_check.sh``
    runs it.  The accounting around it is the same code as the host timeline's.
    """

    def __init__(self, device: str) -> None:
        import torch

        self._torch = torch
        self.device = torch.device(device)

    def stamp(self) -> Any:
        event = self._torch.cuda.Event(enable_timing=True)
        event.record(self._torch.cuda.current_stream(self.device))
        return event

    def seconds(self, start: Any, end: Any) -> float:
        return float(start.elapsed_time(end)) / 1000.0  # milliseconds between two completed events

    def synchronize(self) -> None:
        self._torch.cuda.synchronize(self.device)


def timeline_for(device: str) -> Timeline:
    return CudaTimeline(device) if device.startswith("cuda") else HostTimeline()


class StageClock:
    """One batch at a time: ``start`` (an edge), ``mark(stage)`` any number of times, ``stop`` (an edge) returns
    seconds per stage (a stage marked several times, e.g. once per image, is summed)."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self._marks: list[tuple[str, Any]] = []
        self.running = False

    def start(self) -> None:
        self.timeline.synchronize()
        self._marks = [("", self.timeline.stamp())]
        self.running = True

    def mark(self, stage: str) -> None:
        if self.running:
            self._marks.append((stage, self.timeline.stamp()))

    def marks_since_start(self) -> int:
        return len(self._marks) - 1

    def stop(self) -> dict[str, float]:
        self.timeline.synchronize()
        self.running = False
        totals: dict[str, float] = {}
        for (_, begin), (stage, end) in pairwise(self._marks):
            totals[stage] = totals.get(stage, 0.0) + self.timeline.seconds(begin, end)
        return totals


def warmup_count(shapes: Sequence[tuple[Any, ...] | None], minimum: int = WARMUP_BATCHES) -> int:
    """Batches to leave out: the first ``minimum``, then on until a batch brings no new input shape, at most
    half of the batches (datasets whose every image has its own size never repeat one).

    ``shapes[k]`` is batch k's tuple of input shapes; None (a batch replayed from the prediction cache, or a model
    that reads no pixels) counts as repeating.
    """
    count = len(shapes)
    cap = max(minimum, count // 2)
    seen: set[Any] = set()
    for index, key in enumerate(shapes):
        new = key is not None and any(shape not in seen for shape in key)
        if key is not None:
            seen.update(key)
        if index >= minimum and not new:
            return index
        if index + 1 >= cap and index + 1 >= minimum:
            return min(index + 1, count)
    return min(minimum, count)


def peak_memory(device: str) -> dict[str, float]:
    """Peak memory in MiB: allocated and reserved by torch's caching allocator on CUDA (since the loop reset
    them), the process's peak resident set on the CPU (over the process's life: the OS keeps no per-run peak)."""
    if device.startswith("cuda"):
        import torch

        return {"peak_allocated_mib": torch.cuda.max_memory_allocated(device) / 2**20,
                "peak_reserved_mib": torch.cuda.max_memory_reserved(device) / 2**20}
    try:
        import resource
    except ImportError:  # not on POSIX
        return {}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_rss_mib": peak / (2**20 if sys.platform == "darwin" else 2**10)}  # bytes on macOS, KiB on Linux


def reset_peak_memory(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.reset_peak_memory_stats(device)


@dataclass
class LatencyRecorder:
    """Per-batch model seconds (transfer + model + postprocess) and sizes; optionally each batch's input shapes
    and its seconds per stage (batches replayed from the prediction cache have neither)."""

    device: str = "cpu"
    warmup_batches: int = WARMUP_BATCHES
    batch_seconds: list[float] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    batch_shapes: list[Any] = field(default_factory=list)
    batch_stages: list[dict[str, float]] = field(default_factory=list)

    def add(self, seconds: float, size: int, shapes: Any = None, stages: dict[str, float] | None = None) -> None:
        self.batch_seconds.append(float(seconds))
        self.batch_sizes.append(int(size))
        self.batch_shapes.append(shapes)
        self.batch_stages.append(dict(stages or {}))

    def warmup(self) -> int:
        shapes = self.batch_shapes + [None] * (len(self.batch_seconds) - len(self.batch_shapes))
        return warmup_count(shapes, self.warmup_batches)

    def summary(self) -> dict[str, Any]:
        """images/s and per-batch latency percentiles (ms) over the batches after warm-up, stage times apart.

        With no batch left after the warm-up, nothing is published: ``images_per_s`` is None and ``reliable``
        False (a model whose one batch paid its lazy initialisation once showed "0.0 img/s").
        """
        skip = self.warmup()
        seconds = np.asarray(self.batch_seconds[skip:], dtype=np.float64)
        sizes = np.asarray(self.batch_sizes[skip:], dtype=np.float64)
        if seconds.size == 0 or seconds.sum() <= 0:
            return {"images_per_s": None, "batches": int(seconds.size), "warmup_batches": int(skip),
                    "batch_size": int(max(self.batch_sizes, default=0)), "device": self.device, "reliable": False}
        milliseconds = seconds * 1000.0
        summary: dict[str, Any] = {
            "images_per_s": float(sizes.sum() / seconds.sum()),
            "latency_mean_ms": float(milliseconds.mean()),
            "latency_p50_ms": float(np.percentile(milliseconds, 50)),
            "latency_p95_ms": float(np.percentile(milliseconds, 95)),
            "batches": int(seconds.size),
            "warmup_batches": int(skip),
            "batch_size": int(max(self.batch_sizes)),
            "device": self.device,
            "reliable": True,
        }
        summary.update(stage_summary(self.batch_stages[skip:], self.batch_sizes[skip:]))
        return summary


def stage_summary(stages: Sequence[dict[str, float]], sizes: Sequence[int]) -> dict[str, Any]:
    """Mean milliseconds per batch of each stage, and images/s counting every stage (data wait and metric
    included), over the timed batches that ran the model (replayed ones carry no stages)."""
    timed = [(record, size) for record, size in zip(stages, sizes) if record]
    if not timed:
        return {}
    names = [name for name in STAGES if any(name in record for record, _ in timed)]
    names += sorted({name for record, _ in timed for name in record} - set(names))
    means = {name: 1000.0 * sum(record.get(name, 0.0) for record, _ in timed) / len(timed) for name in names}
    total = sum(sum(record.values()) for record, _ in timed)
    images = sum(size for _, size in timed)
    return {"stages_ms": means, "stage_batches": len(timed),
            "end_to_end_images_per_s": float(images / total) if total > 0 else None}


def describe_stages(throughput: dict[str, Any]) -> str:
    """One line for the console: each stage's mean ms per batch, or why there is no number."""
    stages = throughput.get("stages_ms") or {}
    if not stages:
        return "no timed batch after warm-up" if not throughput.get("reliable", True) else ""
    parts = [f"{name.replace('_', ' ')} {value:.1f}" for name, value in stages.items()]
    end_to_end = throughput.get("end_to_end_images_per_s")
    rate = f"; {end_to_end:.1f} img/s end to end" if end_to_end else ""
    return (f"ms per batch: {' · '.join(parts)} ({throughput.get('stage_batches', 0)} batches after "
            f"{throughput.get('warmup_batches', 0)} warm-up{rate})")
