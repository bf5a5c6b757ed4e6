"""Evaluation settings of COCO AP/AR, with pycocotools' defaults and the named mmdet maxDets dialect.

The thresholds are built with the same ``np.linspace`` expressions as pycocotools' ``Params`` so that every
comparison against them happens on bit-identical values.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np


IouType = Literal["bbox", "segm", "keypoints"]
IOU_TYPES: tuple[str, ...] = ("bbox", "segm", "keypoints")

#: pycocotools' per-image detection limits for boxes and masks
COCO_MAX_DETS: tuple[int, ...] = (1, 10, 100)
#: pycocotools' limit for keypoints (its summary hard-codes 20, whatever the setting)
KEYPOINT_MAX_DETS: tuple[int, ...] = (20,)
#: mmdet's ``CocoMetric`` sets ``params.maxDets = proposal_nums = [100, 300, 1000]``: its AP50/AP75/APs/m/l and
#: per-class AP then use up to 1000 detections per image and its "AR@100/300/1000" are stats[6:9].
MMDET_MAX_DETS: tuple[int, ...] = (100, 300, 1000)

#: COCO-17 person keypoint sigmas, built exactly as pycocotools builds them (tenths divided by ten), so that
#: OKS matches it to the last bit; ``0.026`` written directly differs from ``.26 / 10.0`` in the last bit.
COCO17_SIGMAS: np.ndarray = (
    np.array([0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89])
    / 10.0
)

_BOX_AREAS: tuple[tuple[str, tuple[float, float]], ...] = (("all", (0**2, 1e5**2)), ("small", (0**2, 32**2)), ("medium", (32**2, 96**2)), ("large", (96**2, 1e5**2)))
_KEYPOINT_AREAS: tuple[tuple[str, tuple[float, float]], ...] = (("all", (0**2, 1e5**2)), ("medium", (32**2, 96**2)), ("large", (96**2, 1e5**2)))


@dataclass(frozen=True)
class CocoParams:
    """Everything that defines one COCO evaluation; recorded in results so a number states its convention."""

    iou_type: str
    iou_thresholds: np.ndarray = field(repr=False)
    recall_thresholds: np.ndarray = field(repr=False)
    area_labels: tuple[str, ...]
    area_ranges: tuple[tuple[float, float], ...]
    max_dets: tuple[int, ...]
    use_cats: bool = True
    sigmas: np.ndarray | None = field(default=None, repr=False)

    @property
    def dialect(self) -> str:
        if self.iou_type != "keypoints" and self.max_dets == MMDET_MAX_DETS:
            return "mmdet"
        default = KEYPOINT_MAX_DETS if self.iou_type == "keypoints" else COCO_MAX_DETS
        return "pycocotools" if self.max_dets == default else "custom"

    def settings(self) -> dict:
        """A JSON-friendly description for reports."""
        out = {
            "evaluator": "harness.metrics.coco (pycocotools COCOeval semantics)",
            "dialect": self.dialect,
            "iou_type": self.iou_type,
            "iou_thresholds": [round(float(t), 2) for t in self.iou_thresholds],
            "recall_points": int(len(self.recall_thresholds)),
            "area_ranges": {label: list(rng) for label, rng in zip(self.area_labels, self.area_ranges)},
            "max_dets": list(self.max_dets),
            "use_cats": self.use_cats,
        }
        if self.sigmas is not None:
            out["sigmas"] = [float(s) for s in self.sigmas]
        return out


def make_params(
    iou_type: str,
    *,
    sigmas: Sequence[float] | np.ndarray | None = None,
    max_dets: Sequence[int] | None = None,
    use_cats: bool = True,
) -> CocoParams:
    """pycocotools' ``Params(iouType)`` with optional overrides (sorted maxDets, as ``evaluate()`` does)."""
    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type must be one of {IOU_TYPES}, got {iou_type!r}")
    iou_thresholds = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
    recall_thresholds = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
    if iou_type == "keypoints":
        areas = _KEYPOINT_AREAS
        default_dets = KEYPOINT_MAX_DETS
        sigma_array = COCO17_SIGMAS if sigmas is None else np.asarray(sigmas, dtype=np.float64)
        if sigma_array.shape == COCO17_SIGMAS.shape and np.allclose(sigma_array, COCO17_SIGMAS, rtol=0, atol=1e-12):
            sigma_array = COCO17_SIGMAS  # the same sigmas written as 0.026...: use pycocotools' exact bits
        if sigma_array.ndim != 1 or len(sigma_array) == 0 or not np.all(np.isfinite(sigma_array) & (sigma_array > 0)):
            raise ValueError("sigmas must be a non-empty list of positive numbers, one per keypoint")
        if not use_cats:
            # pycocotools' computeOks ignores useCats=0 and finds no pairs at all: there is no official number.
            raise ValueError("use_cats=False is not supported for keypoints (pycocotools has no defined result)")
    else:
        areas = _BOX_AREAS
        default_dets = COCO_MAX_DETS
        sigma_array = None
    dets = tuple(sorted(int(m) for m in (default_dets if max_dets is None else max_dets)))
    if not dets or any(m < 1 for m in dets):
        raise ValueError(f"max_dets must be positive integers, got {max_dets!r}")
    if iou_type != "keypoints" and len(dets) < 3:
        raise ValueError("bbox/segm summaries read maxDets[0], [1] and [2]: give three values, e.g. (1, 10, 100)")
    return CocoParams(
        iou_type=iou_type,
        iou_thresholds=iou_thresholds,
        recall_thresholds=recall_thresholds,
        area_labels=tuple(label for label, _ in areas),
        area_ranges=tuple(rng for _, rng in areas),
        max_dets=dets,
        use_cats=use_cats,
        sigmas=sigma_array,
    )
