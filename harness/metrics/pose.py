"""Keypoint accuracy beyond COCO OKS: PCK@alpha, MPII PCKh, and MPJPE with its aligned variants.

PCK@alpha (normalised by the ground-truth box's longer side) follows mmpose's ``PCKAccuracy``: coordinates
are divided by the normaliser before the norm, a joint is correct when the normalised distance is < alpha,
people with a zero-size box are skipped, and the mean is over joints of the per-joint accuracy.

MPII PCKh, ``official`` dialect (the MATLAB toolkit, ``evaluatePCKh.m``): head size = 0.6 x the head-box
diagonal; correct when distance / head size <= threshold; joints missing from the GT are skipped; a missing
prediction (NaN) is wrong; the mean (reported as ``PCKh@0.5``, and ``PCKh@0.1`` at 0.1) pools all joints but
pelvis and thorax; Head = mean of upper neck and head top; thresholds ``0:0.01:0.5`` built as MATLAB builds
them; ``AUC`` is the area under the mean curve over the thresholds scaled to [0, 1] (MATLAB integrates the
linear interpolant with ``quadgk``; here it is exact).
``mmpose`` dialect (``MpiiPCKAccuracy``): predictions + 1 (it compares 0-based predictions with the 1-based
MATLAB ground truth), < instead of <=, Head = head top only, thresholds ``np.arange(0, 0.51, 0.01)``.  The
dataset metric scores against the official ground truth (``pos_gt_src``); mmpose itself scores against its json,
which lacks some of the official labels.

MPJPE is pooled over visible joints (as mmpose's ``keypoint_mpjpe``).  PA-MPJPE aligns each pose to its GT by
a similarity transform (rotation with the reflection fixed, scale, translation) fitted by least squares;
N-MPJPE fits only a scale ``<pred, gt> / <pred, pred>`` (no centring, as mmpose).  Both fit on all joints
unless given a fit mask; the harness wrapper fits on labelled joints because unlabelled COCO-style joints
have no coordinates.
"""
from __future__ import annotations

import math
from typing import Any, Literal, Sequence

import numpy as np

from harness.core.errors import BenchError, DataError, PredictionError
from harness.labels.keypoints import MPII_KEYPOINT_NAMES
from harness.metrics import METRICS
from harness.core.metric import Metric, MetricResult, weighted_counts, weighted_fsum
from harness.metrics.matlab import colon
from harness.core.structures import KeypointsPrediction, KeypointsTarget

# ------------------------------------------------------------------------------------------------ PCK


def normalized_distances(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """(N, K) distances with each coordinate divided by the per-person normaliser; -1 where not scored."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    norm = np.asarray(norm, dtype=np.float64).reshape(-1)
    scored = np.asarray(mask, dtype=bool) & (norm != 0)[:, None]
    distances = np.full(scored.shape, -1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = (pred - gt) / norm[:, None, None]
    distances[scored] = np.linalg.norm(scaled[scored], axis=-1)
    return distances


def pck_counts(
    pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, norm: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint (correct, scored) counts: correct when the normalised distance < alpha."""
    distances = normalized_distances(pred, gt, mask, norm)
    scored = distances != -1
    correct = scored & (distances < alpha)
    return correct.sum(axis=0).astype(np.int64), scored.sum(axis=0).astype(np.int64)


def pck_from_counts(correct: np.ndarray, scored: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-joint PCK (NaN for joints never scored) and the mean over scored joints (mmpose's avg_acc)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        per_joint = np.asarray(correct, dtype=np.float64) / np.asarray(scored, dtype=np.float64)
    valid = per_joint[~np.isnan(per_joint)]
    return per_joint, float(valid.mean()) if valid.size else 0.0


def bbox_norm(boxes_xywh: np.ndarray) -> np.ndarray:
    """max(w, h) of each ``[x, y, w, h]`` box."""
    boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    return np.max(boxes[:, 2:], axis=1)


def pck(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, norm: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """PCK@alpha per joint and mean; ``pred``/``gt`` (N, K, 2), ``mask`` (N, K), ``norm`` (N,) e.g. ``bbox_norm``."""
    return pck_from_counts(*pck_counts(pred, gt, mask, norm, alpha))


# ----------------------------------------------------------------------------------------------- PCKh
MPII_JOINTS = (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax",
    "upper_neck", "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist",
)
_J = {name: index for index, name in enumerate(MPII_JOINTS)}
MPII_MEAN_JOINTS = np.array([i for i, name in enumerate(MPII_JOINTS) if name not in ("pelvis", "thorax")])
HEAD_SIZE_FACTOR = 0.6
PckhDialect = Literal["official", "mmpose"]
PCKH_DIALECTS: tuple[str, ...] = ("official", "mmpose")
PCKH_PARTS = ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle")
#: the MPII table: the PCKh@0.5 mean (the headline), the PCKh@0.1 mean, AUC, then the body parts at 0.5
PCKH_TABLE = ("PCKh@0.5", "PCKh@0.1", "AUC", *PCKH_PARTS)
#: what each tool adds to the prediction arrays it is given before comparing them with the 1-based GT: the
#: toolkit takes ``pos_pred_src`` as 1-based already; mmpose's ``MpiiPCKAccuracy`` adds 1 to its 0-based output
TOOL_PREDICTION_OFFSET = {"official": 0.0, "mmpose": 1.0}
#: MPII's ground truth counts pixels from 1, the harness's evaluation space from 0
MATLAB_ORIGIN = 1.0


def head_sizes(head_boxes: np.ndarray) -> np.ndarray:
    """0.6 x the head-box diagonal; boxes (N, 4) ``[x1, y1, x2, y2]`` or (N, 2, 2) ``[[x1, y1], [x2, y2]]``."""
    boxes = np.asarray(head_boxes, dtype=np.float64).reshape(-1, 2, 2)
    return HEAD_SIZE_FACTOR * np.linalg.norm(boxes[:, 1] - boxes[:, 0], axis=-1)


def head_sizes_xywh(head_boxes: np.ndarray) -> np.ndarray:
    """0.6 x the diagonal of (N, 4) ``[x, y, w, h]`` boxes (``KeypointsTarget.head_boxes``): w and h are the
    differences the toolkit takes itself, so the sizes are the toolkit's to the bit."""
    boxes = np.asarray(head_boxes, dtype=np.float64).reshape(-1, 4)
    return HEAD_SIZE_FACTOR * np.linalg.norm(boxes[:, 2:], axis=-1)


def pckh_thresholds(dialect: PckhDialect = "official") -> np.ndarray:
    return colon(0.0, 0.01, 0.5) if dialect == "official" else np.arange(0, 0.5 + 0.01, 0.01)


def _check_dialect(dialect: str) -> None:
    if dialect not in PCKH_DIALECTS:
        raise ValueError(f"unknown PCKh dialect {dialect!r} (known: {', '.join(PCKH_DIALECTS)})")


def pckh_counts(
    pred: np.ndarray, gt: np.ndarray, present: np.ndarray, head_size: np.ndarray, dialect: PckhDialect = "official"
) -> tuple[np.ndarray, np.ndarray]:
    """Per-threshold, per-joint correct counts (T, 16) and per-joint scored counts (16,), with ``pred`` and
    ``gt`` already in one coordinate space (see ``TOOL_PREDICTION_OFFSET`` for the tools' own offsets).

    The thresholds are ``pckh_thresholds(dialect)`` followed by 0.5 and 0.1 (the headline values), so
    ``correct[-2]`` is PCKh@0.5 and ``correct[-1]`` PCKh@0.1 whatever the curve's rounding.  ``official``: the
    distance over the head size, ``<=``, NaN predictions wrong; ``mmpose``: each coordinate divided by the head
    size before the norm, ``<``.
    """
    _check_dialect(dialect)
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    present = np.asarray(present, dtype=bool)
    head_size = np.asarray(head_size, dtype=np.float64).reshape(-1)
    thresholds = np.concatenate([pckh_thresholds(dialect), [0.5, 0.1]])
    if dialect == "official":
        pred = np.where(np.isnan(pred), np.inf, pred)
        with np.errstate(divide="ignore", invalid="ignore"):
            distances = np.linalg.norm(pred - gt, axis=-1) / head_size[:, None]
        scored = present & ~np.isnan(distances)
        correct = scored[None] & (distances[None] <= thresholds[:, None, None])
    else:
        distances = normalized_distances(pred, gt, present, head_size)
        scored = distances != -1
        correct = scored[None] & (distances[None] < thresholds[:, None, None])
    return correct.sum(axis=1).astype(np.int64), scored.sum(axis=0).astype(np.int64)


def pckh_from_counts(
    correct: np.ndarray, scored: np.ndarray, dialect: PckhDialect = "official"
) -> tuple[dict[str, float], dict[str, dict[str, float]], np.ndarray]:
    """The MPII table (``PCKH_TABLE``, ratios), per-joint PCKh at 0.5 and 0.1, and the mean curve over
    ``pckh_thresholds(dialect)``.

    Means pool the joints' counts (pelvis and thorax excluded); a body part is the mean of its left and right
    joints; Head is the mean of upper neck and head top (``official``) or head top alone (``mmpose``); AUC is
    the area under the mean curve with the thresholds scaled to [0, 1].
    """
    correct = np.asarray(correct, dtype=np.float64)
    scored = np.asarray(scored, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_joint = correct[-2] / scored
        per_joint_01 = correct[-1] / scored
        pooled = correct[:, MPII_MEAN_JOINTS].sum(axis=1) / scored[MPII_MEAN_JOINTS].sum()

    def pair(left: str, right: str) -> float:
        return float(0.5 * (per_joint[_J[left]] + per_joint[_J[right]]))

    curve = pooled[:-2]
    thresholds = pckh_thresholds(dialect)
    x = (thresholds - thresholds.min()) / (thresholds.max() - thresholds.min())
    head = pair("upper_neck", "head_top") if dialect == "official" else float(per_joint[_J["head_top"]])
    table = {
        "PCKh@0.5": float(pooled[-2]),
        "PCKh@0.1": float(pooled[-1]),
        "AUC": float(np.trapezoid(curve, x)),
        "Head": head,
        "Shoulder": pair("l_shoulder", "r_shoulder"),
        "Elbow": pair("l_elbow", "r_elbow"),
        "Wrist": pair("l_wrist", "r_wrist"),
        "Hip": pair("l_hip", "r_hip"),
        "Knee": pair("l_knee", "r_knee"),
        "Ankle": pair("l_ankle", "r_ankle"),
    }
    per_class = {
        "PCKh@0.5": {name: float(v) for name, v in zip(MPII_JOINTS, per_joint)},
        "PCKh@0.1": {name: float(v) for name, v in zip(MPII_JOINTS, per_joint_01)},
    }
    return table, per_class, curve


def pckh_settings(dialect: PckhDialect) -> dict[str, Any]:
    """What a PCKh result records about its convention (shared by the metric and ``bench eval``)."""
    return {
        "dialect": dialect,
        "reference": "MPII toolkit evaluatePCKh.m" if dialect == "official" else "mmpose MpiiPCKAccuracy",
        "comparison": "<=" if dialect == "official" else "<",
        "head": "mean of upper neck and head top" if dialect == "official" else "head top",
        "mean": "pooled over joints except pelvis and thorax", "head_size": "0.6 x head-box diagonal",
        "AUC": "area under the mean PCKh curve over thresholds 0..0.5 scaled to [0, 1]",
        "thresholds": "MATLAB 0:0.01:0.5" if dialect == "official" else "np.arange(0, 0.51, 0.01)",
    }


def pckh_result(correct: np.ndarray, scored: np.ndarray, dialect: PckhDialect, settings: dict[str, Any]) -> MetricResult:
    table, per_class, curve = pckh_from_counts(correct, scored, dialect)
    return MetricResult(
        metrics=table,
        per_class=per_class,
        curves={"PCKh": {"threshold": pckh_thresholds(dialect), "mean": curve}},
        settings={**pckh_settings(dialect), **settings},
        higher_is_better={key: True for key in table},
    )


def mpii_pckh(
    pred: np.ndarray, gt: np.ndarray, present: np.ndarray, head_boxes: np.ndarray, dialect: PckhDialect = "official"
) -> tuple[dict[str, float], dict[str, float]]:
    """MPII PCKh table and per-joint PCKh@0.5 from the arrays a tool is given, in MPII joint order: ``pred``
    (N, 16, 2) as the tool reads it (``official``: 1-based like the GT; ``mmpose``: 0-based, it adds 1), ``gt``
    (N, 16, 2) 1-based, ``present`` (N, 16) = not ``jnt_missing``, ``head_boxes`` as ``head_sizes`` takes them."""
    _check_dialect(dialect)
    pred = np.asarray(pred, dtype=np.float64) + TOOL_PREDICTION_OFFSET[dialect]
    table, per_class, _ = pckh_from_counts(*pckh_counts(pred, gt, present, head_sizes(head_boxes), dialect), dialect)
    return table, per_class["PCKh@0.5"]


# ---------------------------------------------------------------------------------------------- MPJPE
def procrustes_align(pred: np.ndarray, gt: np.ndarray, fit_mask: np.ndarray | None = None) -> np.ndarray:
    """Each pose of ``pred`` (N, K, D) moved by the similarity transform that best fits it to ``gt`` on the
    fit joints (rotation with det +1, scale, translation)."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    weights = np.ones(pred.shape[:2]) if fit_mask is None else np.asarray(fit_mask, dtype=np.float64)
    count = np.maximum(weights.sum(axis=1), 1.0)[:, None, None]
    mu_pred = (pred * weights[..., None]).sum(axis=1, keepdims=True) / count
    mu_gt = (gt * weights[..., None]).sum(axis=1, keepdims=True) / count
    x1 = (pred - mu_pred) * weights[..., None]
    x2 = (gt - mu_gt) * weights[..., None]
    variance = np.sum(x1**2, axis=(1, 2))
    cross = np.einsum("nki,nkj->nij", x1, x2)
    u, _, vt = np.linalg.svd(cross)
    v = np.transpose(vt, (0, 2, 1))
    flip = np.ones(pred.shape[:1] + pred.shape[2:])
    flip[:, -1] = np.where(np.linalg.det(v @ np.transpose(u, (0, 2, 1))) < 0, -1.0, 1.0)
    rotation = v @ (flip[:, :, None] * np.transpose(u, (0, 2, 1)))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.einsum("nii->n", rotation @ cross) / variance
    scale = np.where(variance > 0, scale, 0.0)
    return scale[:, None, None] * np.einsum("nij,nkj->nki", rotation, pred - mu_pred) + mu_gt


def scale_align(pred: np.ndarray, gt: np.ndarray, fit_mask: np.ndarray | None = None) -> np.ndarray:
    """``pred`` scaled by ``<pred, gt> / <pred, pred>`` over the fit joints (N-MPJPE; no translation)."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    weights = np.ones(pred.shape[:2]) if fit_mask is None else np.asarray(fit_mask, dtype=np.float64)
    pred_pred = np.einsum("nkc,nkc,nk->n", pred, pred, weights)
    pred_gt = np.einsum("nkc,nkc,nk->n", pred, gt, weights)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(pred_pred > 0, pred_gt / pred_pred, 0.0)
    return pred * scale[:, None, None]


Alignment = Literal["none", "procrustes", "scale"]


def joint_errors(
    pred: np.ndarray, gt: np.ndarray, alignment: Alignment = "none", fit_mask: np.ndarray | None = None
) -> np.ndarray:
    """(N, K) Euclidean errors after the chosen alignment."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if alignment == "procrustes":
        pred = procrustes_align(pred, gt, fit_mask)
    elif alignment == "scale":
        pred = scale_align(pred, gt, fit_mask)
    elif alignment != "none":
        raise ValueError(f"unknown alignment {alignment!r} (known: none, procrustes, scale)")
    return np.linalg.norm(pred - gt, axis=-1)


def mpjpe(
    pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, alignment: Alignment = "none",
    fit_mask: np.ndarray | None = None,
) -> float:
    """Mean per-joint position error pooled over ``mask`` (default all joints), in the input's unit."""
    errors = joint_errors(pred, gt, alignment, fit_mask)
    selected = errors if mask is None else errors[np.asarray(mask, dtype=bool)]
    return float(selected.mean()) if selected.size else float("nan")


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None,
             fit_mask: np.ndarray | None = None) -> float:
    return mpjpe(pred, gt, mask, "procrustes", fit_mask)


def n_mpjpe(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None,
            fit_mask: np.ndarray | None = None) -> float:
    return mpjpe(pred, gt, mask, "scale", fit_mask)


# ------------------------------------------------------------------------------------------- wrappers
def keypoint_pair(sample: Any, prediction: Any) -> tuple[Any, KeypointsTarget]:
    """(sample id, target) after checking the sample and the prediction carry keypoints."""
    item, target = sample.sample_id, sample.target
    if not isinstance(target, KeypointsTarget):
        raise DataError(f"item {item!r}: expected a KeypointsTarget, got {type(target).__name__}")
    if not isinstance(prediction, KeypointsPrediction):
        raise PredictionError(f"item {item!r}: expected a KeypointsPrediction, got {type(prediction).__name__}")
    return item, target


def paired_people(sample: Any, prediction: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """GT keypoints (P, K, 2), labelled mask (P, K), predicted keypoints (P, K, 2) and GT boxes (P, 4) for the
    scored people: prediction i belongs to GT person i; crowd people and people without keypoints drop out."""
    item, target = keypoint_pair(sample, prediction)
    gt = np.asarray(target.keypoints, dtype=np.float64)
    predicted = np.asarray(prediction.keypoints, dtype=np.float64)
    if gt.ndim != 3 or gt.shape[-1] < 3:
        raise DataError(f"item {item!r}: ground-truth keypoints must be (N, K, 3), got {gt.shape}")
    keep = ~np.asarray(target.iscrowd, dtype=bool).reshape(-1) & (np.asarray(target.num_keypoints).reshape(-1) > 0)
    if predicted.ndim == 3 and predicted.shape[0] == int(keep.sum()) != gt.shape[0]:
        predicted_all = np.zeros((gt.shape[0], *predicted.shape[1:]))  # one prediction per scoreable person
        predicted_all[keep] = predicted
        predicted = predicted_all
    if predicted.ndim != 3 or predicted.shape[:2] != gt.shape[:2] or predicted.shape[-1] < 2:
        raise PredictionError(
            f"item {item!r}: predicted keypoints {predicted.shape} do not pair one-to-one with the "
            f"ground-truth people {gt.shape[:2]} (prediction i is scored against person i, or against the i-th "
            "non-crowd person with labelled keypoints)"
        )
    labelled = gt[keep, :, 2] > 0
    coords = predicted[keep, :, :2]
    if not np.all(np.isfinite(coords[labelled])):
        raise PredictionError(f"item {item!r}: non-finite predicted keypoint on a labelled joint")
    return gt[keep, :, :2], labelled, coords, np.asarray(target.boxes, dtype=np.float64).reshape(-1, 4)[keep]


def _check_lengths(samples: Sequence[Any], predictions: Sequence[Any]) -> None:
    if len(samples) != len(predictions):
        raise PredictionError(f"{len(predictions)} predictions for {len(samples)} samples")


def _joint_names(count: int, names: Sequence[str] | None) -> list[str]:
    if names is not None and len(names) == count:
        return list(names)
    return [str(i) for i in range(count)]


@METRICS.register("pck")
class PCKMetric(Metric):
    """PCK@alpha normalised by the GT box's longer side, per joint and mean (mmpose ``PCKAccuracy``)."""

    name = "pck"
    #: 'sum' states: 0 until the first item, then per-joint counts
    correct: Any
    scored: Any

    def __init__(self, alpha: float = 0.05, joint_names: Sequence[str] | None = None) -> None:
        super().__init__()
        self.alpha = alpha
        self.joint_names = list(joint_names) if joint_names is not None else None
        self.add_state("correct", 0, reduce="sum")
        self.add_state("scored", 0, reduce="sum")
        # per-sample (correct, scored) per joint, (2, J) int64, in sample order: what a resample re-weights
        self.add_state("sample_counts", [], reduce="cat")

    @classmethod
    def from_dataset(cls, info: Any, **options: Any) -> "PCKMetric":
        return cls(joint_names=info.keypoint_names or None, **options)

    def update(self, samples: Sequence[Any], predictions: Sequence[Any]) -> None:
        _check_lengths(samples, predictions)
        for sample, prediction in zip(samples, predictions):
            gt, labelled, pred, boxes = paired_people(sample, prediction)
            if self.joint_names is not None and gt.shape[1] != len(self.joint_names):
                raise DataError(f"item {sample.sample_id!r}: {gt.shape[1]} joints, expected {len(self.joint_names)}")
            correct, scored = pck_counts(pred, gt, labelled, bbox_norm(boxes), self.alpha)
            if isinstance(self.correct, np.ndarray) and self.correct.shape != correct.shape:
                raise DataError(f"item {sample.sample_id!r}: {correct.size} joints, earlier items had "
                                f"{self.correct.size}")
            self.correct = self.correct + correct
            self.scored = self.scored + scored
            self.sample_counts.append(np.stack([correct, scored]))

    def resampled(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        counts = np.asarray(counts)
        if counts.ndim != 2 or counts.shape[1] != len(self.sample_counts) or not self.sample_counts:
            raise NotImplementedError(f"{self.name}: counts {counts.shape} for {len(self.sample_counts)} samples")
        totals = weighted_counts(np.stack(self.sample_counts), counts)  # (B, 2, J)
        key = f"PCK@{self.alpha:g}"
        return {key: np.array([pck_from_counts(c, n)[1] for c, n in totals], dtype=np.float64)}

    def compute(self) -> MetricResult:
        if isinstance(self.correct, np.ndarray):
            per_joint, mean = pck_from_counts(self.correct, self.scored)
        else:  # nothing seen yet
            per_joint, mean = np.empty(0), float("nan")
        names = _joint_names(per_joint.size, self.joint_names)
        key = f"PCK@{self.alpha:g}"
        return MetricResult(
            metrics={key: mean},
            per_class={key: {name: float(v) for name, v in zip(names, per_joint)}},
            settings={"alpha": self.alpha, "normaliser": "max(w, h) of the GT box", "comparison": "<",
                      "mean": "over joints of per-joint accuracy", "convention": "mmpose PCKAccuracy"},
            higher_is_better={key: True},
        )


@METRICS.register("mpii_pckh")
class MpiiPCKhMetric(Metric):
    """The MPII PCKh table (``PCKH_TABLE``) on 16-joint MPII targets in the 0-based evaluation space.

    Joints with v > 0 are present; head boxes come from ``target.head_boxes`` ((N, 4) xywh, one per GT person,
    filled by the MPII reader from ``headboxes_src``); prediction i is scored against person i.  Both dialects
    compare in the toolkit's 1-based coordinates: prediction + 1 against GT + 1.  That is the toolkit's own
    arithmetic on the ``pos_pred_src`` the ``mpii-mat`` submission writes (prediction + 1), and adding 1 again to
    a read-back ``pos_pred_src - 1`` gives the written value back to the bit, so ``bench run`` and ``bench eval``
    of its submission agree exactly.  (For mmpose the +1 is its ``MpiiPCKAccuracy`` offset on 0-based outputs.)
    """

    name = "mpii_pckh"
    dialects = PCKH_DIALECTS
    #: 2: reported names PCKh@0.5 / PCKh@0.1 (were Mean / Mean@0.1), head boxes from the target, 1-based compare
    version = 2

    def __init__(self, dialect: PckhDialect = "official") -> None:
        super().__init__()
        _check_dialect(dialect)
        self.dialect = dialect
        rows = len(pckh_thresholds(dialect)) + 2
        self.add_state("correct", np.zeros((rows, 16), dtype=np.int64), reduce="sum")
        self.add_state("scored", np.zeros(16, dtype=np.int64), reduce="sum")
        # per-sample counts, (rows + 1, 16) int64 (correct rows, then scored), in sample order
        self.add_state("sample_counts", [], reduce="cat")

    @classmethod
    def from_dataset(cls, info: Any, **options: Any) -> "MpiiPCKhMetric":
        """Refuses, before any model runs, a dataset that is not MPII's 16 joints or has no head boxes."""
        if list(info.keypoint_names) != MPII_KEYPOINT_NAMES:
            raise BenchError(f"PCKh (mpii_pckh) needs MPII's 16 joints in MPII's order; dataset {info.name!r} has "
                             f"{len(info.keypoint_names)} keypoints")
        if info.extra.get("head_boxes") is False:
            raise BenchError(f"dataset {info.name!r} split {info.split!r} has no head boxes, which PCKh needs: put "
                             f"the official mpii_gt_{info.split}.mat in annotations/")
        return cls(**options)

    def update(self, samples: Sequence[Any], predictions: Sequence[Any]) -> None:
        _check_lengths(samples, predictions)
        for sample, prediction in zip(samples, predictions):
            item, target = keypoint_pair(sample, prediction)
            gt = np.asarray(target.keypoints, dtype=np.float64)
            pred = np.asarray(prediction.keypoints, dtype=np.float64)
            if gt.ndim != 3 or gt.shape[1] != 16:
                raise DataError(f"item {item!r}: MPII targets have 16 joints, got keypoints of shape {gt.shape}")
            if pred.ndim != 3 or pred.shape[:2] != gt.shape[:2] or pred.shape[2] < 2:
                raise PredictionError(f"item {item!r}: predicted keypoints {pred.shape} do not pair with the "
                                      f"ground-truth people {gt.shape[:2]}")
            boxes = target.head_boxes
            if boxes is None or np.asarray(boxes).shape != (len(gt), 4):
                raise DataError(f"item {item!r}: target.head_boxes must hold one [x, y, w, h] head box per person")
            correct, scored = pckh_counts(pred[..., :2] + MATLAB_ORIGIN, gt[..., :2] + MATLAB_ORIGIN, gt[..., 2] > 0,
                                          head_sizes_xywh(boxes), self.dialect)
            self.correct += correct
            self.scored += scored
            self.sample_counts.append(np.vstack([correct, scored[None]]))

    def resampled(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        counts = np.asarray(counts)
        if counts.ndim != 2 or counts.shape[1] != len(self.sample_counts) or not self.sample_counts:
            raise NotImplementedError(f"{self.name}: counts {counts.shape} for {len(self.sample_counts)} samples")
        totals = weighted_counts(np.stack(self.sample_counts), counts)  # (B, rows + 1, 16)
        draws = [pckh_from_counts(t[:-1], t[-1], self.dialect)[0] for t in totals]
        return {key: np.array([d[key] for d in draws], dtype=np.float64) for key in draws[0]}

    def compute(self) -> MetricResult:
        return pckh_result(self.correct, self.scored, self.dialect, {
            "head_boxes": "target.head_boxes (the dataset's headboxes_src)",
            "coordinates": "0-based prediction + 1 against 0-based GT + 1 (the toolkit's 1-based pos_pred_src)",
        })


@METRICS.register("mpjpe")
class MPJPEMetric(Metric):
    """MPJPE, PA-MPJPE and N-MPJPE over labelled joints (v > 0) of paired people, in pixels for 2D targets."""

    name = "mpjpe"
    lower_is_better = frozenset({"MPJPE", "PA-MPJPE", "N-MPJPE"})

    def __init__(self) -> None:
        super().__init__()
        # one (error sum, PA error sum, N error sum, joints) row per sample: sums are taken with math.fsum in
        # compute, so the result is the same however samples were batched, sharded or resampled
        self.add_state("per_sample", [], reduce="cat")

    def update(self, samples: Sequence[Any], predictions: Sequence[Any]) -> None:
        _check_lengths(samples, predictions)
        for sample, prediction in zip(samples, predictions):
            gt, labelled, pred, _ = paired_people(sample, prediction)
            if not labelled.any():
                self.per_sample.append((0.0, 0.0, 0.0, 0))
                continue
            pred = np.where(labelled[..., None], pred, 0.0)
            with np.errstate(over="ignore", invalid="ignore"):
                row = (math.fsum(joint_errors(pred, gt)[labelled]),
                       math.fsum(joint_errors(pred, gt, "procrustes", labelled)[labelled]),
                       math.fsum(joint_errors(pred, gt, "scale", labelled)[labelled]))
            if any(math.isinf(value) for value in row):  # finite coordinates whose squared error overflows
                item = getattr(sample, "sample_id", "?")
                raise PredictionError(f"item {item!r}: predicted keypoints too far away to score (an error "
                                      f"overflows float64; largest |coordinate| {float(np.nanmax(np.abs(pred))):.3g})")
            self.per_sample.append((*row, int(labelled.sum())))

    def resampled(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        """Exact fsums of the per-sample error sums with multiplicities, over the weighted joint count."""
        counts = np.asarray(counts)
        if counts.ndim != 2 or counts.shape[1] != len(self.per_sample):
            raise NotImplementedError(f"{self.name}: counts {counts.shape} for {len(self.per_sample)} samples")
        rows = np.array(self.per_sample, dtype=np.float64).reshape(-1, 4)
        joints = weighted_counts(rows[:, 3].astype(np.int64), counts)
        out = {}
        for column, key in enumerate(("MPJPE", "PA-MPJPE", "N-MPJPE")):
            sums = weighted_fsum(rows[:, column], counts)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[key] = np.where(joints > 0, sums / np.maximum(joints, 1), np.nan)
        return out

    def compute(self) -> MetricResult:
        columns = list(zip(*self.per_sample)) or [(), (), (), ()]
        error_sum, pa_error_sum, n_error_sum = (math.fsum(column) for column in columns[:3])
        count = int(sum(columns[3]))
        metrics = {
            "MPJPE": error_sum / count if count else float("nan"),
            "PA-MPJPE": pa_error_sum / count if count else float("nan"),
            "N-MPJPE": n_error_sum / count if count else float("nan"),
        }
        return MetricResult(
            metrics=metrics,
            settings={"averaging": "pooled over labelled joints", "alignment_fit": "labelled joints",
                      "n_mpjpe": "scale only, no centring (mmpose)", "joints": count},
            higher_is_better={key: False for key in metrics},
        )
