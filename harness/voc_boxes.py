"""PASCAL VOC's box convention, in one place: the reader, the metric and the devkit result files use these.

VOC (XML annotations, the devkit's result files) stores 1-based inclusive pixel indices ``[x1, y1, x2, y2]``:
pixel i covers the continuous interval [i - 1, i), so the box covers [x1 - 1, x2) and is ``x2 - x1 + 1`` wide.
Harness boxes are continuous COCO ``[x, y, w, h]`` (``harness.structures``).  Hence

    xywh = [x1 - 1, y1 - 1, x2 - x1 + 1, y2 - y1 + 1]        devkit = [x + 1, y + 1, x + w, y + h]

and the devkit's "+1" widths on ``devkit`` corners give back exactly ``w`` and ``h``: the +1 is applied once, by
the devkit formula, and never again.  mmdetection's VOC pipeline (``minus_one=True``, ``use_legacy_coordinate``)
stores 0-based inclusive corners, ``[x1 - 1, y1 - 1, x2 - 1, y2 - 1] = [x, y, x + w - 1, y + h - 1]``, with the
same +1 widths; the three forms differ by translations only, so every IoU is the same number in exact arithmetic.

Floating point: ``devkit_to_xywh`` is an exact inverse of ``xywh_to_devkit`` on the devkit side, i.e. converting
devkit corners to xywh and back gives the same corners bit for bit (``x1 - 1`` is exact for every ``x1`` that
``x + 1`` can produce, and ``w`` is nudged by an ulp where ``x + (x2 - x)`` would not round back to ``x2``).  So
result files read back score exactly as the predictions they were written from.
"""
from __future__ import annotations

import numpy as np


def xywh_to_devkit(boxes: np.ndarray) -> np.ndarray:
    """Continuous ``[x, y, w, h]`` -> the devkit's 1-based inclusive ``[x + 1, y + 1, x + w, y + h]`` (float64)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2] + 1.0, boxes[:, :2] + boxes[:, 2:]], axis=1)


def devkit_to_xywh(corners: np.ndarray) -> np.ndarray:
    """The devkit's 1-based inclusive ``[x1, y1, x2, y2]`` -> continuous ``[x1 - 1, y1 - 1, x2 - x1 + 1, ...]``,
    chosen so that ``xywh_to_devkit`` gives back ``corners`` exactly."""
    corners = np.asarray(corners, dtype=np.float64).reshape(-1, 4)
    start = corners[:, :2] - 1.0
    end = corners[:, 2:]
    size = end - start
    for _ in range(8):  # almost always 0 rounds; one ulp at a time toward the end it must reproduce
        off = (start + size) != end
        if not off.any():
            break
        size = np.where(off, np.nextafter(size, np.where(start + size < end, np.inf, -np.inf)), size)
    return np.concatenate([start, size], axis=1)


def xywh_to_mmdet(boxes: np.ndarray) -> np.ndarray:
    """Continuous ``[x, y, w, h]`` -> mmdetection's VOC corners ``[x, y, x + w - 1, y + h - 1]`` (float64; mmdet's
    ``bbox_overlaps`` casts them to float32 itself)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:] - 1.0], axis=1)
