"""COCO results json (``coco-results``): what pycocotools' ``loadRes`` reads, for boxes, masks and keypoints.

* detection: ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}`` in ``predictions.json``.
* instance: ``predictions.json`` holds the segm results *without* ``bbox`` (pycocotools then sizes each result by
  its mask, as detectron2 and mmdet write them) and ``predictions.bbox.json`` the same detections' boxes (as
  mmdet's ``results.bbox.json``), so both the mask AP and the ``bbox/`` AP of a run can be re-scored.
* keypoints: ``{"image_id", "category_id", "keypoints": [x1, y1, c1, ...], "score"}`` without ``bbox`` (pycocotools
  would otherwise size a result by its box instead of its keypoints' extent).

Numbers are written as Python floats (shortest repr), so reading a file back gives the same float64 bits.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.boxes import Boxes, BoxMode
from harness.core.errors import PredictionError
from harness.io.jsonio import atomic_write_json, read_json
from harness.metrics.coco.validate import numbers
from harness.core.structures import DetectionPrediction, KeypointsPrediction, Sample
from harness.submissions import SUBMISSIONS
from harness.core.submission import PredictionSource, SubmissionFormat

BOX_SUFFIX = ".bbox.json"


def _json_counts(counts: Any) -> Any:
    return counts.decode("ascii") if isinstance(counts, bytes) else counts


def box_path(path: Path) -> Path:
    """``predictions.json`` -> ``predictions.bbox.json``: where an instance submission keeps its boxes."""
    return path.with_name(path.name.removesuffix(".json") + BOX_SUFFIX)


@SUBMISSIONS.register("coco-results")
class CocoResults(SubmissionFormat):
    name = "coco-results"
    entry = "predictions.json"

    def add(self, sample: Sample, prediction: Any) -> list[dict[str, Any]]:
        image_id = sample.sample_id
        if isinstance(prediction, KeypointsPrediction):
            category = self.info.category_ids[0]
            return [{"image_id": image_id, "category_id": category,
                     "keypoints": [float(v) for v in np.asarray(points, np.float64).reshape(-1)], "score": float(score)}
                    for points, score in zip(prediction.keypoints, np.asarray(prediction.scores).reshape(-1))]
        boxes = np.asarray(prediction.boxes, np.float64).reshape(-1, 4)
        records: list[dict[str, Any]] = [{"image_id": image_id, "category_id": int(label), "bbox": [float(v) for v in box],
                    "score": float(score)}
                   for box, score, label in zip(boxes, np.asarray(prediction.scores).reshape(-1),
                                                np.asarray(prediction.labels).reshape(-1))]
        if self.info.task == "instance":
            for record, mask in zip(records, prediction.masks or []):
                record["segmentation"] = {"size": [int(v) for v in mask["size"]], "counts": _json_counts(mask["counts"])}
        return records

    def finish(self, records: list[dict[str, Any]]) -> None:
        if self.info.task != "instance":
            atomic_write_json(self.path, records, indent=None)
            return
        atomic_write_json(box_path(self.path), [{k: v for k, v in r.items() if k != "segmentation"} for r in records],
                          indent=None)
        atomic_write_json(self.path, [{k: v for k, v in r.items() if k != "bbox"} for r in records], indent=None)

    @classmethod
    def reader(cls, info: Any, path: Path) -> PredictionSource:
        path = Path(path)
        if path.is_dir():
            path = path / cls.entry
        return CocoResultsSource(info, path)


class CocoResultsSource(PredictionSource):
    """Results grouped by image id, each image's in file order (ties in score keep that order, as in COCOeval)."""

    def __init__(self, info: Any, path: Path) -> None:
        self.info = info
        self.path = path
        results = _read_list(path)
        self.by_image: dict[Any, list[int]] = defaultdict(list)
        self.results = results
        for index, result in enumerate(results):
            if not isinstance(result, dict):
                raise PredictionError(f"result #{index}: expected an object, got {type(result).__name__}", path)
            image_id = result.get("image_id")
            if not isinstance(image_id, (int, str)) or isinstance(image_id, bool):
                raise PredictionError(f"result #{index}: image_id must be an integer or a string, got {image_id!r}",
                                      path)
            self.by_image[image_id].append(index)
        self.boxes: list[Any] | None = None
        if info.task == "instance" and box_path(path).is_file():
            self.boxes = _read_list(box_path(path))
            if len(self.boxes) != len(results):
                raise PredictionError(f"{len(self.boxes)} box results for {len(results)} mask results in {path.name}",
                                      box_path(path))
        self.known = set(info.category_ids)

    def unmatched(self, sample_ids: set[Any]) -> list[str]:
        return [f"{self.path}: results for image_id {image_id!r}, which is not in the dataset"
                for image_id in self.by_image if image_id not in sample_ids][:5]

    def predict(self, sample: Sample) -> Any:
        indices = self.by_image.get(sample.sample_id, [])
        items = [self.results[i] for i in indices]
        where = lambda k: f"result #{indices[k]} (image {sample.sample_id!r})"  # noqa: E731
        scores = numbers([r.get("score") for r in items], "score", where, PredictionError, self.path)
        labels = [r.get("category_id") for r in items]
        for k, label in enumerate(labels):
            if label not in self.known or isinstance(label, bool):
                raise PredictionError(f"{where(k)}: category_id {label!r} is not a category of {self.info.name}",
                                      self.path)
        if self.info.task == "keypoints":
            joints = len(self.info.keypoint_names) or 17
            flat = numbers([r.get("keypoints") for r in items], "keypoints", where, PredictionError, self.path,
                           length=3 * joints)
            points = flat.reshape(-1, joints, 3)
            return KeypointsPrediction(keypoints=points, scores=scores, boxes=_extent(points))
        masks = None
        if self.info.task == "instance":
            masks = [_rle(r.get("segmentation"), where(k), self.path) for k, r in enumerate(items)]
            from harness.io.validation.coco_geometry import check_compressed_rles, check_image_sizes

            sizes = np.asarray([m["size"] for m in masks], dtype=np.float64).reshape(-1, 2)
            check_image_sizes(sizes, where, PredictionError, self.path)  # before pycocotools reads a count
            check_compressed_rles([m["counts"] for m in masks], sizes.prod(axis=1), where, PredictionError,
                                  self.path)
            if self.boxes is not None:
                boxes = numbers([self.boxes[i].get("bbox") if isinstance(self.boxes[i], dict) else None
                                 for i in indices], "bbox", where, PredictionError, box_path(self.path), length=4)
            else:
                from pycocotools import mask as mask_codec

                boxes = (np.asarray(mask_codec.toBbox([{**m, "counts": m["counts"].encode("ascii")} for m in masks]),
                                    np.float64).reshape(-1, 4) if masks else np.zeros((0, 4)))
        else:
            boxes = numbers([r.get("bbox") for r in items], "bbox", where, PredictionError, self.path, length=4)
        boxes = boxes.reshape(-1, 4)
        if (boxes[:, 2:] < 0).any():
            k = int(np.flatnonzero((boxes[:, 2:] < 0).any(axis=1))[0])
            raise PredictionError(f"{where(k)}: bbox has a negative width or height", self.path)
        return DetectionPrediction(boxes=boxes, scores=scores, labels=np.asarray(labels, np.int64).reshape(-1),
                                   masks=masks)


def _read_list(path: Path) -> list[Any]:
    if not path.is_file():
        raise PredictionError("results file not found", path)
    results = read_json(path)
    if not isinstance(results, list):
        raise PredictionError(f"expected a JSON list of results, got {type(results).__name__}", path)
    return results


def _rle(segmentation: Any, where: str, path: Path) -> dict[str, Any]:
    if (not isinstance(segmentation, dict) or not isinstance(segmentation.get("counts"), str)
            or not isinstance(segmentation.get("size"), list) or len(segmentation["size"]) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**31
                       for v in segmentation["size"])):
        raise PredictionError(f"{where}: segmentation must be a compressed RLE {{'size': [h, w], 'counts': str}}",
                              path)
    return {"size": list(segmentation["size"]), "counts": segmentation["counts"]}


def _extent(points: np.ndarray) -> np.ndarray:
    """xywh of each person's keypoints (what pycocotools sizes a keypoint result by): the corners of their extent,
    converted by ``Boxes``."""
    if points.size == 0:
        return np.zeros((0, 4))
    corners = np.concatenate([points[..., :2].min(axis=1), points[..., :2].max(axis=1)], axis=1)
    return Boxes(corners, BoxMode.XYXY).xywh()
