"""COCO ground truth and results as validated numpy columns, with pycocotools' loading rules applied.

Rules carried over from ``COCO.loadRes`` / ``COCOeval._prepare`` (facts, not code):
- ground truth: ``area`` is used as-is; a GT is ignored when ``iscrowd`` is set (any ``ignore`` field is
  overwritten and so has no effect) and, for keypoints, when ``num_keypoints == 0``;
- results: the branch is chosen by the *first* result.  If it has a non-empty ``bbox``, every result's area is
  w*h of its box; else if it has a ``segmentation``, the area is the mask area (and a missing box is the mask's
  bounding box); else the area and box are the extent of the keypoints.  Result ids are 1..N in list order.

Deliberately stricter than pycocotools (it would produce a number, but not a meaningful one): results for
unknown images or categories, non-finite numbers, negative box sizes, mask sizes that differ from the image,
duplicate ids and segm results without a ``segmentation`` (pycocotools would score their box as a polygon) are
errors.  A missing ``iscrowd`` means 0 (pycocotools would raise a KeyError).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence, cast

import numpy as np

from harness.core.errors import DataError, PredictionError
from harness.metrics.coco import validate as v
from harness.metrics.coco.masks import rle_areas, rle_boxes, segmentations_to_rles


@dataclass
class GroundTruthTable:
    """One row per annotation, in file order (pycocotools keeps file order inside an image and category)."""

    images: v.IdIndex
    categories: v.IdIndex
    category_names: list[str]
    image: np.ndarray  # (N,) index into images.ids
    category: np.ndarray  # (N,) index into categories.ids
    crowd: np.ndarray  # (N,) bool
    ignore: np.ndarray  # (N,) bool, before the area-range rule
    area: np.ndarray  # (N,) float64, the annotation's own area field
    id_is_zero: np.ndarray  # (N,) bool: pycocotools stores matches by GT id, so id 0 reads as "unmatched"
    bbox: np.ndarray | None = None  # (N, 4)
    keypoints: np.ndarray | None = None  # (N, K, 3)
    masks: Sequence[dict[str, Any]] | None = None  # a list, or an RleColumn (polygons rasterised in C)
    image_sizes: np.ndarray | None = None  # (n_images, 2) height, width in sorted-id order (segm only)

    def __len__(self) -> int:
        return len(self.image)


@dataclass
class ResultTable:
    """One row per result, in list order."""

    image: np.ndarray
    category: np.ndarray
    score: np.ndarray
    area: np.ndarray
    bbox: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    masks: Sequence[dict[str, Any]] | None = None  # a list, or an RleColumn from the compiled parser

    def __len__(self) -> int:
        return len(self.image)


def load_ground_truth(
    gt: Any, iou_type: str, num_keypoints: int | None = None, path: str | Path | None = None
) -> GroundTruthTable:
    """Validate a COCO annotation dict (images, annotations, categories) into columns; DataError on problems."""
    images, annotations, categories, image_ids, image_index, category_index, category_names = _index_ground_truth(
        gt, path)

    where = v.annotation_where(annotations)
    ann_ids = v.column(annotations, "id", where, DataError, path)
    v.unique_ids(ann_ids, "annotation", DataError, path)
    id_is_zero = None
    if set(map(type, ann_ids)) == {int}:  # ints only: compare as a column
        try:
            id_is_zero = np.asarray(ann_ids, dtype=np.int64) == 0
        except OverflowError:
            pass
    if id_is_zero is None:
        id_is_zero = np.array([a == 0 and not isinstance(a, str) for a in ann_ids], dtype=bool)

    ann_images = v.column(annotations, "image_id", where, DataError, path)
    image = image_index.lookup(ann_images)
    v.check_known(image, ann_images, "image_id", where, DataError, path, "is not in 'images'")
    ann_categories = v.column(annotations, "category_id", where, DataError, path)
    category = category_index.lookup(ann_categories)
    v.check_known(category, ann_categories, "category_id", where, DataError, path, "is not in 'categories'")

    area = v.numbers(v.column(annotations, "area", where, DataError, path), "area", where, DataError, path)
    if (area < 0).any():  # an area range can never hold it: refuse instead of dropping it from APs/m/l silently
        i = int(np.flatnonzero(area < 0)[0])
        raise DataError(f"{where(i)}: area must not be negative, got {float(area[i])!r}", path)
    crowd_raw = [int(c) if isinstance(c, (bool, np.bool_)) else c for c in v.optional_column(annotations, "iscrowd", 0)]
    crowd_values = v.numbers(crowd_raw, "iscrowd", where, DataError, path) if crowd_raw else np.zeros(0)
    bad_crowd = (crowd_values != 0) & (crowd_values != 1)
    if bad_crowd.any():
        i = int(np.flatnonzero(bad_crowd)[0])
        raise DataError(f"{where(i)}: iscrowd must be 0 or 1, got {crowd_raw[i]!r}", path)
    crowd = crowd_values.astype(bool)
    ignore = crowd.copy()

    table = GroundTruthTable(
        images=image_index,
        categories=category_index,
        category_names=category_names,
        image=image,
        category=category,
        crowd=crowd,
        ignore=ignore,
        area=area,
        id_is_zero=id_is_zero,
    )
    if iou_type in ("bbox", "keypoints"):
        table.bbox = v.numbers(v.column(annotations, "bbox", where, DataError, path), "bbox", where, DataError, path, 4)
        v.check_nonnegative_size(table.bbox, where, DataError, path)
    if iou_type == "keypoints":
        assert num_keypoints is not None
        raw = v.column(annotations, "keypoints", where, DataError, path)
        flat = v.numbers(raw, "keypoints", where, DataError, path, 3 * num_keypoints)
        table.keypoints = flat.reshape(len(flat), num_keypoints, 3)
        labelled = v.numbers(
            v.column(annotations, "num_keypoints", where, DataError, path), "num_keypoints", where, DataError, path
        )
        table.ignore = crowd | (labelled == 0)
    if iou_type == "segm" or all(isinstance(im, dict) and "height" in im and "width" in im for im in images):
        sizes = _image_sizes(images, path)
        table.image_sizes = np.empty_like(sizes)
        table.image_sizes[image_index.lookup(image_ids)] = sizes  # rows in sorted-id order
    if iou_type == "segm":
        segmentations = v.column(annotations, "segmentation", where, DataError, path)
        assert table.image_sizes is not None  # read above for every segm evaluation
        table.masks = segmentations_to_rles(segmentations, image, table.image_sizes, where, DataError, path,
                                            packed=True)
    return table


def _index_ground_truth(gt: Any, path):
    """The images and categories of an annotation dict, checked and indexed (their errors come first)."""
    images = v.require_list(gt, "images", DataError, path, "ground truth")
    annotations = v.require_list(gt, "annotations", DataError, path, "ground truth")
    categories = v.require_list(gt, "categories", DataError, path, "ground truth")

    image_ids = v.column(images, "id", lambda i: f"image #{i}", DataError, path)
    v.unique_ids(image_ids, "image", DataError, path)
    image_index = v.IdIndex(image_ids, "image", DataError, path)
    category_ids = v.column(categories, "id", lambda i: f"category #{i}", DataError, path)
    v.unique_ids(category_ids, "category", DataError, path)
    category_index = v.IdIndex(category_ids, "category", DataError, path)
    names_by_id = {c["id"]: str(c.get("name", c["id"])) for c in categories}
    category_names = [names_by_id[cid] for cid in category_index.ids]
    return images, annotations, categories, image_ids, image_index, category_index, category_names


def ground_truth_from_columns(
    parsed: Any, iou_type: str, num_keypoints: int | None = None, path: str | Path | None = None
) -> GroundTruthTable | None:
    """The fast path of ``load_ground_truth``: an annotation file parsed by ``kernels.parse_ground_truth``
    (annotations as columns, the other top-level values as parsed JSON, with "annotations": [] standing in;
    for masks, parsed with ``segm=True``).

    Images and categories go through the general checks (their errors come first there too).  Anything about
    the annotations that the general path would refuse or treat specially (duplicate or unknown ids, non-finite
    numbers, negative box sizes, iscrowd other than 0/1, polygons that fail ``rasterisable_polygons``, RLEs it
    would refuse) returns None: the caller then runs ``load_ground_truth`` on the whole file, which gives the
    same table or names the problem.
    """
    n, columns, present, kp_len, rest = parsed[:5]
    segm = parsed[5] if len(parsed) > 5 else None
    if iou_type not in ("bbox", "keypoints", "segm") or (iou_type == "segm" and (segm is None or segm[0] != n)):
        return None
    needed = ["id", "image_id", "category_id", "area"] + (["bbox"] if iou_type != "segm" else [])
    if iou_type == "keypoints":
        needed += ["keypoints", "num_keypoints"]
        if num_keypoints is None or kp_len != 3 * num_keypoints:
            return None
    if any(present[key] != n for key in needed):
        return None
    images, _, _, image_ids, image_index, category_index, category_names = _index_ground_truth(rest, path)
    ann_ids = columns["id"]
    ordered = np.sort(ann_ids)
    if (ordered[1:] == ordered[:-1]).any():
        return None
    image = image_index.lookup(columns["image_id"])
    category = category_index.lookup(columns["category_id"])
    area, crowd_values = columns["area"], columns["iscrowd"]
    if ((image < 0).any() or (category < 0).any() or not np.isfinite(area).all() or (area < 0).any()
            or ((crowd_values != 0) & (crowd_values != 1)).any()):
        return None
    bbox = columns["bbox"] if iou_type != "segm" else None
    if bbox is not None and (not np.isfinite(bbox).all() or (bbox[:, 2] < 0).any() or (bbox[:, 3] < 0).any()):
        return None
    crowd = crowd_values.astype(bool)
    table = GroundTruthTable(
        images=image_index, categories=category_index, category_names=category_names, image=image,
        category=category, crowd=crowd, ignore=crowd.copy(), area=area, id_is_zero=ann_ids == 0, bbox=bbox,
    )
    if iou_type == "keypoints":
        flat, labelled = columns["keypoints"], columns["num_keypoints"]
        if not np.isfinite(flat).all() or not np.isfinite(labelled).all():
            return None
        table.keypoints = flat.reshape(n, num_keypoints, 3)
        table.ignore = crowd | (labelled == 0)
    if iou_type == "segm":
        try:
            sizes = _image_sizes(images, path)
        except DataError:  # the general path names it
            return None
        table.image_sizes = np.empty_like(sizes)
        table.image_sizes[image_index.lookup(image_ids)] = sizes
        masks = _parsed_masks(segm, image, table.image_sizes, path)
        if masks is None:
            return None
        table.masks = masks
    elif all(isinstance(im, dict) and "height" in im and "width" in im for im in images):
        sizes = _image_sizes(images, path)
        table.image_sizes = np.empty_like(sizes)
        table.image_sizes[image_index.lookup(image_ids)] = sizes
    return table


def _parsed_masks(segm: Any, image: np.ndarray, image_sizes: np.ndarray, path) -> Sequence[dict[str, Any]] | None:
    """The masks ``segmentations_to_rles(..., packed=True)`` makes of the parsed segmentations (polygons as
    columns, RLE objects as parsed), or None where it would raise or take a branch the columns do not cover."""
    from harness.io.validation.coco_geometry import check_image_sizes, rasterisable_polygons
    from harness.metrics.coco import kernels
    from harness.metrics.coco.masks import _combine

    _, coords, part_lengths, parts, objects = segm
    if not kernels.ENABLED or not rasterisable_polygons(coords, part_lengths):
        return None
    used = np.flatnonzero(np.bincount(image, minlength=len(image_sizes))) if len(image) else np.zeros(0, np.int64)
    try:
        check_image_sizes(image_sizes[used], str, DataError, path)
    except DataError:
        return None
    owners = np.flatnonzero(parts > 0)
    rles: list[Any] = [None] * len(image)
    if objects:
        rle_owners = np.flatnonzero(parts == 0)
        if len(rle_owners) != len(objects):
            return None
        try:  # item by item as in the general path, which reads these few objects the same way
            given = segmentations_to_rles(objects, image[rle_owners], image_sizes, str, DataError, path, packed=True)
        except DataError:
            return None
        if not len(owners):
            return given
        for i, rle in zip(rle_owners.tolist(), given):
            rles[i] = rle
    item_parts = np.zeros(len(owners) + 1, dtype=np.int64)
    np.cumsum(parts[owners], out=item_parts[1:])
    part_starts = np.zeros(len(part_lengths) + 1, dtype=np.int64)
    np.cumsum(part_lengths, out=part_starts[1:])
    sizes = np.asarray(image_sizes, dtype=np.int64)[image[owners]]
    column = kernels.polygons_to_rles(coords, part_starts, item_parts, sizes)
    if len(owners) == len(image):
        return column
    return _combine(rles, column, owners, image, image_sizes, True)


def _image_sizes(images: Sequence[Any], path) -> np.ndarray:
    def where(i: int) -> str:
        return f"image #{i} (id {images[i].get('id', '?')})"

    heights = v.numbers(v.column(images, "height", where, DataError, path), "height", where, DataError, path)
    widths = v.numbers(v.column(images, "width", where, DataError, path), "width", where, DataError, path)
    return np.stack([heights, widths], axis=1).reshape(-1, 2)


def _area_branch(first: Any) -> str:
    """Which branch of ``COCO.loadRes`` the results take (decided by the first result)."""
    if not isinstance(first, dict):
        raise PredictionError(f"result #0: expected an object, got {type(first).__name__}")
    if "bbox" in first and not first["bbox"] == []:
        return "bbox"
    if "segmentation" in first:
        return "segmentation"
    if "keypoints" in first:
        return "keypoints"
    raise PredictionError("result #0: has none of 'bbox', 'segmentation' or 'keypoints'")


def load_results(
    results: Any,
    gt: GroundTruthTable,
    iou_type: str,
    num_keypoints: int | None = None,
    path: str | Path | None = None,
) -> ResultTable:
    """Validate a COCO results list into columns; PredictionError naming the result on problems."""
    if not isinstance(results, (list, tuple)):
        raise PredictionError(f"results must be a list of objects, got {type(results).__name__}", path)
    return load_result_chunks([results], gt, iou_type, num_keypoints, path)


def load_result_chunks(
    chunks: Iterable[Any],
    gt: GroundTruthTable,
    iou_type: str,
    num_keypoints: int | None = None,
    path: str | Path | None = None,
) -> ResultTable:
    """``load_results`` on a results list that arrives in consecutive pieces (``jsonio.iter_json_array``).

    Each piece becomes columns while its objects are fresh in cache and is then dropped, so the per-result
    Python objects of the whole file never exist at once; errors name the result by its index in the file.
    """
    parts: list[ResultTable] = []
    offset = 0
    branch = None
    for chunk in chunks:
        if not isinstance(chunk, (list, tuple)):
            raise PredictionError(f"results must be a list of objects, got {type(chunk).__name__}", path)
        if not chunk:
            continue
        if branch is None:
            try:
                branch = _area_branch(chunk[0])
            except PredictionError as exc:
                raise PredictionError(str(exc), path) from None
        parts.append(_result_columns(chunk, offset, branch, gt, iou_type, num_keypoints, path))
        offset += len(chunk)
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return ResultTable(
            image=empty, category=empty, score=np.zeros(0), area=np.zeros(0), bbox=np.zeros((0, 4)),
            keypoints=np.zeros((0, num_keypoints or 0, 3)), masks=[],
        )
    if len(parts) == 1:
        return parts[0]
    table = ResultTable(
        image=np.concatenate([t.image for t in parts]),
        category=np.concatenate([t.category for t in parts]),
        score=np.concatenate([t.score for t in parts]),
        area=np.concatenate([t.area for t in parts]),
    )
    for name in ("bbox", "keypoints"):
        if getattr(parts[0], name) is not None:
            setattr(table, name, np.concatenate([getattr(t, name) for t in parts]))
    if parts[0].masks is not None:
        table.masks = [mask for t in parts for mask in cast("list[dict[str, Any]]", t.masks)]
    return table


def _result_columns(
    results: Sequence[Any],
    offset: int,
    branch: str,
    gt: GroundTruthTable,
    iou_type: str,
    num_keypoints: int | None,
    path: str | Path | None,
) -> ResultTable:
    def where(index: int) -> str:
        return f"result #{offset + index}"

    n = len(results)
    image_values = v.column(results, "image_id", where, PredictionError, path)
    image = gt.images.lookup(image_values)
    v.check_known(image, image_values, "image_id", where, PredictionError, path)
    category_values = v.column(results, "category_id", where, PredictionError, path)
    category = gt.categories.lookup(category_values)
    v.check_known(category, category_values, "category_id", where, PredictionError, path)
    score = v.numbers(v.column(results, "score", where, PredictionError, path), "score", where, PredictionError, path)

    table = ResultTable(image=image, category=category, score=score, area=np.zeros(n))
    if branch == "bbox":
        raw = v.column(results, "bbox", where, PredictionError, path)
        table.bbox = v.numbers(raw, "bbox", where, PredictionError, path, 4)
        v.check_nonnegative_size(table.bbox, where, PredictionError, path)
        table.area = table.bbox[:, 2] * table.bbox[:, 3]
    if iou_type == "segm" or branch == "segmentation":
        if gt.image_sizes is None:
            raise PredictionError("mask results need the image sizes ('height', 'width') in the ground truth", path)
        segmentations = v.column(results, "segmentation", where, PredictionError, path)
        table.masks = masks = segmentations_to_rles(segmentations, image, gt.image_sizes, where, PredictionError,
                                                    path)
    if branch == "segmentation":
        table.area = rle_areas(masks)  # the segmentation branch read them above
        if iou_type == "bbox":
            table.bbox = _boxes_or_mask_boxes(results, masks, path, offset)
    if iou_type == "keypoints" or branch == "keypoints":
        if num_keypoints is None:
            raise ValueError("num_keypoints is needed to read keypoint results")
        raw = v.column(results, "keypoints", where, PredictionError, path)
        flat = v.numbers(raw, "keypoints", where, PredictionError, path, 3 * num_keypoints)
        table.keypoints = flat.reshape(n, num_keypoints, 3)
    if branch == "keypoints":
        _keypoint_extent(table)
    return table


def _keypoint_extent(table: ResultTable) -> None:
    """``loadRes``' keypoints branch: area and box are the extent of the keypoints."""
    assert table.keypoints is not None  # the keypoints branch read them
    # (2, K, n): each reduction then runs down whole columns, not along 17-value rows one row at a time
    x, y = np.ascontiguousarray(table.keypoints[:, :, :2].transpose(2, 1, 0))
    _set_extent(table, x.min(axis=0), y.min(axis=0), x.max(axis=0), y.max(axis=0))


def _set_extent(table: ResultTable, x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray) -> None:
    table.area = (x1 - x0) * (y1 - y0)
    table.bbox = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)


def load_result_bytes(
    data: Any, gt: GroundTruthTable, iou_type: str, num_keypoints: int | None = None
) -> ResultTable | None:
    """The fast path of ``load_result_chunks``: a results file's bytes parsed straight into columns by the
    compiled parser (``kernels.parse_results``), validated a whole column at a time.

    Returns None for anything but the plain case -- box results scored as boxes, or keypoint results (no boxes)
    scored as keypoints, every result complete and valid -- and the caller then runs the general path, which
    gives the same table, or the error message naming the offending result.  So this path never decides what
    is an error; it only accepts what the general path accepts, and produces the same columns.  ``data`` may
    also be what ``kernels.parse_results`` returned for the bytes (parsed in a thread while the ground truth
    loads).
    """
    from harness.metrics.coco import kernels

    parsed = kernels.parse_results(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if parsed is None:
        return None
    n, columns, present, kp_len = parsed
    if any(present[key] != n for key in ("image_id", "category_id", "score")):
        return None
    if iou_type == "bbox":
        if present["bbox"] != n or present["keypoints"] != 0 or present["segmentation"] != 0:
            return None
    elif iou_type == "segm":  # compressed RLE results without boxes: areas are mask areas
        if present["segmentation"] != n or present["bbox"] != 0 or present["keypoints"] != 0:
            return None
    elif iou_type == "keypoints":
        if (num_keypoints is None or present["keypoints"] != n or present["bbox"] != 0
                or present["segmentation"] != 0 or kp_len != 3 * num_keypoints):
            return None
    else:
        return None
    image = gt.images.lookup(columns["image_id"])
    category = gt.categories.lookup(columns["category_id"])
    score = columns["score"]
    if (image < 0).any() or (category < 0).any() or not np.isfinite(score).all():
        return None
    table = ResultTable(image=image, category=category, score=score, area=np.zeros(n))
    if iou_type == "bbox":
        box = columns["bbox"]
        if not np.isfinite(box).all() or (box[:, 2] < 0).any() or (box[:, 3] < 0).any():
            return None
        table.bbox = box
        table.area = box[:, 2] * box[:, 3]
    elif iou_type == "segm":
        masks = columns["segmentation"]  # an RleColumn: packed strings, a dict only when one is asked for
        if gt.image_sizes is None or not np.array_equal(masks.sizes, gt.image_sizes[image]):
            return None
        # NaN: a string that is not a valid mask of its size (the packer checks format, run range and the sum
        # h*w); image sizes beyond the C counters' range: both are the general path's to name
        if masks.areas is None or np.isnan(masks.areas).any() or not _sizes_in_bounds(masks.sizes):
            return None
        table.masks, table.area = masks, masks.areas
    else:
        flat = columns["keypoints"]
        if num_keypoints is None or not np.isfinite(flat).all():
            return None
        table.keypoints = flat.reshape(n, num_keypoints, 3)
        extent = columns["keypoint_extent"]
        if len(extent) == n:  # min / max taken by the parser (on its thread), the values _keypoint_extent takes
            _set_extent(table, extent[:, 0], extent[:, 1], extent[:, 2], extent[:, 3])
        else:
            _keypoint_extent(table)
    return table


def _sizes_in_bounds(sizes: np.ndarray) -> bool:
    """Whether every (h, w) passes ``coco_geometry.check_image_sizes`` (without raising: the caller falls back)."""
    from harness.io.validation.coco_geometry import MAX_PIXELS, MAX_SIDE

    sizes = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
    return bool(((sizes >= 1) & (sizes <= MAX_SIDE)).all() and (sizes.prod(axis=1) <= MAX_PIXELS).all())


def _boxes_or_mask_boxes(results: Sequence[dict], masks: list[dict[str, Any]], path, offset: int = 0) -> np.ndarray:
    boxes = rle_boxes(masks)
    given = [i for i, r in enumerate(results) if "bbox" in r and r["bbox"] != []]
    if given:
        values = [results[i]["bbox"] for i in given]
        own = v.numbers(values, "bbox", lambda j: f"result #{offset + given[j]}", PredictionError, path, 4)
        v.check_nonnegative_size(own, lambda j: f"result #{offset + given[j]}", PredictionError, path)
        boxes[np.asarray(given)] = own
    return boxes
