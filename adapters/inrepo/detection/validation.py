"""Score a detection/instance adapter on a dataset through the harness's own runner and task metrics.

Going through ``harness.runner.evaluate`` means the numbers a trainer prints are the numbers ``bench run``
reports (same metrics, same result conventions, same timing that excludes image decoding).
"""
from __future__ import annotations

from typing import Sequence

from adapters.base import Adapter
from harness.datasets.base import Dataset

KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100")


def evaluate_adapter(adapter: Adapter, dataset: Dataset, indices: Sequence[int] | None = None,
                     batch_size: int = 16) -> dict[str, float]:
    """The headline COCO numbers (mask numbers for instance models, plus ``bbox/AP``) and images/s."""
    from harness.runner import evaluate
    from harness.tasks import TASKS

    entry = TASKS.get(dataset.info.task)
    task = entry() if isinstance(entry, type) else entry
    adapter.check_compatible(dataset.info)
    chosen = list(range(len(dataset))) if indices is None else list(indices)
    evaluation = evaluate(task, dataset, adapter, indices=chosen, batch_size=batch_size)
    metrics = evaluation.result.metrics
    numbers = {key: float(metrics[key]) for key in KEYS if key in metrics}
    if "bbox/AP" in metrics:
        numbers["bbox/AP"] = float(metrics["bbox/AP"])
    numbers["images_per_s"] = float(evaluation.throughput["images_per_s"])
    return numbers
