"""COCO segmentations to compressed RLE, through pycocotools.mask (the format's reference codec).

Mirrors ``COCO.annToRLE``: polygons are rasterised at the image size and their parts merged, uncompressed RLE
is compressed, compressed RLE is used as given.  Polygons are rasterised in one ``frPyObjects`` call per image,
which gives the same masks as one call per annotation.
"""
from __future__ import annotations

from operator import itemgetter
from typing import Any, Callable, Sequence

import numpy as np

from harness.core.errors import BenchError


def segmentations_to_rles(
    segmentations: Sequence[Any],
    image_index: np.ndarray,
    image_sizes: np.ndarray,
    where: Callable[[int], str],
    error: type[BenchError],
    path,
) -> list[dict[str, Any]]:
    """One compressed RLE per segmentation; ``image_sizes[image_index[i]]`` is (height, width)."""
    from pycocotools import mask as mask_utils

    from harness.io.validation.coco_geometry import check_compressed_rles, check_segmentations

    if _all_compressed(segmentations, image_index, image_sizes):  # results as detectron2/mmdet write them
        pixels = np.asarray(image_sizes, dtype=np.float64)[np.asarray(image_index, dtype=np.int64)].prod(axis=1)
        check_compressed_rles(list(map(itemgetter("counts"), segmentations)), pixels, where, error, path)
        return list(segmentations)  # used as given, once their counts are known to add up
    check_segmentations(segmentations, image_index, image_sizes, where, error, path)  # bounds before C code
    rles: list[Any] = [None] * len(segmentations)
    polygon_batches: dict[int, list[int]] = {}
    size_of = [(int(h), int(w)) for h, w in image_sizes.tolist()]  # Python ints once, not numpy scalars per item
    images = image_index.tolist()
    for i, segm in enumerate(segmentations):
        height, width = size_of[images[i]]
        if isinstance(segm, dict):
            if "counts" not in segm or "size" not in segm:
                raise error(f"{where(i)}: an RLE segmentation needs 'counts' and 'size'", path)
            size = segm["size"]
            if not (isinstance(size, (list, tuple)) and len(size) == 2) or [int(size[0]), int(size[1])] != [height, width]:
                raise error(f"{where(i)}: mask size {size!r} differs from the image size [{height}, {width}]", path)
            if isinstance(segm["counts"], list):
                rles[i] = _convert(mask_utils.frPyObjects, (segm, height, width), where(i), error, path)
            elif isinstance(segm["counts"], (str, bytes)):
                rles[i] = segm
            else:
                raise error(f"{where(i)}: RLE 'counts' must be a string or a list", path)
        elif isinstance(segm, list):
            if not segm or not all(isinstance(part, list) for part in segm):
                raise error(f"{where(i)}: a polygon segmentation must be a non-empty list of coordinate lists", path)
            if len(segm[0]) > 4:
                polygon_batches.setdefault(int(image_index[i]), []).append(i)
            else:  # pycocotools reads [[x, y, w, h]] (4 numbers) as a box; fewer is an error there too
                rles[i] = _merge(_convert(mask_utils.frPyObjects, (segm, height, width), where(i), error, path))
        else:
            raise error(f"{where(i)}: segmentation must be polygons or an RLE object, got {type(segm).__name__}", path)
    for image, members in polygon_batches.items():
        height, width = (int(v) for v in image_sizes[image])
        parts = [part for i in members for part in segmentations[i]]
        try:
            part_rles = mask_utils.frPyObjects(parts, height, width)
        except Exception:  # find the culprit one annotation at a time
            for i in members:
                _convert(mask_utils.frPyObjects, (segmentations[i], height, width), where(i), error, path)
            raise
        offset = 0
        for i in members:
            count = len(segmentations[i])
            own = part_rles[offset : offset + count]
            offset += count
            rles[i] = own[0] if count == 1 else mask_utils.merge(own)
    return rles


def _all_compressed(segmentations: Sequence[Any], image_index: np.ndarray, image_sizes: np.ndarray) -> bool:
    """Whether every segmentation is a compressed RLE of its image's size, checked a column at a time; anything
    else goes through the per-item path, which names the first offending item."""
    try:  # map/set run these loops in C
        if set(map(type, segmentations)) != {dict}:
            return False
        if not set(map(type, map(itemgetter("counts"), segmentations))) <= {str, bytes}:
            return False
        sizes = np.array(list(map(itemgetter("size"), segmentations)), dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        return False
    return sizes.shape == (len(segmentations), 2) and bool(np.array_equal(sizes, image_sizes[image_index]))


def _merge(rles: Any) -> dict[str, Any]:
    from pycocotools import mask as mask_utils

    return rles if isinstance(rles, dict) else mask_utils.merge(rles)


def _convert(function: Callable, args: tuple, where: str, error: type[BenchError], path) -> Any:
    try:
        return function(*args)
    except Exception as exc:  # pycocotools raises bare Exception/TypeError/ValueError for malformed input
        raise error(f"{where}: segmentation cannot be read ({exc})", path) from None


def rle_areas(rles: Sequence[dict[str, Any]]) -> np.ndarray:
    """``pycocotools.mask.area`` of compressed RLEs (a list, or an ``RleColumn``), by the compiled kernel when it
    reads them all."""
    from harness.metrics.coco import kernels

    areas = kernels.mask_areas(rles)
    if areas is not None:
        return areas
    from pycocotools import mask as mask_utils

    # pycocotools 2.0.11's area() overflows a uint8 counter on lists longer than 255: read in chunks
    chunks = [mask_utils.area(list(rles[i : i + 255])) for i in range(0, len(rles), 255)]
    return np.concatenate([np.asarray(c, dtype=np.float64).reshape(-1) for c in chunks]) if chunks else np.zeros(0)


def rle_boxes(rles: list[dict[str, Any]]) -> np.ndarray:
    from pycocotools import mask as mask_utils

    if not rles:
        return np.zeros((0, 4))
    return np.asarray(mask_utils.toBbox(rles), dtype=np.float64).reshape(-1, 4)
