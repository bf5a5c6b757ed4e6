"""The per-image results table of a run: one row per image with its own score and counts.

Why a table: the gallery (worst images), the error analysis and ``bench compare`` are all "which images" questions;
one pandas-readable file per run (``per_image.csv``, and ``per_image.parquet`` when pyarrow is installed) answers
them and lets people do their own slicing.

Per-image scores are diagnostics chosen to be meaningful on one image (the official metrics are dataset-level):
- detection / instance: greedy COCO-style matching per class at IoU 0.5 (masks for instance); TP/FP/FN count the
  detections scoring at least the run's *operating threshold*, the score that maximises the dataset's F1 at IoU
  0.5; the image's score is its F1 there (1 when it has neither objects nor detections).
- keypoints: OKS against each annotated person (COCO's formula and sigmas); TP at OKS >= 0.5; the score is the mean
  over annotated people of their best OKS.
- semantic: pixel accuracy and mIoU over the classes present in the image's ground truth or prediction.
- flow: mean end-point error over valid pixels (lower is better), the share of pixels under 1 px, and Fl.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from harness.publish.pictures.collect import Pair
from harness.publish.pictures.overlap import box_iou, greedy_match, mask_iou, oks

IOU = 0.5
MAX_DETS = 100
#: end-point-error histogram bin edges (px); everything above the last edge lands in the last bin
EPE_EDGES = np.concatenate([np.arange(0, 20, 0.25), [20, 30, 50, np.inf]])


@dataclass
class PerImage:
    table: pd.DataFrame
    score: str  # name of the per-image score column
    higher_is_better: bool
    notes: dict[str, Any] = field(default_factory=dict)
    #: task-specific accumulations for the charts (confusion matrices, histograms)
    extras: dict[str, Any] = field(default_factory=dict)

    def write(self, run_dir: Path) -> list[str]:
        """``per_image.csv`` (+ ``.parquet`` when pyarrow imports); returns the file names written."""
        from harness.io.jsonio import atomic_write_text

        written = []
        atomic_write_text(Path(run_dir) / "per_image.csv", self.table.to_csv(index=False))
        written.append("per_image.csv")
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            return written
        tmp = Path(run_dir) / ".per_image.parquet.tmp"
        self.table.to_parquet(tmp, index=False)
        tmp.replace(Path(run_dir) / "per_image.parquet")
        written.append("per_image.parquet")
        return written


def per_image(task: str, info: Any, pairs: Sequence[Pair]) -> PerImage:
    if task in ("detection", "instance"):
        return _detection(info, pairs, masks=task == "instance")
    if task == "keypoints":
        return _keypoints(info, pairs)
    if task == "semantic":
        return _semantic(info, pairs)
    if task == "flow":
        return _flow(pairs)
    raise ValueError(f"no per-image analysis for task {task!r}")


# ------------------------------------------------------------------------------------------------ detection
@dataclass
class ImageMatches:
    """Detections of one image (top ``MAX_DETS`` by score) matched per class at IoU 0.5."""

    scores: np.ndarray
    labels: np.ndarray
    matched: np.ndarray  # (M,) gt index or -1
    ignored: np.ndarray  # (M,) bool: overlaps a crowd/ignored region
    iou: np.ndarray  # (M, N) overlaps with every gt, any class
    gt_labels: np.ndarray
    gt_crowd: np.ndarray
    keep: np.ndarray  # indices into the original prediction


def match_image(target: Any, prediction: Any, masks: bool) -> ImageMatches:
    scores = np.asarray(prediction.scores, dtype=np.float64).reshape(-1)
    keep = np.argsort(-scores, kind="stable")[:MAX_DETS]
    scores = scores[keep]
    labels = np.asarray(prediction.labels).reshape(-1)[keep]
    gt_labels = np.asarray(target.labels).reshape(-1)
    crowd = np.asarray(target.iscrowd, bool).reshape(-1)
    if getattr(target, "ignore", None) is not None:
        crowd = crowd | np.asarray(target.ignore, bool).reshape(-1)
    if masks and prediction.masks is not None and target.masks is not None:
        iou = mask_iou([prediction.masks[k] for k in keep], target.masks, int(target.height), int(target.width), crowd)
    else:
        iou = box_iou(np.asarray(prediction.boxes).reshape(-1, 4)[keep], target.boxes, crowd)
    matched = np.full(len(keep), -1)
    ignored = np.zeros(len(keep), bool)
    for label in np.unique(np.concatenate([labels, gt_labels])):
        p = np.flatnonzero(labels == label)
        g = np.flatnonzero(gt_labels == label)
        if len(p) == 0 or len(g) == 0:
            continue
        m, ign, _ = greedy_match(iou[np.ix_(p, g)], scores[p], IOU, crowd[g])
        matched[p] = np.where(m >= 0, g[np.maximum(m, 0)], -1)
        ignored[p] = ign
    return ImageMatches(scores, labels, matched, ignored, iou, gt_labels, crowd, keep)


def operating_threshold(all_matches: Sequence[ImageMatches]) -> float:
    """The detection score that maximises F1 at IoU 0.5 over the whole run (ties: the higher score)."""
    scores = np.concatenate([m.scores[~m.ignored] for m in all_matches] or [np.zeros(0)])
    tps = np.concatenate([(m.matched >= 0)[~m.ignored] for m in all_matches] or [np.zeros(0, bool)])
    n_gt = sum(int((~m.gt_crowd).sum()) for m in all_matches)
    if len(scores) == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    scores, tps = scores[order], tps[order]
    tp = np.cumsum(tps)
    f1 = 2 * tp / (np.arange(1, len(scores) + 1) + n_gt)
    # only cut between distinct scores
    last_of_score = np.r_[scores[1:] != scores[:-1], True]
    f1 = np.where(last_of_score, f1, -1)
    return float(scores[int(np.argmax(f1))])


def _detection(info: Any, pairs: Sequence[Pair], masks: bool) -> PerImage:
    all_matches = [match_image(p.sample.target, p.prediction, masks) for p in pairs]
    threshold = operating_threshold(all_matches)
    ids = list(info.category_ids)
    k = len(ids)
    position = {cid: i for i, cid in enumerate(ids)}
    # rows: ground-truth class, last row "background" (no object); columns: predicted class, last "missed"
    confusion = np.zeros((k + 1, k + 1), dtype=np.int64)
    rows = []
    for pair, m in zip(pairs, all_matches):
        kept = (m.scores >= threshold) & ~m.ignored
        tp = int(((m.matched >= 0) & kept).sum())
        fp = int(((m.matched < 0) & kept).sum())
        n_gt = int((~m.gt_crowd).sum())
        fn = n_gt - tp
        denominator = 2 * tp + fp + fn
        rows.append({"image_id": str(pair.sample.sample_id), "f1": 1.0 if denominator == 0 else 2 * tp / denominator,
                     "tp": tp, "fp": fp, "fn": fn, "gt": n_gt, "detections": int(len(m.scores)),
                     "detections_above_threshold": int(kept.sum())})
        matched_gt = set()
        for p in np.flatnonzero(kept):
            pc = position.get(m.labels[p], None)
            if pc is None:
                continue
            if m.matched[p] >= 0:
                confusion[pc, pc] += 1
                matched_gt.add(int(m.matched[p]))
                continue
            other = np.flatnonzero(~m.gt_crowd & (m.gt_labels != m.labels[p]))
            if len(other) and m.iou[p, other].max() >= IOU:
                g = other[int(np.argmax(m.iou[p, other]))]
                confusion[position.get(m.gt_labels[g], k), pc] += 1
                matched_gt.add(int(g))
            else:
                confusion[k, pc] += 1
        for g in np.flatnonzero(~m.gt_crowd):
            if int(g) not in matched_gt and m.gt_labels[g] in position:
                confusion[position[m.gt_labels[g]], k] += 1
    table = pd.DataFrame(rows, columns=["image_id", "f1", "tp", "fp", "fn", "gt", "detections",
                                        "detections_above_threshold"])
    return PerImage(table, "f1", True,
                    notes={"score": f"F1 at IoU {IOU} ({'masks' if masks else 'boxes'}), detections scoring >= "
                                    f"{threshold:.3g} (the threshold that maximises the run's F1)",
                           "score_threshold": threshold},
                    extras={"matches": all_matches, "class_confusion": confusion, "threshold": threshold})


# ------------------------------------------------------------------------------------------------ keypoints
def _keypoints(info: Any, pairs: Sequence[Pair]) -> PerImage:
    sigmas = info.sigmas or [0.05] * len(info.keypoint_names)
    rows = []
    for pair in pairs:
        target, prediction = pair.sample.target, pair.prediction
        crowd = np.asarray(target.iscrowd, bool).reshape(-1)
        visible = np.asarray(target.keypoints)[:, :, 2].reshape(len(crowd), -1) > 0 if len(crowd) else np.zeros((0, 1), bool)
        people = np.flatnonzero(~crowd & visible.any(axis=1))
        similarity = oks(np.asarray(prediction.keypoints).reshape(-1, len(sigmas), 3),
                         np.asarray(target.keypoints)[people], np.asarray(target.areas)[people], sigmas)
        scores = np.asarray(prediction.scores, dtype=np.float64).reshape(-1)
        matched, _, gt_matched = greedy_match(similarity, scores, IOU)
        tp = int(gt_matched.sum())
        best = similarity.max(axis=0) if similarity.size else np.zeros(len(people))
        rows.append({"image_id": str(pair.sample.sample_id),
                     "oks": float(best.mean()) if len(people) else np.nan,
                     "tp": tp, "fp": int(len(scores) - tp), "fn": int(len(people) - tp), "people": int(len(people))})
    table = pd.DataFrame(rows, columns=["image_id", "oks", "tp", "fp", "fn", "people"])
    return PerImage(table, "oks", True, notes={
        "score": "mean over annotated people of their best OKS (COCO sigmas); TP at OKS >= 0.5"})


# ------------------------------------------------------------------------------------------------- semantic
def _semantic(info: Any, pairs: Sequence[Pair]) -> PerImage:
    k = len(info.classes)
    ignore = info.ignore_index
    confusion = np.zeros((k, k), dtype=np.int64)
    rows = []
    for pair in pairs:
        gt = np.asarray(pair.sample.target.label_map).astype(np.int64)
        pred = np.asarray(pair.prediction.label_map).astype(np.int64)
        valid = (gt >= 0) & (gt < k) if ignore is None else (gt != ignore) & (gt >= 0) & (gt < k)
        g, p = gt[valid], pred[valid]
        inside = (p >= 0) & (p < k)
        local = np.bincount(g[inside] * k + p[inside], minlength=k * k).reshape(k, k)
        confusion += local
        union = local.sum(0) + local.sum(1) - np.diag(local)
        present = union > 0
        iou = np.diag(local)[present] / union[present]
        rows.append({"image_id": str(pair.sample.sample_id),
                     "miou": float(iou.mean()) if present.any() else np.nan,
                     "pixel_accuracy": float((g == p).mean()) if len(g) else np.nan,
                     "valid_pixels": int(valid.sum()), "classes_present": int(present.sum())})
    table = pd.DataFrame(rows, columns=["image_id", "miou", "pixel_accuracy", "valid_pixels", "classes_present"])
    return PerImage(table, "miou", True,
                    notes={"score": "mIoU over the classes in the image's ground truth or prediction"},
                    extras={"confusion": confusion})


# ----------------------------------------------------------------------------------------------------- flow
def end_point_error(target: Any, prediction: Any) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) EPE and the (H, W) valid mask."""
    gt = np.asarray(target.flow, dtype=np.float64)
    pred = np.asarray(prediction.flow, dtype=np.float64)
    epe = np.sqrt(((pred - gt) ** 2).sum(axis=2))
    valid = np.ones(epe.shape, bool) if target.valid is None else np.asarray(target.valid, bool)
    return epe, valid & np.isfinite(epe)


def _flow(pairs: Sequence[Pair]) -> PerImage:
    histogram = np.zeros(len(EPE_EDGES) - 1, dtype=np.int64)
    rows = []
    for pair in pairs:
        epe, valid = end_point_error(pair.sample.target, pair.prediction)
        values = epe[valid]
        magnitude = np.sqrt((np.asarray(pair.sample.target.flow, dtype=np.float64) ** 2).sum(axis=2))[valid]
        histogram += np.histogram(values, EPE_EDGES)[0]
        outlier = (values > 3) & (values > 0.05 * magnitude)
        rows.append({"image_id": str(pair.sample.sample_id), "epe": float(values.mean()) if len(values) else np.nan,
                     "within_1px": float((values < 1).mean()) if len(values) else np.nan,
                     "Fl": float(outlier.mean()) if len(values) else np.nan, "valid_pixels": int(valid.sum())})
    table = pd.DataFrame(rows, columns=["image_id", "epe", "within_1px", "Fl", "valid_pixels"])
    return PerImage(table, "epe", False, notes={"score": "mean end-point error (px) over valid pixels"},
                    extras={"epe_histogram": histogram, "epe_edges": EPE_EDGES})
