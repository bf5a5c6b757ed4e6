"""The compiled streaming kernels (``_streamkernels.c``, built at install by setup.py) behind numpy-shaped functions.

Each function returns exactly what the numpy path it stands in for computes, or None when it does not apply
(the extension is not built, ``BENCH_NO_CKERNELS=1`` is set, or the inputs are of a kind it does not read); the
callers in semantic.py and flow.py then take their numpy path.  Tests run both paths and compare every bit.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

import numpy as np


def _compiled() -> ModuleType | None:
    """The extension module, or None when it is not built or ``BENCH_NO_CKERNELS`` switches it off."""
    if os.environ.get("BENCH_NO_CKERNELS", "") not in ("", "0"):
        return None
    try:
        return importlib.import_module("harness.metrics._streamkernels")
    except ImportError:  # pragma: no cover - the install builds it; the numpy path is the fallback
        return None


#: the compiled kernels (a C module has no annotations: typed by the wrappers below), or None
_C: Any = _compiled()

#: whether the compiled kernels are used (tests switch it off to run the numpy path)
ENABLED: bool = _C is not None

#: label dtypes the confusion kernel reads: (item size, signed); uint64 is left to numpy (values above int64)
_LABEL_KINDS = {(1, False), (2, False), (4, False), (1, True), (2, True), (4, True), (8, True)}


def _label_kind(array: np.ndarray) -> tuple[int, bool] | None:
    if array.dtype == np.bool_:
        return 1, False
    if array.dtype.kind not in "iu" or not array.dtype.isnative:  # the kernel reads machine byte order
        return None
    kind = (array.dtype.itemsize, array.dtype.kind == "i")
    return kind if kind in _LABEL_KINDS else None


def confusion_counts(
    target: np.ndarray, prediction: np.ndarray, num_classes: int, ignore_index: int | None
) -> np.ndarray | None:
    """``semantic.confusion_matrix`` of two same-shaped integer label maps in one pass: (C, C+1) int64 with the
    'no class' column for predictions equal to ``ignore_index`` (None: no ignore label, the column stays 0).

    None when the kernel does not apply or a map holds a value that is neither a class nor the ignore label;
    the caller's numpy path then validates (and names the values)."""
    if not ENABLED or target.shape != prediction.shape:
        return None
    target_kind, prediction_kind = _label_kind(target), _label_kind(prediction)
    if target_kind is None or prediction_kind is None:
        return None
    has_ignore = ignore_index is not None and -(2 ** 63) <= ignore_index < 2 ** 63
    if ignore_index is not None and not has_ignore:
        return None  # an ignore label no int64 holds: numpy's comparison rules, not the kernel's
    matrix = np.zeros((num_classes, num_classes + 1), dtype=np.int64)
    bad = _C.confusion(
        np.ascontiguousarray(target).view(np.uint8) if target.dtype == np.bool_ else np.ascontiguousarray(target),
        *target_kind,
        np.ascontiguousarray(prediction).view(np.uint8) if prediction.dtype == np.bool_
        else np.ascontiguousarray(prediction),
        *prediction_kind, num_classes, has_ignore, ignore_index if has_ignore else 0, matrix,
    )
    return None if bad else matrix


#: flow dtypes the flow kernel reads (anything else is scored by numpy)
_FLOW_DTYPES = {np.dtype(np.float32): False, np.dtype(np.float64): True}


def flow_image_sums(
    pred: np.ndarray,
    gt: np.ndarray,
    valid: np.ndarray | None,
    occluded: np.ndarray | None,
    out_of_frame: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, bool, bool] | None:
    """(sums (Q,) float64, counts (Q,) int64, pred non-finite, gt non-finite) in ``flow.QUANTITIES`` order, the
    numbers ``flow.flow_sums`` computes, from one pass over (H, W, 2) float32/float64 flows and (H, W) masks;
    the flags say whether a scored pixel (valid, or every pixel without a mask) holds NaN or inf.  None when
    the kernel does not apply (then numpy scores the image)."""
    if not ENABLED or pred.shape != gt.shape or pred.ndim != 3 or pred.shape[2] != 2:
        return None
    if pred.dtype not in _FLOW_DTYPES or gt.dtype not in _FLOW_DTYPES:
        return None
    masks = []
    for mask in (valid, occluded, out_of_frame):
        if mask is not None:
            mask = np.ascontiguousarray(mask, dtype=bool)
            if mask.shape != pred.shape[:2]:
                return None
            mask = mask.view(np.uint8)
        masks.append(mask)
    sums = np.zeros(13, dtype=np.float64)
    counts = np.zeros(13, dtype=np.int64)
    pred_bad, gt_bad = _C.flow_sums(
        np.ascontiguousarray(pred), _FLOW_DTYPES[pred.dtype], np.ascontiguousarray(gt), _FLOW_DTYPES[gt.dtype],
        *masks, sums, counts,
    )
    return sums, counts, bool(pred_bad), bool(gt_bad)
