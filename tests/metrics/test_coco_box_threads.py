"""The bbox fast path's compiled pieces against what they replace, with one thread and with two: the fused box
IoU + matching (``box_status``), the dense grouping (``dense_groups``), the per-category order
(``category_order``), the threaded accumulation, the two-halves results parser (``parse_results_file``) and the
table lookup of ids.  The work splits are balanced by counts, so the cases put the boundary where a bug would
show: everything in one group or one category, empty categories, a single image, categories with ground truth
but no results and the reverse."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from coco_cases import random_box_case
from coco_oracles import pycocotools_eval

from harness.core.errors import DataError
from harness.metrics.coco import evaluate_coco, evaluator, kernels
from harness.metrics.coco.grouping import build_groups
from harness.metrics.coco.synthetic import synthetic_boxes
from harness.metrics.coco.validate import IdIndex

pytestmark = pytest.mark.skipif(not kernels.ENABLED, reason="compiled kernels not built")


def _evaluate(gt: dict, results: list, threads: int, monkeypatch, **options: Any):
    monkeypatch.setattr(evaluator, "EVAL_THREADS", threads)
    return evaluate_coco(gt, results, "bbox", **options)


def _numpy_path(gt: dict, results: list, monkeypatch, **options: Any):
    with monkeypatch.context() as patch:
        patch.setattr(kernels, "ENABLED", False)
        return evaluate_coco(gt, results, "bbox", **options)


def _assert_same(a, b, label: str = "") -> None:
    np.testing.assert_array_equal(a.precision, b.precision, err_msg=label)
    np.testing.assert_array_equal(a.recall, b.recall, err_msg=label)
    np.testing.assert_array_equal(a.stats, b.stats, err_msg=label)


@pytest.mark.parametrize("seed", range(40))
def test_fused_box_path_equals_pycocotools_and_the_numpy_path_with_one_and_two_threads(seed, monkeypatch):
    gt, results, options = random_box_case(seed)  # crowds, ignores, id 0, empty categories, ties, maxDets
    one = _evaluate(gt, results, 1, monkeypatch, **options)
    two = _evaluate(gt, results, 2, monkeypatch, **options)
    _assert_same(one, two, f"seed {seed}")
    _assert_same(two, _numpy_path(gt, results, monkeypatch, **options), f"seed {seed}")
    reference = pycocotools_eval(gt, results, "bbox", **options)
    np.testing.assert_array_equal(two.precision, reference.precision)
    np.testing.assert_array_equal(two.recall, reference.recall)


def _boxes_case(images: int, categories: int, gt_cats: list[int], dt_cats: list[int], seed: int = 0
                ) -> tuple[dict, list]:
    """Ground truths in ``gt_cats`` and results in ``dt_cats`` (category ids 1..categories), on every image."""
    rng = np.random.default_rng(seed)
    gt: dict[str, Any] = {"images": [{"id": i + 1, "width": 100, "height": 100} for i in range(images)],
                          "categories": [{"id": c + 1, "name": f"c{c + 1}"} for c in range(categories)],
                          "annotations": []}
    results = []
    for image in range(1, images + 1):
        for cat in gt_cats:
            for _ in range(3):
                x, y, w, h = (float(v) for v in rng.uniform([0, 0, 5, 5], [60, 60, 40, 40]))
                gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": image, "category_id": cat,
                                          "bbox": [x, y, w, h], "area": w * h, "iscrowd": int(rng.random() < 0.1)})
        near = [a["bbox"] for a in gt["annotations"] if a["image_id"] == image]
        for cat in dt_cats:
            for k in range(12):
                x, y, w, h = (float(v) for v in rng.uniform([0, 0, 5, 5], [60, 60, 40, 40]))
                if near and k % 2:  # half of them close to a ground truth (of any category)
                    x, y, w, h = (float(v) for v in np.asarray(near[k % len(near)]) + rng.normal(0, 2, 4))
                    w, h = abs(w), abs(h)
                results.append({"image_id": image, "category_id": cat, "bbox": [x, y, w, h],
                                "score": float(rng.choice([0.3, 0.5, rng.random()]))})
    return gt, results


@pytest.mark.parametrize("images, categories, gt_cats, dt_cats", [
    (1, 1, [1], [1]),  # one group: the whole split on one side
    (1, 3, [1, 2, 3], [1, 2, 3]),  # single image
    (2, 1, [1], [1]),  # two groups
    (4, 3, [1, 2], [2, 3]),  # a category without results, one without ground truth
    (3, 5, [5], [1, 2, 3, 4, 5]),  # most categories only have results
    (5, 4, [1, 2, 3, 4], [4]),  # all results in the last category
])
def test_split_boundaries(images, categories, gt_cats, dt_cats, monkeypatch):
    gt, results = _boxes_case(images, categories, gt_cats, dt_cats, seed=images * 10 + categories)
    one = _evaluate(gt, results, 1, monkeypatch)
    two = _evaluate(gt, results, 2, monkeypatch)
    _assert_same(one, two)
    _assert_same(two, _numpy_path(gt, results, monkeypatch))
    reference = pycocotools_eval(gt, results, "bbox")
    np.testing.assert_array_equal(two.precision, reference.precision)
    assert two.precision.max() > 0


def test_box_status_equals_the_pair_matching_for_every_detection():
    gt, results = synthetic_boxes(7, num_images=40, num_categories=6, gt_per_image=8, dets_per_image=60)
    for r in results[::5]:
        r["score"] = 0.5  # ties inside groups
    from harness.metrics.coco import make_params
    from harness.metrics.coco.tables import load_ground_truth, load_results

    params = make_params("bbox")
    gt_table = load_ground_truth(gt, "bbox")
    dt_table = load_results(results, gt_table, "bbox")
    pairs = evaluator._compiled_matching(gt_table, dt_table, params)
    for threads in (1, 2):
        evaluator.EVAL_THREADS, saved = threads, evaluator.EVAL_THREADS
        try:
            fused = evaluator._compiled_matching(gt_table, dt_table, params, every_detection=True)
        finally:
            evaluator.EVAL_THREADS = saved
        all_ranges = (1 << len(params.iou_thresholds)) - 1
        # a detection without a candidate pair is a false positive wherever its area is inside the range
        want_tp = np.zeros_like(fused.cand_tp)
        want_fp = np.where(fused.dt_outside.T, 0, all_ranges).astype(np.uint16)
        want_tp[pairs.candidates], want_fp[pairs.candidates] = pairs.cand_tp, pairs.cand_fp
        assert np.array_equal(fused.cand_tp, want_tp) and np.array_equal(fused.cand_fp, want_fp)
        assert np.array_equal(fused.order, pairs.order) and np.array_equal(fused.cat_bounds, pairs.cat_bounds)
        assert want_tp.any() and (want_fp == all_ranges).any()


@pytest.mark.parametrize("threads", [1, 2])
def test_dense_groups_equal_the_numpy_grouping(threads, monkeypatch):
    rng = np.random.default_rng(3)
    for images, cats, n_gt, n_dt, max_det in ((1, 1, 0, 0, 5), (1, 1, 3, 7, 5), (6, 4, 30, 200, 4),
                                              (50, 7, 300, 3000, 10), (3, 2, 0, 40, 100)):
        gt_image, gt_cat = rng.integers(0, images, n_gt), rng.integers(0, cats, n_gt)
        dt_image, dt_cat = rng.integers(0, images, n_dt), rng.integers(0, cats, n_dt)
        score = rng.choice([0.0, -0.0, 0.25, 0.5, 0.75], n_dt)  # many ties
        fast = build_groups(gt_image, gt_cat, dt_image, dt_cat, score, images, cats, max_det, True, threads)
        with monkeypatch.context() as patch:
            patch.setattr(kernels, "ENABLED", False)
            slow = build_groups(gt_image, gt_cat, dt_image, dt_cat, score, images, cats, max_det, True)
        for name in ("gt_order", "gt_bounds", "dt_order", "dt_bounds", "dt_group", "dt_rank", "keys"):
            assert np.array_equal(getattr(fast, name), getattr(slow, name)), name
        assert fast.num_groups == slow.num_groups and fast.stride == slow.stride


@pytest.mark.parametrize("threads", [1, 2])
def test_category_order_is_a_stable_lexsort(threads):
    rng = np.random.default_rng(4)
    for n, groups in ((0, 1), (1, 1), (2, 2), (50, 3), (5000, 40), (3000, 1), (4000, 2)):
        key = rng.integers(0, groups, n)
        if groups > 2:
            key[key == 1] = 0  # an empty group in the middle
        score = rng.choice([0.0, -0.0, 0.25, 0.5, 0.5000000000000001, 1.0], n)
        order, bounds = kernels.category_order(key, score, groups, threads)
        assert np.array_equal(order, np.lexsort((-score, key)))
        assert np.array_equal(bounds, np.searchsorted(key[order], np.arange(groups + 1)))
        if n > 1000:  # large groups go through the radix sort; distinct scores, extremes and subnormals too
            score = np.where(rng.random(n) < 0.5, rng.choice([-np.inf, -1e300, -5e-324, 5e-324, 0.3, np.inf], n),
                             np.where(rng.random(n) < 0.5, rng.random(n), -0.0))
            order, _ = kernels.category_order(key, score, groups, threads)
            assert np.array_equal(order, np.lexsort((-score, key)))
            score[n // 3] = np.nan  # NaN: that group is sorted as group_order sorts it
            order, bounds = kernels.category_order(key, score, groups, threads)
            want, want_bounds = kernels.group_order(key, score, groups)
            assert np.array_equal(order, want) and np.array_equal(bounds, want_bounds)


def _results_text(results: list, separators: tuple[str, str]) -> bytes:
    return json.dumps(results, separators=separators).encode()


def _same_parse(a, b) -> None:
    assert (a is None) == (b is None)
    if a is None:
        return
    assert a[0] == b[0] and a[2] == b[2] and a[3] == b[3]
    for key, column in a[1].items():
        other = b[1][key]
        if key == "segmentation":
            assert column.blob == other.blob and np.array_equal(column.offsets, other.offsets)
            assert np.array_equal(column.sizes, other.sizes)
            assert np.array_equal(column.areas, other.areas, equal_nan=True)
        else:
            assert column.shape == other.shape and np.array_equal(column, other), key


@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")])
def test_results_file_in_halves_equals_the_whole(tmp_path, separators, monkeypatch):
    _, results = synthetic_boxes(5, num_images=30, num_categories=5, gt_per_image=5, dets_per_image=40)
    path = tmp_path / "results.json"
    path.write_bytes(_results_text(results, separators))
    monkeypatch.setattr(kernels, "SPLIT_MIN_BYTES", 1)
    pieces: list[int] = []
    whole_parser = kernels.parse_results

    def counted(data):
        pieces.append(len(data))
        return whole_parser(data)

    monkeypatch.setattr(kernels, "parse_results", counted)
    halves = kernels.parse_results_file(path)
    assert len(pieces) == 2 and abs(pieces[0] - pieces[1]) < 200  # two halves, and nothing parsed again
    _same_parse(halves, kernels.parse_results(path.read_bytes()))
    assert halves is not None and halves[0] == len(results)
    _same_parse(kernels.parse_results_file(path, threads=1), halves)


def test_results_file_cut_inside_a_string_or_between_disagreeing_halves_reads_as_the_whole(tmp_path,
                                                                                           monkeypatch):
    monkeypatch.setattr(kernels, "SPLIT_MIN_BYTES", 1)
    # a counts string (not a valid mask: the whole parse keeps it, with a NaN area) full of '}, {' around the
    # middle: the cut lands inside it, the first half then ends inside a string and does not parse
    filler = [{"image_id": 1, "category_id": 1, "score": 0.5, "segmentation": {"size": [2, 2], "counts": "4"}}]
    text = json.dumps(filler * 50)[:-1] + ', {"image_id": 1, "category_id": 1, "score": 0.5, "segmentation": ' \
        + '{"size": [2, 2], "counts": "' + "x}, {" * 4000 + '"}}]'
    path = tmp_path / "strings.json"
    path.write_text(text)
    pieces: list[int] = []
    whole_parser = kernels.parse_results

    def counted(data):
        pieces.append(len(data))
        return whole_parser(data)

    monkeypatch.setattr(kernels, "parse_results", counted)
    parsed = kernels.parse_results_file(path)
    assert len(pieces) == 3 and pieces[2] == len(text)  # two halves tried, then the whole file
    monkeypatch.setattr(kernels, "parse_results", whole_parser)
    _same_parse(parsed, kernels.parse_results(path.read_bytes()))
    assert parsed is not None and parsed[0] == 51
    # keypoint counts differ between the halves: the whole parse refuses, so must the halves
    rows = [{"image_id": 1, "category_id": 1, "score": 0.5, "keypoints": [1.0, 2.0, 2.0]}] * 200
    rows += [{"image_id": 1, "category_id": 1, "score": 0.5, "keypoints": [1.0, 2.0, 2.0] * 2}] * 200
    path.write_text(json.dumps(rows))
    assert kernels.parse_results(path.read_bytes()) is None
    assert kernels.parse_results_file(path) is None
    # keys present in one half only: counted per key, so the caller sees that not every result has them
    rows = [{"image_id": 1, "category_id": 1, "score": 0.5, "bbox": [1.0, 2.0, 3.0, 4.0]}] * 200
    rows += [{"image_id": 2, "category_id": 1, "score": 0.25, "keypoints": [1.0, 2.0, 2.0]}] * 200
    path.write_text(json.dumps(rows))
    _same_parse(kernels.parse_results_file(path), kernels.parse_results(path.read_bytes()))


def test_table_lookup_of_ids_equals_the_dictionary():
    rng = np.random.default_rng(6)
    for ids in ([5, 7, 8, 100], list(range(1000, 1300)), [0], [-3, -1, 2], [1, 10**12]):  # dense and sparse
        index = IdIndex(ids, "image", DataError, None)
        probes = np.array(ids + [min(ids) - 1, max(ids) + 1, 6, 2**62, -(2**63), 2**63 - 1, 0, -1]
                          + list(rng.integers(-50, 1400, 200)), dtype=np.int64)
        want = [index.ids.index(v) if v in ids else -1 for v in probes.tolist()]
        assert index.lookup(probes).tolist() == want
        assert index.lookup(probes.tolist()).tolist() == want
