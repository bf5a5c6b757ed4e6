"""Dataset x adapter -> predictions -> metrics: the one loop every task runs through.

Images are decoded before the model's clock starts, so latency measures the adapter (preprocessing, forward,
postprocessing) and not the disk.  Metrics see every batch in order and never depend on the batch size.

The loop is split in two so that several processes can share one evaluation: ``run_shard`` predicts and feeds
the metrics for some samples and returns a picklable ``ShardResult``; ``finish`` merges shards (in sample order)
into fresh metrics and scores them.  A single process is simply one shard.

What is scored is the dataset's protocol (``Task.metrics(info, dialect)``), and every prediction also goes to
the protocol's submission format when one is given, so the files a run writes are exactly what it scored.  The
same loop serves ``bench eval``: there the "model" is a predictions-file adapter reading those files back.
"""
from __future__ import annotations

import warnings
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
from harness.run.latency import LatencyRecorder


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
) -> tuple[list[Metric], ShardResult]:
    """Predict (or fetch from ``cache``) and score ``indices`` in order.

    Cached samples are not sent to the model; the rest of each batch is, as one call, and stored as one chunk
    right away, so an interruption loses at most the batch in flight.  Timings of cached chunks are replayed
    in the order they are first used, so a fully cached re-run reports the throughput originally measured.
    """
    if batch_size < 1:
        raise BenchError(f"batch size must be at least 1, got {batch_size}")
    metrics = task.metrics(dataset.info, dialect)
    recorder = LatencyRecorder(device=adapter.device)
    records: list[dict[str, Any]] = []
    replayed: set[Any] = set()
    predicted = cached = 0
    for start in range(0, len(indices), batch_size):
        samples = [dataset[i] for i in indices[start : start + batch_size]]
        predictions: list[Any] = [MISSING] * len(samples)
        if cache is not None:
            for slot, sample in enumerate(samples):
                predictions[slot] = cache.get(sample.sample_id, MISSING, sample=sample)
                chunk = cache.chunk_of(sample.sample_id) if predictions[slot] is not MISSING else None
                if chunk is not None and chunk not in replayed:
                    replayed.add(chunk)
                    timing = cache.timing(chunk)
                    recorder.batch_seconds.append(timing.seconds)
                    recorder.batch_sizes.append(timing.batch_size)
        missing = [slot for slot, prediction in enumerate(predictions) if prediction is MISSING]
        cached += len(samples) - len(missing)
        if missing:
            todo = [samples[slot] for slot in missing]
            if getattr(adapter, "needs_images", True):
                for sample in todo:
                    sample.preload()
            with recorder.measure(len(todo)):
                fresh = adapter.predict(todo)
            if len(fresh) != len(todo):
                raise BenchError(
                    f"model {adapter.name!r} returned {len(fresh)} predictions for a batch of {len(todo)}"
                )
            if cache is not None:
                try:
                    cache.put([sample.sample_id for sample in todo], fresh, recorder.batch_seconds[-1], samples=todo)
                except CodecError as exc:  # e.g. a prediction type nobody registered: run on, uncached
                    warnings.warn(f"prediction cache disabled for {adapter.name!r}: {exc}", stacklevel=2)
                    cache = None
            for slot, prediction in zip(missing, fresh):
                predictions[slot] = prediction
            predicted += len(todo)
        for metric in metrics:
            metric.update(samples, predictions)
        if submission is not None:
            for sample, prediction in zip(samples, predictions):
                records.extend(submission.add(sample, prediction))
        if on_batch is not None:
            on_batch(len(samples))
    shard = ShardResult(
        states=[metric.state_dict() for metric in metrics], records=records,
        batch_seconds=list(recorder.batch_seconds), batch_sizes=list(recorder.batch_sizes),
        samples=len(indices), predicted=predicted, cached=cached,
    )
    return metrics, shard


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


def throughput_summary(shards: Sequence[ShardResult], device: str) -> dict[str, Any]:
    """Latency percentiles over every rank's batches; images/s as the ranks' rates added up (they ran at once)."""
    pooled = LatencyRecorder(device=device, warmup_batches=0)
    rates = []
    reliable = True
    skipped = 0
    for shard in shards:
        recorder = LatencyRecorder(device=device, batch_seconds=list(shard.batch_seconds), batch_sizes=list(shard.batch_sizes))
        summary = recorder.summary()
        rates.append(summary["images_per_s"])
        reliable = reliable and bool(summary.get("reliable", True))
        skip = summary.get("warmup_batches", 0)
        skipped += skip
        pooled.batch_seconds += shard.batch_seconds[skip:]
        pooled.batch_sizes += shard.batch_sizes[skip:]
    if len(shards) == 1:
        summary = LatencyRecorder(device=device, batch_seconds=list(shards[0].batch_seconds),
                                  batch_sizes=list(shards[0].batch_sizes)).summary()
    else:
        summary = pooled.summary()
        summary["images_per_s"] = float(sum(rates))
        summary["warmup_batches"] = skipped  # each rank's first batch
        summary["per_rank_images_per_s"] = [float(rate) for rate in rates]
    summary["world_size"] = len(shards)
    summary["reliable"] = reliable if len(shards) > 1 else bool(summary.get("reliable", True))
    summary["predicted_samples"] = sum(shard.predicted for shard in shards)
    summary["cached_samples"] = sum(shard.cached for shard in shards)
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
) -> Evaluation:
    """Single-process evaluation: one shard, scored on the metrics that saw it."""
    metrics, shard = run_shard(task, dataset, adapter, indices=indices, batch_size=batch_size, on_batch=on_batch,
                               cache=cache, dialect=dialect, submission=submission)
    result = merge_results([metric.compute() for metric in metrics])
    return Evaluation(result=result, records=shard.records, throughput=throughput_summary([shard], adapter.device),
                      samples=shard.samples, metrics=metrics)
