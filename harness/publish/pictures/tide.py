"""Detection error analysis in the style of TIDE (Bolya et al., ECCV 2020): how much AP each kind of error costs.

Every false positive is put in exactly one bin, tested in this order (IoU with non-crowd ground truth):
- ``loc``  : best same-class IoU in [background, foreground] -- right class, box not good enough;
- ``cls``  : IoU >= foreground with an object of another class -- right place, wrong class;
- ``dupe`` : IoU >= foreground with a same-class object already taken by a higher-scoring detection;
- ``bkg``  : IoU <= background with every object -- fired on background;
- ``both`` : anything else (wrong class and poorly localised).
Ground truth no detection matched and no cls/loc error points at is ``missed``.
``dAP`` of a type is AP50 after fixing every error of that type alone, minus AP50 (never negative): cls/loc
errors become true positives (only the highest-scoring one per object; the others are dropped), dupe/bkg/both
detections are removed, and each missed object is removed from the ground truth.

This follows the semantics of the ``tidecv`` package (thresholds 0.5/0.1, 100 detections per image, crowd
regions ignore same-class detections overlapping them by more than 0.5, AP on 101 recall points over classes
that have ground truth or detections, in percent), which the tests cross-check on a COCO fixture.  Objects a
dataset flags ``ignore`` (VOC's difficult) are treated as crowd regions; COCO has none, so this never moves a
COCO number.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from harness.publish.pictures.overlap import box_iou, mask_iou

ERROR_TYPES = ("cls", "loc", "both", "dupe", "bkg", "missed")
DESCRIPTIONS = {
    "cls": "right place, wrong class",
    "loc": "right class, box/mask IoU between 0.1 and 0.5",
    "both": "wrong class and poorly localised",
    "dupe": "a second detection of an object already found",
    "bkg": "detection on background (IoU <= 0.1 with every object)",
    "missed": "object no detection came close to",
}


@dataclass
class TideResult:
    ap: float  # AP50 in percent, TIDE's way
    delta_ap: dict[str, float]  # error type -> AP points gained when fixed
    counts: dict[str, int]  # error type -> number of errors
    per_image: list[dict[str, int]] = field(default_factory=list)  # error counts per image, in input order
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Error:
    kind: str
    cls: Any  # class the original data point is scored under
    score: float = 0.0
    pred_id: int = -1
    gt_key: tuple | None = None  # (image, gt index) for cls/loc/missed
    ignored: bool = False  # the detection overlapped a crowd region: not in the AP data unless fixed
    fix_cls: Any = None


def average_precision(points: Sequence[tuple[float, bool]], n_gt: int) -> float:
    """AP in percent: precision made monotone, read at 101 recall points (nearest recall at or above)."""
    if n_gt <= 0:
        return 0.0
    order = sorted(points, key=lambda p: -p[0])  # stable, as TIDE sorts
    if not order:
        return 0.0
    tp = np.cumsum([1 if p[1] else 0 for p in order])
    count = np.arange(1, len(order) + 1)
    precision = tp / count
    recall = tp / n_gt
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    grid = np.arange(101) / 100  # k/100 exactly (linspace differs by an ulp and moves a reading)
    index = np.searchsorted(recall, grid, side="left")
    sampled = np.where(index < len(precision), precision[np.minimum(index, len(precision) - 1)], 0.0)
    return float(sampled.sum() / len(sampled) * 100)


def _mean_ap(points: dict[Any, list], n_gt: dict[Any, int]) -> float:
    classes = [c for c in set(points) | set(n_gt) if points.get(c) or n_gt.get(c, 0) > 0]
    if not classes:
        return 0.0
    return float(np.mean([average_precision(points.get(c, []), n_gt.get(c, 0)) for c in classes]))


def tide(images: Sequence[tuple[Any, Any]], *, masks: bool = False, foreground: float = 0.5,
         background: float = 0.1, max_dets: int = 100) -> TideResult:
    """``images``: (DetectionTarget, DetectionPrediction) pairs, one per image."""
    errors: list[_Error] = []
    correct: dict[Any, list] = defaultdict(list)  # class -> [(score, True)] of true positives
    base: dict[Any, list] = defaultdict(list)  # class -> all scored data points
    n_gt: dict[Any, int] = defaultdict(int)
    best_for_gt: dict[tuple, tuple[float, int]] = {}
    per_image = []
    next_id = 0
    for image, (target, prediction) in enumerate(images):
        counts = dict.fromkeys(ERROR_TYPES, 0)
        gt_labels = np.asarray(target.labels).reshape(-1)
        crowd = np.asarray(target.iscrowd, bool).reshape(-1)
        if getattr(target, "ignore", None) is not None:  # VOC "difficult": an ignore region, as crowds are
            crowd = crowd | np.asarray(target.ignore, bool).reshape(-1)
        real = np.flatnonzero(~crowd)
        regions = np.flatnonzero(crowd)
        for g in real:
            n_gt[gt_labels[g]] += 1
        scores = np.asarray(prediction.scores, dtype=np.float64).reshape(-1)
        order = np.argsort(-scores, kind="stable")[:max_dets]
        labels = np.asarray(prediction.labels).reshape(-1)[order]
        scores = scores[order]
        ids = list(range(next_id, next_id + len(order)))
        next_id += len(order)
        height, width = int(target.height), int(target.width)
        if masks:
            pred_shapes = [prediction.masks[k] for k in order]
            iou = mask_iou(pred_shapes, [target.masks[g] for g in real], height, width)
            crowd_iou = mask_iou(pred_shapes, [target.masks[g] for g in regions], height, width,
                                 np.ones(len(regions), bool))
        else:
            boxes = np.asarray(prediction.boxes, dtype=np.float64).reshape(-1, 4)[order]
            iou = box_iou(boxes, np.asarray(target.boxes).reshape(-1, 4)[real])
            crowd_iou = box_iou(boxes, np.asarray(target.boxes).reshape(-1, 4)[regions], np.ones(len(regions), bool))
        real_labels = gt_labels[real]
        same = labels[:, None] == real_labels[None, :]
        cls_iou = iou * same
        used_gt = np.zeros(len(real), bool)
        used = np.zeros(len(order), dtype=object)  # True, False or None (ignored)
        used[:] = False
        if len(real):
            buffer = cls_iou.copy()
            for p in range(len(order)):
                best = int(np.argmax(buffer[p]))
                if buffer[p, best] >= foreground:
                    used[p] = True
                    used_gt[best] = True
                    buffer[:, best] = 0
        for r, region in enumerate(regions):
            for p in range(len(order)):
                if used[p] is False and crowd_iou[p, r] > foreground and gt_labels[region] == labels[p]:
                    used[p] = None
        for p in range(len(order)):
            if used[p] is not None:
                base[labels[p]].append((scores[p], bool(used[p])))
            if used[p] is True:
                correct[labels[p]].append((scores[p], True))
                continue
            kind, gt_index, fix_cls = _classify(p, iou, cls_iou, same, used_gt, foreground, background, labels,
                                                real_labels)
            error = _Error(kind, labels[p], float(scores[p]), ids[p], ignored=used[p] is None, fix_cls=fix_cls)
            if kind in ("cls", "loc") and not used_gt[gt_index]:
                error.gt_key = (image, int(gt_index))
                holder = best_for_gt.get(error.gt_key)
                if holder is None or holder[0] < error.score:
                    best_for_gt[error.gt_key] = (error.score, error.pred_id)
            errors.append(error)
            counts[kind] += 1
        for index in range(len(real)):
            if not used_gt[index] and (image, index) not in best_for_gt:
                errors.append(_Error("missed", real_labels[index], gt_key=(image, index)))
                counts["missed"] += 1
        per_image.append(counts)
    ap = _mean_ap(base, n_gt)
    delta = {}
    for kind in ERROR_TYPES:
        fixed_points: dict[Any, list] = defaultdict(list)
        fixed_gt = dict(n_gt)
        for error in errors:
            if error.kind == kind:
                if kind == "missed":
                    fixed_gt[error.cls] = fixed_gt.get(error.cls, 0) - 1
                elif kind in ("cls", "loc") and error.gt_key is not None \
                        and best_for_gt[error.gt_key][1] == error.pred_id:
                    fixed_points[error.fix_cls].append((error.score, True))
                continue
            if error.kind != "missed" and not error.ignored:
                fixed_points[error.cls].append((error.score, False))
        for cls, points in correct.items():
            fixed_points[cls].extend(points)
        for cls in base:
            fixed_points.setdefault(cls, [])
            fixed_gt.setdefault(cls, 0)
        delta[kind] = max(_mean_ap(fixed_points, fixed_gt) - ap, 0.0)
    totals = {kind: sum(c[kind] for c in per_image) for kind in ERROR_TYPES}
    return TideResult(ap, delta, totals, per_image, {"foreground": foreground, "background": background,
                                                    "max_dets": max_dets, "iou": "masks" if masks else "boxes"})


def _classify(p: int, iou: np.ndarray, cls_iou: np.ndarray, same: np.ndarray, used_gt: np.ndarray,
              foreground: float, background: float, labels: np.ndarray, gt_labels: np.ndarray
              ) -> tuple[str, int, Any]:
    if iou.shape[1] == 0:
        return "bkg", -1, None
    g = int(np.argmax(cls_iou[p]))
    if background <= cls_iou[p, g] <= foreground:
        return "loc", g, labels[p]
    other = iou[p] * ~same[p]
    g = int(np.argmax(other))
    if other[g] >= foreground:
        return "cls", g, gt_labels[g]
    taken = iou[p] * used_gt * same[p]
    g = int(np.argmax(taken))
    if taken[g] >= foreground:
        return "dupe", g, None
    if iou[p].max() <= background:
        return "bkg", -1, None
    return "both", -1, None
