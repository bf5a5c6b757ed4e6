"""COCO OKS AP of a keypoint adapter on a COCO-layout dataset, scored by pycocotools itself.

Training reports use the official evaluator directly (not the harness's own engine), so the numbers a model
ships with are the reference numbers.
"""
from __future__ import annotations

import contextlib
import io
import time
from typing import Any

from harness.core.adapter import Adapter
from harness.datasets.coco_keypoints import CocoKeypoints
from harness.core.structures import KeypointsPrediction

SUMMARY_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def coco_results(dataset: CocoKeypoints, predictions: dict[int, KeypointsPrediction]) -> list[dict[str, Any]]:
    """Predictions as COCO keypoint results entries (one per person)."""
    category_id = dataset.info.category_ids[0]
    return [
        {
            "image_id": int(image_id),
            "category_id": category_id,
            "keypoints": [float(v) for v in keypoints.reshape(-1)],
            "score": float(score),
        }
        for image_id, prediction in predictions.items()
        for keypoints, score in zip(prediction.keypoints, prediction.scores)
    ]


def coco_oks_summary(dataset: CocoKeypoints, results: list[dict[str, Any]]) -> dict[str, float]:
    """pycocotools' ten keypoint summary numbers (COCOeval iouType='keypoints')."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = COCO()
        ground_truth.dataset = dataset.coco_ground_truth()
        ground_truth.createIndex()
        if not results:
            return {name: 0.0 for name in SUMMARY_NAMES}
        detections = ground_truth.loadRes(results)
        evaluator = COCOeval(ground_truth, detections, iouType="keypoints")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: float(value) for name, value in zip(SUMMARY_NAMES, evaluator.stats)}


def evaluate_adapter(adapter: Adapter, dataset: CocoKeypoints, batch_size: int = 16) -> dict[str, float]:
    """AP numbers plus inference images/s (decoding excluded, as the runner does)."""
    predictions: dict[int, KeypointsPrediction] = {}
    seconds = 0.0
    for start in range(0, len(dataset), batch_size):
        samples = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        for sample in samples:
            sample.preload()
        began = time.perf_counter()
        outputs = adapter.predict(samples)
        seconds += time.perf_counter() - began
        for sample, prediction in zip(samples, outputs):
            predictions[int(sample.sample_id)] = prediction
    summary = coco_oks_summary(dataset, coco_results(dataset, predictions))
    summary["images_per_s"] = len(dataset) / seconds if seconds > 0 else float("inf")
    return summary
