"""Reading and validating COCO annotation files (instances_*.json, person_keypoints_*.json).

Validation happens once, up front, and names the file and the offending entry, because a COCO file that is
subtly wrong (a missing ``area``, a keypoint list of the wrong length) otherwise surfaces as a wrong AP.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.dataset import report
from harness.core.errors import DataError
from harness.io.jsonio import read_json
from harness.io.validation.coco_annotations import annotation_problem, category_problem, image_problem

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
    def load(
        cls, path: str | Path, *, require_keypoints: bool = False, require_segmentation: bool = False
    ) -> "CocoIndex":
        """Read and validate; a malformed entry is reported (see ``harness.core.dataset.report``) and skipped."""
        path = Path(path)
        data = read_json(path)
        if not isinstance(data, dict):
            raise DataError("expected a JSON object with images, annotations and categories", path)
        for key in ("images", "annotations", "categories"):
            if not isinstance(data.get(key), list):
                raise DataError(f"missing or non-list top-level key {key!r}", path)
        images_by_id: dict[Any, dict[str, Any]] = {}
        for i, image in enumerate(data["images"]):
            if not _has_keys(image, IMAGE_KEYS, f"images[{i}]", path):
                continue
            if (problem := image_problem(image)) is not None:
                report(DataError(f"images[{i}]: {problem}", path))
                continue
            if image["id"] in images_by_id:
                report(DataError(f"images[{i}]: duplicate image id {image['id']}", path))
                continue
            images_by_id[image["id"]] = image
        categories = []
        for i, category in enumerate(data["categories"]):
            if _has_keys(category, ("id", "name"), f"categories[{i}]", path):
                if (problem := category_problem(category)) is not None:
                    report(DataError(f"categories[{i}]: {problem}", path))
                    continue
                categories.append(category)
        category_ids = {c["id"] for c in categories}
        by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
        keypoint_lengths = {c["id"]: 3 * len(c.get("keypoints", [])) for c in categories}
        for i, ann in enumerate(data["annotations"]):
            where = f"annotations[{i}] (id {ann.get('id', '?') if isinstance(ann, dict) else '?'})"
            if not _has_keys(ann, ANNOTATION_KEYS, where, path):
                continue
            if require_keypoints and not _has_keys(ann, KEYPOINT_KEYS, where, path):
                continue
            if require_segmentation and not _has_keys(ann, ("segmentation",), where, path):
                continue
            problem = (annotation_problem(ann, require_keypoints)
                       or _annotation_problem(ann, images_by_id, category_ids, keypoint_lengths, require_keypoints))
            if problem is None and "segmentation" in ann and require_segmentation:
                problem = segmentation_problem(ann["segmentation"], images_by_id[ann["image_id"]])
            if problem is not None:
                report(DataError(f"{where}: {problem}", path))
                continue
            by_image[ann["image_id"]].append(ann)
        images = sorted(images_by_id.values(), key=lambda image: image["id"])
        return cls(path, data, images, categories, dict(by_image))


def _annotation_problem(
    ann: dict[str, Any],
    images_by_id: dict[Any, dict[str, Any]],
    category_ids: set[Any],
    keypoint_lengths: dict[Any, int],
    require_keypoints: bool,
) -> str | None:
    if ann["image_id"] not in images_by_id:
        return f"image_id {ann['image_id']} is not in images"
    if ann["category_id"] not in category_ids:
        return f"category_id {ann['category_id']} is not in categories"
    bbox = ann["bbox"]
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_finite_number(v) for v in bbox)):
        return f"bbox must be 4 finite numbers [x, y, w, h], got {bbox!r}"
    if bbox[2] < 0 or bbox[3] < 0:
        return f"bbox has a negative width or height {bbox!r}"
    if not _is_finite_number(ann["area"]) or ann["area"] < 0:
        return f"area must be a finite number >= 0, got {ann['area']!r}"
    if "keypoints" in ann and require_keypoints:
        expected = keypoint_lengths.get(ann["category_id"], 0)
        if len(ann["keypoints"]) != expected:
            return (
                f"{len(ann['keypoints'])} keypoint values, category defines {expected // 3} "
                f"keypoints ({expected} values)"
            )
    return None


def segmentation_problem(segmentation: Any, image: dict[str, Any]) -> str | None:
    """Why ``segmentation`` is not a COCO polygon list or RLE for ``image``, or None when it is."""
    if isinstance(segmentation, list):
        if not segmentation:
            return "segmentation is an empty polygon list"
        for polygon in segmentation:
            if not (isinstance(polygon, list) and len(polygon) >= 6 and len(polygon) % 2 == 0
                    and all(_is_finite_number(v) for v in polygon)):
                return "segmentation polygons must be lists of at least 3 finite (x, y) pairs"
        return None
    if isinstance(segmentation, dict):
        if "size" not in segmentation or "counts" not in segmentation:
            return "RLE segmentation needs 'size' and 'counts'"
        if list(segmentation["size"]) != [image["height"], image["width"]]:
            return (
                f"RLE size {segmentation['size']} does not match the image "
                f"(height {image['height']}, width {image['width']})"
            )
        if not isinstance(segmentation["counts"], (str, list)):
            return "RLE counts must be a string (compressed) or a list of run lengths"
        return None
    return f"segmentation must be polygons (list) or RLE (object), got {type(segmentation).__name__}"


def locate_coco(root: Path, split: str, annotation_name: str) -> tuple[Path, Path]:
    """``(annotations/<annotation_name>, image folder)`` in a COCO download (``<split>/`` or ``images/<split>/``)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError("data root does not exist or is not a folder", root)
    annotation_file = root / "annotations" / annotation_name
    if not annotation_file.is_file():
        raise DataError(f"no annotations/{annotation_name} (is this a COCO root? is the split right?)", root)
    for image_dir in (root / split, root / "images" / split):
        if image_dir.is_dir():
            return annotation_file, image_dir
    raise DataError(f"no image folder {split}/ or images/{split}/", root)


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and abs(value) != float("inf")


def _has_keys(entry: Any, keys: tuple[str, ...], where: str, path: Path) -> bool:
    """Report a non-object entry or its first missing key; True when the entry has every key."""
    if not isinstance(entry, dict):
        report(DataError(f"{where}: expected an object, got {type(entry).__name__}", path))
        return False
    for key in keys:
        if key not in entry:
            report(DataError(f"{where}: missing key {key!r}", path))
            return False
    return True
