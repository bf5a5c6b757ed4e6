"""Checks of pose ground truth that the official formulas would turn into silent zeros or NaNs."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.core.errors import DataError


def check_head_boxes(boxes: np.ndarray | None, present: np.ndarray, path: str | Path, what: str = "head box") -> None:
    """PCKh normalises by 0.6 x the head box diagonal: a zero-size box makes every joint of that person wrong
    (distance / 0), so a labelled person must have a box with a positive diagonal.  ``boxes`` (N, 2, 2)."""
    if boxes is None or not len(boxes):
        return
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 2, 2)
    diagonal = np.linalg.norm(boxes[:, 1] - boxes[:, 0], axis=1)
    labelled = np.asarray(present, dtype=bool).reshape(len(boxes), -1).any(axis=1)
    bad = labelled & ~(diagonal > 0)
    if bad.any():
        person = int(np.flatnonzero(bad)[0])
        raise DataError(f"{what} of person #{person} has zero size {boxes[person].ravel().tolist()} "
                        "(PCKh would divide by 0)", path)
