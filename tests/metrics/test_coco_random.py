"""Differential tests on seeded random cases (300 in all) and hypothesis property tests.

Every case is compared with pycocotools (stats to 1e-12, and the precision/recall arrays exactly) and with
faster-coco-eval; keypoint cases also with xtcocotools when it is installed.  faster-coco-eval departs from
pycocotools in one place our cases reach: with non-default maxDets its summary reads stats[0] at the largest
maxDets (pycocotools: always 100 for boxes, 20 for keypoints), so those stats are skipped for it.
"""
from __future__ import annotations

import numpy as np
import pytest
from coco_cases import case_features, random_box_case, random_keypoint_case, random_mask_case
from coco_oracles import faster_coco_eval, pycocotools_eval, xtcocotools_available, xtcocotools_eval
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.metrics.coco import evaluate_coco

BOX_SEEDS, MASK_SEEDS, KEYPOINT_SEEDS, XTC_SEEDS = 160, 40, 70, 30
CHUNK = 10


def _check_against_references(gt: dict, results: list, iou_type: str, options: dict, label: str) -> None:
    ours = evaluate_coco(gt, results, iou_type, **options)
    reference = pycocotools_eval(gt, results, iou_type, **options)
    np.testing.assert_allclose(ours.stats, reference.stats, atol=1e-12, rtol=0, err_msg=label)
    np.testing.assert_array_equal(ours.precision, reference.precision, err_msg=label)
    np.testing.assert_array_equal(ours.recall, reference.recall, err_msg=label)
    features = case_features(gt, options)
    if features["custom_max_dets"] and iou_type == "keypoints":
        return  # faster-coco-eval's keypoint summary reads its own maxDets, pycocotools' reads 20
    faster = faster_coco_eval(gt, results, iou_type, **options)
    first = 1 if features["custom_max_dets"] else 0
    np.testing.assert_allclose(ours.stats[first:], faster.stats[first:], atol=1e-12, rtol=0, err_msg=label)


def _chunks(total: int) -> list[range]:
    return [range(start, min(start + CHUNK, total)) for start in range(0, total, CHUNK)]


@pytest.mark.parametrize("seeds", _chunks(BOX_SEEDS), ids=lambda r: f"{r.start}-{r.stop - 1}")
def test_random_boxes(seeds: range) -> None:
    for seed in seeds:
        gt, results, options = random_box_case(seed)
        _check_against_references(gt, results, "bbox", options, f"box seed {seed} {options}")


@pytest.mark.parametrize("seeds", _chunks(MASK_SEEDS), ids=lambda r: f"{r.start}-{r.stop - 1}")
def test_random_masks(seeds: range) -> None:
    for seed in seeds:
        gt, results, options = random_mask_case(seed)
        _check_against_references(gt, results, "segm", options, f"mask seed {seed} {options}")


@pytest.mark.parametrize("seeds", _chunks(KEYPOINT_SEEDS), ids=lambda r: f"{r.start}-{r.stop - 1}")
def test_random_keypoints(seeds: range) -> None:
    for seed in seeds:
        gt, results, options = random_keypoint_case(seed)
        _check_against_references(gt, results, "keypoints", options, f"keypoint seed {seed} {options}")


@pytest.mark.skipif(not xtcocotools_available(), reason="xtcocotools is not installed")
@pytest.mark.parametrize("seeds", _chunks(XTC_SEEDS), ids=lambda r: f"{r.start}-{r.stop - 1}")
def test_random_keypoints_against_xtcocotools(seeds: range) -> None:
    for seed in seeds:
        gt, results, options = random_keypoint_case(1000 + seed, xtcocotools_compatible=True)
        ours = evaluate_coco(gt, results, "keypoints", **options)
        theirs = xtcocotools_eval(gt, results, "keypoints", sigmas=options.get("sigmas"),
                                  max_dets=options.get("max_dets"))
        np.testing.assert_allclose(ours.stats, theirs.stats, atol=1e-12, rtol=0, err_msg=f"seed {seed} {options}")
        np.testing.assert_array_equal(ours.precision, theirs.precision)


def test_random_cases_cover_the_corner_cases() -> None:
    """The generators really produce what the differential tests claim to cover."""
    seen = {"crowd": 0, "ignore": 0, "id0": 0, "empty_cat": 0, "no_gt_image": 0, "no_det_image": 0, "ties": 0,
            "over_maxdet": 0, "use_cats": 0}
    for seed in range(BOX_SEEDS):
        gt, results, options = random_box_case(seed)
        anns = gt["annotations"]
        seen["crowd"] += any(a["iscrowd"] for a in anns)
        seen["ignore"] += any("ignore" in a for a in anns)
        seen["id0"] += any(a["id"] == 0 for a in anns)
        seen["empty_cat"] += len({c["id"] for c in gt["categories"]} - {a["category_id"] for a in anns}) > 0
        seen["no_gt_image"] += len({i["id"] for i in gt["images"]} - {a["image_id"] for a in anns}) > 0
        seen["no_det_image"] += len({i["id"] for i in gt["images"]} - {r["image_id"] for r in results}) > 0
        scores = [r["score"] for r in results]
        seen["ties"] += len(set(scores)) < len(scores)
        per_image = np.unique([r["image_id"] for r in results], return_counts=True)[1]
        seen["over_maxdet"] += int(per_image.max()) > options.get("max_dets", (1, 10, 100))[1]
        seen["use_cats"] += options.get("use_cats", True) is False
    assert all(count >= 10 for count in seen.values()), seen
    kp = [random_keypoint_case(seed)[0]["annotations"] for seed in range(KEYPOINT_SEEDS)]
    assert sum(any(a["num_keypoints"] == 0 for a in anns) for anns in kp) >= 10
    assert sum(any(a["num_keypoints"] > 0 and not any(a["keypoints"][2::3]) for a in anns) for anns in kp) >= 5
    assert sum(any(0 < a["num_keypoints"] and 0 in a["keypoints"][2::3] for a in anns) for anns in kp) >= 10


# ------------------------------------------------------------------------------------ property tests
PROPERTY_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _stable_by_image_shuffle(results: list, rng: np.random.Generator) -> list:
    """Interleave images randomly but keep each image's own result order (which decides score ties)."""
    by_image: dict = {}
    for record in results:
        by_image.setdefault(record["image_id"], []).append(record)
    queues = list(by_image.values())
    out = []
    while queues:
        index = int(rng.integers(len(queues)))
        out.append(queues[index].pop(0))
        if not queues[index]:
            queues.pop(index)
    return out


@PROPERTY_SETTINGS
@given(seed=st.integers(0, 10**6), kind=st.sampled_from(["bbox", "keypoints"]))
def test_invariant_to_image_and_detection_order(seed: int, kind: str) -> None:
    gt, results, options = random_box_case(seed) if kind == "bbox" else random_keypoint_case(seed)
    base = evaluate_coco(gt, results, kind, **options)
    rng = np.random.default_rng(seed)
    shuffled_gt = dict(gt)
    shuffled_gt["images"] = [gt["images"][i] for i in rng.permutation(len(gt["images"]))]
    shuffled_gt["categories"] = [gt["categories"][i] for i in rng.permutation(len(gt["categories"]))]
    shuffled_gt["annotations"] = _stable_by_image_shuffle(gt["annotations"], rng)
    other = evaluate_coco(shuffled_gt, _stable_by_image_shuffle(results, rng), kind, **options)
    np.testing.assert_array_equal(base.stats, other.stats)
    np.testing.assert_array_equal(base.precision, other.precision)


@PROPERTY_SETTINGS
@given(seed=st.integers(0, 10**6))
def test_any_order_when_scores_are_distinct(seed: int) -> None:
    gt, results, options = random_box_case(seed)
    rng = np.random.default_rng(seed)
    distinct = [dict(r, score=float(s)) for r, s in zip(results, rng.permutation(len(results)) / len(results))]
    base = evaluate_coco(gt, distinct, "bbox", **options)
    other = evaluate_coco(gt, [distinct[i] for i in rng.permutation(len(distinct))], "bbox", **options)
    np.testing.assert_array_equal(base.stats, other.stats)


@PROPERTY_SETTINGS
@given(seed=st.integers(0, 10**6), kind=st.sampled_from(["bbox", "segm", "keypoints"]))
def test_stats_are_ratios_or_minus_one(seed: int, kind: str) -> None:
    case = {"bbox": random_box_case, "segm": random_mask_case, "keypoints": random_keypoint_case}[kind]
    gt, results, options = case(seed)
    result = evaluate_coco(gt, results, kind, **options)
    assert len(result.stats) == (10 if kind == "keypoints" else 12)
    assert np.all(((result.stats >= 0) & (result.stats <= 1)) | (result.stats == -1)), result.stats
    valid = result.precision[result.precision != -1]
    assert np.all((valid >= 0) & (valid <= 1))


def _perfect_box_results(gt: dict) -> list:
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
            for a in gt["annotations"] if not a["iscrowd"]]


@PROPERTY_SETTINGS
@given(seed=st.integers(0, 10**6))
def test_perfect_boxes_score_one(seed: int) -> None:
    gt, _, _ = random_box_case(seed)
    for ann in gt["annotations"]:
        ann["id"] = ann["id"] + 1  # id 0 would (as in pycocotools) count its match as a false positive
    results = _perfect_box_results(gt)
    if not results:
        return
    result = evaluate_coco(gt, results, "bbox")
    # precision is tp / (tp + fp + eps) in pycocotools, so "1" is 1 - 2e-16
    for name in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100", "ARs", "ARm", "ARl"):
        assert _one_or_minus_one(result.metrics[name]), (name, result.metrics)
    assert abs(result.metrics["AP"] - 1) < 1e-12 and result.metrics["AR100"] == 1.0


def _one_or_minus_one(value: float) -> bool:
    return abs(value - 1) < 1e-12 or value == -1


@PROPERTY_SETTINGS
@given(seed=st.integers(0, 10**6))
def test_perfect_keypoints_score_one(seed: int) -> None:
    gt, _, options = random_keypoint_case(seed, xtcocotools_compatible=True)
    options.pop("max_dets", None)
    results = [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
        for a in gt["annotations"] if not a["iscrowd"] and a["num_keypoints"] > 0
    ]
    if not results:
        return
    result = evaluate_coco(gt, results, "keypoints", **options)
    assert _one_or_minus_one(result.metrics["AP"]) and result.metrics["AR"] in (1.0, -1.0), result.metrics
    assert abs(result.metrics["AP50"] - result.metrics["AP"]) < 1e-12


def test_empty_results_score_zero() -> None:
    gt, _, _ = random_box_case(3)
    result = evaluate_coco(gt, [], "bbox")
    assert set(result.stats.tolist()) <= {0.0, -1.0} and result.metrics["AP"] == 0.0


def test_gt_id_zero_counts_its_match_as_false_positive() -> None:
    """pycocotools stores matches by GT id, so a match with GT id 0 reads as "unmatched"; reproduced."""
    gt = {"images": [{"id": 1, "width": 100, "height": 100}], "categories": [{"id": 1, "name": "a"}],
          "annotations": [{"id": i, "image_id": 1, "category_id": 1, "bbox": [10 + 40 * i, 10, 20, 20],
                           "area": 400, "iscrowd": 0} for i in (0, 1)]}
    results = [{"image_id": 1, "category_id": 1, "bbox": [10 + 40 * i, 10, 20, 20], "score": 0.9 - 0.1 * i}
               for i in (0, 1)]
    ours = evaluate_coco(gt, results, "bbox")
    assert ours.metrics["AR100"] == 0.5  # the GT with id 0 is never recalled
    np.testing.assert_allclose(ours.stats, pycocotools_eval(gt, results, "bbox").stats, atol=1e-12, rtol=0)
