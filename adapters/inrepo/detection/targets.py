"""Training targets and losses of the detector (TTFNet's recipe, which converges in few epochs).

Heatmap: per object, a Gaussian whose spread follows the box (sigma = ALPHA * side / 6) with 1 at the cell
holding the box centre, and CenterNet's penalty-reduced focal loss.  Boxes: every cell within the central
BETA-scaled part of a box regresses that box (GIoU loss), weighted by the Gaussian and normalised per object to
log(area), so big objects do not drown small ones; a cell inside two boxes belongs to the smaller.  Cells under a
crowd region are ignored by both losses, as the COCO evaluator ignores detections matched to crowds.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from adapters.inrepo.detection.network import STRIDE

ALPHA = 0.54
BETA = 0.54
MIN_SIGMA = 0.3 * STRIDE
BOX_LOSS_WEIGHT = 5.0


def build_targets(boxes: np.ndarray, labels: np.ndarray, crowd: np.ndarray, num_classes: int, height: int, width: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One image's targets on its (height, width) cell grid.

    Returns heatmap (C, h, w), ignore (h, w) bool, box targets (4, h, w) xyxy pixels, box weights (h, w).
    """
    heatmap = np.zeros((num_classes, height, width), np.float32)
    ignore = np.zeros((height, width), bool)
    box_targets = np.zeros((4, height, width), np.float32)
    box_weights = np.zeros((height, width), np.float32)
    cx = (np.arange(width, dtype=np.float32) + 0.5) * STRIDE
    cy = (np.arange(height, dtype=np.float32) + 0.5) * STRIDE
    for x0, y0, x1, y1 in boxes[crowd]:
        ignore[_cell_range(y0, y1, height), _cell_range(x0, x1, width)] = True
    objects = np.flatnonzero(~crowd)
    areas = np.prod(boxes[objects, 2:] - boxes[objects, :2], axis=1)
    for index in objects[np.argsort(-areas)]:  # large first, so smaller objects overwrite shared cells
        x0, y0, x1, y1 = boxes[index]
        w, h = x1 - x0, y1 - y0
        centre_x, centre_y = (x0 + x1) / 2, (y0 + y1) / 2
        sx, sy = max(ALPHA * w / 6, MIN_SIGMA), max(ALPHA * h / 6, MIN_SIGMA)
        gx = np.exp(-((cx - centre_x) ** 2) / (2 * sx**2))
        gy = np.exp(-((cy - centre_y) ** 2) / (2 * sy**2))
        gaussian = gy[:, None] * gx[None, :]
        peak_y = min(max(int(centre_y // STRIDE), 0), height - 1)
        peak_x = min(max(int(centre_x // STRIDE), 0), width - 1)
        gaussian[peak_y, peak_x] = 1.0
        label = labels[index]
        np.maximum(heatmap[label], gaussian, out=heatmap[label])
        # regression cells: centres inside the central BETA part of the box, plus the peak cell
        inside_x = np.abs(cx - centre_x) <= BETA * w / 2
        inside_y = np.abs(cy - centre_y) <= BETA * h / 2
        region = inside_y[:, None] & inside_x[None, :]
        region[peak_y, peak_x] = True
        weights = np.where(region, gaussian, 0.0)
        weights *= np.log(max(w * h, 2.0)) / weights.sum()
        box_targets[:, region] = np.array([x0, y0, x1, y1], np.float32)[:, None]
        box_weights[region] = weights[region]
    return heatmap, ignore, box_targets, box_weights


def _cell_range(low: float, high: float, cells: int) -> slice:
    return slice(max(int(low // STRIDE), 0), min(int(np.ceil(high / STRIDE)), cells))


def focal_loss(logits: torch.Tensor, target: torch.Tensor, ignore: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, summed and divided by the number of objects."""
    probability = logits.sigmoid().clamp(1e-4, 1 - 1e-4)
    positive = target.eq(1.0).float()
    keep = (~ignore)[:, None].float()
    positive_loss = -F.logsigmoid(logits) * (1 - probability) ** 2 * positive
    negative_loss = -F.logsigmoid(-logits) * probability**2 * (1 - target) ** 4 * (1 - positive) * keep
    return (positive_loss.sum() + negative_loss.sum()) / positive.sum().clamp(min=1.0)


def giou_loss(predicted: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted mean GIoU loss over cells with weight > 0; boxes (B, 4, h, w) xyxy."""
    from torchvision.ops import generalized_box_iou_loss

    chosen = weights > 0
    if not chosen.any():
        return predicted.sum() * 0.0
    pred = predicted.permute(0, 2, 3, 1)[chosen]
    goal = target.permute(0, 2, 3, 1)[chosen]
    losses = generalized_box_iou_loss(pred, goal, reduction="none")
    return (losses * weights[chosen]).sum() / weights[chosen].sum().clamp(min=1e-6)
