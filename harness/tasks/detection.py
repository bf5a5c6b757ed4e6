"""Object detection and instance segmentation: COCO AP/AR (pycocotools semantics), VOC AP on VOC datasets."""
from __future__ import annotations

from typing import Any

import numpy as np

from harness.datasets.base import DatasetInfo
from harness.metrics import METRICS
from harness.metrics.base import Metric
from harness.structures import DetectionPrediction, Sample
from harness.tasks import TASKS
from harness.tasks.base import Task


def _is_voc(dataset: DatasetInfo) -> bool:
    return dataset.name.startswith("voc")


def box_records(sample: Sample, prediction: DetectionPrediction) -> list[dict[str, Any]]:
    return [
        {"image_id": sample.sample_id, "category_id": int(label), "bbox": [float(v) for v in box], "score": float(score)}
        for box, score, label in zip(np.asarray(prediction.boxes).reshape(-1, 4), prediction.scores, prediction.labels)
    ]


@TASKS.register("detection")
class DetectionTask(Task):
    name = "detection"
    default_dataset = "coco"
    headline = "AP"
    leaderboard_columns = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100", "mAP")

    def metrics(self, dataset: DatasetInfo) -> list[Metric]:
        metrics = [METRICS.get("coco_bbox")(categories=dataset.categories())]
        if _is_voc(dataset):
            names = dict(zip(dataset.category_ids, dataset.classes))
            metrics.append(METRICS.get("voc_ap")(class_names=names))
        return metrics

    def to_records(self, sample: Sample, prediction: DetectionPrediction, dataset: DatasetInfo) -> list[dict[str, Any]]:
        return box_records(sample, prediction)


@TASKS.register("instance")
class InstanceTask(Task):
    """Mask AP leads (plain names); the same detections' box AP is reported as ``bbox/AP`` and so on."""

    name = "instance"
    default_dataset = "coco"
    headline = "AP"
    leaderboard_columns = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100", "bbox/AP")

    def metrics(self, dataset: DatasetInfo) -> list[Metric]:
        return [
            METRICS.get("coco_segm")(categories=dataset.categories()),
            METRICS.get("coco_bbox")(categories=dataset.categories(), key_prefix="bbox/"),
        ]

    def to_records(self, sample: Sample, prediction: DetectionPrediction, dataset: DatasetInfo) -> list[dict[str, Any]]:
        """COCO segm results: RLE masks without ``bbox``, so pycocotools sizes them by mask area (as mmdet writes)."""
        records = box_records(sample, prediction)
        for record, mask in zip(records, prediction.masks or []):
            record.pop("bbox")
            counts = mask["counts"]
            record["segmentation"] = {"size": list(mask["size"]),
                                      "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}
        return records
