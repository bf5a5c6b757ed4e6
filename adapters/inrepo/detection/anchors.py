"""Anchors (default boxes), their matching to ground truth, and the box coding the anchor-based detectors share.

Anchors are laid out at the centre of every cell of a feature map of a given stride, in the order
(cell row, cell column, anchor shape), which is the order the heads' outputs are flattened in.  The box coding is
Faster R-CNN's / SSD's: centre offsets in units of the anchor's size and log size ratios, divided by the
"variances" (0.1, 0.2) as in SSD, so that the regression targets have roughly unit spread.
"""
from __future__ import annotations

from typing import Sequence

import torch

#: SSD's variances: centre offsets are divided by 0.1 of the anchor's size, log size ratios by 0.2
VARIANCES = (0.1, 0.2)
#: log size ratios are clamped before exp when decoding, so an untrained head cannot overflow
MAX_LOG_RATIO = 4.0


def anchor_shapes(sizes: Sequence[float], ratios: Sequence[float]) -> torch.Tensor:
    """(K, 2) widths and heights: every size at every aspect ratio (width / height = ratio, area = size^2)."""
    shapes = [(size * ratio**0.5, size / ratio**0.5) for size in sizes for ratio in ratios]
    return torch.tensor(shapes, dtype=torch.float32)


def grid_anchors(height: int, width: int, stride: int, shapes: torch.Tensor) -> torch.Tensor:
    """(height * width * K, 4) xyxy anchors centred on the cells of a ``stride`` map, in (row, col, shape) order."""
    ys = (torch.arange(height, dtype=torch.float32) + 0.5) * stride
    xs = (torch.arange(width, dtype=torch.float32) + 0.5) * stride
    cy, cx = torch.meshgrid(ys, xs, indexing="ij")
    centres = torch.stack([cx, cy], dim=-1).reshape(-1, 1, 2)
    half = shapes.reshape(1, -1, 2) / 2
    return torch.cat([centres - half, centres + half], dim=-1).reshape(-1, 4)


def encode(boxes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Regression targets (N, 4) of xyxy ``boxes`` relative to xyxy ``anchors``."""
    anchor_size = anchors[:, 2:] - anchors[:, :2]
    anchor_centre = anchors[:, :2] + anchor_size / 2
    size = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1e-3)
    centre = boxes[:, :2] + size / 2
    return torch.cat([(centre - anchor_centre) / anchor_size / VARIANCES[0],
                      torch.log(size / anchor_size) / VARIANCES[1]], dim=1)


def decode(deltas: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """The inverse of ``encode``: xyxy boxes (N, 4) from regression outputs and anchors."""
    anchor_size = anchors[:, 2:] - anchors[:, :2]
    anchor_centre = anchors[:, :2] + anchor_size / 2
    centre = anchor_centre + deltas[:, :2] * VARIANCES[0] * anchor_size
    size = anchor_size * torch.exp((deltas[:, 2:] * VARIANCES[1]).clamp(max=MAX_LOG_RATIO))
    return torch.cat([centre - size / 2, centre + size / 2], dim=1)


def match(anchors: torch.Tensor, boxes: torch.Tensor, positive_iou: float, negative_iou: float,
          best_match: bool = True) -> torch.Tensor:
    """Index of the box each anchor is assigned to; -1 background, -2 ignored (between the two thresholds).

    Anchors with IoU >= ``positive_iou`` to some box take the box of highest IoU; with ``best_match`` every box
    also takes the anchor(s) overlapping it most, even below the threshold (SSD's first matching step, and what
    Detectron's "low-quality matches" do), so no object is left without a positive.
    """
    from torchvision.ops import box_iou

    assigned = torch.full((len(anchors),), -1, dtype=torch.long)
    if len(boxes) == 0:
        return assigned
    iou = box_iou(anchors, boxes)
    best_iou, best_box = iou.max(dim=1)
    assigned[best_iou >= negative_iou] = -2
    positive = best_iou >= positive_iou
    assigned[positive] = best_box[positive]
    if best_match:
        best_for_box = iou.max(dim=0).values
        anchor_index, box_index = torch.nonzero((iou == best_for_box[None]) & (best_for_box[None] > 0),
                                                as_tuple=True)
        assigned[anchor_index] = box_index
    return assigned


def ignore_crowds(assigned: torch.Tensor, anchors: torch.Tensor, crowd_boxes: torch.Tensor,
                  threshold: float = 0.5) -> torch.Tensor:
    """Background anchors whose area lies mostly (> ``threshold``) inside a crowd / ignored region become
    ignored (-2): the evaluator ignores detections there, so they are neither positives nor negatives."""
    if len(crowd_boxes) == 0:
        return assigned
    top_left = torch.maximum(anchors[:, None, :2], crowd_boxes[None, :, :2])
    bottom_right = torch.minimum(anchors[:, None, 2:], crowd_boxes[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=-1)
    area = (anchors[:, 2:] - anchors[:, :2]).prod(dim=-1).clamp(min=1e-6)
    covered = (inter / area[:, None]).max(dim=1).values > threshold
    assigned = assigned.clone()
    assigned[covered & (assigned == -1)] = -2
    return assigned


def centres_inside(anchors: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Anchors whose centre lies in the image (not in the zero padding below and right of it)."""
    centre = (anchors[:, :2] + anchors[:, 2:]) / 2
    return (centre[:, 0] < width) & (centre[:, 1] < height)
