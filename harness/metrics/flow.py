"""Optical-flow errors: EPE, 1/3/5px, KITTI Fl, and the Sintel speed and matched/unmatched breakdowns.

EPE is the per-pixel Euclidean distance between predicted and true flow (computed in float64).  Every number
here is a ratio of a sum and a count over pixels, and the averaging unit is a named dialect:

* ``pixels`` (default, RAFT on Sintel and the KITTI devkit's Fl): pooled over all valid pixels of the dataset.
* ``per-image`` (ptlflow): each image's mean, then the mean over images (an image without pixels in a
  breakdown region does not count for that region).
* ``per-batch`` (mmflow): each ``update`` call's pooled mean, then the mean over calls; it depends on the
  batch size, which is why it is not the default.

1px/3px/5px are accuracies (EPE < N) in RAFT and ptlflow (``px_convention="accuracy"``, default) and error
rates (EPE > N) in GMFlow (``"error-rate"``).  KITTI Fl: a valid pixel is an outlier when EPE > 3 and
EPE / |flow_gt| > 0.05.  Sintel: s0-10 / s10-40 / s40+ split valid pixels by GT speed as [0, 10), [10, 40),
[40, inf); "matched" pixels are neither occluded nor out of frame, "unmatched" are the other valid pixels.

The state is one row per image (its sums and counts, and whether it opened an ``update`` call), concatenated
across batches and ranks in sample order; ``compute`` adds the rows up with ``math.fsum`` (correctly rounded, so
independent of order and grouping).  A float running total would change in the last bits with the batch size
and the number of processes, which is what the per-sample rows avoid; they also let the bootstrap resample
images.  Only the ``per-batch`` dialect depends on the batching, by definition.
"""
from __future__ import annotations

import math
from typing import Any, Literal, Sequence

import numpy as np

from harness.core.errors import DataError, PredictionError
from harness.metrics import METRICS
from harness.core.metric import Metric, MetricResult, weighted_counts, weighted_fsum
from harness.core.structures import FlowPrediction, FlowTarget
from harness.metrics.stream_kernels import flow_image_sums

FlowAveraging = Literal["pixels", "per-image", "per-batch"]
PxConvention = Literal["accuracy", "error-rate"]
AVERAGINGS: tuple[str, ...] = ("pixels", "per-image", "per-batch")
PX_CONVENTIONS: tuple[str, ...] = ("accuracy", "error-rate")
PX_THRESHOLDS = (1, 3, 5)
SPEED_BANDS = (("s0-10", 0.0, 10.0), ("s10-40", 10.0, 40.0), ("s40+", 40.0, np.inf))
FL_EPE, FL_RATIO = 3.0, 0.05

#: every quantity tracked: name -> (numerator kind, denominator region)
QUANTITIES: tuple[str, ...] = (
    "EPE", *(f"acc{n}" for n in PX_THRESHOLDS), *(f"err{n}" for n in PX_THRESHOLDS), "Fl",
    *(f"EPE_{name}" for name, _, _ in SPEED_BANDS), "EPE_matched", "EPE_unmatched",
)  # the compiled kernel (_streamkernels.c) writes its sums in this order


def endpoint_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(H, W) float64 end-point error."""
    difference = np.asarray(pred, dtype=np.float64) - np.asarray(gt, dtype=np.float64)
    return np.sqrt(difference[..., 0] ** 2 + difference[..., 1] ** 2)


def fl_outliers(epe: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """KITTI outliers: EPE > 3 px and EPE / |gt| > 5 %."""
    gt = np.asarray(gt, dtype=np.float64)
    magnitude = np.sqrt(gt[..., 0] ** 2 + gt[..., 1] ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (epe > FL_EPE) & (epe / magnitude > FL_RATIO)


def flow_sums(
    pred: np.ndarray,
    gt: np.ndarray,
    valid: np.ndarray | None = None,
    occluded: np.ndarray | None = None,
    out_of_frame: np.ndarray | None = None,
) -> dict[str, tuple[float, int]]:
    """(sum, count) of every quantity for one image; each quantity's value is sum / count.

    The compiled kernel (``stream_kernels.flow_image_sums``) computes the same numbers in one pass when it
    applies; ``flow_sums_numpy`` is the definition."""
    compiled = flow_image_sums(np.asarray(pred), np.asarray(gt), valid, occluded, out_of_frame)
    if compiled is None:
        return flow_sums_numpy(pred, gt, valid, occluded, out_of_frame)
    return _as_sums(compiled[0], compiled[1], occluded is not None or out_of_frame is not None)


#: ``flow_sums``' keys in the order the numpy path fills them
_SUMS_ORDER = ("EPE", *(f"{kind}{n}" for n in PX_THRESHOLDS for kind in ("acc", "err")), *QUANTITIES[7:])


def _as_sums(sums: np.ndarray, counts: np.ndarray, regions: bool) -> dict[str, tuple[float, int]]:
    """The kernel's (Q,) sums and counts as ``flow_sums``' dict (matched/unmatched (0.0, 0) without a mask)."""
    position = {key: i for i, key in enumerate(QUANTITIES)}
    out = {key: (float(sums[position[key]]), int(counts[position[key]])) for key in _SUMS_ORDER}
    if not regions:
        out["EPE_matched"] = out["EPE_unmatched"] = (0.0, 0)
    return out


def flow_sums_numpy(
    pred: np.ndarray,
    gt: np.ndarray,
    valid: np.ndarray | None = None,
    occluded: np.ndarray | None = None,
    out_of_frame: np.ndarray | None = None,
) -> dict[str, tuple[float, int]]:
    """``flow_sums`` in numpy: the definition the compiled kernel reproduces to the bit."""
    epe = endpoint_error(pred, gt)
    # without a valid mask, flat views stand in for boolean-indexed copies: the same elements in the same order,
    # so every sum (numpy's pairwise summation over one contiguous run) has the same bits
    pick = (lambda array: array.reshape(-1)) if valid is None else (lambda array: array[valid])
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
    values = pick(epe)
    count = int(values.size)
    sums: dict[str, tuple[float, int]] = {"EPE": (float(values.sum()), count)}
    for n in PX_THRESHOLDS:
        sums[f"acc{n}"] = (float(np.count_nonzero(values < n)), count)
        sums[f"err{n}"] = (float(np.count_nonzero(values > n)), count)
    gt = np.asarray(gt, dtype=np.float64)
    magnitude = np.sqrt(gt[..., 0] ** 2 + gt[..., 1] ** 2)  # |gt|, once for Fl and the speed bands
    with np.errstate(divide="ignore", invalid="ignore"):
        outliers = (epe > FL_EPE) & (epe / magnitude > FL_RATIO)  # ``fl_outliers``
    sums["Fl"] = (float(np.count_nonzero(pick(outliers))), count)
    speed = pick(magnitude)
    for name, low, high in SPEED_BANDS:
        band = (speed >= low) & (speed < high)
        sums[f"EPE_{name}"] = (float(values[band].sum()), int(np.count_nonzero(band)))
    if occluded is None and out_of_frame is None:
        sums["EPE_matched"] = (0.0, 0)
        sums["EPE_unmatched"] = (0.0, 0)
    else:
        unmatched = np.zeros(epe.shape, dtype=bool)
        for mask in (occluded, out_of_frame):
            if mask is not None:
                unmatched |= np.asarray(mask, dtype=bool)
        unmatched = pick(unmatched)
        sums["EPE_matched"] = (float(values[~unmatched].sum()), int(np.count_nonzero(~unmatched)))
        sums["EPE_unmatched"] = (float(values[unmatched].sum()), int(np.count_nonzero(unmatched)))
    return sums


def report(values: dict[str, float], px_convention: PxConvention = "accuracy") -> dict[str, float]:
    """Public metric names from tracked quantities: EPE, 1px/3px/5px in the chosen convention, Fl, breakdowns."""
    prefix = "acc" if px_convention == "accuracy" else "err"
    out = {"EPE": values["EPE"]}
    out.update({f"{n}px": values[f"{prefix}{n}"] for n in PX_THRESHOLDS})
    out["Fl-all"] = values["Fl"]
    out.update({key: values[key] for key in values if key.startswith("EPE_")})
    return out


def flow_metrics(
    preds: Sequence[np.ndarray],
    gts: Sequence[np.ndarray],
    valids: Sequence[np.ndarray | None] | None = None,
    averaging: FlowAveraging = "pixels",
    px_convention: PxConvention = "accuracy",
) -> dict[str, float]:
    """Functional entry point over lists of (H, W, 2) flows (one batch for ``per-batch``)."""
    metric = FlowMetric(averaging=averaging, px_convention=px_convention)
    valids = list(valids) if valids is not None else [None] * len(preds)
    metric.add_batch([(p, FlowTarget(flow=g, valid=v), i) for i, (p, g, v) in enumerate(zip(preds, gts, valids))])
    return metric.compute().metrics


def _check_mask(mask: Any, shape: tuple[int, ...], name: str, item: Any) -> np.ndarray | None:
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.shape != shape:
        raise DataError(f"item {item!r}: {name} mask has shape {mask.shape}, flow {shape}")
    return mask.astype(bool)


@METRICS.register("flow")
class FlowMetric(Metric):
    """EPE, 1px/3px/5px, Fl and the Sintel breakdowns, with the averaging unit as a named dialect."""

    name = "flow"
    lower_is_better = frozenset({"EPE", "Fl-all", "EPE_matched", "EPE_unmatched", "EPE_s0-10", "EPE_s10-40",
                                 "EPE_s40+"})
    #: the averaging unit is this metric's dialect
    dialects = AVERAGINGS

    @classmethod
    def from_dataset(cls, info: Any, dialect: str | None = None, **options: Any) -> "FlowMetric":
        if dialect is not None:
            options["averaging"] = dialect
        return cls(**options)

    def __init__(self, averaging: FlowAveraging = "pixels", px_convention: PxConvention = "accuracy") -> None:
        super().__init__()
        if averaging not in AVERAGINGS:
            raise ValueError(f"unknown flow averaging {averaging!r} (known: {', '.join(AVERAGINGS)})")
        if px_convention not in PX_CONVENTIONS:
            raise ValueError(f"unknown px convention {px_convention!r} (known: {', '.join(PX_CONVENTIONS)})")
        self.averaging = averaging
        self.px_convention = px_convention
        # one (sums (Q,) float64, counts (Q,) int64, first of its batch) row per image, in sample order
        self.add_state("rows", [], reduce="cat")

    def update(self, samples: Sequence[Any], predictions: Sequence[Any]) -> None:
        if len(samples) != len(predictions):
            raise PredictionError(f"{len(predictions)} predictions for {len(samples)} samples")
        batch = []
        for sample, prediction in zip(samples, predictions):
            if not isinstance(sample.target, FlowTarget):
                raise DataError(f"item {sample.sample_id!r}: expected a FlowTarget, got {type(sample.target).__name__}")
            if not isinstance(prediction, FlowPrediction):
                raise PredictionError(
                    f"item {sample.sample_id!r}: expected a FlowPrediction, got {type(prediction).__name__}"
                )
            # scored in float32, the precision of the .flo files a run writes, so re-scoring them gives the same bits
            batch.append((np.asarray(prediction.flow, dtype=np.float32), sample.target, sample.sample_id))
        self.add_batch(batch)

    def add_batch(self, batch: Sequence[tuple[np.ndarray, FlowTarget, Any]]) -> None:
        """Score (prediction flow, target, item name) triples as one batch (one unit of the ``per-batch`` dialect)."""
        rows = []
        for position, (pred, target, item) in enumerate(batch):
            sums = self._image_sums(pred, target, item)
            rows.append((np.array([sums[key][0] for key in QUANTITIES], dtype=np.float64),
                         np.array([sums[key][1] for key in QUANTITIES], dtype=np.int64), position == 0))
        self.rows.extend(rows)  # all or nothing: a bad item leaves the state untouched

    def subset(self, positions: np.ndarray, n_samples: int) -> "Metric":
        if self.averaging == "per-batch":
            raise NotImplementedError("per-batch flow means depend on the batches; resampled images have none")
        return super().subset(positions, n_samples)

    def resampled(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        """Per-image rows with multiplicities: exact fsums of the sums (or of the per-image means) and weighted
        pixel (or image) counts, so each resample equals scoring its image list."""
        counts = np.asarray(counts)
        if self.averaging == "per-batch":
            raise NotImplementedError("per-batch flow means depend on the batches; resampled images have none")
        if counts.ndim != 2 or counts.shape[1] != len(self.rows) or not self.rows:
            raise NotImplementedError(f"{self.name}: counts {counts.shape} for {len(self.rows)} images")
        sums = np.stack([row[0] for row in self.rows])
        pixels = np.stack([row[1] for row in self.rows])
        size = len(QUANTITIES)
        numerators = np.zeros((len(counts), size))
        if self.averaging == "pixels":
            denominators = weighted_counts(pixels, counts)
            for q in range(size):
                numerators[:, q] = weighted_fsum(sums[:, q], counts)
        else:
            units = pixels > 0
            denominators = weighted_counts(units.astype(np.int64), counts)
            with np.errstate(divide="ignore", invalid="ignore"):
                means = sums / pixels
            for q in range(size):
                numerators[:, q] = weighted_fsum(means[units[:, q], q], counts[:, units[:, q]])
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = numerators / denominators
        draws = [report({key: float(r[i]) for i, key in enumerate(QUANTITIES)}, self.px_convention) for r in ratios]
        return {key: np.array([d[key] for d in draws], dtype=np.float64) for key in draws[0]}

    def totals(self) -> tuple[np.ndarray, np.ndarray]:
        """(numerators, denominators) per quantity: pixel sums and pixel counts (``pixels``), or sums of unit
        means and unit counts (``per-image``, ``per-batch``); each value is numerator / denominator."""
        size = len(QUANTITIES)
        if not self.rows:
            return np.zeros(size), np.zeros(size, dtype=np.int64)
        sums = np.stack([row[0] for row in self.rows])
        counts = np.stack([row[1] for row in self.rows])
        if self.averaging == "per-batch":
            starts = [index for index, row in enumerate(self.rows) if row[2]]  # rows[0] always opens a batch
            bounds = list(zip(starts, [*starts[1:], len(self.rows)]))
            sums = np.array([[math.fsum(sums[a:b, q]) for q in range(size)] for a, b in bounds], dtype=np.float64)
            counts = np.stack([counts[a:b].sum(axis=0) for a, b in bounds])
        if self.averaging == "pixels":
            numerators = np.array([math.fsum(sums[:, q]) for q in range(size)], dtype=np.float64)
            return numerators, counts.sum(axis=0)
        units = counts > 0  # an image (batch) without pixels in a region does not count for that region
        with np.errstate(divide="ignore", invalid="ignore"):
            means = sums / counts
        numerators = np.array([math.fsum(means[units[:, q], q]) for q in range(size)], dtype=np.float64)
        return numerators, units.sum(axis=0).astype(np.int64)

    @property
    def numerators(self) -> np.ndarray:
        return self.totals()[0]

    @property
    def denominators(self) -> np.ndarray:
        return self.totals()[1]

    def _image_sums(self, pred: Any, target: FlowTarget, item: Any) -> dict[str, tuple[float, int]]:
        gt = np.asarray(target.flow)
        if gt.ndim != 3 or gt.shape[2] != 2:
            raise DataError(f"item {item!r}: ground-truth flow must be (H, W, 2), got {gt.shape}")
        pred = np.asarray(pred)
        if pred.shape != gt.shape:
            raise PredictionError(f"item {item!r}: predicted flow has shape {pred.shape}, ground truth {gt.shape}")
        shape = gt.shape[:2]
        valid = _check_mask(target.valid, shape, "valid", item)
        occluded = _check_mask(target.occluded, shape, "occluded", item)
        out_of_frame = _check_mask(target.out_of_frame, shape, "out_of_frame", item)
        compiled = flow_image_sums(pred, gt, valid, occluded, out_of_frame)  # sums and finiteness in one pass
        if compiled is not None:
            pred_bad, gt_bad = compiled[2], compiled[3]
        else:
            scored = slice(None) if valid is None else valid  # no all-true mask: a boolean index copies everything
            pred_bad = not np.all(np.isfinite(pred[scored]))
            gt_bad = not pred_bad and not np.all(np.isfinite(gt[scored]))
        if pred_bad:
            raise PredictionError(f"item {item!r}: predicted flow has non-finite values on valid pixels")
        if gt_bad:
            raise DataError(f"item {item!r}: ground-truth flow has non-finite values on valid pixels")
        if compiled is not None:
            return _as_sums(compiled[0], compiled[1], occluded is not None or out_of_frame is not None)
        return flow_sums_numpy(pred, gt, valid, occluded, out_of_frame)

    def compute(self) -> MetricResult:
        numerators, denominators = self.totals()
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = numerators / denominators
        values = {key: float(ratios[i]) for i, key in enumerate(QUANTITIES)}
        metrics = report(values, self.px_convention)
        better = {key: False for key in metrics}
        if self.px_convention == "accuracy":
            better.update({f"{n}px": True for n in PX_THRESHOLDS})
        return MetricResult(
            metrics=metrics,
            settings={
                "averaging": self.averaging,
                "px_convention": self.px_convention,
                "px_definition": "EPE < N" if self.px_convention == "accuracy" else "EPE > N",
                "fl_definition": "EPE > 3 and EPE/|gt| > 0.05 on valid pixels",
                "speed_bands": "[0,10) [10,40) [40,inf) px by |gt|",
                "pixels": int(denominators[0]) if self.averaging == "pixels" else None,
            },
            higher_is_better=better,
        )
