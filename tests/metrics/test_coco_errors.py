"""Bad input gives a one-line DataError/PredictionError naming the file and the item, never a numpy traceback."""
from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np
import pytest

from harness.core.errors import DataError, PredictionError
from harness.metrics.coco import evaluate_coco

GT_PATH, RESULTS_PATH = "annotations/instances_val.json", "results/bbox.json"


def _gt() -> dict[str, Any]:
    person = [10.0, 20.0, 2, 30.0, 40.0, 1] + [0.0, 0.0, 0] * 15
    return {
        "images": [{"id": 1, "width": 64, "height": 48}, {"id": 2, "width": 64, "height": 48}],
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 30, 40], "area": 900.0, "iscrowd": 0,
             "segmentation": [[1, 2, 31, 2, 31, 42, 1, 42]], "keypoints": person, "num_keypoints": 2},
            {"id": 2, "image_id": 2, "category_id": 3, "bbox": [5, 5, 10, 10], "area": 100.0, "iscrowd": 0,
             "segmentation": [[5, 5, 15, 5, 15, 15, 5, 15]], "keypoints": person, "num_keypoints": 2},
        ],
    }


def _results() -> list[dict[str, Any]]:
    return [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 30, 40], "score": 0.9},
            {"image_id": 2, "category_id": 3, "bbox": [5, 5, 10, 10], "score": 0.8},
            {"image_id": 2, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.1}]


def _keypoint_results() -> list[dict[str, Any]]:
    return [{"image_id": 1, "category_id": 1, "keypoints": [10.0, 20.0, 1.0] * 17, "score": 0.9}]


def _evaluate(gt: dict, results: list, iou_type: str = "bbox") -> None:
    evaluate_coco(gt, results, iou_type, gt_path=GT_PATH, results_path=RESULTS_PATH)


def test_valid_inputs_evaluate() -> None:
    for iou_type in ("bbox", "segm"):
        results = _results() if iou_type == "bbox" else _mask_results()
        evaluate_coco(_gt(), results, iou_type)
    evaluate_coco(_gt(), _keypoint_results(), "keypoints")


def _mask_results() -> list[dict[str, Any]]:
    from pycocotools import mask as mask_utils

    rle = mask_utils.frPyObjects([[1, 2, 31, 2, 31, 42, 1, 42]], 48, 64)[0]
    return [{"image_id": 1, "category_id": 1, "segmentation": rle, "score": 0.9}]


def _set(index: int, key: str, value: Any) -> Callable[[list], None]:
    def edit(results: list) -> None:
        results[index][key] = value

    return edit


RESULT_CASES = [
    (_set(2, "image_id", 999), "result #2: image_id 999 is not in the ground truth"),
    (_set(1, "category_id", 2), "result #1: category_id 2 is not in the ground truth"),
    (_set(0, "score", float("nan")), "result #0: score must be finite"),
    (_set(1, "score", float("inf")), "result #1: score must be finite"),
    (_set(1, "score", "high"), "result #1: score must be a number, got 'high'"),
    (_set(2, "bbox", [0, 0, float("nan"), 5]), "result #2: bbox must be finite"),
    (_set(1, "bbox", [0, 0, -3, 5]), "result #1: bbox has a negative width or height"),
    (_set(1, "bbox", [0, 0, 5]), "result #1: bbox must hold 4 numbers, got 3"),
    (lambda r: r[2].pop("score"), "result #2: missing key 'score'"),
    (lambda r: r.__setitem__(1, "oops"), "result #1: expected an object, got str"),
]


@pytest.mark.parametrize("edit, message", RESULT_CASES, ids=[m.split(": ", 1)[1][:30] for _, m in RESULT_CASES])
def test_bad_results(edit: Callable, message: str) -> None:
    results = _results()
    edit(results)
    with pytest.raises(PredictionError) as caught:
        _evaluate(_gt(), results)
    text = str(caught.value)
    assert text.startswith(f"{RESULTS_PATH}: {message}"), text
    assert "\n" not in text


def test_results_must_be_a_list() -> None:
    with pytest.raises(PredictionError, match="results must be a list"):
        _evaluate(_gt(), {"image_id": 1})


@pytest.mark.parametrize(
    "keypoints, message",
    [([1.0] * 50, "result #0: keypoints must hold 51 numbers, got 50"),
     ([float("nan")] * 51, "result #0: keypoints must be finite")],
)
def test_bad_keypoint_results(keypoints: list, message: str) -> None:
    results = _keypoint_results()
    results[0]["keypoints"] = keypoints
    with pytest.raises(PredictionError, match=message):
        _evaluate(_gt(), results, "keypoints")


def test_keypoint_length_follows_the_sigmas() -> None:
    results = _keypoint_results()
    with pytest.raises(DataError, match=r"annotation #0 \(id 1\): keypoints must hold 12 numbers, got 51"):
        evaluate_coco(_gt(), results, "keypoints", sigmas=[0.1] * 4)


def test_mask_of_the_wrong_size() -> None:
    results = _mask_results()
    results[0]["segmentation"] = dict(results[0]["segmentation"], size=[10, 10])
    with pytest.raises(PredictionError, match=r"result #0: mask size \[10, 10\] differs from the image size"):
        _evaluate(_gt(), results, "segm")


def _drop(where: str, index: int, key: str) -> Callable[[dict], None]:
    def edit(gt: dict) -> None:
        del gt[where][index][key]

    return edit


def _put(where: str, index: int, key: str, value: Any) -> Callable[[dict], None]:
    def edit(gt: dict) -> None:
        gt[where][index][key] = value

    return edit


GT_CASES = [
    (lambda gt: gt.pop("annotations"), "ground truth has no 'annotations' list"),
    (lambda gt: gt.__setitem__("images", {}), "ground truth: 'images' must be a list, got dict"),
    (_drop("images", 1, "id"), "image #1: missing key 'id'"),
    (_put("images", 1, "id", 1), "image #1: duplicate id 1 (also image #0)"),
    (_drop("categories", 0, "id"), "category #0: missing key 'id'"),
    (_drop("annotations", 1, "area"), "annotation #1 (id 2): missing key 'area'"),
    (_drop("annotations", 0, "bbox"), "annotation #0 (id 1): missing key 'bbox'"),
    (_put("annotations", 1, "id", 1), "annotation #1: duplicate id 1 (also annotation #0)"),
    (_put("annotations", 1, "image_id", 7), "annotation #1 (id 2): image_id 7 is not in 'images'"),
    (_put("annotations", 0, "category_id", 9), "annotation #0 (id 1): category_id 9 is not in 'categories'"),
    (_put("annotations", 0, "area", float("nan")), "annotation #0 (id 1): area must be finite"),
    (_put("annotations", 1, "bbox", [1, 2, -1, 3]), "annotation #1 (id 2): bbox has a negative width or height"),
    (_put("annotations", 1, "iscrowd", 2), "annotation #1 (id 2): iscrowd must be 0 or 1, got 2"),
]


@pytest.mark.parametrize("edit, message", GT_CASES, ids=[m[:35] for _, m in GT_CASES])
def test_bad_ground_truth(edit: Callable, message: str) -> None:
    gt = _gt()
    edit(gt)
    with pytest.raises(DataError) as caught:
        _evaluate(gt, _results())
    assert str(caught.value).startswith(f"{GT_PATH}: {message}"), str(caught.value)


@pytest.mark.parametrize(
    "iou_type, edit, message",
    [
        ("keypoints", _drop("annotations", 0, "num_keypoints"), "annotation #0 (id 1): missing key 'num_keypoints'"),
        ("segm", _drop("annotations", 1, "segmentation"), "annotation #1 (id 2): missing key 'segmentation'"),
        ("segm", _drop("images", 0, "height"), "image #0 (id 1): missing key 'height'"),
        ("segm", _put("annotations", 0, "segmentation", []), "annotation #0 (id 1): a polygon segmentation must"),
        ("segm", _put("annotations", 0, "segmentation", {"counts": "x"}), "annotation #0 (id 1): an RLE"),
    ],
)
def test_bad_ground_truth_per_task(iou_type: str, edit: Callable, message: str) -> None:
    gt = _gt()
    edit(gt)
    results = {"keypoints": _keypoint_results, "segm": _mask_results}[iou_type]()
    with pytest.raises(DataError) as caught:
        _evaluate(gt, results, iou_type)
    assert str(caught.value).startswith(f"{GT_PATH}: {message}"), str(caught.value)


def test_missing_iscrowd_means_not_crowd() -> None:
    gt = _gt()
    plain = evaluate_coco(copy.deepcopy(gt), _results(), "bbox")
    for ann in gt["annotations"]:
        del ann["iscrowd"]
    assert evaluate_coco(gt, _results(), "bbox").metrics == plain.metrics


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="iou_type"):
        evaluate_coco(_gt(), _results(), "boxes")
    with pytest.raises(ValueError, match="three values"):
        evaluate_coco(_gt(), _results(), "bbox", max_dets=(10, 100))
    with pytest.raises(ValueError, match="sigmas"):
        evaluate_coco(_gt(), _keypoint_results(), "keypoints", sigmas=[0.1, -1])
    with pytest.raises(ValueError, match="use_cats=False"):
        evaluate_coco(_gt(), _keypoint_results(), "keypoints", use_cats=False)


def test_boolean_iscrowd_reads_as_integer() -> None:
    gt = _gt()
    gt["annotations"][1]["iscrowd"] = 1
    as_int = evaluate_coco(copy.deepcopy(gt), _results(), "bbox")
    for ann in gt["annotations"]:
        ann["iscrowd"] = bool(ann["iscrowd"])
    as_bool = evaluate_coco(gt, _results(), "bbox")
    assert as_bool.metrics == as_int.metrics
    assert np.isnan(as_bool.per_category["AP"]["car"])  # the crowd flag counted: no scoreable car is left
    assert evaluate_coco(_gt(), _results(), "bbox").per_category["AP"]["car"] > 0.99
