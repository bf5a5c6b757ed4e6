"""Reference COCO evaluators (test oracles): pycocotools, faster-coco-eval and, when installed, xtcocotools.

Each takes the same (gt dict, results list) our evaluator takes, deep-copies them (the references write into
the dicts), runs evaluate/accumulate/summarize quietly and returns stats, precision and recall.
"""
from __future__ import annotations

import contextlib
import copy
import io
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


@dataclass
class Reference:
    stats: np.ndarray
    precision: np.ndarray
    recall: np.ndarray


def _configure(params: Any, sigmas, max_dets, use_cats: bool) -> None:
    if sigmas is not None:
        params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
    if max_dets is not None:
        params.maxDets = list(max_dets)
    params.useCats = int(use_cats)


def _run(coco_cls, eval_cls, gt, results, iou_type, sigmas, max_dets, use_cats, **eval_kwargs) -> Reference:
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # faster-coco-eval warns about GT id 0, which we test on purpose
        coco_gt = coco_cls()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(list(results)))
        evaluator = eval_cls(coco_gt, coco_dt, iou_type, **eval_kwargs)
        _configure(evaluator.params, sigmas, max_dets, use_cats)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return Reference(np.asarray(evaluator.stats, dtype=np.float64), evaluator.eval["precision"], evaluator.eval["recall"])


def pycocotools_eval(
    gt: dict, results: Sequence[dict], iou_type: str, sigmas=None, max_dets=None, use_cats: bool = True
) -> Reference:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    return _run(COCO, COCOeval, gt, results, iou_type, sigmas, max_dets, use_cats)


def faster_coco_eval(
    gt: dict, results: Sequence[dict], iou_type: str, sigmas=None, max_dets=None, use_cats: bool = True
) -> Reference:
    from faster_coco_eval import COCO, COCOeval_faster

    return _run(
        COCO, COCOeval_faster, gt, results, iou_type, sigmas, max_dets, use_cats, print_function=lambda *a, **k: None
    )


def xtcocotools_available() -> bool:
    try:
        import xtcocotools.cocoeval  # noqa: F401
    except Exception:  # not installed, or a binary wheel built against another numpy
        return False
    return True


def xtcocotools_eval(gt: dict, results: Sequence[dict], iou_type: str, sigmas=None, max_dets=None) -> Reference:
    from xtcocotools.coco import COCO
    from xtcocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(list(results)))
        kwargs = {"sigmas": np.asarray(sigmas, dtype=np.float64)} if sigmas is not None else {}
        evaluator = COCOeval(coco_gt, coco_dt, iou_type, use_area=True, **kwargs)
        if max_dets is not None:
            evaluator.params.maxDets = list(max_dets)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return Reference(np.asarray(evaluator.stats, dtype=np.float64), evaluator.eval["precision"], evaluator.eval["recall"])
