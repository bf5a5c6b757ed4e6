"""Pairwise overlaps are bit-identical to the reference: box IoU and crowd IoU vs cocoapi's C code (through
pycocotools.mask.iou), OKS vs pycocotools' computeOks."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from harness.metrics.coco import COCO17_SIGMAS, make_params
from harness.metrics.coco.ious import box_iou_pairs, oks


@pytest.mark.parametrize("seed", range(5))
def test_box_iou_bits_match_cocoapi(seed: int) -> None:
    rng = np.random.default_rng(seed)
    dt = np.round(rng.uniform(0, 50, (40, 4)), int(rng.integers(0, 3)))
    gt = np.round(rng.uniform(0, 50, (30, 4)), int(rng.integers(0, 3)))
    gt[:5] = dt[:5]  # identical boxes
    gt[5:8, 2] = 0  # zero width
    crowd = rng.random(30) < 0.3
    reference = np.asarray(mask_utils.iou(dt.tolist(), gt.tolist(), crowd.astype(np.uint8).tolist()))
    d_index, g_index = np.meshgrid(np.arange(40), np.arange(30), indexing="ij")
    ours = box_iou_pairs(dt[d_index.ravel()], gt[g_index.ravel()], crowd[g_index.ravel()]).reshape(40, 30)
    np.testing.assert_array_equal(ours, reference)
    assert np.any(ours[:5, :5].diagonal() == 1.0) and np.any(ours == 0)


def _pycocotools_oks(gt_anns: list, dt_anns: list, sigmas: np.ndarray) -> np.ndarray:
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(iouType="keypoints")
    evaluator.params.kpt_oks_sigmas = sigmas
    evaluator._gts = {(1, 1): gt_anns}
    evaluator._dts = {(1, 1): dt_anns}
    return np.asarray(evaluator.computeOks(1, 1))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("sigmas", [None, [0.05, 0.07, 0.1, 0.03, 0.2]])
def test_oks_bits_match_pycocotools(seed: int, sigmas: list | None) -> None:
    rng = np.random.default_rng(seed)
    params = make_params("keypoints", sigmas=sigmas)
    k = len(params.sigmas)
    gts, dts = [], []
    for j in range(12):
        box = [*rng.uniform(0, 100, 2).round(1), *rng.uniform(1, 80, 2).round(1)]
        v = rng.choice([0, 1, 2], k)
        if j % 4 == 0:
            v[:] = 0  # no labelled keypoint: the doubled-box fallback
        pts = np.stack([rng.uniform(0, 200, k), rng.uniform(0, 200, k), v], 1).round(1)
        gts.append({"keypoints": pts.reshape(-1).tolist(), "bbox": box, "area": float(rng.uniform(0, 5000))})
    for i in range(15):
        pts = np.stack([rng.uniform(-50, 250, k), rng.uniform(-50, 250, k), rng.random(k)], 1).round(2)
        dts.append({"keypoints": pts.reshape(-1).tolist(), "score": float(15 - i)})
    reference = _pycocotools_oks(gts, dts, params.sigmas)
    gt_kp = np.array([g["keypoints"] for g in gts]).reshape(len(gts), k, 3)
    dt_kp = np.array([d["keypoints"] for d in dts]).reshape(len(dts), k, 3)
    d_index, g_index = (a.ravel() for a in np.meshgrid(np.arange(len(dts)), np.arange(len(gts)), indexing="ij"))
    ours = oks(dt_kp[d_index][:, :, :2], gt_kp[g_index], np.array([g["bbox"] for g in gts])[g_index],
               np.array([g["area"] for g in gts])[g_index], params.sigmas)
    np.testing.assert_array_equal(ours.reshape(len(dts), len(gts)), reference)


def test_coco17_sigmas_are_pycocotools_bits() -> None:
    from pycocotools.cocoeval import Params

    np.testing.assert_array_equal(COCO17_SIGMAS, Params(iouType="keypoints").kpt_oks_sigmas)
    written = [0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107,
               0.087, 0.087, 0.089, 0.089]
    assert make_params("keypoints", sigmas=written).sigmas is COCO17_SIGMAS


def test_thresholds_are_pycocotools_bits() -> None:
    from pycocotools.cocoeval import Params

    for iou_type in ("bbox", "keypoints"):
        ours, theirs = make_params(iou_type), Params(iouType=iou_type)
        np.testing.assert_array_equal(ours.iou_thresholds, theirs.iouThrs)
        np.testing.assert_array_equal(ours.recall_thresholds, theirs.recThrs)
        assert [list(r) for r in ours.area_ranges] == theirs.areaRng
        assert list(ours.area_labels) == theirs.areaRngLbl
        assert list(ours.max_dets) == theirs.maxDets
