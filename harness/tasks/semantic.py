"""Semantic segmentation: one confusion matrix over the dataset; Cityscapes adds iIoU and category scores."""
from __future__ import annotations

from typing import Any

from harness.datasets.base import DatasetInfo
from harness.metrics import METRICS
from harness.metrics.base import Metric
from harness.structures import Sample, SemanticPrediction
from harness.tasks import TASKS
from harness.tasks.base import Task


@TASKS.register("semantic")
class SemanticTask(Task):
    name = "semantic"
    default_dataset = "voc"
    headline = "mIoU"
    leaderboard_columns = ("mIoU", "mAcc", "aAcc", "mDice", "iIoU")

    def metrics(self, dataset: DatasetInfo) -> list[Metric]:
        """Predictions and targets are in the dataset's evaluation index space (0..C-1, ignore elsewhere).

        The default averaging is mmsegmentation's nanmean over classes present; the official ADE20K devkit's
        mean over all 150 classes is the ``ade20k-devkit`` dialect of ``bench eval``.
        """
        ignore = 255 if dataset.ignore_index is None else dataset.ignore_index
        return [METRICS.get("semantic")(num_classes=len(dataset.classes), class_names=dataset.classes, ignore_index=ignore)]

    def to_records(self, sample: Sample, prediction: SemanticPrediction, dataset: DatasetInfo) -> list[dict[str, Any]]:
        """Label maps are not written to predictions.json (they would dwarf the report)."""
        return []
