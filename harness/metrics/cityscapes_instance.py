"""Cityscapes instance-level AP as the official ``evalInstanceLevelSemanticLabeling`` computes it.

Facts of the reference (cityscapesscripts 2.x), reproduced here without its code:

* Ground truth is the ``gtFine_instanceIds`` map alone.  Every value of an evaluated instance class (person,
  rider, car, truck, bus, train, motorcycle, bicycle) is a ground-truth region: ``labelId * 1000 + k`` is an
  instance, a bare ``labelId`` is a group ("cargroup").  Pixels whose value is an ``ignoreInEval`` labelId (void,
  parking, ..., caravan and trailer *groups*) are void.  Caravan/trailer *instances* (29xxx, 30xxx) are neither.
* A prediction is a binary mask, a labelId and a confidence.  Labels of other classes are skipped, empty masks
  are skipped (they do not count as "the class has predictions" either).
* Per overlap threshold t in ``np.arange(0.5, 1.0, 0.05)`` and per class, with IoU = I / (|gt| + |pred| - I):
  - ground truths that count are instances (id >= 1000) of at least 100 pixels;
  - each of them is a TP with the highest confidence of the predictions with IoU > t; the other predictions
    with IoU > t on it are FPs with their own confidences; with none, it is a "hard" false negative;
  - a prediction with IoU > t with no region of its class at all (groups and small instances included) is an
    FP unless (void pixels + pixels on groups + pixels on regions under 100 px) / |pred| > t (a group under
    100 px counts twice, as in the reference); one with IoU > t on a group or small instance counts for nothing.
* AP: scores sorted, one precision/recall point per distinct confidence (precision = TP / predictions at or
  above it, recall = TP / (TP + FN + hard FN)), an artificial point (recall 0, precision 1), then step-wise
  integration with widths ``np.convolve(recall, [-0.5, 0, 0.5])``.  A class without counted ground truth is NaN;
  with ground truth but no prediction it is 0.  ``AP`` = nanmean over classes x overlaps, ``AP50`` = nanmean
  over classes at t = 0.5; per class, the mean over overlaps (NaN for classes without ground truth).

Why the state is per image: every TP/FP/FN decision above depends only on the image it is in, so ``update``
turns an image into, per prediction and threshold, "true", "false" or "not counted", plus hard false
negatives per class and threshold.  The AP of a set of images depends only on the multiset of (true, score)
pairs (the precision at a threshold counts everything at or above it, whatever order ties are in), so results
are identical bit for bit under any batching, sharding or merge order, and a bootstrap resample only redoes
the integration.

One case the reference cannot score: a class with ground truth and predictions where every prediction is
ignored and no ground truth is matched (the reference raises IndexError on the empty score list).  This
metric gives 0.0 there, the value of the same integration with no TP.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.core.errors import DataError, PredictionError
from harness.metrics import METRICS
from harness.core.metric import Metric, MetricResult
from harness.metrics.cityscapes import INSTANCE_ID_OFFSET, LABELS

#: labelIds of the evaluated instance classes, in the reference's order (its ``instLabels``)
INSTANCE_LABEL_IDS: tuple[int, ...] = tuple(l.label_id for l in LABELS if l.has_instances and not l.ignore_in_eval)
CLASS_NAMES: tuple[str, ...] = tuple(LABELS[i].name for i in INSTANCE_LABEL_IDS)
#: instanceIds values that make a pixel void: the ignoreInEval labelIds ('license plate', -1, never occurs)
VOID_LABEL_IDS: tuple[int, ...] = tuple(l.label_id for l in LABELS if l.ignore_in_eval)
#: every labelId of the Cityscapes label table (-1 = license plate); predictions of others are refused
KNOWN_LABEL_IDS: frozenset[int] = frozenset({-1, *(l.label_id for l in LABELS)})
OVERLAPS: np.ndarray = np.arange(0.5, 1.0, 0.05)
MIN_REGION_SIZE = 100

_CLASS_SLOT = {label_id: slot for slot, label_id in enumerate(INSTANCE_LABEL_IDS)}
NOT_COUNTED, TRUE, FALSE = 0, 1, 2


@dataclass
class ImageDecisions:
    """One image's contribution: the counted predictions and what they are at each overlap threshold."""

    #: (P,) class slot (index into INSTANCE_LABEL_IDS) of each non-empty prediction of an evaluated class
    pred_class: np.ndarray
    #: (P,) float64 confidences
    pred_score: np.ndarray
    #: (P, len(OVERLAPS)) int8: NOT_COUNTED, TRUE (matched a ground truth) or FALSE (a false positive)
    status: np.ndarray
    #: (classes, len(OVERLAPS)) int64 ground truths left unmatched
    hard_fn: np.ndarray
    #: (classes,) bool: the image has counted ground truth of the class
    has_gt: np.ndarray


# --------------------------------------------------------------------------------------------- per image
def _class_of(values: np.ndarray) -> np.ndarray:
    return np.where(values >= INSTANCE_ID_OFFSET, values // INSTANCE_ID_OFFSET, values)


def decide_image(
    instance_ids: np.ndarray, labels: np.ndarray, scores: np.ndarray, rles: Sequence[dict[str, Any]]
) -> ImageDecisions:
    """Match one image's predictions (labelIds, confidences, RLE masks) to its instanceIds map."""
    from pycocotools import mask as mask_codec

    instance_ids = np.asarray(instance_ids, dtype=np.int64)
    values, pixels = np.unique(instance_ids, return_counts=True)
    classes = _class_of(values)
    keep = np.isin(classes, INSTANCE_LABEL_IDS)
    gt_ids, gt_pixels = values[keep], pixels[keep].astype(np.int64)
    gt_slot = np.array([_CLASS_SLOT[int(c)] for c in classes[keep]], dtype=np.int64)
    counted = (gt_ids >= INSTANCE_ID_OFFSET) & (gt_pixels >= MIN_REGION_SIZE)
    n_classes, n_overlaps = len(INSTANCE_LABEL_IDS), len(OVERLAPS)
    has_gt = np.bincount(gt_slot[counted], minlength=n_classes) > 0
    void = np.isin(instance_ids, VOID_LABEL_IDS)

    pred_slot: list[int] = []
    pred_score: list[float] = []
    pred_pixels: list[int] = []
    pred_void: list[int] = []
    pair_pred, pair_gt, pair_inter = [], [], []
    for label, score, rle in zip(labels.tolist(), scores.tolist(), rles):
        if label not in _CLASS_SLOT:
            continue  # a Cityscapes class the reference does not evaluate
        area = int(mask_codec.area(rle))
        if area == 0:
            continue  # the reference skips empty masks
        x, y, w, h = (int(v) for v in mask_codec.toBbox(rle))
        mask = mask_codec.decode(rle)[y : y + h, x : x + w].astype(bool)
        inside = instance_ids[y : y + h, x : x + w][mask]
        index = len(pred_slot)
        pred_slot.append(_CLASS_SLOT[label])
        pred_score.append(float(score))
        pred_pixels.append(area)
        pred_void.append(int(np.count_nonzero(void[y : y + h, x : x + w][mask])))
        hit, inter = np.unique(inside, return_counts=True)
        same = _class_of(hit) == label
        for gt_value, count in zip(hit[same].tolist(), inter[same].tolist()):
            pair_pred.append(index)
            pair_gt.append(int(np.searchsorted(gt_ids, gt_value)))
            pair_inter.append(count)

    n_pred = len(pred_slot)
    slots = np.array(pred_slot, dtype=np.int64)
    score_arr = np.array(pred_score, dtype=np.float64)
    size_arr = np.array(pred_pixels, dtype=np.int64)
    pp = np.array(pair_pred, dtype=np.int64)
    pg = np.array(pair_gt, dtype=np.int64)
    pi = np.array(pair_inter, dtype=np.int64)
    iou = pi.astype(np.float64) / (gt_pixels[pg] + size_arr[pp] - pi)
    # pixels a non-matching prediction may lose to ignored regions: void, groups, and regions under 100 px
    # (a group under 100 px counts twice, as in the reference)
    ignored = pi * (gt_ids[pg] < INSTANCE_ID_OFFSET) + pi * (gt_pixels[pg] < MIN_REGION_SIZE)
    ignore_pixels = np.array(pred_void, dtype=np.int64)
    np.add.at(ignore_pixels, pp, ignored)
    ignore_share = ignore_pixels.astype(np.float64) / size_arr if n_pred else np.zeros(0)

    status = np.zeros((n_pred, n_overlaps), dtype=np.int8)
    hard_fn = np.zeros((n_classes, n_overlaps), dtype=np.int64)
    for o, threshold in enumerate(OVERLAPS):
        above = iou > threshold
        # ground-truth side: the best-scored match is the TP, every other match an FP
        matched = np.zeros(len(gt_ids), dtype=bool)
        on_counted = above & counted[pg]
        for g in np.unique(pg[on_counted]).tolist():
            candidates = pp[on_counted & (pg == g)]
            winner = candidates[int(np.argmax(score_arr[candidates]))]
            status[candidates, o] = FALSE
            status[winner, o] = TRUE
            matched[g] = True
        hard_fn[:, o] = np.bincount(gt_slot[counted & ~matched], minlength=n_classes)
        # prediction side: no region of its class over the threshold and not mostly on ignored pixels
        found = np.zeros(n_pred, dtype=bool)
        found[pp[above]] = True
        status[~found & (ignore_share <= threshold), o] = FALSE
    return ImageDecisions(slots, score_arr, status, hard_fn, has_gt)


# ------------------------------------------------------------------------------------------ integration
def average_precision(y_true: np.ndarray, y_score: np.ndarray, hard_fn: int) -> float:
    """Step-wise integral of the reference's precision/recall curve (one point per distinct confidence)."""
    if y_score.size == 0:
        return 0.0  # the reference raises IndexError here; no TP means AP 0
    order = np.argsort(y_score)
    sorted_scores = y_score[order]
    cumulative = np.cumsum(y_true[order].astype(np.float64))
    _, first = np.unique(sorted_scores, return_index=True)
    n_true = cumulative[-1]
    below = np.append(cumulative, 0.0)[first - 1]  # TPs strictly below each threshold (index -1 -> 0)
    tp = n_true - below
    fp = (len(sorted_scores) - first) - tp
    fn = below + hard_fn
    precision = np.append(tp / (tp + fp), 1.0)
    recall = np.append(tp / (tp + fn), 0.0)
    widths = np.convolve(np.concatenate(([recall[0]], recall, [0.0])), [-0.5, 0, 0.5], "valid")
    return float(np.dot(precision, widths))


def ap_matrix(images: Sequence[ImageDecisions]) -> np.ndarray:
    """(classes, overlaps) AP; NaN for classes without counted ground truth in any image."""
    n_classes, n_overlaps = len(INSTANCE_LABEL_IDS), len(OVERLAPS)
    ap = np.full((n_classes, n_overlaps), np.nan)
    if not images:
        return ap
    slots = np.concatenate([im.pred_class for im in images])
    scores = np.concatenate([im.pred_score for im in images])
    status = np.concatenate([im.status.reshape(-1, n_overlaps) for im in images])
    hard_fn = np.sum([im.hard_fn for im in images], axis=0)
    has_gt = np.any([im.has_gt for im in images], axis=0)
    for c in range(n_classes):
        if not has_gt[c]:
            continue
        mine = slots == c
        if not mine.any():
            ap[c] = 0.0
            continue
        for o in range(n_overlaps):
            counted = mine & (status[:, o] != NOT_COUNTED)
            ap[c, o] = average_precision(status[counted, o] == TRUE, scores[counted], int(hard_fn[c, o]))
    return ap


def summarize(ap: np.ndarray) -> tuple[float, float, dict[str, float], dict[str, float]]:
    """(AP, AP50, per-class AP, per-class AP50) the way the reference's ``computeAverages`` averages."""
    o50 = int(np.flatnonzero(np.isclose(OVERLAPS, 0.5))[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all classes NaN: the mean is NaN
        overall = float(np.nanmean(ap))
        overall50 = float(np.nanmean(np.ascontiguousarray(ap[:, o50])))
        per_class = {name: float(np.mean(ap[c])) for c, name in enumerate(CLASS_NAMES)}
    per_class50 = {name: float(ap[c, o50]) for c, name in enumerate(CLASS_NAMES)}
    return overall, overall50, per_class, per_class50


# ---------------------------------------------------------------------------------------------- metric
def prediction_rles(prediction: Any, height: int, width: int, item: Any) -> list[dict[str, Any]]:
    """Compressed RLEs of a DetectionPrediction's masks, checked against the image size."""
    from harness.metrics.coco.masks import segmentations_to_rles

    masks = list(prediction.masks)
    return segmentations_to_rles(masks, np.zeros(len(masks), dtype=np.int64), np.array([[height, width]]),
                                 lambda i: f"item {item!r}: mask {i}", PredictionError, None)


def check_prediction(prediction: Any, item: Any) -> tuple[np.ndarray, np.ndarray]:
    """(labels int64, scores float64) of a DetectionPrediction with one finite score, known labelId and mask each."""
    from harness.core.structures import DetectionPrediction

    if not isinstance(prediction, DetectionPrediction):
        raise PredictionError(f"item {item!r}: cityscapes_instance needs a DetectionPrediction, "
                              f"got {type(prediction).__name__}")
    scores = np.asarray(prediction.scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(prediction.labels).reshape(-1)
    if labels.shape != scores.shape:
        raise PredictionError(f"item {item!r}: {labels.size} labels for {scores.size} scores")
    if prediction.masks is None or len(prediction.masks) != scores.size:
        raise PredictionError(f"item {item!r}: instance evaluation needs one mask per detection")
    if not np.all(np.isfinite(scores)):
        raise PredictionError(f"item {item!r}: a score is NaN or infinite")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.isfinite(labels.astype(np.float64))) or np.any(labels != np.round(labels)):
            raise PredictionError(f"item {item!r}: labels must be integer Cityscapes labelIds")
    labels = labels.astype(np.int64)
    unknown = sorted({int(v) for v in labels.tolist()} - KNOWN_LABEL_IDS)
    if unknown:
        raise PredictionError(f"item {item!r}: labels {unknown[:8]} are not Cityscapes labelIds (-1..33)")
    return labels, scores


@METRICS.register("cityscapes_instance")
class CityscapesInstanceMetric(Metric):
    """The official Cityscapes instance-level AP / AP50, from ``gtFine_instanceIds`` and RLE mask predictions.

    Samples come from the Cityscapes instance reader: the ground truth is read from
    ``sample.meta["instance_ids_path"]`` (the reference's only ground-truth input; the COCO-style target has
    no void pixels).  Prediction labels are Cityscapes labelIds; labelIds of classes the reference does not
    evaluate are skipped as it skips them, anything else is refused.
    """

    name = "cityscapes_instance"
    version = 1

    def __init__(self) -> None:
        super().__init__()
        self.add_state("images", [], reduce="cat")

    def update(self, samples: Sequence[Any], predictions: Sequence[Any]) -> None:
        if len(samples) != len(predictions):
            raise PredictionError(f"{len(predictions)} predictions for {len(samples)} samples")
        batch = [self._decide(sample, prediction) for sample, prediction in zip(samples, predictions)]
        self.images.extend(batch)  # all or nothing

    def _decide(self, sample: Any, prediction: Any) -> ImageDecisions:
        from harness.datasets.cityscapes import read_instance_ids

        item = sample.sample_id
        path = (getattr(sample, "meta", None) or {}).get("instance_ids_path")
        if path is None:
            raise DataError(f"item {item!r}: cityscapes_instance needs sample.meta['instance_ids_path'] "
                            "(samples of the Cityscapes instance reader)")
        instance_ids = read_instance_ids(Path(path))
        labels, scores = check_prediction(prediction, item)
        height, width = instance_ids.shape
        rles = prediction_rles(prediction, height, width, item)
        return decide_image(instance_ids, labels, scores, rles)

    def compute(self) -> MetricResult:
        ap = ap_matrix(self.images)
        overall, overall50, per_class, per_class50 = summarize(ap)
        metrics = {"AP": overall, "AP50": overall50}
        return MetricResult(
            metrics=metrics,
            per_class={"AP": per_class, "AP50": per_class50},
            curves={"AP_by_overlap": {"overlaps": OVERLAPS.tolist(),
                                      "classes": {n: ap[c].tolist() for c, n in enumerate(CLASS_NAMES)}}},
            settings={
                "reference": "cityscapesscripts evalInstanceLevelSemanticLabeling",
                "classes": {n: i for n, i in zip(CLASS_NAMES, INSTANCE_LABEL_IDS)},
                "overlaps": OVERLAPS.tolist(),
                "overlap_test": "IoU > threshold",
                "min_region_size": MIN_REGION_SIZE,
                "distance_thresholds": "none (no depth: AP over all distances only)",
                "void_label_ids": list(VOID_LABEL_IDS),
                "ignore_rule": "unmatched prediction is an FP unless (void + group + <100px pixels) / size > t",
                "classes_without_gt": "NaN, left out of AP and AP50",
                "no_counted_score": "0.0 (the reference raises IndexError)",
            },
            higher_is_better={name: True for name in metrics},
        )
