"""Human pose keypoints: COCO OKS AP/AR, PCK@0.2 by box size, MPJPE in pixels."""
from __future__ import annotations

from typing import Any

from harness.datasets.base import DatasetInfo
from harness.metrics import METRICS
from harness.metrics.base import Metric
from harness.structures import KeypointsPrediction, Sample
from harness.tasks import TASKS
from harness.tasks.base import Task


@TASKS.register("keypoints")
class KeypointsTask(Task):
    name = "keypoints"
    default_dataset = "coco"
    headline = "AP"
    leaderboard_columns = ("AP", "AP50", "AP75", "APm", "APl", "AR", "PCK@0.2", "MPJPE")
    lower_is_better = frozenset({"MPJPE", "PA-MPJPE", "N-MPJPE"})

    def metrics(self, dataset: DatasetInfo) -> list[Metric]:
        return [
            METRICS.get("coco_keypoints")(categories=dataset.categories(), sigmas=dataset.sigmas),
            METRICS.get("pck")(alpha=0.2, joint_names=dataset.keypoint_names),
            METRICS.get("mpjpe")(),
        ]

    def to_records(self, sample: Sample, prediction: KeypointsPrediction, dataset: DatasetInfo) -> list[dict[str, Any]]:
        """COCO keypoint results.  No ``bbox`` key: pycocotools would then size each result by that box instead
        of its keypoints' extent, and re-scoring the file would disagree with the run's APm/APl."""
        category_id = dataset.category_ids[0]
        return [
            {
                "image_id": sample.sample_id,
                "category_id": category_id,
                "keypoints": [float(v) for v in keypoints.reshape(-1)],
                "score": float(score),
            }
            for keypoints, score in zip(prediction.keypoints, prediction.scores)
        ]
