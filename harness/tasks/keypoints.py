"""Human pose keypoints: COCO OKS AP/AR, PCK@0.2 by box size, MPJPE in pixels (MPII: PCKh, see its reader)."""
from __future__ import annotations

from harness.core.protocol import MetricSpec, Protocol
from harness.tasks import TASKS
from harness.core.task import Task


@TASKS.register("keypoints")
class KeypointsTask(Task):
    name = "keypoints"
    default_dataset = "coco"
    default_protocol = Protocol(
        name="coco-keypoints", version=1,
        metrics=(MetricSpec("coco_keypoints"), MetricSpec("pck", {"alpha": 0.2}), MetricSpec("mpjpe")),
        headline="AP", columns=("AP", "AP50", "AP75", "APm", "APl", "AR", "PCK@0.2", "MPJPE"),
        submission="coco-results", reference="pycocotools COCOeval (iouType keypoints)",
    )
