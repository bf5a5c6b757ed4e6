"""Object detection and instance segmentation: COCO AP/AR (pycocotools semantics) unless the dataset says
otherwise (VOC: the devkit's mAP; Cityscapes instances: the official instance-level AP)."""
from __future__ import annotations

from harness.core.protocol import MetricSpec, Protocol
from harness.tasks import TASKS
from harness.core.task import Task

BOX_COLUMNS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100")


@TASKS.register("detection")
class DetectionTask(Task):
    name = "detection"
    default_dataset = "coco"
    default_protocol = Protocol(
        name="coco-bbox", version=1, metrics=(MetricSpec("coco_bbox"),), headline="AP", columns=BOX_COLUMNS,
        submission="coco-results", reference="pycocotools COCOeval (iouType bbox)",
    )


@TASKS.register("instance")
class InstanceTask(Task):
    """Mask AP leads (plain names); the same detections' box AP is reported as ``bbox/AP`` and so on."""

    name = "instance"
    default_dataset = "coco"
    default_protocol = Protocol(
        name="coco-segm", version=1,
        metrics=(MetricSpec("coco_segm"), MetricSpec("coco_bbox", {"key_prefix": "bbox/"})),
        headline="AP", columns=(*BOX_COLUMNS, "bbox/AP"), submission="coco-results",
        reference="pycocotools COCOeval (iouType segm, results without bbox)",
    )
