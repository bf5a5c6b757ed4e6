"""Our COCO evaluator (boxes, masks, keypoints): pycocotools COCOeval semantics, vectorised over the dataset.

pycocotools, faster-coco-eval and xtcocotools are test oracles only; ``pycocotools.mask`` is used as the RLE
codec.  Entry point: :func:`evaluate_coco`.
"""
from harness.metrics.coco.evaluator import CocoEvalResult, evaluate_coco, evaluate_tables
from harness.metrics.coco.params import (
    COCO17_SIGMAS,
    COCO_MAX_DETS,
    KEYPOINT_MAX_DETS,
    MMDET_MAX_DETS,
    CocoParams,
    make_params,
)

__all__ = [
    "COCO17_SIGMAS",
    "COCO_MAX_DETS",
    "KEYPOINT_MAX_DETS",
    "MMDET_MAX_DETS",
    "CocoEvalResult",
    "CocoParams",
    "evaluate_coco",
    "evaluate_tables",
    "make_params",
]
