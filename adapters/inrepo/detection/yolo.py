"""A YOLO-style grid detector (Redmon et al., "You Only Look Once", CVPR 2016) in miniature.

As in YOLOv1: the image is divided into a grid; the cell containing an object's centre is responsible for it;
each cell predicts B boxes, each (x, y, sqrt w, sqrt h, confidence), and one set of class probabilities shared by
its boxes.  x, y are the centre's offset within the cell, sqrt w and sqrt h the square roots of the box's width and
height as fractions of the (training) canvas, so that the same error matters more for small boxes.  Of a
responsible cell's B boxes, the one with the highest current IoU with the object is "responsible" and learns the
box, with IoU as its confidence target; every other box learns confidence 0.  The loss is YOLOv1's sum of
squared errors with lambda_coord = 5 and lambda_noobj = 0.5.  At test time a box's class-specific score is
confidence x class probability, followed by per-class NMS.

In miniature: the grid is fully convolutional (stride 8 cells, 24 x 24 on the 192 px canvas, instead of a fully
connected 7 x 7), since the embedded objects are 12-66 px and several would share a 7 x 7 cell; a small top-down
merge gives the stride-8 cells the context of the stride-32 map.  A stride-16 grid did worse (AP 0.15 vs 0.22 after
20 epochs): small objects share cells.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from adapters.inrepo.detection.backbone import Backbone, FeaturePyramid
from adapters.inrepo.detection.network import conv_bn
from adapters.inrepo.detection.postprocess import Detections, suppress
from adapters.inrepo.detection.targets_classic import ImageTargets

STRIDE = 8
BOXES_PER_CELL = 2
#: box sizes are fractions of this many pixels (the training canvas)
UNIT = 192.0
LAMBDA_COORD = 5.0
#: the paper's 0.5 for 7 x 7 x 2 = 98 predictors, scaled to the 24 x 24 x 2 = 1152 of the 192 px canvas, so that the
#: no-object term weighs against the few responsible boxes as in the paper (0.5 itself drove every confidence
#: towards 0: AP 0.04 after 20 epochs; 0.15 gave AP 0.14, this 0.22)
LAMBDA_NOOBJ = 0.5 * 98 / 1152
SCORE_THRESHOLD = 0.001
CANDIDATES = 300


class YOLO(nn.Module):
    def __init__(self, num_classes: int, width: int = 64) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.backbone = Backbone()
        self.neck = FeaturePyramid(self.backbone.widths, width, levels=(1,))
        self.head = nn.Sequential(conv_bn(width, width), conv_bn(width, width),
                                  nn.Conv2d(width, BOXES_PER_CELL * 5 + num_classes, 1))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> boxes (B, h, w, BOXES_PER_CELL, 5): sigmoid(x, y, sqrt w, sqrt h, confidence), and class
        probabilities (B, h, w, C)."""
        [features] = self.neck(self.backbone(images))
        raw = self.head(features).permute(0, 2, 3, 1)
        boxes = raw[..., : BOXES_PER_CELL * 5].sigmoid().reshape(*raw.shape[:3], BOXES_PER_CELL, 5)
        return boxes, raw[..., BOXES_PER_CELL * 5:].softmax(dim=-1)

    def loss(self, images: torch.Tensor, targets: list[ImageTargets]) -> torch.Tensor:
        boxes, probabilities = self(images)
        return yolo_loss(boxes, probabilities, targets)

    def detect(self, images: torch.Tensor, height: int, width: int) -> Detections:
        boxes, probabilities = self(images)
        cells_h, cells_w = min(-(-height // STRIDE), boxes.shape[1]), min(-(-width // STRIDE), boxes.shape[2])
        boxes, probabilities = boxes[0, :cells_h, :cells_w], probabilities[0, :cells_h, :cells_w]
        xyxy = cell_boxes(boxes)  # (h, w, B, 4)
        scores = boxes[..., 4:5] * probabilities[:, :, None, :]  # (h, w, B, C)
        flat = scores.reshape(-1)
        top = torch.topk(flat, min(CANDIDATES, flat.numel()))
        chosen = top.values > SCORE_THRESHOLD
        index = top.indices[chosen]
        picked = xyxy.reshape(-1, 4)[index // self.num_classes]
        limits = picked.new_tensor([width, height, width, height])
        picked = torch.minimum(picked.clamp(min=0.0), limits)
        return suppress(picked, top.values[chosen], index % self.num_classes)


def cell_boxes(boxes: torch.Tensor) -> torch.Tensor:
    """(..., h, w, B, 5) predictions -> (..., h, w, B, 4) xyxy boxes in pixels."""
    height, width = boxes.shape[-4], boxes.shape[-3]
    ys = torch.arange(height, dtype=boxes.dtype, device=boxes.device)[:, None, None]
    xs = torch.arange(width, dtype=boxes.dtype, device=boxes.device)[None, :, None]
    cx = (xs + boxes[..., 0]) * STRIDE
    cy = (ys + boxes[..., 1]) * STRIDE
    w, h = (boxes[..., 2] ** 2) * UNIT, (boxes[..., 3] ** 2) * UNIT
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def yolo_loss(boxes: torch.Tensor, probabilities: torch.Tensor, targets: list[ImageTargets]) -> torch.Tensor:
    """YOLOv1's sum-squared loss, summed over the batch and divided by the number of images."""
    from torchvision.ops import box_iou

    batch, height, width = boxes.shape[:3]
    with torch.no_grad():
        xyxy = cell_boxes(boxes)
    responsible = torch.zeros(boxes.shape[:4], dtype=torch.bool)
    coord_target = torch.zeros((*boxes.shape[:4], 4))
    confidence_target = torch.zeros(boxes.shape[:4])
    class_target = torch.zeros_like(probabilities)
    has_object = torch.zeros((batch, height, width), dtype=torch.bool)
    noobj = torch.ones(boxes.shape[:4], dtype=torch.bool)
    for image, target in enumerate(targets):
        for x0, y0, x1, y1 in target.ignored.tolist():  # cells centred in an ignored region learn nothing
            rows = slice(max(int(y0 // STRIDE), 0), max(int(-(-y1 // STRIDE)), 0))
            cols = slice(max(int(x0 // STRIDE), 0), max(int(-(-x1 // STRIDE)), 0))
            noobj[image, rows, cols] = False
        # larger objects first, so that a small object sharing a cell wins it (its cell has no other chance)
        order = torch.argsort((target.boxes[:, 2:] - target.boxes[:, :2]).prod(dim=1), descending=True)
        for index in order.tolist():
            box = target.boxes[index]
            centre = (box[:2] + box[2:]) / 2
            col = min(max(int(centre[0] // STRIDE), 0), width - 1)
            row = min(max(int(centre[1] // STRIDE), 0), height - 1)
            ious = box_iou(xyxy[image, row, col], box[None])[:, 0]
            best = int(torch.argmax(ious))
            responsible[image, row, col] = False
            responsible[image, row, col, best] = True
            noobj[image, row, col] = True
            noobj[image, row, col, best] = False
            size = (box[2:] - box[:2]).clamp(min=1e-3)
            coord_target[image, row, col, best] = torch.stack([
                centre[0] / STRIDE - col, centre[1] / STRIDE - row,
                torch.sqrt(size[0] / UNIT), torch.sqrt(size[1] / UNIT)])
            confidence_target[image, row, col] = 0.0
            confidence_target[image, row, col, best] = ious[best]
            has_object[image, row, col] = True
            class_target[image, row, col] = F.one_hot(target.labels[index], probabilities.shape[-1]).float()
    coord = ((boxes[..., :4] - coord_target) ** 2).sum(dim=-1)
    confidence = (boxes[..., 4] - confidence_target) ** 2
    classes = ((probabilities - class_target) ** 2).sum(dim=-1)
    total = (LAMBDA_COORD * (coord * responsible).sum() + (confidence * responsible).sum()
             + LAMBDA_NOOBJ * (confidence * noobj).sum() + (classes * has_object).sum())
    return total / batch
