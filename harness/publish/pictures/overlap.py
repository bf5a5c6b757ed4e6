"""Overlaps between predictions and ground truth of one image: boxes, masks (pycocotools) and keypoints (OKS).

Used by the per-image table, the gallery and the error analysis; the official numbers never go through here.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from pycocotools import mask as mask_utils


def box_iou(pred_boxes: np.ndarray, gt_boxes: np.ndarray, crowd: np.ndarray | None = None) -> np.ndarray:
    """(M, N) IoU of xywh boxes; for crowd ground truth the union is the prediction's area (COCO's rule)."""
    pred_boxes = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    if len(pred_boxes) == 0 or len(gt_boxes) == 0:
        return np.zeros((len(pred_boxes), len(gt_boxes)))
    flags = [bool(c) for c in (crowd if crowd is not None else np.zeros(len(gt_boxes), bool))]
    return np.asarray(mask_utils.iou(pred_boxes.tolist(), gt_boxes.tolist(), flags), dtype=np.float64).reshape(
        len(pred_boxes), len(gt_boxes))


def to_rle(segmentation: Any, height: int, width: int) -> dict[str, Any]:
    """A COCO segmentation (polygons, uncompressed or compressed RLE) as one compressed RLE."""
    if isinstance(segmentation, list):
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    if isinstance(segmentation.get("counts"), list):
        return mask_utils.frPyObjects(segmentation, height, width)
    return segmentation


def mask_iou(pred_masks: Sequence[Any], gt_masks: Sequence[Any], height: int, width: int,
             crowd: np.ndarray | None = None) -> np.ndarray:
    if len(pred_masks) == 0 or len(gt_masks) == 0:
        return np.zeros((len(pred_masks), len(gt_masks)))
    pred = [to_rle(m, height, width) for m in pred_masks]
    gt = [to_rle(m, height, width) for m in gt_masks]
    flags = [bool(c) for c in (crowd if crowd is not None else np.zeros(len(gt), bool))]
    return np.asarray(mask_utils.iou(pred, gt, flags), dtype=np.float64).reshape(len(pred), len(gt))


def decode(segmentation: Any, height: int, width: int) -> np.ndarray:
    """(H, W) bool mask of a COCO segmentation."""
    return mask_utils.decode(to_rle(segmentation, height, width)).astype(bool)


def oks(pred_kpts: np.ndarray, gt_kpts: np.ndarray, gt_areas: np.ndarray, sigmas: Sequence[float]) -> np.ndarray:
    """(M, N) object keypoint similarity, COCO's formula: mean over labelled GT joints of exp(-d^2 / (2 s^2 k^2)),
    s^2 = area, k = 2 sigma.  A person without labelled joints scores 0 here (COCO ignores it instead)."""
    pred_kpts = np.asarray(pred_kpts, dtype=np.float64)
    gt_kpts = np.asarray(gt_kpts, dtype=np.float64)
    out = np.zeros((len(pred_kpts), len(gt_kpts)))
    if len(pred_kpts) == 0 or len(gt_kpts) == 0:
        return out
    variances = (2 * np.asarray(sigmas, dtype=np.float64)) ** 2
    for j, (gt, area) in enumerate(zip(gt_kpts, gt_areas)):
        visible = gt[:, 2] > 0
        if not visible.any():
            continue
        d2 = ((pred_kpts[:, :, :2] - gt[None, :, :2]) ** 2).sum(axis=2)
        e = d2 / variances[None, :] / (float(area) + np.spacing(1)) / 2
        out[:, j] = np.exp(-e[:, visible]).mean(axis=1)
    return out


def greedy_match(iou: np.ndarray, scores: np.ndarray, threshold: float, crowd: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """COCO-style greedy matching at one threshold: predictions in descending score order take the best
    still-free non-crowd ground truth with IoU >= threshold; a prediction left over that overlaps a crowd region
    by >= threshold is ignored rather than false.

    Returns (pred_match: gt index or -1, pred_ignored: bool, gt_matched: bool).
    """
    m, n = iou.shape
    crowd = np.zeros(n, bool) if crowd is None else np.asarray(crowd, bool)
    pred_match = np.full(m, -1)
    pred_ignored = np.zeros(m, bool)
    gt_matched = np.zeros(n, bool)
    for p in np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable"):
        best, best_iou = -1, threshold
        for g in range(n):
            if crowd[g] or gt_matched[g]:
                continue
            if iou[p, g] >= best_iou:
                best, best_iou = g, iou[p, g]
        if best >= 0:
            pred_match[p] = best
            gt_matched[best] = True
        elif n and crowd.any() and (iou[p, crowd] >= threshold).any():
            pred_ignored[p] = True
    return pred_match, pred_ignored, gt_matched
