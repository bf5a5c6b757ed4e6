"""Registered COCO metrics: ``coco_bbox``, ``coco_segm``, ``coco_keypoints`` (pycocotools COCOeval semantics).

``update`` only checks shapes and finiteness and keeps (target, prediction) pairs as a 'cat' state, so it is
cheap and merges across ranks by concatenation; ``compute`` writes the COCO annotation dict and results list
exactly as a results file would hold them and runs :func:`harness.metrics.coco.evaluate_coco`.

Result conventions (they decide the result "area" used by the small/medium/large rules):
- boxes: ``bbox`` results, area w*h (as pycocotools);
- masks: RLE results *without* ``bbox`` (as detectron2 and mmdet write them), so the area is the mask area;
- keypoints: by default no ``bbox`` (as mmpose writes them), so the area is the keypoints' extent;
  ``result_area="bbox"`` adds the predicted box, and pycocotools then uses its w*h instead.
A DetectionTarget's ``ignore`` flags have no effect: pycocotools overwrites ``ignore`` with ``iscrowd``.
"""
from __future__ import annotations

import copy
from typing import Any, Literal, Sequence, cast

import numpy as np

from harness.core.errors import DataError, PredictionError
from harness.metrics import METRICS
from harness.core.metric import Metric, MetricResult
from harness.metrics.coco import MMDET_MAX_DETS, evaluate_coco
from harness.metrics.coco.evaluator import CocoEvalResult
from harness.core.structures import DetectionPrediction, DetectionTarget, KeypointsPrediction, KeypointsTarget


class _CocoMetric(Metric):
    iou_type: str = ""
    target_type: type[Any] = DetectionTarget
    prediction_type: type = DetectionPrediction

    def __init__(
        self,
        categories: Sequence[dict[str, Any]],
        *,
        max_dets: Sequence[int] | None = None,
        use_cats: bool = True,
        key_prefix: str = "",
    ) -> None:
        super().__init__()
        self.key_prefix = key_prefix  # e.g. "bbox/" when a task reports box and mask AP side by side
        self.categories = [{"id": c["id"], "name": str(c.get("name", c["id"]))} for c in categories]
        if not self.categories:
            raise ValueError(f"{self.name}: give at least one category")
        self.max_dets = tuple(max_dets) if max_dets is not None else None
        self.use_cats = use_cats
        self.add_state("items", [], reduce="cat")

    @classmethod
    def from_dataset(cls, info: Any, dialect: str | None = None, **options: Any) -> "_CocoMetric":
        """``dialect='mmdet'``: mmdet's CocoMetric, which sets maxDets to (100, 300, 1000)."""
        if dialect == "mmdet":
            options["max_dets"] = MMDET_MAX_DETS
        return cls(categories=info.categories(), **options)

    # ------------------------------------------------------------------------------------------ update
    def update(self, samples: Sequence[Any], predictions: Sequence[Any]) -> None:
        if len(samples) != len(predictions):
            raise PredictionError(f"{len(predictions)} predictions for {len(samples)} samples")
        batch = []
        for sample, prediction in zip(samples, predictions):
            target = sample.target
            if not isinstance(target, self.target_type):
                raise DataError(f"item {sample.sample_id!r}: {self.name} needs a {self.target_type.__name__} target")
            if not isinstance(prediction, self.prediction_type):
                raise PredictionError(
                    f"item {sample.sample_id!r}: {self.name} needs a {self.prediction_type.__name__}, "
                    f"got {type(prediction).__name__}"
                )
            self._check(target.image_id, prediction)
            batch.append((target, prediction))
        self.items.extend(batch)  # all or nothing: a bad item leaves the state untouched

    def _check(self, image_id: Any, prediction: Any) -> None:
        """Shapes and finiteness, per image, so a bad prediction is named by its image rather than by its
        position in the results list built later."""
        scores = np.asarray(prediction.scores, dtype=np.float64).reshape(-1)
        _finite(scores, image_id, "score")
        labels = getattr(prediction, "labels", None)
        if labels is not None and np.asarray(labels).reshape(-1).shape != scores.shape:
            raise PredictionError(f"image {image_id!r}: {np.asarray(labels).size} labels for {len(scores)} scores")

    @staticmethod
    def _check_boxes(image_id: Any, boxes: Any, count: int) -> None:
        boxes = np.asarray(boxes if boxes is not None else np.zeros((0, 4)), dtype=np.float64)
        if count == 0 and boxes.size == 0:
            return
        if boxes.shape != (count, 4):
            raise PredictionError(f"image {image_id!r}: boxes have shape {boxes.shape}, expected ({count}, 4)")
        _finite(boxes, image_id, "box")
        if np.any(boxes[:, 2:] < 0):
            raise PredictionError(f"image {image_id!r}: a box has a negative width or height")

    # ----------------------------------------------------------------------------------------- compute
    def compute(self) -> MetricResult:
        gt, results = self.coco_dicts()
        result = evaluate_coco(gt, results, self.iou_type, max_dets=self.max_dets, use_cats=self.use_cats,
                               **self._eval_kwargs())
        return self._metric_result(result)

    def subset(self, positions: np.ndarray, n_samples: int) -> "Metric":
        """A bootstrap resample repeats images; COCO needs unique ids, so the copy numbers images by position.

        Images are evaluated independently, so renaming them changes no number.
        """
        clone = super().subset(positions, n_samples)
        clone._positional_ids = True
        return clone

    def resampled(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        """Bootstrap by reuse: match once, re-accumulate with image weights (``coco.resampled_stats``).

        Equal, bit for bit, to the generic path (a full evaluation of each resampled image list): images and
        annotations are numbered by position, as ``subset`` numbers them.
        """
        from harness.metrics.coco.evaluator import resampled_stats

        counts = np.asarray(counts)
        if counts.ndim != 2 or counts.shape[1] != len(self.items):
            raise NotImplementedError(f"{self.name}: counts {counts.shape} for {len(self.items)} images")
        clone = copy.copy(self)
        clone._positional_ids = True
        gt, results = clone.coco_dicts()
        names, values = resampled_stats(gt, results, self.iou_type, counts, max_dets=self.max_dets,
                                        use_cats=self.use_cats, **self._eval_kwargs())
        return {self.key_prefix + name: values[:, i] for i, name in enumerate(names)}

    def coco_dicts(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The COCO annotation dict and results list this metric evaluates (handy for cross-checks)."""
        images, annotations, results = [], [], []
        positional = getattr(self, "_positional_ids", False)
        use_given_ids = not positional and all(
            t.ann_ids is not None and len(t.ann_ids) == len(t.boxes) for t, _ in self.items
        )
        if use_given_ids:  # ids unique per image only (Cityscapes instanceIds) are renumbered; no number moves
            given = [_plain(i) for t, _ in self.items for i in t.ann_ids]
            use_given_ids = len(set(given)) == len(given)
        next_id = 1
        for position, (target, prediction) in enumerate(self.items):
            image_id = position + 1 if positional else _plain(target.image_id)
            images.append({"id": image_id, "width": int(target.width), "height": int(target.height)})
            count = len(target.boxes)
            ids = [_plain(i) for i in target.ann_ids] if use_given_ids else list(range(next_id, next_id + count))
            next_id += count
            for annotation in self._annotations(target, ids):
                annotation["image_id"] = image_id  # positional under bootstrap resampling
                annotations.append(annotation)
            results.extend(self._results(image_id, prediction))
        return {"images": images, "annotations": annotations, "categories": list(self.categories)}, results

    def _eval_kwargs(self) -> dict[str, Any]:
        return {}

    def _annotations(self, target: Any, ids: list[Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _results(self, image_id: Any, prediction: Any) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _metric_result(self, result: CocoEvalResult) -> MetricResult:
        curves = {
            "pr": {
                f"iou={iou:.2f}": result.pr_curve(iou=iou)
                for iou in (0.5, 0.75)
            }
        }
        settings = result.params.settings()
        settings.update(self._notes())
        prefix = self.key_prefix
        return MetricResult(
            metrics={prefix + name: value for name, value in result.metrics.items()},
            per_class={prefix + name: table for name, table in result.per_category.items()},
            curves={prefix + name: curve for name, curve in curves.items()},
            settings={prefix + name: value for name, value in settings.items()},
            higher_is_better={prefix + name: True for name in result.metrics},
        )

    def _notes(self) -> dict[str, Any]:
        return {}


def _finite(values: np.ndarray, image_id: Any, what: str) -> None:
    if not np.all(np.isfinite(values)):
        raise PredictionError(f"image {image_id!r}: a {what} is NaN or infinite")


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _detection_annotations(target: DetectionTarget, ids: list[Any], with_masks: bool) -> list[dict[str, Any]]:
    boxes = np.asarray(target.boxes, dtype=np.float64).reshape(-1, 4).tolist()
    labels = np.asarray(target.labels).tolist()
    areas = np.asarray(target.areas, dtype=np.float64).tolist()
    crowd = np.asarray(target.iscrowd).astype(int).tolist()
    if with_masks and (target.masks is None or len(target.masks) != len(boxes)):
        raise DataError(f"image {target.image_id!r}: mask evaluation needs one segmentation per object")
    out = []
    for i, (ann_id, box, label, area, is_crowd) in enumerate(zip(ids, boxes, labels, areas, crowd)):
        ann = {"id": ann_id, "image_id": _plain(target.image_id), "category_id": label, "bbox": box, "area": area,
               "iscrowd": is_crowd}
        if with_masks:
            assert target.masks is not None  # with_masks: the target has them
            ann["segmentation"] = target.masks[i]
        out.append(ann)
    return out


@METRICS.register("coco_bbox")
class CocoBoxMetric(_CocoMetric):
    """COCO box AP/AR (12 stats). ``max_dets=MMDET_MAX_DETS`` gives mmdet's (100, 300, 1000) dialect."""

    name = "coco_bbox"
    dialects = ("pycocotools", "mmdet")
    iou_type = "bbox"

    def _check(self, image_id: Any, prediction: DetectionPrediction) -> None:
        super()._check(image_id, prediction)
        self._check_boxes(image_id, prediction.boxes, len(np.asarray(prediction.scores).reshape(-1)))

    def _annotations(self, target: DetectionTarget, ids: list[Any]) -> list[dict[str, Any]]:
        return _detection_annotations(target, ids, with_masks=False)

    def _results(self, image_id: Any, prediction: DetectionPrediction) -> list[dict[str, Any]]:
        boxes = np.asarray(prediction.boxes, dtype=np.float64).reshape(-1, 4).tolist()
        labels = np.asarray(prediction.labels).tolist()
        scores = np.asarray(prediction.scores, dtype=np.float64).reshape(-1).tolist()
        return [{"image_id": image_id, "category_id": c, "bbox": b, "score": s} for b, c, s in zip(boxes, labels, scores)]

    def _notes(self) -> dict[str, Any]:
        return {"result_area": "bbox w*h", "ignore_flags": "not used (pycocotools overwrites ignore with iscrowd)"}


@METRICS.register("coco_segm")
class CocoMaskMetric(_CocoMetric):
    """COCO mask AP/AR (12 stats) on RLE masks; results carry no ``bbox`` so their area is the mask area."""

    name = "coco_segm"
    dialects = ("pycocotools", "mmdet")
    iou_type = "segm"

    def _check(self, image_id: Any, prediction: DetectionPrediction) -> None:
        super()._check(image_id, prediction)
        count = len(np.asarray(prediction.scores).reshape(-1))
        if prediction.masks is None or len(prediction.masks) != count:
            raise PredictionError(f"image {image_id!r}: mask evaluation needs one RLE mask per detection")

    def _annotations(self, target: DetectionTarget, ids: list[Any]) -> list[dict[str, Any]]:
        return _detection_annotations(target, ids, with_masks=True)

    def _results(self, image_id: Any, prediction: DetectionPrediction) -> list[dict[str, Any]]:
        labels = np.asarray(prediction.labels).tolist()
        scores = np.asarray(prediction.scores, dtype=np.float64).reshape(-1).tolist()
        return [
            {"image_id": image_id, "category_id": c, "segmentation": m, "score": s}
            for m, c, s in zip(cast("list[dict[str, Any]]", prediction.masks), labels, scores)
        ]

    def _notes(self) -> dict[str, Any]:
        return {"result_area": "mask area (results without bbox, as detectron2/mmdet)",
                "ignore_flags": "not used (pycocotools overwrites ignore with iscrowd)"}


@METRICS.register("coco_keypoints")
class CocoKeypointsMetric(_CocoMetric):
    """COCO keypoint AP/AR by OKS (10 stats); ``sigmas`` one per keypoint (COCO-17 when omitted)."""

    name = "coco_keypoints"
    iou_type = "keypoints"
    target_type = KeypointsTarget
    prediction_type = KeypointsPrediction

    def __init__(
        self,
        categories: Sequence[dict[str, Any]],
        *,
        sigmas: Sequence[float] | None = None,
        max_dets: Sequence[int] | None = None,
        result_area: Literal["keypoints", "bbox"] = "keypoints",
    ) -> None:
        super().__init__(categories, max_dets=max_dets)
        if len(self.categories) != 1:
            raise ValueError("coco_keypoints evaluates one (person-like) category; give exactly one")
        if result_area not in ("keypoints", "bbox"):
            raise ValueError(f"result_area must be 'keypoints' or 'bbox', got {result_area!r}")
        self.sigmas = None if sigmas is None or len(sigmas) == 0 else [float(s) for s in sigmas]
        self.result_area = result_area

    @classmethod
    def from_dataset(cls, info: Any, **options: Any) -> "CocoKeypointsMetric":  # type: ignore[override]  # dialect travels in options
        return cls(categories=info.categories(), sigmas=info.sigmas, **options)

    def _check(self, image_id: Any, prediction: KeypointsPrediction) -> None:
        super()._check(image_id, prediction)
        keypoints = np.asarray(prediction.keypoints, dtype=np.float64)
        count = len(np.asarray(prediction.scores).reshape(-1))
        if self.result_area == "bbox":
            self._check_boxes(image_id, prediction.boxes, count)
        expected = len(self.sigmas) if self.sigmas is not None else 17
        if count and (keypoints.ndim != 3 or keypoints.shape[0] != count or keypoints.shape[1] != expected
                      or keypoints.shape[2] < 2):
            raise PredictionError(
                f"image {image_id!r}: keypoints have shape {keypoints.shape}, expected ({count}, {expected}, 3)"
            )
        _finite(keypoints[..., :2], image_id, "keypoint coordinate")

    def _eval_kwargs(self) -> dict[str, Any]:
        return {"sigmas": self.sigmas}

    def _annotations(self, target: KeypointsTarget, ids: list[Any]) -> list[dict[str, Any]]:
        category_id = self.categories[0]["id"]
        count = len(target.boxes)
        if count == 0:
            return []
        boxes = np.asarray(target.boxes, dtype=np.float64).reshape(-1, 4).tolist()
        keypoints = np.asarray(target.keypoints, dtype=np.float64).reshape(count, -1).tolist()
        areas = np.asarray(target.areas, dtype=np.float64).tolist()
        crowd = np.asarray(target.iscrowd).astype(int).tolist()
        labelled = np.asarray(target.num_keypoints).astype(int).tolist()
        return [
            {"id": i, "image_id": _plain(target.image_id), "category_id": category_id, "bbox": b, "area": a,
             "iscrowd": c, "keypoints": k, "num_keypoints": n}
            for i, b, a, c, k, n in zip(ids, boxes, areas, crowd, keypoints, labelled)
        ]

    def _results(self, image_id: Any, prediction: KeypointsPrediction) -> list[dict[str, Any]]:
        category_id = self.categories[0]["id"]
        scores = np.asarray(prediction.scores, dtype=np.float64).reshape(-1).tolist()
        if not scores:
            return []
        keypoints = np.asarray(prediction.keypoints, dtype=np.float64)
        if keypoints.size and keypoints.shape[-1] == 2:  # no per-joint confidence: write 0 like a missing one
            keypoints = np.concatenate([keypoints, np.zeros(keypoints.shape[:-1] + (1,))], axis=-1)
        flat = keypoints.reshape(len(scores), -1).tolist()
        out = [{"image_id": image_id, "category_id": category_id, "keypoints": k, "score": s}
               for k, s in zip(flat, scores)]
        if self.result_area == "bbox":
            for record, box in zip(out, np.asarray(prediction.boxes, dtype=np.float64).reshape(-1, 4).tolist()):
                record["bbox"] = box
        return out

    def _notes(self) -> dict[str, Any]:
        area = "keypoint extent (results without bbox, as mmpose)" if self.result_area == "keypoints" else "bbox w*h"
        return {"result_area": area}
