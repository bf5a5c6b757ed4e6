"""The run loop's data stage: samples read, decoded and prepared ahead of the model, in sample order.

A *job* is one batch's dataset indices.  Loading a job builds its samples (``dataset[i]``: the ground truth is
read here too) and, for each sample the prediction cache will not serve, runs ``Adapter.prepare`` (decoding by
default).  With ``workers`` > 0 the jobs go through a ``torch.utils.data.DataLoader`` whose worker processes
(forked: the dataset, adapter and cache index are inherited, not pickled) load up to two jobs each ahead of the
model, returned strictly in job order; large arrays (decoded images, label maps) come back in shared memory
rather than through the pipe, and on CUDA the payloads come back in pinned memory.  With ``workers`` = 0
the run loop's process loads each job when it needs it (the serial loop of old, and no torch import).

Either way a sample gets the same bytes: which process decoded it changes nothing, so metrics are bit-identical
for any worker count (``tests/scale/test_invariance.py``).  Until a job actually needs the model, jobs are
loaded in the loop's own process: a fully cached re-run starts no worker and never imports torch.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Callable, Generator, Sequence

import numpy as np

from harness.core.adapter import Adapter
from harness.core.dataset import Dataset
from harness.core.errors import BenchError
from harness.core.structures import Sample

#: most workers a run starts by default (decoding rarely needs more to keep one model busy)
MAX_DEFAULT_WORKERS = 4
#: jobs each worker loads ahead
PREFETCH_JOBS = 2


def default_workers(world_size: int = 1) -> int:
    """One worker per core this process may use beyond its own, at most ``MAX_DEFAULT_WORKERS`` (0 on a single
    core: the serial loop)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(0, min(MAX_DEFAULT_WORKERS, cores // max(world_size, 1) - 1))


@dataclass
class LoadedJob:
    """One batch's samples, in order; ``prepared[k]`` says whether ``prepare`` ran for sample k."""

    samples: list[Sample]
    payloads: list[Any]
    prepared: list[bool]


class JobLoader:
    """Loads jobs; picklable parts only, so the same object serves the loop's process and forked workers."""

    def __init__(self, dataset: Dataset, adapter: Adapter, jobs: Sequence[Sequence[int]],
                 cached: Callable[[Sample], bool] | None = None) -> None:
        self.dataset = dataset
        self.adapter = adapter
        self.jobs = [list(job) for job in jobs]
        #: True for a sample the prediction cache will serve (checked by file stamps; no chunk decoded)
        self.cached = cached

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, job: int) -> tuple[list[Sample], list[Any], list[bool]]:
        samples = [self.dataset[index] for index in self.jobs[job]]
        payloads: list[Any] = []
        prepared: list[bool] = []
        for sample in samples:
            skip = self.cached is not None and self.cached(sample)
            payloads.append(None if skip else self.adapter.prepare(sample))
            prepared.append(not skip)
        return samples, payloads, prepared

    def load(self, job: int) -> LoadedJob:
        return LoadedJob(*self[job])


class _Tail:
    """The jobs from ``first`` on, as a map-style dataset the DataLoader indexes from 0."""

    def __init__(self, loader: JobLoader, first: int) -> None:
        self.loader, self.first = loader, first

    def __len__(self) -> int:
        return len(self.loader) - self.first

    def __getitem__(self, index: int) -> Any:
        try:
            samples, payloads, prepared = self.loader[self.first + index]
        except BenchError as exc:  # the user's one-line error, not the DataLoader's re-raised traceback text
            return _Failure(exc)
        return samples, payloads, prepared, [_share_arrays(sample) for sample in samples]


#: arrays at least this large cross from a worker in shared memory (as tensors) instead of through the pipe
SHARE_BYTES = 1 << 16


def _shareable(value: Any) -> bool:
    return (isinstance(value, np.ndarray) and value.nbytes >= SHARE_BYTES and value.dtype.kind in "biuf"
            and value.dtype.itemsize in (1, 2, 4, 8))


def _share_arrays(sample: Sample) -> tuple[list[int], list[str]]:
    """Turn the sample's large arrays (decoded images, top-level fields of its target) into tensors, which the
    DataLoader hands over in shared memory: a 2048x1024 frame with its label and instance maps is 16 MB that
    would otherwise be pickled through a pipe and copied twice.  Returns what was turned, for ``_restore``."""
    import torch

    def tensor(array: np.ndarray) -> Any:
        writable = array.flags.c_contiguous and array.flags.writeable
        return torch.from_numpy(array if writable else np.array(array, order="C"))

    slots = [slot for slot, image in sample._decoded.items() if _shareable(image)]
    for slot in slots:
        sample._decoded[slot] = tensor(sample._decoded[slot])
    names: list[str] = []
    target = sample.target
    if (dataclasses.is_dataclass(target) and not isinstance(target, type)
            and not getattr(type(target), "__dataclass_params__").frozen):
        for item in dataclasses.fields(target):
            value = getattr(target, item.name)
            if _shareable(value):
                setattr(target, item.name, tensor(value))
                names.append(item.name)
    return slots, names


def _restore(sample: Sample, shared: tuple[list[int], list[str]]) -> None:
    """Back to numpy arrays (same bytes, same dtype), viewing the shared memory the tensors arrived in."""
    slots, names = shared
    for slot in slots:
        sample._decoded[slot] = sample._decoded[slot].numpy()  # type: ignore[attr-defined]
    for name in names:
        setattr(sample.target, name, getattr(sample.target, name).numpy())


@dataclass
class _Failure:
    error: BenchError


def _as_is(item: Any) -> Any:
    """No collation: a job is already a batch (the default would turn numpy payloads into tensors)."""
    return item


def iterate_jobs(loader: JobLoader, workers: int, pin_memory: bool = False,
                 needs_model: Callable[[LoadedJob], bool] | None = None) -> Generator[LoadedJob, None, None]:
    """Every job in order.  Jobs are loaded in this process until the first one ``needs_model`` (default: every
    job does); the rest come from ``workers`` processes when ``workers`` > 0."""
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    first_parallel = 0
    if needs_model is not None and workers > 0:
        while first_parallel < len(loader):
            job = loader.load(first_parallel)
            first_parallel += 1
            yield job
            if needs_model(job):
                break
    if first_parallel >= len(loader):
        return
    if workers == 0:
        for index in range(first_parallel, len(loader)):
            yield loader.load(index)
        return
    import torch
    from torch.utils.data import DataLoader

    tail: Any = _Tail(loader, first_parallel)  # a map-style dataset (len and getitem), not torch's class
    batches: DataLoader[Any] = DataLoader(tail, batch_size=None, shuffle=False, num_workers=workers,
                                          collate_fn=_as_is, pin_memory=pin_memory, prefetch_factor=PREFETCH_JOBS,
                                          # its own generator: starting workers must not draw from the seeded
                                          # global torch generator the model may use
                                          generator=torch.Generator().manual_seed(0),
                                          multiprocessing_context="fork" if "fork" in _start_methods() else None)
    for item in batches:
        if isinstance(item, _Failure):
            raise item.error
        samples, payloads, prepared, shared = item
        for sample, arrays in zip(samples, shared):
            _restore(sample, arrays)
        yield LoadedJob(list(samples), list(payloads), list(prepared))


def _start_methods() -> list[str]:
    import multiprocessing

    return multiprocessing.get_all_start_methods()
