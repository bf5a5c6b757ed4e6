"""``prior-boxes`` and ``prior-boxes-mask``: the trivial baselines, which never look at the pixels.

Fitting keeps three statistics of the train split: the k-means box sizes of its objects, how many objects each
size holds, and the class frequencies.  Every image then gets the same boxes: each size centred on every cell
of a fixed grid (positions relative to the image, sizes in pixels, as objects are), each box once per class,
scored by class frequency x size frequency (classes the train split never shows are left out).  Sizes x cells x
classes seen stays within COCO's 100 detections per image.  A learned model that does not clearly beat this has
learned nothing about where objects are.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from harness.core.catalog import ADAPTERS
from adapters.inrepo.detection.adapter import InRepoDetectionAdapter
from adapters.inrepo.detection.detector_weights import Checkpoint
from harness.core.errors import DataError
from harness.core.structures import DetectionPrediction

SIZES = 4
GRID = (2, 2)  # rows, columns


def fit_prior_boxes(boxes_wh: np.ndarray, labels: np.ndarray, num_classes: int, seed: int = 0) -> dict[str, Any]:
    """The baseline's parameters from the train objects' (N, 2) box sizes and (N,) class indices."""
    import torch
    from scipy.cluster.vq import kmeans2

    boxes_wh = np.asarray(boxes_wh, np.float64).reshape(-1, 2)
    if len(boxes_wh) < SIZES:
        raise DataError(f"fitting prior boxes needs at least {SIZES} objects, found {len(boxes_wh)}")
    centres, assignment = kmeans2(np.log(boxes_wh), SIZES, seed=seed, minit="++")
    size_share = np.bincount(assignment, minlength=SIZES) / len(assignment)
    class_share = np.bincount(np.asarray(labels, np.int64), minlength=num_classes) / len(labels)
    order = np.argsort(-size_share)
    return {
        "sizes": torch.from_numpy(np.exp(centres[order])),
        "size_share": torch.from_numpy(size_share[order]),
        "class_share": torch.from_numpy(class_share),
        "grid": torch.tensor(GRID, dtype=torch.int64),
    }


def prior_detections(parameters: dict[str, Any], height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """xyxy boxes, scores and class indices of the fixed detections on a ``height`` x ``width`` image, best first."""
    sizes = parameters["sizes"].numpy()
    size_share = parameters["size_share"].numpy()
    class_share = parameters["class_share"].numpy()
    rows, columns = (int(v) for v in parameters["grid"])
    centres_y = (np.arange(rows) + 0.5) / rows * height
    centres_x = (np.arange(columns) + 0.5) / columns * width
    boxes, scores, classes = [], [], []
    for size, size_weight in zip(sizes, size_share):
        for cy in centres_y:
            for cx in centres_x:
                box = [max(cx - size[0] / 2, 0), max(cy - size[1] / 2, 0),
                       min(cx + size[0] / 2, width), min(cy + size[1] / 2, height)]
                for index, class_weight in enumerate(class_share):
                    if class_weight <= 0:  # a class absent from the train split (Cityscapes' mini has 3 of 8)
                        continue
                    boxes.append(box)
                    scores.append(size_weight * class_weight)
                    classes.append(index)
    order = np.argsort(-np.asarray(scores), kind="stable")
    return (np.asarray(boxes, np.float64).reshape(-1, 4)[order], np.asarray(scores, np.float64)[order],
            np.asarray(classes, np.int64)[order])


class PriorBoxesBase(InRepoDetectionAdapter):
    kind = "prior-boxes"

    def build(self, checkpoint: Checkpoint) -> dict[str, Any]:
        return checkpoint.network

    def _predict_image(self, image: np.ndarray) -> DetectionPrediction:
        from adapters.inrepo.detection.postprocess import filled_box_masks, xyxy_to_xywh

        height, width = image.shape[:2]
        boxes, scores, classes = prior_detections(self.network, height, width)
        return DetectionPrediction(
            boxes=xyxy_to_xywh(boxes), scores=scores, labels=self.labels_of(classes),
            masks=filled_box_masks(boxes, height, width) if self.task == "instance" else None,
        )


@ADAPTERS.register("prior-boxes")
class PriorBoxes(PriorBoxesBase):
    task = "detection"
    model_name = "prior-boxes"


@ADAPTERS.register("prior-boxes-mask")
class PriorBoxesMask(PriorBoxesBase):
    task = "instance"
    model_name = "prior-boxes-mask"
