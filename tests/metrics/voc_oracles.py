"""mmdetection's ``eval_map`` as an oracle for VOC AP, fed the way mmdet's ``VOCMetric`` feeds it."""
from __future__ import annotations

from itertools import starmap
from types import ModuleType

import numpy as np
import pytest


def mean_ap_module() -> ModuleType:
    """``mmdet.evaluation.functional.mean_ap`` (needs our mmcv._ext stand-in to import); skips without mmdet."""
    pytest.importorskip("mmcv")
    from adapters.openmmlab._ext_shim import install_ext_shim

    install_ext_shim()
    return pytest.importorskip("mmdet.evaluation.functional.mean_ap")


class SerialPool:
    """eval_map starts a multiprocessing Pool per call; the same per-image calls run in this process instead."""

    def __init__(self, processes: int | None = None) -> None:
        pass

    def starmap(self, function, arguments):
        return list(starmap(function, arguments))

    def close(self) -> None:
        pass


def legacy(xywh: np.ndarray) -> np.ndarray:
    """Harness xywh -> mmdet's VOC corners (0-based inclusive: the devkit's 1-based corners minus 1)."""
    xywh = np.asarray(xywh, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:] - 1], axis=1)


def eval_map(det_results: list[list[np.ndarray]], annotations: list[dict], mode: str) -> tuple[float, list[dict]]:
    """``eval_map(..., iou_thr=0.5, use_legacy_coordinate=True)`` as VOCMetric calls it; ``mode`` is bench's
    ``area`` / ``11point``."""
    module = mean_ap_module()
    pool, module.Pool = module.Pool, SerialPool
    try:
        return module.eval_map(det_results, annotations, iou_thr=0.5, use_legacy_coordinate=True,
                               eval_mode={"area": "area", "11point": "11points"}[mode], logger="silent")
    finally:
        module.Pool = pool
