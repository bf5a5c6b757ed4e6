"""pycocotools' ``summarize``: the 12 (boxes, masks) or 10 (keypoints) headline numbers, and their names.

Kept literally faithful, quirks included: stats[0] reads maxDets=100 (keypoints: 20) whatever ``max_dets``
says (and is -1 if that value is absent), the other box stats read ``max_dets[0..2]`` by position, and a mean
runs over entries > -1 only, -1 when there are none.
"""
from __future__ import annotations

import numpy as np

from harness.metrics.coco.params import CocoParams

KEYPOINT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def summary_names(params: CocoParams) -> tuple[str, ...]:
    """Box/mask names follow the maxDets actually read: AR1 AR10 AR100 by default, AR100 AR300 AR1000 for mmdet."""
    if params.iou_type == "keypoints":
        return KEYPOINT_NAMES
    m0, m1, m2 = params.max_dets[:3]
    return ("AP", "AP50", "AP75", "APs", "APm", "APl", f"AR{m0}", f"AR{m1}", f"AR{m2}", "ARs", "ARm", "ARl")


def precision_max_dets(params: CocoParams) -> tuple[int, ...]:
    """The maxDets settings whose precision ``summarize`` reads (the others serve AR only)."""
    wanted = (20,) if params.iou_type == "keypoints" else (100, params.max_dets[2])
    return tuple(m for m in params.max_dets if m in wanted)


def mean_over_valid(
    params: CocoParams,
    precision: np.ndarray,
    recall: np.ndarray,
    ap: bool,
    iou: float | None = None,
    area: str = "all",
    max_dets: int = 100,
) -> float:
    aind = [i for i, label in enumerate(params.area_labels) if label == area]
    mind = [i for i, m in enumerate(params.max_dets) if m == max_dets]
    s = precision if ap else recall
    if iou is not None:
        s = s[np.where(iou == params.iou_thresholds)[0]]
    s = s[:, :, :, aind, mind] if ap else s[:, :, aind, mind]
    valid = s[s > -1]
    return -1.0 if len(valid) == 0 else float(np.mean(valid))


def summary_specs(params: CocoParams) -> list[tuple[bool, float | None, str, int]]:
    """What each summary stat reads, in order: (AP or AR, IoU threshold or None for all, area, maxDets)."""
    if params.iou_type == "keypoints":
        return [(ap, iou, area, 20) for ap in (True, False)
                for iou, area in ((None, "all"), (0.5, "all"), (0.75, "all"), (None, "medium"), (None, "large"))]
    m = params.max_dets
    return [
        (True, None, "all", 100),
        (True, 0.5, "all", m[2]),
        (True, 0.75, "all", m[2]),
        (True, None, "small", m[2]),
        (True, None, "medium", m[2]),
        (True, None, "large", m[2]),
        (False, None, "all", m[0]),
        (False, None, "all", m[1]),
        (False, None, "all", m[2]),
        (False, None, "small", m[2]),
        (False, None, "medium", m[2]),
        (False, None, "large", m[2]),
    ]


def summarize(params: CocoParams, precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    return np.array([mean_over_valid(params, precision, recall, ap, iou, area, max_dets)
                     for ap, iou, area, max_dets in summary_specs(params)])


def summarize_resamples(params: CocoParams, precision: np.ndarray, recall: np.ndarray,
                        precision_dets: tuple[int, ...]) -> np.ndarray:
    """``summarize`` of many resamples at once: (B, stats) from ``precision`` (B, M', A, T, K, R) at the maxDets
    ``precision_dets`` and ``recall`` (B, M, A, T, K) at every maxDets.

    Each stat is the mean of the same values in the same order as ``mean_over_valid`` reads them: it slices
    (T, R, K) or (T, K) in C order, and boolean indexing of the (T, R, K) view here yields that order too, so
    every number is equal bit for bit.
    Needs distinct maxDets (``make_params`` sorts them; a repeated value would pair indices differently).
    """
    if len(set(params.max_dets)) != len(params.max_dets):
        raise ValueError("summarize_resamples needs distinct maxDets")
    num_b = precision.shape[0]
    out = np.empty((num_b, len(summary_specs(params))))
    for column, (ap, iou, area, max_dets) in enumerate(summary_specs(params)):
        dets = precision_dets if ap else params.max_dets
        if area not in params.area_labels or max_dets not in dets:
            if ap and area in params.area_labels and max_dets in params.max_dets:
                raise ValueError(f"precision at maxDets {max_dets} was not computed")
            out[:, column] = -1.0
            continue
        values = (precision if ap else recall)[:, dets.index(max_dets), params.area_labels.index(area)]
        if ap:
            values = values.swapaxes(-1, -2)  # (B, T, R, K)
        if iou is not None:
            values = values[:, np.where(iou == params.iou_thresholds)[0]]
        for b in range(num_b):
            row = values[b]
            valid = row[row > -1]
            out[b, column] = -1.0 if len(valid) == 0 else float(np.mean(valid))
    return out


def summary_table(params: CocoParams, precision_dets: tuple[int, ...]) -> np.ndarray | None:
    """What ``summarize_resamples`` reads, as rows (kind, threshold, area, maxDets index) for the compiled
    bootstrap (``kernels.accumulate_weighted``): kind 0 is AP from the precision at ``precision_dets``, 1 is AR
    from the recall at ``params.max_dets``, 2 a stat that is -1; threshold -1 means all of them.  The kernel
    gathers and sums the values in ``mean_over_valid``'s order.  None when a stat names an IoU threshold that
    occurs more than once (only the numpy summary handles that)."""
    if len(set(params.max_dets)) != len(params.max_dets):
        raise ValueError("summary_table needs distinct maxDets")
    rows = []
    for ap, iou, area, max_dets in summary_specs(params):
        dets = precision_dets if ap else params.max_dets
        if area not in params.area_labels or max_dets not in dets:
            if ap and area in params.area_labels and max_dets in params.max_dets:
                raise ValueError(f"precision at maxDets {max_dets} was not computed")
            rows.append((2, -1, 0, 0))
            continue
        threshold = -1
        if iou is not None:
            hits = np.flatnonzero(iou == params.iou_thresholds)
            if len(hits) > 1:
                return None
            if len(hits) == 0:  # nothing to average: -1, as mean_over_valid gives
                rows.append((2, -1, 0, 0))
                continue
            threshold = int(hits[0])
        rows.append((0 if ap else 1, threshold, params.area_labels.index(area), dets.index(max_dets)))
    return np.array(rows, dtype=np.int64).reshape(-1, 4)
