"""Dataset x adapter -> predictions -> metrics: the one loop every task runs through.

Images are decoded before the model's clock starts, so latency measures the adapter (preprocessing, forward,
postprocessing) and not the disk.  Metrics see every batch in order and never depend on the batch size.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from adapters.base import Adapter
from harness.datasets.base import Dataset
from harness.errors import BenchError
from harness.metrics.base import MetricResult
from harness.tasks.base import Task
from harness.throughput import LatencyRecorder


@dataclass
class Evaluation:
    """Everything one (dataset, model) evaluation produced, before it is written anywhere."""

    result: MetricResult
    records: list[dict[str, Any]]
    throughput: dict[str, Any]
    samples: int
    extra: dict[str, Any] = field(default_factory=dict)


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


def evaluate(
    task: Task,
    dataset: Dataset,
    adapter: Adapter,
    *,
    indices: Sequence[int],
    batch_size: int = 8,
    on_batch: Callable[[int], None] | None = None,
) -> Evaluation:
    if batch_size < 1:
        raise BenchError(f"batch size must be at least 1, got {batch_size}")
    metrics = task.metrics(dataset.info)
    recorder = LatencyRecorder(device=adapter.device)
    records: list[dict[str, Any]] = []
    for start in range(0, len(indices), batch_size):
        samples = [dataset[i] for i in indices[start : start + batch_size]]
        for sample in samples:
            sample.preload()
        with recorder.measure(len(samples)):
            predictions = adapter.predict(samples)
        if len(predictions) != len(samples):
            raise BenchError(
                f"model {adapter.name!r} returned {len(predictions)} predictions for a batch of {len(samples)}"
            )
        for metric in metrics:
            metric.update(samples, predictions)
        for sample, prediction in zip(samples, predictions):
            records.extend(task.to_records(sample, prediction, dataset.info))
        if on_batch is not None:
            on_batch(len(samples))
    result = merge_results([metric.compute() for metric in metrics])
    return Evaluation(result=result, records=records, throughput=recorder.summary(), samples=len(indices))
