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
from adapters.inrepo.detection.adapter import InRepoDetectionAdapter, load_network, padded_image
from adapters.inrepo.detection.detector_weights import Checkpoint
from harness.core.structures import DetectionPrediction

#: instance detections that get a mask (the mask head runs per detection)
MASK_DETECTIONS = 50


class ClassicDetectorAdapter(InRepoDetectionAdapter):
    """A classic family (``classics.MODELS``); its checkpoint ``kind`` is its model name."""

    task = "detection"

    def build(self, checkpoint: Checkpoint) -> Any:
        from adapters.inrepo.detection.classics import build

        network = build(self.model_name, len(checkpoint.classes))
        load_network(network, checkpoint.network, self.weights_file())
        return network.eval().to(self.device)

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


@ADAPTERS.register("ssd")
class SSDAdapter(ClassicDetectorAdapter):
    """SSD-style default boxes on three scales, softmax classes, hard negative mining 3:1 (``detection.ssd``)."""

    model_name = kind = "ssd"


@ADAPTERS.register("retinanet")
class RetinaNetAdapter(ClassicDetectorAdapter):
    """RetinaNet-style FPN with shared class/box subnets and the sigmoid focal loss (``detection.retinanet``)."""

    model_name = kind = "retinanet"


@ADAPTERS.register("detr")
class DETRAdapter(ClassicDetectorAdapter):
    """DETR-style set prediction: transformer, object queries, Hungarian matching (``detection.detr``)."""

    model_name = kind = "detr"


@ADAPTERS.register("mask-rcnn")
class MaskRCNNAdapter(ClassicDetectorAdapter):
    """Mask R-CNN-style two-stage detector: RPN, RoIAlign, box and mask heads (``detection.two_stage``)."""

    task = "instance"
    model_name = kind = "mask-rcnn"

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
