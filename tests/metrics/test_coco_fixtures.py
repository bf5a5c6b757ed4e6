"""Our COCO evaluator on real COCO files, against the published numbers and the reference implementations."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from coco_oracles import faster_coco_eval, pycocotools_eval, xtcocotools_available, xtcocotools_eval

from harness.metrics.coco import MMDET_MAX_DETS, evaluate_coco

DATA = Path(__file__).resolve().parents[1] / "data"
COCO = DATA / "coco"

# tests/data/coco/README (from the fixtures' README): COCOeval on instances_val2014_100.json + the fake results
EXPECTED = {
    "bbox": [0.5045806987249628, 0.6969727247299577, 0.5729816669904824, 0.5856257209410443, 0.5193996948036719,
             0.5013978986347466, 0.38681277964578054, 0.5936795762842003, 0.595352982877607, 0.6398109626113442,
             0.5664205978994309, 0.5642905982905982],
    "segm": [0.3195452758576433, 0.5622883972521636, 0.29892653412086784, 0.3873740315997838, 0.31018272403369485,
             0.3269339071005138, 0.2682297225711534, 0.41544868114906375, 0.4168394992198818, 0.4694498622754236,
             0.37675922666197265, 0.3814715099715099],
}
RESULTS = {"bbox": "instances_val2014_fakebbox100_results.json", "segm": "instances_val2014_fakesegm100_results.json"}


@pytest.fixture(scope="module")
def instances() -> dict:
    return json.loads((COCO / "instances_val2014_100.json").read_text())


def _results(iou_type: str) -> list[dict]:
    return json.loads((COCO / RESULTS[iou_type]).read_text())


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_published_stats(instances: dict, iou_type: str) -> None:
    result = evaluate_coco(instances, _results(iou_type), iou_type)
    np.testing.assert_allclose(result.stats, EXPECTED[iou_type], atol=1e-12, rtol=0)
    assert list(result.metrics) == ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm",
                                    "ARl"]


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_official_printout(instances: dict, iou_type: str) -> None:
    """``val2014_fake_eval_res.txt`` is cocoapi's own printed output (3 decimals) for these files."""
    text = (COCO / "val2014_fake_eval_res.txt").read_text()
    section = text.split(f"type={iou_type}")[1].split("-----")[0]
    printed = [float(v) for v in re.findall(r"\] = ([0-9.]+)", section)]
    result = evaluate_coco(instances, _results(iou_type), iou_type)
    assert len(printed) == 12
    assert [f"{v:0.3f}" for v in result.stats] == [f"{v:0.3f}" for v in printed]


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
@pytest.mark.parametrize("options", [{}, {"max_dets": MMDET_MAX_DETS}, {"use_cats": False}, {"max_dets": (1, 3, 5)}])
def test_fixture_matches_references(instances: dict, iou_type: str, options: dict) -> None:
    results = _results(iou_type)
    ours = evaluate_coco(instances, results, iou_type, **options)
    reference = pycocotools_eval(instances, results, iou_type, **options)
    np.testing.assert_allclose(ours.stats, reference.stats, atol=1e-12, rtol=0)
    np.testing.assert_array_equal(ours.precision, reference.precision)
    np.testing.assert_array_equal(ours.recall, reference.recall)
    faster = faster_coco_eval(instances, results, iou_type, **options)
    # faster-coco-eval reads stats[0] at the largest maxDets instead of pycocotools' hard-coded 100
    first = 1 if options.get("max_dets") == (1, 3, 5) else 0
    np.testing.assert_allclose(ours.stats[first:], faster.stats[first:], atol=1e-12, rtol=0)


def test_mmdet_dialect_names_and_values(instances: dict) -> None:
    results = _results("bbox")
    default = evaluate_coco(instances, results, "bbox")
    mmdet = evaluate_coco(instances, results, "bbox", max_dets=MMDET_MAX_DETS)
    assert list(mmdet.metrics)[6:9] == ["AR100", "AR300", "AR1000"]
    assert mmdet.params.dialect == "mmdet" and default.params.dialect == "pycocotools"
    assert mmdet.metrics["AP"] == default.metrics["AP"]  # stats[0] is read at maxDets=100 in both
    assert mmdet.metrics["AR100"] == default.metrics["AR100"]


def test_per_category_ap_follows_detectron2(instances: dict) -> None:
    result = evaluate_coco(instances, _results("bbox"), "bbox")
    names = {c["id"]: c["name"] for c in instances["categories"]}
    for k, cat_id in enumerate(result.category_ids):
        column = result.precision[:, :, k, 0, -1]
        valid = column[column > -1]
        expected = float(np.mean(valid)) if valid.size else float("nan")
        np.testing.assert_equal(result.per_category["AP"][names[cat_id]], expected)
    assert sum(not np.isnan(v) for v in result.per_category["AP"].values()) > 40


def test_pr_curve_is_the_category_mean(instances: dict) -> None:
    result = evaluate_coco(instances, _results("bbox"), "bbox")
    curve = result.pr_curve(iou=0.5)
    assert curve["iou"] == 0.5 and curve["max_dets"] == 100 and len(curve["recall"]) == 101
    column = result.precision[0, :, :, 0, 2]
    expected = [np.mean(row[row > -1]) for row in column]
    np.testing.assert_allclose(curve["precision"], expected, atol=1e-12, rtol=0)
    # AP50 is the mean of this curve over recall points (same categories)
    assert abs(np.mean(curve["precision"]) - result.metrics["AP50"]) < 0.02
    assert all(a >= b - 1e-12 for a, b in zip(curve["precision"], curve["precision"][1:]))  # monotone envelope


# --------------------------------------------------------------------------------------------- keypoints
@pytest.fixture(scope="module")
def person_keypoints() -> dict:
    return json.loads((DATA / "coco-keypoints" / "test_coco.json").read_text())


def _keypoint_results(gt: dict, seed: int, with_bbox: bool) -> list[dict]:
    """Jittered copies of the real people (noise scaled by their size), duplicates, and false positives."""
    rng = np.random.default_rng(seed)
    results = []
    for ann in gt["annotations"]:
        points = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        x, y, w, h = ann["bbox"]
        for _ in range(int(rng.integers(0, 3))):
            noise = rng.choice([0.01, 0.03, 0.08]) * np.sqrt(max(ann["area"], 1.0))
            xy = np.where(points[:, 2:] > 0, points[:, :2], [x + w / 2, y + h / 2]) + rng.normal(0, noise, (17, 2))
            flat = np.concatenate([xy, rng.uniform(0.05, 1, (17, 1))], axis=1).round(2).reshape(-1)
            record = {"image_id": ann["image_id"], "category_id": 1, "keypoints": flat.tolist(),
                      "score": float(rng.choice([0.3, 0.6, 0.9]))}
            if with_bbox:
                record["bbox"] = [float(v) for v in ann["bbox"]]
            results.append(record)
    for image in gt["images"]:
        for _ in range(2):
            xy = rng.uniform([0, 0], [image["width"], image["height"]], (17, 2))
            flat = np.concatenate([xy, rng.uniform(0.05, 1, (17, 1))], axis=1).round(2).reshape(-1)
            record = {"image_id": image["id"], "category_id": 1, "keypoints": flat.tolist(),
                      "score": float(rng.choice([0.3, 0.6]))}
            if with_bbox:
                record["bbox"] = [0.0, 0.0, float(image["width"]), float(image["height"])]
            results.append(record)
    return results


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("with_bbox", [False, True])
def test_keypoints_fixture_matches_references(person_keypoints: dict, seed: int, with_bbox: bool) -> None:
    results = _keypoint_results(person_keypoints, seed, with_bbox)
    ours = evaluate_coco(person_keypoints, results, "keypoints")
    assert list(ours.metrics) == ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]
    reference = pycocotools_eval(person_keypoints, results, "keypoints")
    np.testing.assert_allclose(ours.stats, reference.stats, atol=1e-12, rtol=0)
    np.testing.assert_array_equal(ours.precision, reference.precision)
    np.testing.assert_array_equal(ours.recall, reference.recall)
    np.testing.assert_allclose(ours.stats, faster_coco_eval(person_keypoints, results, "keypoints").stats,
                               atol=1e-12, rtol=0)
    if xtcocotools_available():  # the file's num_keypoints agree with its v flags, so xtcocotools agrees too
        np.testing.assert_allclose(ours.stats, xtcocotools_eval(person_keypoints, results, "keypoints").stats,
                                   atol=1e-12, rtol=0)


def test_keypoints_fixture_has_unlabelled_people(person_keypoints: dict) -> None:
    """The fixture exercises the num_keypoints == 0 rule (those people are ignored)."""
    assert sum(a["num_keypoints"] == 0 for a in person_keypoints["annotations"]) == 2


def test_inputs_are_not_modified(instances: dict) -> None:
    """pycocotools writes into the dicts it is given (ids, areas, RLEs); ours only reads them."""
    results = _results("segm")
    before = json.dumps([instances, results], sort_keys=True)
    evaluate_coco(instances, results, "segm")
    evaluate_coco(instances, _results("bbox"), "bbox")
    assert json.dumps([instances, results], sort_keys=True) == before
