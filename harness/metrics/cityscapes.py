"""Cityscapes pixel-level scores as the official ``evalPixelLevelSemanticLabeling`` computes them.

Facts of the reference (cityscapesscripts), reproduced here without its code:

* Evaluation is in labelId space (0..33).  Ground-truth pixels of ``ignoreInEval`` labels count for nothing;
  a prediction of an ignored label on an evaluated ground-truth pixel is a false negative of that class.
* Class IoU = TP / (TP + FP + FN) for the 19 evaluated classes; classes with no pixels at all are NaN and drop
  out of the mean.  Category IoU works the same on the 7 categories that have evaluated labels.
* iIoU (the instance-weighted IoU) is computed for the 8 evaluated instance classes: for every ground-truth
  instance (instanceIds >= 1000, class = id // 1000) TP and FN are weighted by ``avgClassSize[class] / size``;
  FP stays the unweighted confusion-matrix count.  Category iIoU (human, vehicle) counts a pixel as TP when
  the prediction is any label of the category that has instances, including the ignored caravan and trailer.

The state is the 34x34 integer confusion matrix (exact, so merged in any grouping) plus, per image, the weighted
TP/FN contribution of each of its instances.  ``compute`` adds the contributions up one instance at a time in
sample order, which is the reference's own order: a single stream reproduces its floating-point sums bit for bit,
and so does any batching or sharding (ranks hold contiguous slices, concatenated in order), where float running
totals merged per shard would not.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np

from harness.core.errors import DataError, PredictionError
from harness.metrics import METRICS
from harness.core.metric import Metric, MetricResult
from harness.metrics.semantic import (
    check_label_map,
    higher_is_better,
    per_class_table,
    scores_from_counts,
    semantic_pairs,
)
from harness.metrics.stream_kernels import confusion_counts


@dataclass(frozen=True)
class CityscapesLabel:
    name: str
    label_id: int
    train_id: int
    category: str
    has_instances: bool
    ignore_in_eval: bool


def _labels() -> tuple[CityscapesLabel, ...]:
    # name, labelId, trainId, category, hasInstances, ignoreInEval  (cityscapesscripts helpers/labels.py)
    rows = [
        ("unlabeled", 0, 255, "void", False, True), ("ego vehicle", 1, 255, "void", False, True),
        ("rectification border", 2, 255, "void", False, True), ("out of roi", 3, 255, "void", False, True),
        ("static", 4, 255, "void", False, True), ("dynamic", 5, 255, "void", False, True),
        ("ground", 6, 255, "void", False, True), ("road", 7, 0, "flat", False, False),
        ("sidewalk", 8, 1, "flat", False, False), ("parking", 9, 255, "flat", False, True),
        ("rail track", 10, 255, "flat", False, True), ("building", 11, 2, "construction", False, False),
        ("wall", 12, 3, "construction", False, False), ("fence", 13, 4, "construction", False, False),
        ("guard rail", 14, 255, "construction", False, True), ("bridge", 15, 255, "construction", False, True),
        ("tunnel", 16, 255, "construction", False, True), ("pole", 17, 5, "object", False, False),
        ("polegroup", 18, 255, "object", False, True), ("traffic light", 19, 6, "object", False, False),
        ("traffic sign", 20, 7, "object", False, False), ("vegetation", 21, 8, "nature", False, False),
        ("terrain", 22, 9, "nature", False, False), ("sky", 23, 10, "sky", False, False),
        ("person", 24, 11, "human", True, False), ("rider", 25, 12, "human", True, False),
        ("car", 26, 13, "vehicle", True, False), ("truck", 27, 14, "vehicle", True, False),
        ("bus", 28, 15, "vehicle", True, False), ("caravan", 29, 255, "vehicle", True, True),
        ("trailer", 30, 255, "vehicle", True, True), ("train", 31, 16, "vehicle", True, False),
        ("motorcycle", 32, 17, "vehicle", True, False), ("bicycle", 33, 18, "vehicle", True, False),
    ]
    return tuple(CityscapesLabel(*row) for row in rows)


LABELS = _labels()
NUM_LABEL_IDS = len(LABELS)  # 34; 'license plate' (id -1) never appears in label maps
EVAL_LABEL_IDS = np.array([label.label_id for label in LABELS if not label.ignore_in_eval])
EVAL_CLASS_NAMES = [LABELS[i].name for i in EVAL_LABEL_IDS]
INSTANCE_LABEL_IDS = np.array([l.label_id for l in LABELS if l.has_instances and not l.ignore_in_eval])
CATEGORIES = ("flat", "construction", "object", "nature", "sky", "human", "vehicle")  # 'void' has no eval label
INSTANCE_CATEGORIES = ("human", "vehicle")
#: mean instance size per class in pixels, the iIoU weights of the official script
AVG_CLASS_SIZE = {
    "bicycle": 4672.3249222261, "caravan": 36771.8241758242, "motorcycle": 6298.7200839748,
    "rider": 3930.4788056518, "bus": 35732.1511111111, "train": 67583.7075812274, "car": 12794.0202738185,
    "person": 3462.4756337644, "truck": 27855.1264367816, "trailer": 16926.9763313609,
}
INSTANCE_ID_OFFSET = 1000

_IS_EVAL = np.array([not label.ignore_in_eval for label in LABELS])
_CATEGORY_OF = np.array([label.category for label in LABELS])
#: labels whose predictions count as the category in category iIoU: every label of it that has instances
_INSTANCE_CATEGORY_LABELS = {
    category: np.array([l.label_id for l in LABELS if l.category == category and l.has_instances])
    for category in INSTANCE_CATEGORIES
}

IdSpace = Literal["label_id", "train_id"]


# ----------------------------------------------------------------------------------------- id spaces
def train_id_to_label_id(train_ids: np.ndarray) -> np.ndarray:
    """trainId (0..18, 255) -> labelId; 255 maps to 'unlabeled' (0), the first label with that trainId."""
    lookup = np.zeros(256, dtype=np.uint8)
    for label in reversed(LABELS):
        lookup[label.train_id] = label.label_id
    return lookup[np.asarray(train_ids)]


def _to_label_ids(label_map: Any, space: IdSpace, *, item: Any, role: str, error: type) -> np.ndarray:
    if space == "train_id":
        array = check_label_map(label_map, item=item, role=role, num_classes=19, ignore_index=255, error=error)
        return train_id_to_label_id(array)
    return check_label_map(label_map, item=item, role=role, num_classes=NUM_LABEL_IDS, ignore_index=None,
                           error=error)


# ------------------------------------------------------------------------------------- accumulation
def label_id_confusion(target: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """(34, 34) int64 counts in labelId space, every pixel included (ignored rows matter to nothing)."""
    compiled = confusion_counts(target, prediction, NUM_LABEL_IDS, None)  # one pass; None: numpy below
    if compiled is not None:
        return compiled[:, :NUM_LABEL_IDS]
    flat = target.astype(np.int64).ravel() * NUM_LABEL_IDS + prediction.astype(np.int64).ravel()
    return np.bincount(flat, minlength=NUM_LABEL_IDS * NUM_LABEL_IDS).reshape(NUM_LABEL_IDS, NUM_LABEL_IDS)


@dataclass
class InstanceSums:
    """Weighted TP/FN per labelId (34,) and per instance category (2,), added in the reference's order."""

    class_tp: np.ndarray
    class_fn: np.ndarray
    category_tp: np.ndarray
    category_fn: np.ndarray

    @classmethod
    def zeros(cls) -> "InstanceSums":
        return cls(np.zeros(NUM_LABEL_IDS), np.zeros(NUM_LABEL_IDS), np.zeros(2), np.zeros(2))

    def add(self, contributions: np.ndarray) -> None:
        """Add one image's ``instance_contributions`` rows, one instance at a time, as the reference does."""
        for label_id, slot, tp, fn, category_tp, category_fn in contributions.tolist():
            self.class_tp[int(label_id)] += tp
            self.class_fn[int(label_id)] += fn
            if slot >= 0:
                self.category_tp[int(slot)] += category_tp
                self.category_fn[int(slot)] += category_fn


#: columns of ``instance_contributions``
CONTRIBUTION_COLUMNS = ("label_id", "category_slot", "tp", "fn", "category_tp", "category_fn")


def instance_contributions(instance_map: np.ndarray, prediction: np.ndarray, item: Any) -> np.ndarray:
    """(N, 6) float64 rows, one per evaluated instance of the image in increasing id order (``CONTRIBUTION_COLUMNS``):
    labelId, instance-category slot (-1 for none), and the weighted TP/FN it adds to its class and category.

    The weights depend on the image alone, so the rows are the same however the images were batched.
    """
    empty = np.zeros((0, len(CONTRIBUTION_COLUMNS)))
    instance_pixels = np.flatnonzero(instance_map.ravel() >= INSTANCE_ID_OFFSET)
    if instance_pixels.size == 0:
        return empty
    ids, inverse = np.unique(instance_map.ravel()[instance_pixels], return_inverse=True)
    predicted = prediction.ravel()[instance_pixels]
    label_ids = ids // INSTANCE_ID_OFFSET
    if label_ids.max() >= NUM_LABEL_IDS:
        raise DataError(f"item {item!r}: instance id {int(ids[label_ids >= NUM_LABEL_IDS][0])} names no label")
    sizes = np.bincount(inverse, minlength=ids.size)
    class_hits = np.bincount(inverse, weights=predicted == label_ids[inverse], minlength=ids.size)
    category_hits = {
        category: np.bincount(inverse, weights=np.isin(predicted, members), minlength=ids.size)
        for category, members in _INSTANCE_CATEGORY_LABELS.items()
    }
    for instance_id, label_id in zip(ids.tolist(), label_ids.tolist()):
        label = LABELS[label_id]
        if not label.ignore_in_eval and not label.has_instances:
            raise DataError(
                f"item {item!r}: instance id {instance_id} belongs to {label.name!r}, a class without instances"
            )
    rows = []
    for index, label_id in enumerate(label_ids.tolist()):
        label = LABELS[label_id]
        if label.ignore_in_eval:
            continue
        size = int(sizes[index])
        tp = int(class_hits[index])
        weight = AVG_CLASS_SIZE[label.name] / float(size)
        slot, category_tp = -1, 0
        if label.category in INSTANCE_CATEGORIES:
            slot = INSTANCE_CATEGORIES.index(label.category)
            category_tp = int(category_hits[label.category][index])
        rows.append((label_id, slot, float(tp) * weight, float(size - tp) * weight,
                     float(category_tp) * weight, float(size - category_tp) * weight))
    return np.array(rows, dtype=np.float64).reshape(-1, len(CONTRIBUTION_COLUMNS)) if rows else empty


# -------------------------------------------------------------------------------------------- scores
def _nan_average(values: Sequence[float]) -> float:
    valid = [float(v) for v in values if not np.isnan(v)]
    return sum(valid) / len(valid) if valid else float("nan")


def _ratio(numerator: float, denominator: float) -> float:
    return float(float(numerator) / denominator) if denominator != 0 else float("nan")


def class_counts(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(TP, FP, FN) for the 19 evaluated classes; FP counts only evaluated ground-truth rows."""
    rows = matrix[EVAL_LABEL_IDS].astype(np.int64)
    tp = rows[:, EVAL_LABEL_IDS].diagonal().copy()
    fn = rows.sum(axis=1) - tp
    fp = rows[:, EVAL_LABEL_IDS].sum(axis=0) - tp
    return tp, fp, fn


def _false_positives(matrix: np.ndarray, category: str, columns: np.ndarray) -> int:
    rows = np.flatnonzero(_IS_EVAL & (_CATEGORY_OF != category))
    return int(matrix[np.ix_(rows, columns)].sum())


def cityscapes_scores(matrix: np.ndarray, sums: InstanceSums | None) -> dict[str, Any]:
    """Per-class and per-category IoU / iIoU and their averages, as the reference's result dictionary has them."""
    tp, fp, fn = class_counts(matrix)
    class_iou = {name: _ratio(tp[i], tp[i] + fp[i] + fn[i]) for i, name in enumerate(EVAL_CLASS_NAMES)}
    category_iou = {}
    for category in CATEGORIES:
        members = np.array([l.label_id for l in LABELS if l.category == category and not l.ignore_in_eval])
        cat_tp = int(matrix[np.ix_(members, members)].sum())
        cat_fn = int(matrix[members].sum()) - cat_tp
        category_iou[category] = _ratio(cat_tp, cat_tp + _false_positives(matrix, category, members) + cat_fn)
    result: dict[str, Any] = {
        "class_iou": class_iou,
        "category_iou": category_iou,
        "mIoU": _nan_average(list(class_iou.values())),
        "IoU_category": _nan_average(list(category_iou.values())),
        "counts": (tp, fp, fn),
    }
    if sums is not None:
        class_iiou = {}
        for label_id in INSTANCE_LABEL_IDS:
            index = int(np.flatnonzero(EVAL_LABEL_IDS == label_id)[0])
            weighted_tp, weighted_fn = sums.class_tp[label_id], sums.class_fn[label_id]
            denominator = weighted_tp + int(fp[index]) + weighted_fn
            class_iiou[LABELS[label_id].name] = _ratio(weighted_tp, denominator)
        category_iiou = {}
        for slot, category in enumerate(INSTANCE_CATEGORIES):
            false_pos = _false_positives(matrix, category, _INSTANCE_CATEGORY_LABELS[category])
            denominator = sums.category_tp[slot] + false_pos + sums.category_fn[slot]
            category_iiou[category] = _ratio(sums.category_tp[slot], denominator)
        result.update(
            class_iiou=class_iiou,
            category_iiou=category_iiou,
            iIoU=_nan_average(list(class_iiou.values())),
            iIoU_category=_nan_average(list(category_iiou.values())),
        )
    return result


# -------------------------------------------------------------------------------------------- metric
@METRICS.register("cityscapes_semantic")
class CityscapesSemanticMetric(Metric):
    """Cityscapes mIoU / iIoU / category scores, plus mAcc, aAcc, mDice, mFscore on the 19 classes.

    Targets carry labelIds (``target_ids="label_id"``, the official encoding) or trainIds; predictions carry
    labelIds or trainIds (``prediction_ids``; trainId 255 becomes 'unlabeled', an ignored class, so a false
    negative).  Ground truth in trainIds scores identically, because ignored ground truth counts for nothing.
    ``instance_level`` needs ``SemanticTarget.instance_map`` (gtFine_instanceIds) for iIoU.
    """

    name = "cityscapes_semantic"

    def __init__(
        self, target_ids: IdSpace = "label_id", prediction_ids: IdSpace = "label_id", instance_level: bool = True
    ) -> None:
        super().__init__()
        for space in (target_ids, prediction_ids):
            if space not in ("label_id", "train_id"):
                raise ValueError(f"unknown Cityscapes id space {space!r} (known: label_id, train_id)")
        self.target_ids = target_ids
        self.prediction_ids = prediction_ids
        self.instance_level = instance_level
        self.add_state("confusion", np.zeros((NUM_LABEL_IDS, NUM_LABEL_IDS), dtype=np.int64), reduce="sum")
        # per image: its instance_contributions rows (an empty array without instances or without iIoU)
        self.add_state("instances", [], reduce="cat")

    def update(self, samples: Sequence[Any], predictions: Sequence[Any]) -> None:
        for item, target, prediction in semantic_pairs(samples, predictions):
            self.add_image(target.label_map, prediction.label_map, target.instance_map, item)

    def add_image(
        self, label_map: Any, prediction: Any, instance_map: Any = None, item: Any = "image"
    ) -> None:
        """Add one image given as arrays (the functional route used by ``update``)."""
        target = _to_label_ids(label_map, self.target_ids, item=item, role="target", error=DataError)
        prediction = np.asarray(prediction)
        if prediction.shape != target.shape:
            raise PredictionError(
                f"item {item!r}: prediction label map has shape {prediction.shape}, ground truth {target.shape}"
            )
        prediction = _to_label_ids(prediction, self.prediction_ids, item=item, role="prediction",
                                   error=PredictionError)
        if self.instance_level:
            if instance_map is None:
                raise DataError(f"item {item!r}: iIoU needs the instance map (gtFine_instanceIds); "
                                "pass instance_level=False to skip it")
            instances = np.asarray(instance_map)
            if instances.shape != target.shape:
                raise DataError(f"item {item!r}: instance map has shape {instances.shape}, label map {target.shape}")
            contributions = instance_contributions(instances, prediction, item)
        else:
            contributions = np.zeros((0, len(CONTRIBUTION_COLUMNS)))
        confusion = label_id_confusion(target, prediction)
        self.instances.append(contributions)
        self.confusion += confusion

    def instance_sums(self) -> InstanceSums:
        """The weighted TP/FN totals, added instance by instance in sample order (the reference's order)."""
        sums = InstanceSums.zeros()
        for contributions in self.instances:
            sums.add(contributions)
        return sums

    def compute(self) -> MetricResult:
        sums = None
        if self.instance_level:
            sums = self.instance_sums()
        scores = cityscapes_scores(self.confusion, sums)
        tp, fp, fn = scores["counts"]
        summary, per_class = scores_from_counts(tp, fp, fn, dialect="mmseg")
        summary["mIoU"] = scores["mIoU"]
        summary["IoU_category"] = scores["IoU_category"]
        per_class_out = per_class_table(per_class, EVAL_CLASS_NAMES)
        per_class_out["IoU"] = dict(scores["class_iou"])
        per_class_out["IoU_category"] = dict(scores["category_iou"])
        if sums is not None:
            summary["iIoU"] = scores["iIoU"]
            summary["iIoU_category"] = scores["iIoU_category"]
            per_class_out["iIoU"] = dict(scores["class_iiou"])
            per_class_out["iIoU_category"] = dict(scores["category_iiou"])
        return MetricResult(
            metrics=summary,
            per_class=per_class_out,
            settings={
                "reference": "cityscapesscripts evalPixelLevelSemanticLabeling",
                "target_ids": self.target_ids,
                "prediction_ids": self.prediction_ids,
                "instance_level": self.instance_level,
                "averaging": "dataset confusion matrix; NaN classes drop out of means",
            },
            higher_is_better=higher_is_better(summary),
        )
