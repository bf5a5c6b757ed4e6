"""Overlap of detection/ground-truth pairs: box IoU, mask IoU and OKS, each bit-identical to pycocotools.

Box IoU follows the arithmetic of cocoapi's ``bbIou`` operation by operation (so float rounding agrees):
``w = min(dx+dw, gx+gw) - max(dx, gx)``, zero when ``w <= 0`` (same for h), ``i = w*h``, ``u = da`` for a crowd
GT and ``(da + ga) - i`` otherwise, with box areas w*h (not the ``area`` field).  Mask IoU is delegated to
pycocotools.mask.  OKS reproduces ``computeOks`` including its summation order (see ``oks``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def box_iou_pairs(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU of ``dt[i]`` with ``gt[i]`` for every row; (P, 4) xywh inputs, crowd (P,) bool."""
    dx, dy, dw, dh = dt[:, 0], dt[:, 1], dt[:, 2], dt[:, 3]
    gx, gy, gw, gh = gt[:, 0], gt[:, 1], gt[:, 2], gt[:, 3]
    w = np.minimum(dw + dx, gw + gx) - np.maximum(dx, gx)
    h = np.minimum(dh + dy, gh + gy) - np.maximum(dy, gy)
    inter = w * h
    dt_area = dw * dh
    union = np.where(crowd, dt_area, (dt_area + gw * gh) - inter)
    overlap = (w > 0) & (h > 0)
    out = np.zeros(len(dt), dtype=np.float64)
    np.divide(inter, union, out=out, where=overlap)
    return out


def mask_iou_pairs(
    dt_masks: Sequence[dict],
    gt_masks: Sequence[dict],
    gt_crowd: np.ndarray,
    dt_bounds: np.ndarray,
    gt_bounds: np.ndarray,
    pair_det: np.ndarray,
    pair_gt: np.ndarray,
) -> np.ndarray:
    """Mask IoU of the pairs (``pair_det[i]``, ``pair_gt[i]``), one ``pycocotools.mask.iou`` call per image.

    ``dt_bounds``/``gt_bounds`` delimit the images in the sorted views.  An image's call also scores pairs of
    different categories, which are thrown away: pycocotools rejects most of them on their boxes, and one call
    per image instead of one per (image, category) saves the per-call overhead that dominated.  Each pair's
    IoU does not depend on what else is in the call, so the values are pycocotools' own.
    """
    from pycocotools import mask as mask_utils

    crowd = gt_crowd.astype(np.uint8)
    image_of_pair = np.searchsorted(dt_bounds, pair_det, side="right") - 1
    out = np.zeros(len(pair_det), dtype=np.float64)
    firsts: np.ndarray | list[int] = np.flatnonzero(np.r_[True, image_of_pair[1:] != image_of_pair[:-1]]) if len(pair_det) else []
    stops = np.r_[firsts[1:], len(pair_det)] if len(pair_det) else []
    for start, stop in zip(firsts, stops):
        image = image_of_pair[start]
        d0, d1, g0, g1 = dt_bounds[image], dt_bounds[image + 1], gt_bounds[image], gt_bounds[image + 1]
        ious = np.asarray(mask_utils.iou(list(dt_masks[d0:d1]), list(gt_masks[g0:g1]), crowd[g0:g1]),
                          dtype=np.float64).reshape(d1 - d0, g1 - g0)
        out[start:stop] = ious[pair_det[start:stop] - d0, pair_gt[start:stop] - g0]
    return out


def oks(
    dt_xy: np.ndarray,
    gt_keypoints: np.ndarray,
    gt_box: np.ndarray,
    gt_area: np.ndarray,
    sigmas: np.ndarray,
) -> np.ndarray:
    """Object keypoint similarity of pairs: dt (P, K, 2), gt (P, K, 3), gt box (P, 4), gt area (P,).

    For a GT with labelled keypoints (v > 0) the score is the mean of exp(-e) over those keypoints; pycocotools
    sums them with ``np.sum`` on the compacted 1-D array, whose pairwise summation order depends on the count, so
    pairs are grouped by that count and summed row-wise over exactly that many columns.  A GT without labelled
    keypoints is scored against the box twice its size, averaging over all K keypoints.
    """
    variances = (sigmas * 2) ** 2
    num = len(dt_xy)
    k = len(sigmas)
    out = np.zeros(num, dtype=np.float64)
    if num == 0:
        return out
    xg, yg, vg = gt_keypoints[:, :, 0], gt_keypoints[:, :, 1], gt_keypoints[:, :, 2]
    xd, yd = dt_xy[:, :, 0], dt_xy[:, :, 1]
    labelled = vg > 0
    count = labelled.sum(axis=1)
    scale = (gt_area + np.spacing(1))[:, None]

    has_labels = count > 0
    if has_labels.any():
        rows = np.flatnonzero(has_labels)
        dx = xd[rows] - xg[rows]
        dy = yd[rows] - yg[rows]
        e = (dx**2 + dy**2) / variances / scale[rows] / 2
        for c in np.flatnonzero(np.bincount(count[rows])):  # (np.unique would import numpy.ma: 0.1 s)
            chosen = np.flatnonzero(count[rows] == c)
            picked = e[chosen][labelled[rows[chosen]]].reshape(len(chosen), int(c))
            out[rows[chosen]] = np.sum(np.exp(-picked), axis=1) / int(c)
    if (~has_labels).any():
        rows = np.flatnonzero(~has_labels)
        box = gt_box[rows]
        x0 = (box[:, 0] - box[:, 2])[:, None]
        x1 = (box[:, 0] + box[:, 2] * 2)[:, None]
        y0 = (box[:, 1] - box[:, 3])[:, None]
        y1 = (box[:, 1] + box[:, 3] * 2)[:, None]
        dx = np.maximum(0.0, x0 - xd[rows]) + np.maximum(0.0, xd[rows] - x1)
        dy = np.maximum(0.0, y0 - yd[rows]) + np.maximum(0.0, yd[rows] - y1)
        e = (dx**2 + dy**2) / variances / scale[rows] / 2
        out[rows] = np.sum(np.exp(-e), axis=1) / k
    return out


def oks_pairs(
    dt_keypoints: np.ndarray,
    gt_keypoints: np.ndarray,
    gt_box: np.ndarray,
    gt_area: np.ndarray,
    sigmas: np.ndarray,
    dt_rows: np.ndarray,
    gt_rows: np.ndarray,
    chunk: int = 8192,
) -> np.ndarray:
    """``oks`` of the pairs (``dt_rows[i]``, ``gt_rows[i]``) of two keypoint tables, a chunk of pairs at a time.

    Chunks keep the (pairs, K) temporaries small enough to stay in cache, and the peak memory flat: gathering
    all (P, K, 3) pairs at once cost more than the arithmetic and 1.5x the memory of the C++ evaluators.
    Each pair's value is computed exactly as ``oks`` computes it, so chunking changes no bit.
    """
    out = np.empty(len(dt_rows), dtype=np.float64)
    from harness.metrics.coco import kernels

    if kernels.ENABLED and 1 <= len(sigmas) <= 128:
        return kernels.oks_pairs(dt_keypoints, gt_keypoints, gt_box, gt_area, sigmas, dt_rows, gt_rows, out)
    dt_xy = np.ascontiguousarray(dt_keypoints[:, :, :2])
    for start in range(0, len(dt_rows), chunk):
        d, g = dt_rows[start:start + chunk], gt_rows[start:start + chunk]
        out[start:start + chunk] = oks(dt_xy[d], gt_keypoints[g], gt_box[g], gt_area[g], sigmas)
    return out
