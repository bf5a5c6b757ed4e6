"""COCO segmentations to compressed RLE, the masks of pycocotools.mask (the format's reference codec).

Mirrors ``COCO.annToRLE``: polygons are rasterised at the image size and their parts merged, uncompressed RLE
is compressed, compressed RLE is used as given.  Polygons go to the compiled rasteriser
(``kernels.polygons_to_rles``, pycocotools' arithmetic to the bit) in one call for the whole column, reading
the numbers the bounds check has already converted; without the kernels, one ``frPyObjects`` call per image,
which gives the same masks as one call per annotation.
"""
from __future__ import annotations

from operator import itemgetter
from typing import Any, Callable, Literal, Sequence, overload

import numpy as np

from harness.core.errors import BenchError


@overload
def segmentations_to_rles(segmentations: Sequence[Any], image_index: np.ndarray, image_sizes: np.ndarray,
                          where: Callable[[int], str], error: type[BenchError], path,
                          packed: Literal[False] = False) -> list[dict[str, Any]]: ...


@overload
def segmentations_to_rles(segmentations: Sequence[Any], image_index: np.ndarray, image_sizes: np.ndarray,
                          where: Callable[[int], str], error: type[BenchError], path,
                          packed: bool) -> Sequence[dict[str, Any]]: ...


def segmentations_to_rles(
    segmentations: Sequence[Any],
    image_index: np.ndarray,
    image_sizes: np.ndarray,
    where: Callable[[int], str],
    error: type[BenchError],
    path,
    packed: bool = False,
) -> Sequence[dict[str, Any]] | list[dict[str, Any]]:
    """One compressed RLE per segmentation; ``image_sizes[image_index[i]]`` is (height, width).

    A list of dicts, or with ``packed`` an ``RleColumn`` (one bytes blob, no dict per mask) when the compiled
    kernels are there: what the evaluator's tables keep."""
    from pycocotools import mask as mask_utils

    from harness.io.validation.coco_geometry import check_compressed_rles, check_segmentations

    if _all_compressed(segmentations, image_index, image_sizes):  # results as detectron2/mmdet write them
        pixels = np.asarray(image_sizes, dtype=np.float64)[np.asarray(image_index, dtype=np.int64)].prod(axis=1)
        check_compressed_rles(list(map(itemgetter("counts"), segmentations)), pixels, where, error, path)
        return list(segmentations)  # used as given, once their counts are known to add up
    polygons = check_segmentations(segmentations, image_index, image_sizes, where, error, path)  # before C code
    rles: list[Any] = [None] * len(segmentations)
    rasterised = np.zeros(len(segmentations), dtype=bool)  # polygons of more than 4 numbers: frPoly's branch
    if polygons is not None:  # checked polygon lists: rasterised below unless pycocotools reads them as boxes
        assert polygons.boxes is not None  # check_segmentations marks them
        rasterised[polygons.owners[(polygons.first_part_lengths() > 4) & ~polygons.boxes]] = True
    size_of = [(int(h), int(w)) for h, w in image_sizes.tolist()]  # Python ints once, not numpy scalars per item
    images = image_index.tolist()
    for i in np.flatnonzero(~rasterised).tolist():
        segm = segmentations[i]
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
            # [[x, y, w, h]] (4 numbers first) is a box to pycocotools; fewer is an error there too
            rles[i] = _merge(_convert(mask_utils.frPyObjects, (segm, height, width), where(i), error, path))
        else:
            raise error(f"{where(i)}: segmentation must be polygons or an RLE object, got {type(segm).__name__}", path)
    if not rasterised.any():
        return rles
    assert polygons is not None  # every rasterised item passed check_segmentations as a polygon
    from harness.metrics.coco import kernels

    if not kernels.ENABLED:
        _rasterise_per_image(segmentations, np.flatnonzero(rasterised), image_index, image_sizes, rles, where,
                             error, path)
        return rles
    polygons = polygons.select(rasterised[polygons.owners])
    sizes = np.asarray(image_sizes, dtype=np.int64)[np.asarray(image_index, dtype=np.int64)[polygons.owners]]
    column = kernels.polygons_to_rles(polygons.coords, polygons.part_starts, polygons.item_parts, sizes)
    if packed and len(polygons.owners) == len(segmentations):  # polygons only: the column as it is
        return column
    return _combine(rles, column, polygons.owners, image_index, image_sizes, packed)


def _combine(rles: list[Any], column: Any, owners: np.ndarray, image_index: np.ndarray, image_sizes: np.ndarray,
             packed: bool) -> Sequence[dict[str, Any]]:
    """The rasterised masks (``column``, item j belonging to ``owners[j]``) put in their places among ``rles``:
    a list of dicts, or one ``RleColumn`` of every mask."""
    from harness.metrics.coco.rle_column import RleColumn

    blob, cuts = column.blob, column.offsets.tolist()
    if not packed:
        for j, i in enumerate(owners.tolist()):
            rles[i] = {"size": [int(v) for v in column.sizes[j]], "counts": blob[cuts[j]:cuts[j + 1]]}
        return rles
    owners = np.asarray(owners, dtype=np.int64)
    sizes = np.asarray(image_sizes, dtype=np.int64)[np.asarray(image_index, dtype=np.int64)].reshape(-1, 2)
    if len(owners) > 1 and not (np.diff(owners) > 0).all():  # not in item order: mask by mask
        counts: list[bytes] = [b""] * len(rles)
        for j, i in enumerate(owners.tolist()):
            counts[i] = blob[cuts[j]:cuts[j + 1]]
        for i, rle in enumerate(rles):
            if rle is not None:
                counts[i] = _ascii(rle["counts"])
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, counts), np.int64, len(counts)), out=offsets[1:])
        return RleColumn(b"".join(counts), offsets, sizes)
    # the rasterised masks are in item order: splice the (few) others into their blob, not one slice per mask
    others = np.ones(len(rles), dtype=bool)
    others[owners] = False
    other_items = np.flatnonzero(others).tolist()
    other_counts = [_ascii(rles[i]["counts"]) for i in other_items]
    lengths = np.zeros(len(rles), dtype=np.int64)
    lengths[owners] = np.diff(column.offsets)
    lengths[other_items] = np.fromiter(map(len, other_counts), np.int64, len(other_counts))
    pieces: list[bytes] = []
    start = cuts[0]
    for at, text in zip(np.searchsorted(owners, other_items).tolist(), other_counts):
        stop = cuts[at]
        pieces += [blob[start:stop], text]
        start = stop
    pieces.append(blob[start:cuts[-1]])
    offsets = np.zeros(len(rles) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return RleColumn(b"".join(pieces), offsets, sizes)


def _ascii(text: Any) -> bytes:
    return text.encode("ascii") if isinstance(text, str) else bytes(text)


def _rasterise_per_image(segmentations: Sequence[Any], members_all: np.ndarray, image_index: np.ndarray,
                         image_sizes: np.ndarray, rles: list[Any], where: Callable[[int], str],
                         error: type[BenchError], path) -> None:
    """pycocotools' rasteriser, one ``frPyObjects`` call per image (no compiled kernels)."""
    from pycocotools import mask as mask_utils

    polygon_batches: dict[int, list[int]] = {}
    for i in members_all.tolist():
        polygon_batches.setdefault(int(image_index[i]), []).append(i)
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
