"""PASCAL VOC detection AP, as the VOC devkit (``VOCevaldet.m``) computes it.

Facts of the reference:

* Boxes are inclusive pixel boxes: width = x2 - x1 + 1.  Harness boxes arrive as COCO ``[x, y, w, h]`` and are
  read back as ``x2 = x + w`` (the VOC xml's xmax when a loader stores ``w = xmax - xmin``).
* Detections of a class are sorted by decreasing score with a stable sort (ties keep results-file order, here
  the order predictions arrived).  A detection looks only at its argmax-IoU ground truth (the first one on
  ties); if that overlap passes the threshold it is a TP unless the GT was already taken (then FP); a match to a
  ``difficult`` GT is neither TP nor FP.  Otherwise FP.  Recall divides by the non-difficult GT count.
* ``11point`` (VOC2007): mean over t in 0:0.1:1 of the max precision at recall >= t.  ``area`` (VOC2010+):
  precision made monotone, summed over recall steps.

Dialects:

* ``voc-devkit`` (default): the MATLAB devkit: overlap >= threshold, thresholds from MATLAB's ``0:0.1:1``.
* ``py-faster-rcnn``: the Python port used by py-faster-rcnn, detectron2 and mmdet: overlap > threshold and
  ``np.arange(0, 1.1, 0.1)`` (which differs from MATLAB at 0.6 and 0.7; see ``harness.metrics.matlab``).

Matching is per image, so it happens in ``update``; the state is one row per detection (score, TP, FP, class)
plus the non-difficult GT labels, concatenated across processes.
"""
from __future__ import annotations

from typing import Any, Literal, Mapping, Sequence

import numpy as np

from harness.errors import DataError, PredictionError
from harness.metrics import METRICS
from harness.metrics.base import Metric, MetricResult
from harness.metrics.matlab import colon
from harness.structures import DetectionPrediction, DetectionTarget

VocDialect = Literal["voc-devkit", "py-faster-rcnn"]
ApMode = Literal["area", "11point"]
DIALECTS: tuple[str, ...] = ("voc-devkit", "py-faster-rcnn")
AP_MODES: tuple[str, ...] = ("area", "11point")


def xywh_to_voc(boxes: np.ndarray) -> np.ndarray:
    """COCO ``[x, y, w, h]`` -> VOC ``[x1, y1, x2, y2]`` with ``x2 = x + w``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def voc_overlaps(box: np.ndarray, gt_boxes: np.ndarray) -> np.ndarray:
    """IoU of one VOC box against many, with +1 pixel widths; 0 where the boxes do not intersect."""
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


def match_image(
    det_boxes: np.ndarray,
    det_scores: np.ndarray,
    gt_boxes: np.ndarray,
    gt_difficult: np.ndarray,
    iou_threshold: float = 0.5,
    dialect: VocDialect = "voc-devkit",
) -> tuple[np.ndarray, np.ndarray]:
    """TP and FP flags (bool, in input order) for one class in one image; VOC ``[x1, y1, x2, y2]`` boxes."""
    det_boxes = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    gt_difficult = np.asarray(gt_difficult, dtype=bool).reshape(-1)
    tp = np.zeros(len(det_boxes), dtype=bool)
    fp = np.zeros(len(det_boxes), dtype=bool)
    taken = np.zeros(len(gt_boxes), dtype=bool)
    strict = dialect == "py-faster-rcnn"
    for d in np.argsort(-np.asarray(det_scores, dtype=np.float64), kind="stable"):
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


def precision_recall(scores: np.ndarray, tp: np.ndarray, fp: np.ndarray, npos: int) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative recall and precision over detections sorted by decreasing score (stable)."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    tp_cum = np.cumsum(np.asarray(tp, dtype=np.float64)[order])
    fp_cum = np.cumsum(np.asarray(fp, dtype=np.float64)[order])
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = tp_cum / npos
    # A leading detection matched to a difficult GT has 0 / 0 precision: MATLAB's max skips that NaN, the
    # Python port divides by eps instead; both make it count as 0.
    precision = tp_cum / np.maximum(fp_cum + tp_cum, np.finfo(np.float64).eps)
    return recall, precision


def eleven_point_thresholds(dialect: VocDialect = "voc-devkit") -> np.ndarray:
    return colon(0.0, 0.1, 1.0) if dialect == "voc-devkit" else np.arange(0.0, 1.1, 0.1)


def average_precision(
    recall: np.ndarray, precision: np.ndarray, mode: ApMode = "area", dialect: VocDialect = "voc-devkit"
) -> float:
    """VOC AP from a PR curve: ``11point`` (VOC2007) or ``area`` (VOC2010+)."""
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    if mode == "11point":
        ap = 0.0
        for threshold in eleven_point_thresholds(dialect):
            reached = precision[recall >= threshold]
            ap = ap + (float(np.max(reached)) if reached.size else 0.0) / 11
        return ap
    if mode != "area":
        raise ValueError(f"unknown VOC AP mode {mode!r} (known: {', '.join(AP_MODES)})")
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[steps] - mrec[steps - 1]) * mpre[steps]))


def voc_ap(
    detections: Mapping[Any, tuple[np.ndarray, np.ndarray, np.ndarray]],
    ground_truth: Mapping[Any, tuple[np.ndarray, np.ndarray]],
    iou_threshold: float = 0.5,
    mode: ApMode = "area",
    dialect: VocDialect = "voc-devkit",
) -> float:
    """AP of one class.  ``detections[image] = (boxes, scores)`` and ``ground_truth[image] = (boxes, difficult)``,
    boxes VOC ``[x1, y1, x2, y2]``; detection images must appear in ``ground_truth``.  Ties in score keep the
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
    recall, precision = precision_recall(np.concatenate(scores), np.concatenate(tps), np.concatenate(fps), npos)
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
        gt_boxes = xywh_to_voc(target.boxes)
        gt_labels = np.asarray(target.labels).reshape(-1)
        difficult = np.zeros(len(gt_labels), dtype=bool)
        if target.ignore is not None:
            difficult |= np.asarray(target.ignore, dtype=bool).reshape(-1)
        if target.iscrowd is not None and len(target.iscrowd):
            difficult |= np.asarray(target.iscrowd, dtype=bool).reshape(-1)
        if len(gt_boxes) != len(gt_labels) or len(difficult) != len(gt_labels):
            raise DataError(f"item {item!r}: {len(gt_boxes)} boxes, {len(gt_labels)} labels, {len(difficult)} flags")
        det_boxes = xywh_to_voc(prediction.boxes)
        scores = np.asarray(prediction.scores, dtype=np.float64).reshape(-1)
        labels = np.asarray(prediction.labels).reshape(-1)
        if not (len(det_boxes) == len(scores) == len(labels)):
            raise PredictionError(
                f"item {item!r}: {len(det_boxes)} boxes, {len(scores)} scores and {len(labels)} labels"
            )
        if not (_finite_rows(scores) and _finite_rows(det_boxes)):
            raise PredictionError(f"item {item!r}: non-finite detection score or box")
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
            recall, precision = precision_recall(scores[rows], tp[rows], fp[rows], npos)
            curves[name] = {"recall": recall, "precision": precision}
            for mode in AP_MODES:
                per_mode[mode][name] = average_precision(recall, precision, mode, self.dialect)

        def mean(values: dict[str, float]) -> float:
            valid = [v for v in values.values() if not np.isnan(v)]
            return float(np.mean(valid)) if valid else float("nan")

        metrics = {"mAP": mean(per_mode[self.ap_mode]), "mAP_area": mean(per_mode["area"]),
                   "mAP_11point": mean(per_mode["11point"])}
        return MetricResult(
            metrics=metrics,
            per_class={"AP": per_mode[self.ap_mode], "AP_area": per_mode["area"], "AP_11point": per_mode["11point"]},
            curves=curves,
            settings={"dialect": self.dialect, "ap_mode": self.ap_mode, "iou_threshold": self.iou_threshold,
                      "iou_comparison": ">" if self.dialect == "py-faster-rcnn" else ">=",
                      "box_widths": "x2 - x1 + 1"},
            higher_is_better={key: True for key in metrics},
        )
