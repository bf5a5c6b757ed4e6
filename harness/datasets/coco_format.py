"""Reading and validating COCO annotation files (instances_*.json, person_keypoints_*.json).

Validation happens once, up front, and names the file and the offending entry, because a COCO file that is
subtly wrong (a missing ``area``, a keypoint list of the wrong length) otherwise surfaces as a wrong AP.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import DataError
from harness.jsonio import read_json

IMAGE_KEYS = ("id", "file_name", "width", "height")
ANNOTATION_KEYS = ("id", "image_id", "category_id", "bbox", "area", "iscrowd")
KEYPOINT_KEYS = ("keypoints", "num_keypoints")


@dataclass
class CocoIndex:
    """A validated COCO annotation file with per-image lookups."""

    path: Path
    data: dict[str, Any]
    images: list[dict[str, Any]]
    categories: list[dict[str, Any]]
    annotations_by_image: dict[int, list[dict[str, Any]]]

    @classmethod
    def load(cls, path: str | Path, *, require_keypoints: bool = False) -> "CocoIndex":
        path = Path(path)
        data = read_json(path)
        if not isinstance(data, dict):
            raise DataError("expected a JSON object with images, annotations and categories", path)
        for key in ("images", "annotations", "categories"):
            if not isinstance(data.get(key), list):
                raise DataError(f"missing or non-list top-level key {key!r}", path)
        image_ids: set[Any] = set()
        for i, image in enumerate(data["images"]):
            _require(image, IMAGE_KEYS, f"images[{i}]", path)
            if image["id"] in image_ids:
                raise DataError(f"images[{i}]: duplicate image id {image['id']}", path)
            image_ids.add(image["id"])
        category_ids = set()
        for i, category in enumerate(data["categories"]):
            _require(category, ("id", "name"), f"categories[{i}]", path)
            category_ids.add(category["id"])
        by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
        keypoint_lengths = {c["id"]: 3 * len(c.get("keypoints", [])) for c in data["categories"]}
        for i, ann in enumerate(data["annotations"]):
            where = f"annotations[{i}] (id {ann.get('id', '?')})"
            _require(ann, ANNOTATION_KEYS, where, path)
            if require_keypoints:
                _require(ann, KEYPOINT_KEYS, where, path)
            if ann["image_id"] not in image_ids:
                raise DataError(f"{where}: image_id {ann['image_id']} is not in images", path)
            if ann["category_id"] not in category_ids:
                raise DataError(f"{where}: category_id {ann['category_id']} is not in categories", path)
            bbox = ann["bbox"]
            if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_finite_number(v) for v in bbox)):
                raise DataError(f"{where}: bbox must be 4 finite numbers [x, y, w, h], got {bbox!r}", path)
            if bbox[2] < 0 or bbox[3] < 0:
                raise DataError(f"{where}: bbox has a negative width or height {bbox!r}", path)
            if "keypoints" in ann and require_keypoints:
                expected = keypoint_lengths.get(ann["category_id"], 0)
                if len(ann["keypoints"]) != expected:
                    raise DataError(
                        f"{where}: {len(ann['keypoints'])} keypoint values, category defines {expected // 3} "
                        f"keypoints ({expected} values)",
                        path,
                    )
            by_image[ann["image_id"]].append(ann)
        images = sorted(data["images"], key=lambda image: image["id"])
        return cls(path, data, images, list(data["categories"]), dict(by_image))


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and abs(value) != float("inf")


def _require(entry: Any, keys: tuple[str, ...], where: str, path: Path) -> None:
    if not isinstance(entry, dict):
        raise DataError(f"{where}: expected an object, got {type(entry).__name__}", path)
    for key in keys:
        if key not in entry:
            raise DataError(f"{where}: missing key {key!r}", path)
