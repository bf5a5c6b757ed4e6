"""Adapters of the classic detectors: ``yolo``, ``ssd``, ``retinanet``, ``detr`` (detection), ``mask-rcnn``
(instance); networks and training in ``classics`` and the per-family modules.

They run exactly like ``centernet`` (``adapter.InRepoDetectionAdapter``): one image at a time, zero-padded at its
bottom and right to the 192 px training canvas (or a larger image to a multiple of 16), torch pinned to one
thread, so an image's detections never depend on its batch; nothing in the padding is ever a detection.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from harness.core.catalog import ADAPTERS
from adapters.inrepo.detection.adapter import InRepoDetectionAdapter, padded_image
from harness.core.structures import DetectionPrediction

#: instance detections that get a mask (the mask head runs per detection)
MASK_DETECTIONS = 50


class ClassicDetectorAdapter(InRepoDetectionAdapter):
    """A classic family (``classics.MODELS``); its checkpoint ``kind`` is its model name, its ``network_path`` the
    class ``classics.build`` trains (a test checks they agree)."""

    task = "detection"

    def torch_module(self) -> Any:
        return self.network

    def _predict_image(self, image: np.ndarray) -> DetectionPrediction:
        from adapters.inrepo.detection.postprocess import xyxy_to_xywh

        found = self.network.detect(padded_image(image, self.device), image.shape[0], image.shape[1])
        return DetectionPrediction(
            boxes=xyxy_to_xywh(found.boxes.double().cpu().numpy()),
            scores=found.scores.double().cpu().numpy(),
            labels=self.labels_of(found.classes.cpu().numpy()),
        )


@ADAPTERS.register("yolo")
class YOLOAdapter(ClassicDetectorAdapter):
    """YOLOv1-style grid: responsible cells, B boxes per cell, sum-squared loss (``detection.yolo``)."""

    model_name = kind = "yolo"
    network_path = "adapters.inrepo.detection.yolo:YOLO"


@ADAPTERS.register("ssd")
class SSDAdapter(ClassicDetectorAdapter):
    """SSD-style default boxes on three scales, softmax classes, hard negative mining 3:1 (``detection.ssd``)."""

    model_name = kind = "ssd"
    network_path = "adapters.inrepo.detection.ssd:SSD"


@ADAPTERS.register("retinanet")
class RetinaNetAdapter(ClassicDetectorAdapter):
    """RetinaNet-style FPN with shared class/box subnets and the sigmoid focal loss (``detection.retinanet``)."""

    model_name = kind = "retinanet"
    network_path = "adapters.inrepo.detection.retinanet:RetinaNet"


@ADAPTERS.register("detr")
class DETRAdapter(ClassicDetectorAdapter):
    """DETR-style set prediction: transformer, object queries, Hungarian matching (``detection.detr``)."""

    model_name = kind = "detr"
    network_path = "adapters.inrepo.detection.detr:DETR"


@ADAPTERS.register("mask-rcnn")
class MaskRCNNAdapter(ClassicDetectorAdapter):
    """Mask R-CNN-style two-stage detector: RPN, RoIAlign, box and mask heads (``detection.two_stage``)."""

    task = "instance"
    model_name = kind = "mask-rcnn"
    network_path = "adapters.inrepo.detection.two_stage:MaskRCNN"

    def _predict_image(self, image: np.ndarray) -> DetectionPrediction:
        from adapters.inrepo.detection.postprocess import encode_masks, paste_masks, xyxy_to_xywh

        found, logits = self.network.detect_masks(padded_image(image, self.device), image.shape[0], image.shape[1],
                                                  MASK_DETECTIONS)
        masks = paste_masks(logits.cpu(), found.boxes.cpu(), image.shape[0], image.shape[1])
        return DetectionPrediction(
            boxes=xyxy_to_xywh(found.boxes.double().cpu().numpy()),
            scores=found.scores.double().cpu().numpy(),
            labels=self.labels_of(found.classes.cpu().numpy()),
            masks=encode_masks(masks),
        )
