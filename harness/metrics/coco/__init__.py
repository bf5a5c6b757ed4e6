"""Our COCO evaluator (boxes, masks, keypoints): pycocotools COCOeval semantics, vectorised over the dataset.

``evaluate_coco(gt, results, "bbox" | "segm" | "keypoints")`` returns the summary ``stats`` in COCOeval order
(12 for boxes/masks, 10 for keypoints), named ``metrics``, per-category AP, the ``precision`` [T, R, K, A, M]
and ``recall`` [T, K, A, M] arrays and a PR-curve accessor.  The default reproduces pycocotools exactly (the
differential tests compare the arrays bit for bit), quirks included:

- stats[0] is read at maxDets=100 (keypoints: 20) whatever ``max_dets`` says, -1 when that value is absent;
- a ground truth with id 0 counts its match as a false positive (pycocotools stores matches by id, 0 = none);
- GT ``ignore`` fields have no effect (overwritten by ``iscrowd``); keypoint GTs with num_keypoints == 0 are
  ignored; crowd IoU is intersection over the detection's area; GT ``area`` is used as-is;
- result areas follow ``loadRes``, decided by the first result: w*h of ``bbox`` if it has one, else the mask
  area, else the keypoints' extent (so drop ``bbox`` from mask results to size them by their masks).

Named dialects: ``max_dets=MMDET_MAX_DETS`` (100, 300, 1000) is mmdet's ``CocoMetric`` setting (its AP50/75
and APs/m/l then use up to 1000 detections, and AR keys become AR100/AR300/AR1000); other skeletons pass their
own ``sigmas``.  pycocotools, faster-coco-eval and xtcocotools are test oracles only; ``pycocotools.mask`` is
used as the RLE codec.
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
