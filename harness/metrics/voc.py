"""PASCAL VOC detection AP, as the VOC devkit (``VOCevaldet.m``) computes it, plus two named Python ports.

Facts of the reference:

* Boxes: harness boxes are continuous ``[x, y, w, h]``; the devkit's boxes are 1-based inclusive pixel corners
  ``[x + 1, y + 1, x + w, y + h]`` with widths ``x2 - x1 + 1`` (``harness.core.boxes``: the +1 is applied once, by
  that formula, so the IoU is the continuous IoU of the harness boxes).
* Detections of a class are sorted by decreasing score with a stable sort (MATLAB's ``sort``: ties keep
  results-file order, here the order predictions arrived, samples in dataset order).  A detection looks only at
  its argmax-IoU ground truth (the first one on ties); if that overlap passes the threshold it is a TP unless the
  GT was already taken (then FP); a match to a ``difficult`` GT is neither TP nor FP.  Otherwise FP.  Recall
  divides by the non-difficult GT count.
* ``11point`` (VOC2007 to VOC2009): mean over t in 0:0.1:1 of the max precision at recall >= t.  ``area``
  (VOC2010+): precision made monotone, summed over recall steps.

Dialects (``--dialect``):

* ``voc-devkit`` (default): the MATLAB devkit: overlap >= threshold, thresholds from MATLAB's ``0:0.1:1``
  (``harness.metrics.matlab.colon``), double precision.
* ``py-faster-rcnn``: the Python port of py-faster-rcnn's ``voc_eval.py`` (also detectron2's
  ``pascal_voc_evaluation``): overlap > threshold and ``np.arange(0, 1.1, 0.1)``, which differs from MATLAB at 0.6
  and 0.7.  Score ties keep results-file order here; the port's ``np.argsort`` is unstable, so on tied scores its
  order is numpy's (not reproduced).
* ``mmdet``: ``mmdet.evaluation.functional.eval_map`` as mmdetection's ``VOCMetric`` calls it
  (``use_legacy_coordinate=True``): overlap >= threshold; 11 points from ``np.arange(0, 1 + 1e-3, 0.1)``;
  detections sorted with numpy's default (unstable) argsort, per image for matching and over all images for the
  curve; difficult boxes go to ``gt_bboxes_ignore`` (stacked after the other GTs, which decides argmax ties);
  IoU in float32 (``bbox_overlaps`` casts the boxes); precision in float32, AP and the mean kept in float32.
  Classes without GT report NaN (mmdet: 0, left out of its mean all the same); a dataset with no GT at all has
  mAP NaN (mmdet: 0).

Matching is per image, so it happens in ``update``; the state is one row per detection (score, TP, FP, class)
plus the non-difficult GT labels, one entry per sample, concatenated across processes in sample order.
"""
from __future__ import annotations

from typing import Any, Literal, Mapping, Sequence

import numpy as np

from harness.core.errors import DataError, PredictionError
from harness.metrics import METRICS
from harness.core.metric import Metric, MetricResult
from harness.metrics.matlab import colon
from harness.core.structures import DetectionPrediction, DetectionTarget
from harness.core.boxes import Boxes, BoxMode

VocDialect = Literal["voc-devkit", "py-faster-rcnn", "mmdet"]
ApMode = Literal["area", "11point"]
DIALECTS: tuple[str, ...] = ("voc-devkit", "py-faster-rcnn", "mmdet")
AP_MODES: tuple[ApMode, ...] = ("area", "11point")
_F32_EPS = np.finfo(np.float32).eps


def voc_overlaps(box: np.ndarray, gt_boxes: np.ndarray) -> np.ndarray:
    """IoU of one devkit box against many (1-based inclusive corners, +1 widths); 0 where they do not intersect."""
    iw = np.minimum(box[2], gt_boxes[:, 2]) - np.maximum(box[0], gt_boxes[:, 0]) + 1.0
    ih = np.minimum(box[3], gt_boxes[:, 3]) - np.maximum(box[1], gt_boxes[:, 1]) + 1.0
    intersect = (iw > 0) & (ih > 0)
    inter = np.where(intersect, iw * ih, 0.0)
    union = (
        (box[2] - box[0] + 1.0) * (box[3] - box[1] + 1.0)
        + (gt_boxes[:, 2] - gt_boxes[:, 0] + 1.0) * (gt_boxes[:, 3] - gt_boxes[:, 1] + 1.0)
        - inter
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(intersect, inter / union, 0.0)


def mmdet_overlaps(det_corners: np.ndarray, gt_corners: np.ndarray) -> np.ndarray:
    """(n, k) IoU as mmdet's ``bbox_overlaps(..., use_legacy_coordinate=True)``: float32 corners, +1 widths,
    intersection clipped at 0 per side, union floored at 1e-6, every step in float32."""
    det = np.asarray(det_corners).astype(np.float32).reshape(-1, 4)[:, None, :]
    gt = np.asarray(gt_corners).astype(np.float32).reshape(-1, 4)[None, :, :]
    det_area = (det[..., 2] - det[..., 0] + 1.0) * (det[..., 3] - det[..., 1] + 1.0)
    gt_area = (gt[..., 2] - gt[..., 0] + 1.0) * (gt[..., 3] - gt[..., 1] + 1.0)
    iw = np.maximum(np.minimum(det[..., 2], gt[..., 2]) - np.maximum(det[..., 0], gt[..., 0]) + 1.0, 0)
    ih = np.maximum(np.minimum(det[..., 3], gt[..., 3]) - np.maximum(det[..., 1], gt[..., 1]) + 1.0, 0)
    overlap = iw * ih
    union = np.maximum(det_area + gt_area - overlap, 1e-6)
    return overlap / union


def match_image(
    det_boxes: np.ndarray,
    det_scores: np.ndarray,
    gt_boxes: np.ndarray,
    gt_difficult: np.ndarray,
    iou_threshold: float = 0.5,
    dialect: VocDialect = "voc-devkit",
) -> tuple[np.ndarray, np.ndarray]:
    """TP and FP flags (bool, in input order) for one class in one image; harness ``[x, y, w, h]`` boxes."""
    gt_difficult = np.asarray(gt_difficult, dtype=bool).reshape(-1)
    scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
    if dialect == "mmdet":
        det, gt = Boxes(det_boxes, BoxMode.XYWH), Boxes(gt_boxes, BoxMode.XYWH)
        return _match_mmdet(det.to(BoxMode.MMDET_VOC).array, scores, gt.to(BoxMode.MMDET_VOC).array, gt_difficult,
                            iou_threshold)
    det_boxes = Boxes(det_boxes, BoxMode.XYWH).to(BoxMode.VOC_DEVKIT).array
    gt_boxes = Boxes(gt_boxes, BoxMode.XYWH).to(BoxMode.VOC_DEVKIT).array
    tp = np.zeros(len(det_boxes), dtype=bool)
    fp = np.zeros(len(det_boxes), dtype=bool)
    taken = np.zeros(len(gt_boxes), dtype=bool)
    strict = dialect == "py-faster-rcnn"
    for d in np.argsort(-scores, kind="stable"):
        if len(gt_boxes) == 0:
            fp[d] = True
            continue
        overlaps = voc_overlaps(det_boxes[d], gt_boxes)
        best = int(np.argmax(overlaps))
        ovmax = overlaps[best]
        passed = ovmax > iou_threshold if strict else (ovmax >= iou_threshold and ovmax > 0)
        if not passed:
            fp[d] = True
        elif gt_difficult[best]:
            continue
        elif taken[best]:
            fp[d] = True
        else:
            tp[d] = True
            taken[best] = True
    return tp, fp


def _match_mmdet(
    det: np.ndarray, scores: np.ndarray, gt: np.ndarray, difficult: np.ndarray, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """mmdet's ``tpfp_default``: GTs stacked as [non-difficult; difficult], per-image unstable score order."""
    tp = np.zeros(len(det), dtype=bool)
    fp = np.zeros(len(det), dtype=bool)
    if len(gt) == 0:
        fp[:] = True
        return tp, fp
    stacked = np.concatenate([np.flatnonzero(~difficult), np.flatnonzero(difficult)])
    ignored = difficult[stacked]
    ious = mmdet_overlaps(det, gt[stacked])
    best_iou, best = ious.max(axis=1), ious.argmax(axis=1)
    covered = np.zeros(len(stacked), dtype=bool)
    for d in np.argsort(-scores):  # numpy's default kind, as mmdet: ties in numpy's order
        if best_iou[d] >= iou_threshold:
            j = best[d]
            if ignored[j]:
                continue
            if covered[j]:
                fp[d] = True
            else:
                covered[j] = tp[d] = True
        else:
            fp[d] = True
    return tp, fp


def precision_recall(
    scores: np.ndarray, tp: np.ndarray, fp: np.ndarray, npos: int, dialect: VocDialect = "voc-devkit"
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative recall and precision over detections sorted by decreasing score.

    Devkit and py-faster-rcnn: stable sort, float64.  mmdet: numpy's default argsort, cumulative counts in
    float32, recall in float64 and precision in float32 (``eval_map``'s dtypes).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if dialect == "mmdet":
        order = np.argsort(-scores)
        tp_cum = np.cumsum(np.asarray(tp, dtype=np.float32)[order])
        fp_cum = np.cumsum(np.asarray(fp, dtype=np.float32)[order])
        recall = tp_cum / np.maximum(np.array([npos]), _F32_EPS)
        precision = tp_cum / np.maximum(tp_cum + fp_cum, _F32_EPS)
        return recall, precision
    order = np.argsort(-scores, kind="stable")
    tp_cum = np.cumsum(np.asarray(tp, dtype=np.float64)[order])
    fp_cum = np.cumsum(np.asarray(fp, dtype=np.float64)[order])
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = tp_cum / npos
    # A leading detection matched to a difficult GT has 0 / 0 precision: MATLAB's max skips that NaN, the
    # Python port divides by eps instead; both make it count as 0.
    precision = tp_cum / np.maximum(fp_cum + tp_cum, np.finfo(np.float64).eps)
    return recall, precision


def eleven_point_thresholds(dialect: VocDialect = "voc-devkit") -> np.ndarray:
    """MATLAB's ``0:0.1:1`` for the devkit; the Python ports' ``np.arange`` (0.6000000000000001 and
    0.7000000000000001 instead of 0.6 and 0.7)."""
    if dialect == "voc-devkit":
        return colon(0.0, 0.1, 1.0)
    if dialect == "mmdet":
        return np.arange(0, 1 + 1e-3, 0.1)
    return np.arange(0.0, 1.1, 0.1)


def average_precision(
    recall: np.ndarray, precision: np.ndarray, mode: ApMode = "area", dialect: VocDialect = "voc-devkit"
) -> float:
    """VOC AP from a PR curve: ``11point`` (VOC2007) or ``area`` (VOC2010+).

    mmdet keeps AP in a float32 array: the area sum is rounded to float32, the 11 maxima are added in float32
    and divided by 11 in float32.
    """
    recall = np.asarray(recall, dtype=np.float64)
    if mode not in AP_MODES:
        raise ValueError(f"unknown VOC AP mode {mode!r} (known: {', '.join(AP_MODES)})")
    if mode == "11point":
        if dialect == "mmdet":
            precision32 = np.asarray(precision, dtype=np.float32)
            total = np.float32(0.0)
            for threshold in eleven_point_thresholds(dialect):
                reached = precision32[recall >= threshold]
                total = total + (reached.max() if reached.size else np.float32(0.0))
            return float(total / np.float32(11))
        precision = np.asarray(precision, dtype=np.float64)
        ap = 0.0
        for threshold in eleven_point_thresholds(dialect):
            reached = precision[recall >= threshold]
            ap = ap + (float(np.max(reached)) if reached.size else 0.0) / 11
        return ap
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], np.asarray(precision, dtype=np.float64), [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    area = np.sum((mrec[steps] - mrec[steps - 1]) * mpre[steps])
    return float(np.float32(area)) if dialect == "mmdet" else float(area)


def mean_ap(values: Sequence[float], dialect: VocDialect = "voc-devkit") -> float:
    """Mean over classes with ground truth (NaN entries dropped); mmdet averages its float32 APs in float32."""
    valid = [v for v in values if not np.isnan(v)]
    if not valid:
        return float("nan")
    if dialect == "mmdet":
        return np.array(valid, dtype=np.float32).mean().item()
    return float(np.mean(valid))


def voc_ap(
    detections: Mapping[Any, tuple[np.ndarray, np.ndarray]],
    ground_truth: Mapping[Any, tuple[np.ndarray, np.ndarray]],
    iou_threshold: float = 0.5,
    mode: ApMode = "area",
    dialect: VocDialect = "voc-devkit",
) -> float:
    """AP of one class.  ``detections[image] = (boxes, scores)`` and ``ground_truth[image] = (boxes, difficult)``,
    harness ``[x, y, w, h]`` boxes; detection images must appear in ``ground_truth``.  Ties in score keep the
    mapping's order (the results-file order)."""
    scores, tps, fps = [], [], []
    for image, (boxes, image_scores) in detections.items():
        if image not in ground_truth:
            raise PredictionError(f"detection for unknown image {image!r}")
        gt_boxes, difficult = ground_truth[image]
        tp, fp = match_image(boxes, image_scores, gt_boxes, difficult, iou_threshold, dialect)
        scores.append(np.asarray(image_scores, dtype=np.float64).reshape(-1))
        tps.append(tp)
        fps.append(fp)
    npos = int(sum(np.count_nonzero(~np.asarray(d, dtype=bool)) for _, d in ground_truth.values()))
    if npos == 0:
        return float("nan")
    if not scores:
        return 0.0
    recall, precision = precision_recall(np.concatenate(scores), np.concatenate(tps), np.concatenate(fps), npos,
                                         dialect)
    return average_precision(recall, precision, mode, dialect)


# -------------------------------------------------------------------------------------------- metric
def _finite_rows(array: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(array)))


@METRICS.register("voc_ap")
class VocAPMetric(Metric):
    """Per-class VOC AP and mAP over the classes that have non-difficult ground truth.

    ``DetectionTarget.ignore`` carries ``difficult`` (crowd flags are treated the same way).  ``mAP`` uses
    ``ap_mode``; ``mAP_area`` and ``mAP_11point`` are always reported so a result states both conventions.
    Classes without non-difficult ground truth have AP NaN and stay out of the mean (VOC test sets have none).
    """

    name = "voc_ap"
    dialects = DIALECTS
    #: 2: boxes are continuous xywh end to end (version 1 added the devkit's +1 twice to reader boxes)
    version = 2

    @classmethod
    def from_dataset(cls, info: Any, **options: Any) -> "VocAPMetric":
        return cls(class_names=dict(zip(info.category_ids, info.classes)), **options)

    def __init__(
        self,
        iou_threshold: float = 0.5,
        ap_mode: ApMode = "area",
        dialect: VocDialect = "voc-devkit",
        class_names: Mapping[int, str] | None = None,
    ) -> None:
        super().__init__()
        if dialect not in DIALECTS:
            raise ValueError(f"unknown VOC dialect {dialect!r} (known: {', '.join(DIALECTS)})")
        if ap_mode not in AP_MODES:
            raise ValueError(f"unknown VOC AP mode {ap_mode!r} (known: {', '.join(AP_MODES)})")
        self.iou_threshold = iou_threshold
        self.ap_mode = ap_mode
        self.dialect = dialect
        self.class_names = dict(class_names) if class_names is not None else None
        self.add_state("det_scores", [], reduce="cat")
        self.add_state("det_labels", [], reduce="cat")
        self.add_state("det_tp", [], reduce="cat")
        self.add_state("det_fp", [], reduce="cat")
        self.add_state("gt_labels", [], reduce="cat")  # labels of non-difficult ground truth

    def update(self, samples: Sequence[Any], predictions: Sequence[Any]) -> None:
        if len(samples) != len(predictions):
            raise PredictionError(f"{len(predictions)} predictions for {len(samples)} samples")
        for sample, prediction in zip(samples, predictions):
            target = sample.target
            if not isinstance(target, DetectionTarget):
                raise DataError(f"item {sample.sample_id!r}: expected a DetectionTarget, got {type(target).__name__}")
            if not isinstance(prediction, DetectionPrediction):
                raise PredictionError(
                    f"item {sample.sample_id!r}: expected a DetectionPrediction, got {type(prediction).__name__}"
                )
            self.add_image(target, prediction, sample.sample_id)

    def add_image(self, target: DetectionTarget, prediction: DetectionPrediction, item: Any) -> None:
        gt_boxes = np.asarray(target.boxes, dtype=np.float64).reshape(-1, 4)
        gt_labels = np.asarray(target.labels).reshape(-1)
        difficult = np.zeros(len(gt_labels), dtype=bool)
        if target.ignore is not None:
            difficult |= np.asarray(target.ignore, dtype=bool).reshape(-1)
        if target.iscrowd is not None and len(target.iscrowd):
            difficult |= np.asarray(target.iscrowd, dtype=bool).reshape(-1)
        if len(gt_boxes) != len(gt_labels) or len(difficult) != len(gt_labels):
            raise DataError(f"item {item!r}: {len(gt_boxes)} boxes, {len(gt_labels)} labels, {len(difficult)} flags")
        det_boxes = np.asarray(prediction.boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(prediction.scores, dtype=np.float64).reshape(-1)
        labels = np.asarray(prediction.labels).reshape(-1)
        if not (len(det_boxes) == len(scores) == len(labels)):
            raise PredictionError(
                f"item {item!r}: {len(det_boxes)} boxes, {len(scores)} scores and {len(labels)} labels"
            )
        if not (_finite_rows(scores) and _finite_rows(det_boxes)):
            raise PredictionError(f"item {item!r}: non-finite detection score or box")
        if np.any(det_boxes[:, 2:] < 0):
            raise PredictionError(f"item {item!r}: negative box width or height")
        tp = np.zeros(len(scores), dtype=bool)
        fp = np.zeros(len(scores), dtype=bool)
        for label in np.unique(labels):
            det_rows = np.flatnonzero(labels == label)
            gt_rows = np.flatnonzero(gt_labels == label)
            tp[det_rows], fp[det_rows] = match_image(
                det_boxes[det_rows], scores[det_rows], gt_boxes[gt_rows], difficult[gt_rows],
                self.iou_threshold, self.dialect,
            )
        self.det_scores.append(scores)
        self.det_labels.append(labels)
        self.det_tp.append(tp)
        self.det_fp.append(fp)
        self.gt_labels.append(gt_labels[~difficult])

    def _name(self, label: Any) -> str:
        if self.class_names is not None and label in self.class_names:
            return self.class_names[label]
        return str(label)

    def compute(self) -> MetricResult:
        def joined(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
            return np.concatenate(parts).astype(dtype) if parts else np.empty(0, dtype=dtype)

        scores = joined(self.det_scores, np.float64)
        labels = joined(self.det_labels, np.int64)
        tp, fp = joined(self.det_tp, bool), joined(self.det_fp, bool)
        gt_labels = joined(self.gt_labels, np.int64)
        classes = sorted(set(gt_labels.tolist()) | set(labels.tolist()) | set(self.class_names or {}))
        per_mode: dict[str, dict[str, float]] = {mode: {} for mode in AP_MODES}
        curves: dict[str, Any] = {}
        for label in classes:
            npos = int(np.count_nonzero(gt_labels == label))
            rows = labels == label
            name = self._name(label)
            if npos == 0:
                for mode in AP_MODES:
                    per_mode[mode][name] = float("nan")
                continue
            recall, precision = precision_recall(scores[rows], tp[rows], fp[rows], npos, self.dialect)
            curves[name] = {"recall": recall, "precision": precision}
            for mode in AP_MODES:
                per_mode[mode][name] = average_precision(recall, precision, mode, self.dialect)

        def mean(values: dict[str, float]) -> float:
            return mean_ap(list(values.values()), self.dialect)

        metrics = {"mAP": mean(per_mode[self.ap_mode]), "mAP_area": mean(per_mode["area"]),
                   "mAP_11point": mean(per_mode["11point"])}
        return MetricResult(
            metrics=metrics,
            per_class={"AP": per_mode[self.ap_mode], "AP_area": per_mode["area"], "AP_11point": per_mode["11point"]},
            curves=curves,
            settings={"dialect": self.dialect, "ap_mode": self.ap_mode, "iou_threshold": self.iou_threshold,
                      "iou_comparison": ">" if self.dialect == "py-faster-rcnn" else ">=",
                      "box_widths": "x2 - x1 + 1 on 1-based inclusive corners [x + 1, y + 1, x + w, y + h]",
                      "score_ties": "numpy argsort (unstable)" if self.dialect == "mmdet" else "prediction order",
                      "arithmetic": "float32 (mmdet eval_map)" if self.dialect == "mmdet" else "float64"},
            higher_is_better={key: True for key in metrics},
        )
