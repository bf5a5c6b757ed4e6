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


def summarize(params: CocoParams, precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    def stat(ap: bool, iou: float | None = None, area: str = "all", max_dets: int = 100) -> float:
        return mean_over_valid(params, precision, recall, ap, iou, area, max_dets)

    if params.iou_type == "keypoints":
        return np.array(
            [
                stat(True, max_dets=20),
                stat(True, max_dets=20, iou=0.5),
                stat(True, max_dets=20, iou=0.75),
                stat(True, max_dets=20, area="medium"),
                stat(True, max_dets=20, area="large"),
                stat(False, max_dets=20),
                stat(False, max_dets=20, iou=0.5),
                stat(False, max_dets=20, iou=0.75),
                stat(False, max_dets=20, area="medium"),
                stat(False, max_dets=20, area="large"),
            ]
        )
    m = params.max_dets
    return np.array(
        [
            stat(True),
            stat(True, iou=0.5, max_dets=m[2]),
            stat(True, iou=0.75, max_dets=m[2]),
            stat(True, area="small", max_dets=m[2]),
            stat(True, area="medium", max_dets=m[2]),
            stat(True, area="large", max_dets=m[2]),
            stat(False, max_dets=m[0]),
            stat(False, max_dets=m[1]),
            stat(False, max_dets=m[2]),
            stat(False, area="small", max_dets=m[2]),
            stat(False, area="medium", max_dets=m[2]),
            stat(False, area="large", max_dets=m[2]),
        ]
    )
