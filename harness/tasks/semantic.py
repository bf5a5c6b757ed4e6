"""Semantic segmentation: one confusion matrix over the dataset; Cityscapes adds iIoU and category scores and
ADE20K averages over all 150 classes (their readers override the protocol)."""
from __future__ import annotations

from harness.core.protocol import MetricSpec, Protocol
from harness.tasks import TASKS
from harness.core.task import Task


@TASKS.register("semantic")
class SemanticTask(Task):
    """Predictions and targets are in the dataset's evaluation index space (0..C-1, ignore elsewhere)."""

    name = "semantic"
    default_dataset = "voc"
    default_protocol = Protocol(
        name="semantic-mmseg", version=1, metrics=(MetricSpec("semantic", {"dialect": "mmseg"}),),
        headline="mIoU", columns=("mIoU", "mAcc", "aAcc", "mDice", "iIoU"), submission="label-png",
        reference="mmsegmentation IoUMetric (nanmean over classes)",
    )
