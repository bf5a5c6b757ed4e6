"""From network outputs to detections: heatmap peaks, boxes, class-wise NMS, and masks pasted at image size.

Peaks are 3x3 local maxima of the class heatmaps (CenterNet's cheap NMS); two neighbouring peaks of one object
still happen, so the boxes then go through ``torchvision.ops.batched_nms`` per class.  Cells whose centre lies in
the padding added to batch images of different sizes are never detections.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from pycocotools import mask as mask_codec
from torch.nn import functional as F

from adapters.inrepo.detection.network import STRIDE, distances_to_boxes

NMS_IOU = 0.5
MAX_DETECTIONS = 100
#: peaks considered before NMS
CANDIDATES = 200
MIN_BOX_SIDE = 0.5


@dataclass
class Detections:
    """One image's detections: xyxy boxes in image pixels, scores, class indices (0..C-1), best first."""

    boxes: torch.Tensor
    scores: torch.Tensor
    classes: torch.Tensor


def peak_scores(heatmap_logits: torch.Tensor) -> torch.Tensor:
    """Sigmoid scores, zero everywhere except at 3x3 local maxima."""
    scores = heatmap_logits.sigmoid()
    pooled = F.max_pool2d(scores, 3, stride=1, padding=1)
    return scores * (scores == pooled)


def decode(
    heatmap_logits: torch.Tensor,
    distances: torch.Tensor,
    image_sizes: Sequence[tuple[int, int]],
    *,
    max_detections: int = MAX_DETECTIONS,
    nms_iou: float = NMS_IOU,
) -> list[Detections]:
    """Detections per image; ``image_sizes`` are the (height, width) of the unpadded images."""
    scores = peak_scores(heatmap_logits)
    boxes = distances_to_boxes(distances)
    num_classes, height, width = scores.shape[1:]
    results = []
    for index, (image_h, image_w) in enumerate(image_sizes):
        valid_h, valid_w = min(-(-image_h // STRIDE), height), min(-(-image_w // STRIDE), width)
        image_scores = scores[index, :, :valid_h, :valid_w].reshape(-1)
        image_boxes = boxes[index, :, :valid_h, :valid_w].reshape(4, -1).T
        top = torch.topk(image_scores, min(CANDIDATES, image_scores.numel()))
        cells = top.indices % (valid_h * valid_w)
        classes = top.indices // (valid_h * valid_w)
        picked = image_boxes[cells]
        limits = picked.new_tensor([image_w, image_h, image_w, image_h])
        picked = torch.minimum(torch.clamp(picked, min=0.0), limits)
        results.append(suppress(picked, top.values, classes, nms_iou=nms_iou, max_detections=max_detections))
    return results


def suppress(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, *, nms_iou: float = NMS_IOU,
             max_detections: int = MAX_DETECTIONS) -> Detections:
    """Drop degenerate and zero-score boxes, then class-wise NMS; at most ``max_detections``, best first."""
    from torchvision.ops import batched_nms

    sides = boxes[:, 2:] - boxes[:, :2]
    usable = (sides >= MIN_BOX_SIDE).all(dim=1) & (scores > 0)
    boxes, scores, classes = boxes[usable], scores[usable], classes[usable]
    keep = batched_nms(boxes, scores, classes, nms_iou)[:max_detections]
    return Detections(boxes[keep], scores[keep], classes[keep])


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def paste_masks(logits: torch.Tensor, rois: torch.Tensor, height: int, width: int) -> np.ndarray:
    """(R, 1, S, S) logits over xyxy ``rois`` -> (H, W, R) uint8 masks (Fortran order, ready for RLE encoding).

    Each pixel takes the bilinear interpolation of the logits at its centre (grid_sample with
    align_corners=False maps the RoI's edges to the outer edges of the S x S cells, as RoIAlign sampled them).
    """
    masks = np.zeros((height, width, len(rois)), dtype=np.uint8, order="F")
    for index in range(len(rois)):
        x0, y0, x1, y1 = (float(v) for v in rois[index])
        left, top = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
        right, bottom = min(int(np.ceil(x1)), width), min(int(np.ceil(y1)), height)
        if right <= left or bottom <= top or x1 - x0 <= 0 or y1 - y0 <= 0:
            continue
        xs = (torch.arange(left, right, dtype=torch.float32) + 0.5 - x0) / (x1 - x0) * 2 - 1
        ys = (torch.arange(top, bottom, dtype=torch.float32) + 0.5 - y0) / (y1 - y0) * 2 - 1
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], dim=-1)[None]
        sampled = F.grid_sample(logits[index : index + 1].float(), grid, mode="bilinear", padding_mode="border",
                                align_corners=False)
        masks[top:bottom, left:right, index] = (sampled[0, 0] > 0).numpy()
    return masks


def encode_masks(masks: np.ndarray) -> list[dict]:
    """(H, W, R) uint8 -> COCO RLE dicts with bytes counts (pycocotools' own output)."""
    if masks.shape[-1] == 0:
        return []
    return [{"size": [int(v) for v in rle["size"]], "counts": rle["counts"]}
            for rle in mask_codec.encode(np.asfortranarray(masks))]


def filled_box_masks(boxes_xyxy: np.ndarray, height: int, width: int) -> list[dict]:
    """RLE of each box's pixels (those whose centre lies inside it): the baseline's 'mask'."""
    boxes = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
    if not len(boxes):
        return []
    masks = np.zeros((height, width, len(boxes)), dtype=np.uint8, order="F")
    for index, (x0, y0, x1, y1) in enumerate(boxes):
        left, top = int(np.clip(np.round(x0), 0, width)), int(np.clip(np.round(y0), 0, height))
        right, bottom = int(np.clip(np.round(x1), 0, width)), int(np.clip(np.round(y1), 0, height))
        masks[top:bottom, left:right, index] = 1
    return encode_masks(masks)
