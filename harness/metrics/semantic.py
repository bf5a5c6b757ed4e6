"""Semantic segmentation scores from one dataset-wide confusion matrix.

Benchmarks score segmentation on a single confusion matrix accumulated over all images (not per-image means),
so the state is that matrix: memory does not grow with the number of images and merging ranks is a sum.

The matrix is ``(C, C + 1)``: rows are ground-truth classes, columns predicted classes, and the extra last
column counts pixels whose prediction is the ignore label ("no class").  Such pixels are false negatives of
their ground-truth class and false positives of nothing, which is what mmsegmentation's histogram and the
ADE20K devkit both do.  Ground-truth pixels equal to ``ignore_index`` are dropped.

Dialects (how per-class values become a mean):

* ``mmseg`` (default): a class whose denominator is zero gets NaN and drops out of the mean (``np.nanmean``).
  mmsegmentation's F-score is ``2pr / (p + r)``, so a class with ground truth and predictions but no true
  positive gets ``0 / 0 = NaN`` and also drops out of mFscore; this is reproduced, not repaired.
  (mmsegmentation accumulates its histograms in float32; here counts are exact integers.)
* ``ade20k-devkit``: the official ADE20K SceneParsing devkit averages over all classes; IoU is
  ``I / (eps + U)`` with MATLAB's eps, so a class absent from both ground truth and prediction counts 0.
  Other per-class values that would be undefined count 0 as well.
"""
from __future__ import annotations

import warnings
from typing import Any, Iterable, Iterator, Literal, Sequence

import numpy as np

from harness.core.errors import DataError, PredictionError
from harness.metrics import METRICS
from harness.core.metric import Metric, MetricResult, weighted_counts
from harness.core.structures import SemanticPrediction, SemanticTarget
from harness.metrics.stream_kernels import confusion_counts

SemanticDialect = Literal["mmseg", "ade20k-devkit"]
DIALECTS: tuple[str, ...] = ("mmseg", "ade20k-devkit")
SUMMARY_KEYS = ("mIoU", "mAcc", "aAcc", "mDice", "mFscore", "mPrecision", "mRecall")
PER_CLASS_KEYS = ("IoU", "Acc", "Dice", "Fscore", "Precision", "Recall")
DEFAULT_IGNORE_INDEX = 255


# ------------------------------------------------------------------------------------------ label maps
def reduce_zero_label(label_map: np.ndarray, ignore_index: int = DEFAULT_IGNORE_INDEX) -> np.ndarray:
    """ADE20K's ``reduce_zero_label``: 0 ("other") becomes ``ignore_index``, every other label shifts down by one.

    Ignore pixels stay ignored, as in mmsegmentation (255 -> 254 -> 255).
    """
    labels = np.asarray(label_map).astype(np.int64)
    reduced = labels - 1
    reduced[labels == 0] = ignore_index
    reduced[labels == ignore_index] = ignore_index
    return reduced


def out_of_range_values(label_map: np.ndarray, num_classes: int, ignore_index: int | None) -> np.ndarray:
    """Distinct values that are neither a class index ``0..num_classes-1`` nor the ignore label."""
    low, high = label_map.min(initial=0), label_map.max(initial=0)
    if low >= 0 and high < num_classes:
        return np.empty(0, dtype=np.int64)
    bad = np.unique(label_map[(label_map < 0) | (label_map >= num_classes)])
    if ignore_index is not None:
        bad = bad[bad != ignore_index]
    return bad


def check_label_map(
    label_map: Any, *, item: Any, role: str, num_classes: int, ignore_index: int | None, error: type
) -> np.ndarray:
    """A 2-D integer array whose values are classes or the ignore label, or ``error`` naming the item."""
    array = np.asarray(label_map)
    if array.ndim != 2:
        raise error(f"item {item!r}: {role} label map must be 2-D (H, W), got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise error(f"item {item!r}: {role} label map must hold integers, got dtype {array.dtype}")
    bad = out_of_range_values(array, num_classes, ignore_index)
    if bad.size:
        shown = ", ".join(str(v) for v in bad[:5].tolist())
        allowed = f"0..{num_classes - 1}" + (f" or {ignore_index}" if ignore_index is not None else "")
        raise error(f"item {item!r}: {role} label map holds values outside {allowed}: {shown}")
    return array


# ------------------------------------------------------------------------------------ confusion matrix
def confusion_matrix(
    target: np.ndarray, prediction: np.ndarray, num_classes: int, ignore_index: int = DEFAULT_IGNORE_INDEX
) -> np.ndarray:
    """(C, C+1) int64 pixel counts for one image; inputs must already be validated (see ``check_label_map``)."""
    keep = target != ignore_index
    gt = target[keep].astype(np.int64)
    pred = prediction[keep].astype(np.int64)
    pred[pred == ignore_index] = num_classes
    counts = np.bincount(gt * (num_classes + 1) + pred, minlength=num_classes * (num_classes + 1))
    return counts.reshape(num_classes, num_classes + 1)


def counts_from_confusion(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class (TP, FP, FN) from a (C, C+1) matrix; the 'no class' column only adds false negatives."""
    num_classes = matrix.shape[0]
    tp = np.diagonal(matrix[:, :num_classes]).astype(np.int64)
    fn = matrix.sum(axis=1, dtype=np.int64) - tp
    fp = matrix[:, :num_classes].sum(axis=0, dtype=np.int64) - tp
    return tp, fp, fn


# ------------------------------------------------------------------------------------------- scoring
def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(numerator, dtype=np.float64) / np.asarray(denominator, dtype=np.float64)


def _nanmean(values: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(values)) if values.size else float("nan")


def scores_from_counts(
    tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, dialect: SemanticDialect = "mmseg"
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Summary means and per-class arrays (IoU, Acc, Dice, Fscore, Precision, Recall) from per-class counts."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown semantic dialect {dialect!r} (known: {', '.join(DIALECTS)})")
    tp, fp, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn))
    predicted, labelled = tp + fp, tp + fn
    precision = _divide(tp, predicted)
    recall = _divide(tp, labelled)
    beta2 = 1.0
    per_class = {
        "IoU": _divide(tp, predicted + labelled - tp),
        "Acc": recall,
        "Dice": _divide(2 * tp, predicted + labelled),
        "Fscore": _divide((1 + beta2) * (precision * recall), beta2 * precision + recall),
        "Precision": precision,
        "Recall": recall,
    }
    if dialect == "ade20k-devkit":
        per_class["IoU"] = tp / (np.spacing(1.0) + (predicted + labelled - tp))
        per_class = {name: np.nan_to_num(values, nan=0.0) for name, values in per_class.items()}
        mean = lambda values: float(np.mean(values)) if values.size else float("nan")  # noqa: E731
    else:
        mean = _nanmean
    summary = {f"m{name}": mean(per_class[name]) for name in PER_CLASS_KEYS if name != "Acc"}
    summary["mAcc"] = mean(per_class["Acc"])
    summary["aAcc"] = float(_divide(tp.sum(), labelled.sum()))
    return {key: summary[key] for key in SUMMARY_KEYS}, per_class


def semantic_scores(
    matrix: np.ndarray, dialect: SemanticDialect = "mmseg"
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """``scores_from_counts`` on a (C, C+1) confusion matrix."""
    return scores_from_counts(*counts_from_confusion(matrix), dialect=dialect)


def semantic_segmentation_scores(
    targets: Sequence[np.ndarray],
    predictions: Sequence[np.ndarray],
    num_classes: int,
    ignore_index: int = DEFAULT_IGNORE_INDEX,
    dialect: SemanticDialect = "mmseg",
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Functional entry point: score lists of label maps (validated like the metric does)."""
    metric = SemanticSegmentationMetric(num_classes, ignore_index=ignore_index, dialect=dialect)
    metric.update_arrays(targets, predictions)
    return semantic_scores(metric.confusion, dialect)


# -------------------------------------------------------------------------------------------- metric
def higher_is_better(keys: Iterable[str]) -> dict[str, bool]:
    return {key: True for key in keys}


def per_class_table(per_class: dict[str, np.ndarray], names: Sequence[str]) -> dict[str, dict[str, float]]:
    return {metric: dict(zip(names, (float(v) for v in values))) for metric, values in per_class.items()}


def semantic_pairs(
    samples: Sequence[Any], predictions: Sequence[Any]
) -> Iterator[tuple[Any, SemanticTarget, SemanticPrediction]]:
    """(sample id, target, prediction) per sample, after checking both have the semantic types."""
    if len(samples) != len(predictions):
        raise PredictionError(f"{len(predictions)} predictions for {len(samples)} samples")
    for sample, prediction in zip(samples, predictions):
        target = sample.target
        if not isinstance(target, SemanticTarget):
            raise DataError(f"item {sample.sample_id!r}: expected a SemanticTarget, got {type(target).__name__}")
        if not isinstance(prediction, SemanticPrediction):
            raise PredictionError(
                f"item {sample.sample_id!r}: expected a SemanticPrediction, got {type(prediction).__name__}"
            )
        yield sample.sample_id, target, prediction


@METRICS.register("semantic")
class SemanticSegmentationMetric(Metric):
    """mIoU, mAcc, aAcc, mDice, mFscore over a dataset; state is one (C, C+1) confusion matrix.

    ``reduce_zero_label`` applies ADE20K's label shift to targets only (predictions are expected in the
    reduced 0..C-1 space), as mmsegmentation does when it loads annotations.
    """

    name = "semantic"
    dialects = DIALECTS

    @classmethod
    def from_dataset(cls, info: Any, **options: Any) -> "SemanticSegmentationMetric":
        ignore = DEFAULT_IGNORE_INDEX if info.ignore_index is None else info.ignore_index
        return cls(num_classes=len(info.classes), class_names=info.classes, ignore_index=ignore, **options)

    def __init__(
        self,
        num_classes: int,
        class_names: Sequence[str] | None = None,
        ignore_index: int = DEFAULT_IGNORE_INDEX,
        dialect: SemanticDialect = "mmseg",
        reduce_zero_label: bool = False,
    ) -> None:
        super().__init__()
        if dialect not in DIALECTS:
            raise ValueError(f"unknown semantic dialect {dialect!r} (known: {', '.join(DIALECTS)})")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
        if 0 <= ignore_index < num_classes:
            raise ValueError(f"ignore_index {ignore_index} collides with a class index (0..{num_classes - 1})")
        self.num_classes = num_classes
        self.class_names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
        self.ignore_index = ignore_index
        self.dialect = dialect
        self.reduce_zero_label = reduce_zero_label
        self.add_state("confusion", np.zeros((num_classes, num_classes + 1), dtype=np.int64), reduce="sum")
        # per-image (TP, FP, FN) per class, (3, C) int64, in sample order: what a bootstrap resample re-weights
        self.add_state("image_counts", [], reduce="cat")

    def update(self, samples: Sequence[Any], predictions: Sequence[Any]) -> None:
        for item, target, prediction in semantic_pairs(samples, predictions):
            self._add(target.label_map, prediction.label_map, item)

    def update_arrays(self, targets: Sequence[np.ndarray], predictions: Sequence[np.ndarray]) -> None:
        """Add label maps directly (items are named by their position)."""
        if len(targets) != len(predictions):
            raise PredictionError(f"{len(predictions)} predictions for {len(targets)} targets")
        for index, (target, prediction) in enumerate(zip(targets, predictions)):
            self._add(target, prediction, index)

    def _add(self, target: Any, prediction: Any, item: Any) -> None:
        target = np.asarray(target)
        if self.reduce_zero_label:
            target = reduce_zero_label(target, self.ignore_index)
        prediction = np.asarray(prediction)
        # one compiled pass checks and counts 2-D maps; anything it refuses (or no compiled kernel) goes the
        # numpy way below, which also gives every error message in the same order
        matrix = confusion_counts(target, prediction, self.num_classes, self.ignore_index) if target.ndim == 2 else None
        if matrix is None:
            matrix = self._confusion_numpy(target, prediction, item)
        self.confusion += matrix
        self.image_counts.append(np.stack(counts_from_confusion(matrix)))

    def _confusion_numpy(self, target: np.ndarray, prediction: np.ndarray, item: Any) -> np.ndarray:
        target = check_label_map(
            target, item=item, role="target", num_classes=self.num_classes,
            ignore_index=self.ignore_index, error=DataError,
        )
        if prediction.shape != target.shape:
            raise PredictionError(
                f"item {item!r}: prediction label map has shape {prediction.shape}, ground truth {target.shape}"
            )
        prediction = check_label_map(
            prediction, item=item, role="prediction", num_classes=self.num_classes,
            ignore_index=self.ignore_index, error=PredictionError,
        )
        return confusion_matrix(target, prediction, self.num_classes, self.ignore_index)

    def resampled(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        """Weighted per-image (TP, FP, FN): each resample scores exactly the pixels of its image multiset."""
        counts = np.asarray(counts)
        if counts.ndim != 2 or counts.shape[1] != len(self.image_counts):
            raise NotImplementedError(f"{self.name}: counts {counts.shape} for {len(self.image_counts)} images")
        totals = weighted_counts(np.stack(self.image_counts), counts)  # (B, 3, C)
        draws = [scores_from_counts(tp, fp, fn, dialect=self.dialect)[0] for tp, fp, fn in totals]
        return {key: np.array([d[key] for d in draws], dtype=np.float64) for key in SUMMARY_KEYS}

    def compute(self) -> MetricResult:
        summary, per_class = semantic_scores(self.confusion, self.dialect)
        return MetricResult(
            metrics=summary,
            per_class=per_class_table(per_class, self.class_names),
            settings={
                "dialect": self.dialect,
                "num_classes": self.num_classes,
                "ignore_index": self.ignore_index,
                "reduce_zero_label": self.reduce_zero_label,
                "averaging": "dataset confusion matrix",
            },
            higher_is_better=higher_is_better(summary),
        )
