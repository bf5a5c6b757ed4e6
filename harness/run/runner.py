"""Dataset x adapter -> predictions -> metrics: the one loop every task runs through.

A data stage (``harness.run.loader``: worker processes with ``--workers N``) reads, decodes and prepares samples
ahead of the model, in order; each batch's time is booked per stage (data wait, cache, transfer, model,
postprocess, metric: ``harness.run.latency``), and latency / images/s count the model's stages only, not the
disk.  Metrics see every batch in order and never depend on the batch size or the worker count.

The loop is split in two so that several processes can share one evaluation: ``run_shard`` predicts and feeds
the metrics for some samples and returns a picklable ``ShardResult``; ``finish`` merges shards (in sample order)
into fresh metrics and scores them.  A single process is simply one shard.

What is scored is the dataset's protocol (``Task.metrics(info, dialect)``), and every prediction also goes to
the protocol's submission format when one is given, so the files a run writes are exactly what it scored.  The
same loop serves ``bench eval``: there the "model" is a predictions-file adapter reading those files back.
"""
from __future__ import annotations

import warnings
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from harness.core.adapter import Adapter
from harness.core.dataset import Dataset
from harness.core.errors import BenchError
from harness.core.metric import Metric, MetricResult
from harness.run.prediction_cache import MISSING, PredictionCache
from harness.io.safecodec import CodecError
from harness.core.submission import SubmissionFormat
from harness.core.task import Task
from harness.run.latency import (MODEL_STAGES, LatencyRecorder, StageClock, Timeline, peak_memory,
                                 reset_peak_memory, timeline_for)
from harness.run.loader import JobLoader, LoadedJob, iterate_jobs


@dataclass
class Evaluation:
    """Everything one (dataset, model) evaluation produced, before it is written anywhere."""

    result: MetricResult
    records: list[dict[str, Any]]
    throughput: dict[str, Any]
    samples: int
    extra: dict[str, Any] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list, repr=False)


@dataclass
class ShardResult:
    """One process's share: metric states, prediction records and timings, in its samples' order."""

    states: list[dict[str, Any]]
    records: list[dict[str, Any]]
    batch_seconds: list[float]
    batch_sizes: list[int]
    samples: int
    predicted: int
    cached: int
    #: per batch (replayed cache chunks included): the input shapes (None when replayed) and seconds per stage
    batch_shapes: list[Any] = field(default_factory=list)
    batch_stages: list[dict[str, float]] = field(default_factory=list)
    #: peak memory while this process predicted (MiB; empty when every prediction came from the cache)
    memory: dict[str, float] = field(default_factory=dict)


def merge_results(results: Sequence[MetricResult]) -> MetricResult:
    """Several metrics' results as one; a name reported twice is a programming error, not a choice."""
    merged = MetricResult(metrics={})
    for result in results:
        for name in result.metrics:
            if name in merged.metrics:
                raise RuntimeError(f"metric {name!r} reported by two metrics")
        merged.metrics.update(result.metrics)
        merged.per_class.update(result.per_class)
        merged.curves.update(result.curves)
        merged.settings.update(result.settings)
        merged.higher_is_better.update(result.higher_is_better)
    return merged


def sample_indices(dataset: Dataset, limit: int | None) -> list[int]:
    count = len(dataset) if limit is None else min(limit, len(dataset))
    return list(range(count))


def run_shard(
    task: Task,
    dataset: Dataset,
    adapter: Adapter,
    *,
    indices: Sequence[int],
    batch_size: int = 8,
    on_batch: Callable[[int], None] | None = None,
    cache: PredictionCache | None = None,
    dialect: str | None = None,
    submission: SubmissionFormat | None = None,
    workers: int = 0,
    seed: int | None = None,
    timeline: Timeline | None = None,
) -> tuple[list[Metric], ShardResult]:
    """Predict (or fetch from ``cache``) and score ``indices`` in order.

    Samples are read, decoded and prepared (``Adapter.prepare``) by the data stage (``harness.run.loader``):
    ``workers`` processes ahead of the model, or this process when 0.  Cached samples are not sent to the model
    (nor decoded); the rest of each batch is, as one call, and stored as one chunk right away, so an
    interruption loses at most the batch in flight.  Timings of cached chunks are replayed in the order they
    are first used, so a fully cached re-run reports the throughput originally measured.

    Torch is seeded with ``seed`` and the adapter's ``session()`` entered just before the first model call, so a
    run served entirely from the cache never imports torch.  ``timeline`` replaces the device's clock (tests).
    """
    if batch_size < 1:
        raise BenchError(f"batch size must be at least 1, got {batch_size}")
    if workers < 0:
        raise BenchError(f"--workers must be at least 0, got {workers}")
    metrics = task.metrics(dataset.info, dialect)
    recorder = LatencyRecorder(device=adapter.device)
    clock = StageClock(timeline or timeline_for(adapter.device))
    records: list[dict[str, Any]] = []
    replayed: set[Any] = set()
    predicted = cached = 0
    jobs = [indices[start : start + batch_size] for start in range(0, len(indices), batch_size)]
    holds = cache.holds if cache is not None and len(cache) else None
    loader = JobLoader(dataset, adapter, jobs, cached=holds)
    stream = iterate_jobs(loader, workers, pin_memory=adapter.device.startswith("cuda"),
                          needs_model=(lambda job: any(job.prepared)) if holds is not None else None)
    model_started = False
    with ExitStack() as stack:
        stack.callback(stream.close)  # stops the workers when the loop ends early
        for _ in jobs:
            clock.start()
            job = next(stream)
            clock.mark("data_wait")
            samples = job.samples
            predictions = _from_cache(cache, samples, recorder, replayed)
            if cache is not None:
                clock.mark("cache")
            missing = [slot for slot, prediction in enumerate(predictions) if prediction is MISSING]
            cached += len(samples) - len(missing)
            todo = [samples[slot] for slot in missing]
            if todo:
                if not model_started:
                    model_started = True
                    stack.enter_context(adapter.session())
                    if seed is not None:
                        seed_torch(seed)
                    reset_peak_memory(adapter.device)
                fresh = _predict(adapter, clock, job, missing)
                for slot, prediction in zip(missing, fresh):
                    predictions[slot] = prediction
                predicted += len(todo)
            for metric in metrics:
                metric.update(samples, predictions)
            if submission is not None:
                for sample, prediction in zip(samples, predictions):
                    records.extend(submission.add(sample, prediction))
            clock.mark("metric")
            stages = clock.stop()
            if todo:
                seconds = sum(stages.get(stage, 0.0) for stage in MODEL_STAGES)
                shapes = tuple(shape for sample in todo for shape in sample.decoded_shapes()) or None
                recorder.add(seconds, len(todo), shapes, stages)
                for sample in todo:
                    sample.prepared = None  # payloads can be large (pinned tensors): not kept past the batch
                if cache is not None:
                    try:
                        cache.put([sample.sample_id for sample in todo], fresh, seconds, samples=todo)
                    except CodecError as exc:  # e.g. a prediction type nobody registered: run on, uncached
                        warnings.warn(f"prediction cache disabled for {adapter.name!r}: {exc}", stacklevel=2)
                        cache = None
            if on_batch is not None:
                on_batch(len(samples))
    shard = ShardResult(
        states=[metric.state_dict() for metric in metrics], records=records,
        batch_seconds=list(recorder.batch_seconds), batch_sizes=list(recorder.batch_sizes),
        samples=len(indices), predicted=predicted, cached=cached,
        batch_shapes=list(recorder.batch_shapes), batch_stages=list(recorder.batch_stages),
        memory=peak_memory(adapter.device) if model_started else {},
    )
    return metrics, shard


def _from_cache(cache: PredictionCache | None, samples: Sequence[Any], recorder: LatencyRecorder,
                replayed: set[Any]) -> list[Any]:
    """Each sample's cached prediction or ``MISSING``; a chunk's recorded timing is replayed on its first use."""
    predictions: list[Any] = [MISSING] * len(samples)
    if cache is None:
        return predictions
    for slot, sample in enumerate(samples):
        predictions[slot] = cache.get(sample.sample_id, MISSING, sample=sample)
        chunk = cache.chunk_of(sample.sample_id) if predictions[slot] is not MISSING else None
        if chunk is not None and chunk not in replayed:
            replayed.add(chunk)
            timing = cache.timing(chunk)
            recorder.add(timing.seconds, timing.batch_size)
    return predictions


def _predict(adapter: Adapter, clock: StageClock, job: LoadedJob, missing: Sequence[int]) -> list[Any]:
    """The model's predictions for the job's samples at ``missing``, their payloads handed over as
    ``sample.prepared``; the adapter's ``mark`` calls go to ``clock``, and the time after its last mark is booked
    as postprocessing (all of it as model time when it marks nothing)."""
    todo = [job.samples[slot] for slot in missing]
    for slot, sample in zip(missing, todo):
        if job.prepared[slot]:
            sample.prepared = job.payloads[slot]
        else:  # the cache refused it after all (an unreadable chunk): prepared here
            sample.prepared = adapter.prepare(sample)
            clock.mark("data_wait")
    marks = clock.marks_since_start()
    adapter.stage_marker = clock.mark
    try:
        fresh = adapter.predict(todo)
    finally:
        adapter.stage_marker = None
    clock.mark("postprocess" if clock.marks_since_start() > marks else "model")
    if len(fresh) != len(todo):
        raise BenchError(f"model {adapter.name!r} returned {len(fresh)} predictions for a batch of {len(todo)}")
    return list(fresh)


def seed_torch(seed: int) -> None:
    """Seed torch's generators (imported only now: a model is about to run)."""
    import torch

    torch.manual_seed(seed)


def merge_shards(task: Task, dataset: Dataset, shards: Sequence[ShardResult], dialect: str | None = None
                 ) -> list[Metric]:
    """Fresh metrics holding every shard's state, folded in shard (= sample) order."""
    metrics = task.metrics(dataset.info, dialect)
    for shard in shards:
        if len(shard.states) != len(metrics):
            raise RuntimeError("shards disagree on the task's metrics")
        for metric, state in zip(metrics, shard.states):
            metric.merge_state(state)
    return metrics


def _recorder(shard: ShardResult, device: str) -> LatencyRecorder:
    return LatencyRecorder(device=device, batch_seconds=list(shard.batch_seconds), batch_sizes=list(shard.batch_sizes),
                           batch_shapes=list(shard.batch_shapes), batch_stages=list(shard.batch_stages))


def throughput_summary(shards: Sequence[ShardResult], device: str) -> dict[str, Any]:
    """Latency percentiles over every rank's batches; images/s as the ranks' rates added up (they ran at once).

    A rank with no timed batch after its warm-up makes the whole summary unreliable, with no images/s."""
    pooled = LatencyRecorder(device=device, warmup_batches=0)
    rates = []
    reliable = True
    skipped = 0
    for shard in shards:
        recorder = _recorder(shard, device)
        summary = recorder.summary()
        rates.append(summary["images_per_s"])
        reliable = reliable and bool(summary.get("reliable", True))
        skip = int(summary.get("warmup_batches", 0))
        skipped += skip
        for index in range(skip, len(shard.batch_seconds)):
            pooled.add(shard.batch_seconds[index], shard.batch_sizes[index],
                       None, shard.batch_stages[index] if index < len(shard.batch_stages) else None)
    if len(shards) == 1:
        summary = _recorder(shards[0], device).summary()
    else:
        summary = pooled.summary()
        summary["images_per_s"] = float(sum(rates)) if reliable and None not in rates else None
        summary["warmup_batches"] = skipped  # each rank's own warm-up
        summary["per_rank_images_per_s"] = [None if rate is None else float(rate) for rate in rates]
        if not reliable:
            summary["reliable"] = False
    summary["world_size"] = len(shards)
    summary["reliable"] = reliable if len(shards) > 1 else bool(summary.get("reliable", True))
    summary["predicted_samples"] = sum(shard.predicted for shard in shards)
    summary["cached_samples"] = sum(shard.cached for shard in shards)
    memory: dict[str, float] = {}
    for shard in shards:  # the largest rank's peak: each process had its own memory
        for name, value in shard.memory.items():
            memory[name] = max(memory.get(name, 0.0), float(value))
    summary.update(memory)
    return summary


def finish(task: Task, dataset: Dataset, shards: Sequence[ShardResult], device: str, dialect: str | None = None
           ) -> Evaluation:
    metrics = merge_shards(task, dataset, shards, dialect)
    result = merge_results([metric.compute() for metric in metrics])
    records = [record for shard in shards for record in shard.records]
    return Evaluation(result=result, records=records, throughput=throughput_summary(shards, device),
                      samples=sum(shard.samples for shard in shards), metrics=metrics)


def evaluate(
    task: Task,
    dataset: Dataset,
    adapter: Adapter,
    *,
    indices: Sequence[int],
    batch_size: int = 8,
    on_batch: Callable[[int], None] | None = None,
    cache: PredictionCache | None = None,
    dialect: str | None = None,
    submission: SubmissionFormat | None = None,
    workers: int = 0,
) -> Evaluation:
    """Single-process evaluation: one shard, scored on the metrics that saw it."""
    metrics, shard = run_shard(task, dataset, adapter, indices=indices, batch_size=batch_size, on_batch=on_batch,
                               cache=cache, dialect=dialect, submission=submission, workers=workers)
    result = merge_results([metric.compute() for metric in metrics])
    return Evaluation(result=result, records=shard.records, throughput=throughput_summary([shard], adapter.device),
                      samples=shard.samples, metrics=metrics)
