"""MATLAB's ``a:d:b`` as the official MATLAB evaluators see it.

The PASCAL VOC and MPII toolkits loop over ``0:0.1:1`` and ``0:0.01:0.5``.  MATLAB builds such a range
symmetrically: the first half as ``a + k*d`` and the second half as ``b - k*d`` (and the midpoint as
``(a+b)/2`` when the count is even), so ``0:0.1:1`` holds the doubles nearest to 0.6 and 0.7, while
``np.arange(0, 1.1, 0.1)`` holds 0.6000000000000001 and 0.7000000000000001.  A recall of exactly 3/5 passes
the MATLAB threshold and fails the numpy one, which changes VOC2007 11-point AP.  The Python ports use
``np.arange``; their dialects keep doing so.
"""
from __future__ import annotations

import math

import numpy as np


def colon(start: float, step: float, stop: float) -> np.ndarray:
    """The values of MATLAB's ``start:step:stop`` (``step > 0``), bit for bit for ranges that end on ``stop``."""
    if step <= 0:
        raise ValueError("colon: step must be positive")
    if stop < start:
        return np.empty(0)
    tolerance = 2.0 * np.spacing(1.0) * max(abs(start), abs(stop))
    ratio = (stop - start) / step
    intervals = math.floor(ratio + 0.5) if abs(ratio - round(ratio)) * step <= tolerance else math.floor(ratio)
    end = stop if abs(start + intervals * step - stop) <= tolerance else start + intervals * step
    values = np.empty(intervals + 1)
    for k in range(intervals // 2 + 1):
        values[k] = start + k * step
        values[intervals - k] = end - k * step
    if intervals % 2 == 0:
        values[intervals // 2] = (start + end) / 2
    return values
