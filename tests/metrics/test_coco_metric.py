"""The registered COCO metrics (coco_bbox, coco_segm, coco_keypoints) on real files, fed sample by sample."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from coco_oracles import pycocotools_eval
from pycocotools import mask as mask_utils

from harness.core.errors import DataError, PredictionError
from harness.metrics import METRICS
from harness.core.metric import MetricResult
from harness.core.structures import DetectionPrediction, DetectionTarget, KeypointsPrediction, KeypointsTarget, Sample

DATA = Path(__file__).resolve().parents[1] / "data"
EXPECTED_BBOX_AP = 0.5045806987249628
EXPECTED_SEGM_AP = 0.3195452758576433


def _instances() -> dict:
    return json.loads((DATA / "coco" / "instances_val2014_100.json").read_text())


def _detection_samples(gt: dict) -> list[Sample]:
    by_image: dict = {image["id"]: [] for image in gt["images"]}
    for ann in gt["annotations"]:
        by_image[ann["image_id"]].append(ann)
    samples = []
    for image in gt["images"]:
        anns = by_image[image["id"]]
        target = DetectionTarget(
            image_id=image["id"], width=image["width"], height=image["height"],
            boxes=np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4),
            labels=np.array([a["category_id"] for a in anns], dtype=np.int64),
            areas=np.array([a["area"] for a in anns], dtype=np.float64),
            iscrowd=np.array([bool(a["iscrowd"]) for a in anns], dtype=bool),
            masks=[a["segmentation"] for a in anns],
            ann_ids=np.array([a["id"] for a in anns], dtype=np.int64),
        )
        samples.append(Sample(sample_id=image["id"], image_path=None, target=target))
    return samples


def _detection_predictions(samples: list[Sample], results: list[dict], masks: bool) -> list[DetectionPrediction]:
    by_image: dict = {s.sample_id: [] for s in samples}
    for record in results:
        by_image[record["image_id"]].append(record)
    out = []
    for sample in samples:
        records = by_image[sample.sample_id]
        rles = [r["segmentation"] for r in records] if masks else None
        boxes = (np.array([mask_utils.toBbox(m) for m in rles]).reshape(-1, 4) if masks
                 else np.array([r["bbox"] for r in records], dtype=np.float64).reshape(-1, 4))
        out.append(DetectionPrediction(boxes=boxes, scores=np.array([r["score"] for r in records]),
                                       labels=np.array([r["category_id"] for r in records]), masks=rles))
    return out


def _run(metric, samples, predictions, batch: int = 7) -> MetricResult:
    for start in range(0, len(samples), batch):
        metric.update(samples[start:start + batch], predictions[start:start + batch])
    return metric.compute()


@pytest.mark.parametrize("name, results_file, expected_ap", [
    ("coco_bbox", "instances_val2014_fakebbox100_results.json", EXPECTED_BBOX_AP),
    ("coco_segm", "instances_val2014_fakesegm100_results.json", EXPECTED_SEGM_AP),
])
def test_detection_metrics_reproduce_the_published_numbers(name: str, results_file: str, expected_ap: float) -> None:
    gt = _instances()
    samples = _detection_samples(gt)
    results = json.loads((DATA / "coco" / results_file).read_text())
    predictions = _detection_predictions(samples, results, masks=name == "coco_segm")
    metric = METRICS.get(name)(categories=gt["categories"])
    result = _run(metric, samples, predictions)
    assert abs(result.metrics["AP"] - expected_ap) < 1e-12
    reference = pycocotools_eval(gt, results, "bbox" if name == "coco_bbox" else "segm")
    np.testing.assert_allclose(list(result.metrics.values()), reference.stats, atol=1e-12, rtol=0)
    assert set(result.per_class["AP"]) == {c["name"] for c in gt["categories"]}
    assert result.curves["pr"]["iou=0.50"]["iou"] == 0.5 and len(result.curves["pr"]["iou=0.75"]["precision"]) == 101
    assert result.settings["dialect"] == "pycocotools" and result.settings["max_dets"] == [1, 10, 100]
    assert all(result.higher_is_better.values())


def test_merged_states_equal_one_pass() -> None:
    gt = _instances()
    samples = _detection_samples(gt)
    results = json.loads((DATA / "coco" / "instances_val2014_fakebbox100_results.json").read_text())
    predictions = _detection_predictions(samples, results, masks=False)
    whole = _run(METRICS.get("coco_bbox")(categories=gt["categories"]), samples, predictions)
    first, second = (METRICS.get("coco_bbox")(categories=gt["categories"]) for _ in range(2))
    first.update(samples[:40], predictions[:40])
    second.update(samples[40:], predictions[40:])
    first.merge_state(second.state_dict())
    assert first.compute().metrics == whole.metrics


def test_mmdet_dialect_through_the_metric() -> None:
    gt = _instances()
    samples = _detection_samples(gt)
    results = json.loads((DATA / "coco" / "instances_val2014_fakebbox100_results.json").read_text())
    metric = METRICS.get("coco_bbox")(categories=gt["categories"], max_dets=(100, 300, 1000))
    result = _run(metric, samples, _detection_predictions(samples, results, masks=False))
    assert result.settings["dialect"] == "mmdet" and "AR1000" in result.metrics


def _keypoint_samples_and_predictions(seed: int) -> tuple[dict, list[Sample], list[KeypointsPrediction]]:
    gt = json.loads((DATA / "coco-keypoints" / "test_coco.json").read_text())
    rng = np.random.default_rng(seed)
    samples, predictions = [], []
    for image in gt["images"]:
        anns = [a for a in gt["annotations"] if a["image_id"] == image["id"]]
        keypoints = np.array([a["keypoints"] for a in anns], dtype=np.float64).reshape(-1, 17, 3)
        target = KeypointsTarget(
            image_id=image["id"], width=image["width"], height=image["height"],
            boxes=np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4), keypoints=keypoints,
            areas=np.array([a["area"] for a in anns]), iscrowd=np.array([bool(a["iscrowd"]) for a in anns]),
            num_keypoints=np.array([a["num_keypoints"] for a in anns]), ann_ids=np.array([a["id"] for a in anns]),
        )
        samples.append(Sample(sample_id=image["id"], image_path=None, target=target))
        centre = target.boxes[:, None, :2] + target.boxes[:, None, 2:] / 2
        xy = np.where(keypoints[:, :, 2:] > 0, keypoints[:, :, :2], centre)
        xy = xy + rng.normal(0, 4, xy.shape)
        pose = np.concatenate([xy, rng.uniform(0.1, 1, xy.shape[:2] + (1,))], axis=2).round(2)
        predictions.append(KeypointsPrediction(keypoints=pose, scores=rng.choice([0.5, 0.8], len(anns)),
                                               boxes=target.boxes + 1.0))
    return gt, samples, predictions


@pytest.mark.parametrize("result_area", ["keypoints", "bbox"])
def test_keypoint_metric_matches_pycocotools(result_area: str) -> None:
    gt, samples, predictions = _keypoint_samples_and_predictions(0)
    metric = METRICS.get("coco_keypoints")(categories=[{"id": 1, "name": "person"}],
                                           sigmas=[0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
                                                   0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089],
                                           result_area=result_area)
    result = _run(metric, samples, predictions, batch=3)
    coco_gt, results = metric.coco_dicts()
    assert ("bbox" in results[0]) == (result_area == "bbox")
    reference = pycocotools_eval(gt, results, "keypoints")
    np.testing.assert_allclose(list(result.metrics.values()), reference.stats, atol=1e-12, rtol=0)
    assert list(result.metrics) == ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]
    assert 0.3 < result.metrics["AP"] < 1.0
    assert list(result.per_class["AP"]) == ["person"]


def test_update_rejects_bad_items() -> None:
    gt, samples, predictions = _keypoint_samples_and_predictions(1)
    metric = METRICS.get("coco_keypoints")(categories=[{"id": 1, "name": "person"}])
    bad = KeypointsPrediction(keypoints=predictions[0].keypoints, scores=np.full(len(predictions[0].scores), np.nan),
                              boxes=predictions[0].boxes)
    with pytest.raises(PredictionError, match=r"image 785: a score is NaN or infinite"):
        metric.update(samples[:1], [bad])
    short = KeypointsPrediction(keypoints=predictions[0].keypoints[:, :5], scores=predictions[0].scores,
                                boxes=predictions[0].boxes)
    with pytest.raises(PredictionError, match=r"image 785: keypoints have shape \(\d+, 5, 3\), expected"):
        metric.update(samples[:1], [short])
    with pytest.raises(PredictionError, match="2 predictions for 1 samples"):
        metric.update(samples[:1], predictions[:2])
    with pytest.raises(DataError, match="needs a KeypointsTarget"):
        metric.update([Sample(sample_id=5, image_path=None, target=None)], predictions[:1])
    boxes = METRICS.get("coco_bbox")(categories=[{"id": 1, "name": "person"}])
    with pytest.raises(PredictionError, match="needs a DetectionPrediction"):
        boxes.update([Sample(sample_id=5, image_path=None, target=_detection_samples(_instances())[0].target)],
                     predictions[:1])
    assert metric.items == []


@pytest.mark.parametrize("boxes, labels, message", [
    ([[0, 0, np.inf, 5]], [1], "image 1: a box is NaN or infinite"),
    ([[0, 0, -2, 5]], [1], "image 1: a box has a negative width or height"),
    ([[0, 0, 2, 5, 1]], [1], r"image 1: boxes have shape \(1, 5\), expected \(1, 4\)"),
    ([[0, 0, 2, 5]], [1, 2], "image 1: 2 labels for 1 scores"),
])
def test_box_metric_rejects_bad_boxes(boxes: list, labels: list, message: str) -> None:
    target = DetectionTarget(image_id=1, width=10, height=10, boxes=np.zeros((0, 4)), labels=np.zeros(0, int),
                             areas=np.zeros(0), iscrowd=np.zeros(0, bool))
    prediction = DetectionPrediction(boxes=np.array(boxes, dtype=float), scores=np.array([0.5]),
                                     labels=np.array(labels))
    metric = METRICS.get("coco_bbox")(categories=[{"id": 1, "name": "thing"}])
    with pytest.raises(PredictionError, match=message):
        metric.update([Sample(sample_id=1, image_path=None, target=target)], [prediction])


def test_keypoints_task_metric_on_the_dataset_reader() -> None:
    """End to end with the harness's own reader and the metric list the keypoints task builds."""
    from harness.datasets.coco_keypoints import CocoKeypoints
    from harness.tasks import TASKS

    folder = DATA / "coco-keypoints"
    dataset = CocoKeypoints(folder / "test_coco.json", folder)
    metric = TASKS.get("keypoints")().metrics(dataset.info)[0]
    assert metric.name == "coco_keypoints"
    samples = list(dataset)
    predictions = []
    for sample in samples:
        keep = ~sample.target.iscrowd & (sample.target.num_keypoints > 0)
        predictions.append(KeypointsPrediction(keypoints=sample.target.keypoints[keep],
                                               scores=np.linspace(1, 0.5, int(keep.sum())),
                                               boxes=sample.target.boxes[keep]))
    metric.update(samples, predictions)
    result = metric.compute()
    assert abs(result.metrics["AP"] - 1) < 1e-12 and result.metrics["AR"] == 1.0
    gt, results = metric.coco_dicts()
    np.testing.assert_allclose(list(result.metrics.values()), pycocotools_eval(gt, results, "keypoints").stats,
                               atol=1e-12, rtol=0)


def test_bootstrap_resamples_with_repeated_images() -> None:
    """Resampling repeats images; the COCO metric must renumber them rather than reject duplicate ids."""
    gt = _instances()
    samples = _detection_samples(gt)
    results = json.loads((DATA / "coco" / "instances_val2014_fakebbox100_results.json").read_text())
    metric = METRICS.get("coco_bbox")(categories=gt["categories"])
    metric.update(samples, _detection_predictions(samples, results, masks=False))
    positions = np.array([0, 0, 1, 1, 2])
    resampled = metric.subset(positions, len(samples)).compute().metrics
    assert -1 <= resampled["AP"] <= 1
    point = metric.compute().metrics
    intervals = metric.bootstrap(len(samples), n_resamples=20, seed=0)
    lo, hi = intervals["AP"]
    assert lo <= hi and lo < point["AP"] < hi
    assert metric.compute().metrics == point  # resampling left the metric's own state alone
