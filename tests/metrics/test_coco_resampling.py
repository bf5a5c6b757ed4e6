"""Bootstrap by reuse for COCO: one matching re-accumulated with image weights equals, bit for bit, a full
evaluation of every resampled image list (the generic ``Metric.resampled``, which ``evaluate_coco`` scores
like pycocotools)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from test_coco_metric import DATA, _detection_predictions, _detection_samples, _instances, _keypoint_samples_and_predictions

from harness.metrics import METRICS
from harness.core.metric import Metric, resample_counts
from harness.metrics.coco import evaluate_coco
from harness.metrics.coco.evaluator import resampled_stats
from harness.metrics.coco.synthetic import resampled_files, synthetic_boxes, synthetic_keypoints, synthetic_masks


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind", ["bbox", "segm", "keypoints"])
def test_weighted_accumulation_equals_evaluating_the_resampled_list(seed: int, kind: str) -> None:
    # two-decimal scores: ties inside an image and category abound, so copies of a block interleave
    if kind == "bbox":
        gt, results = synthetic_boxes(seed, num_images=30, num_categories=4, dets_per_image=25)
    elif kind == "segm":
        gt, results = synthetic_masks(seed, num_images=12, num_categories=3, dets_per_image=12)
    else:
        gt, results = synthetic_keypoints(seed, num_images=30)
    # renumber annotations from 1 so the resampled lists (numbered from 1) keep pycocotools' id-0 quirk away
    gt["annotations"] = [{**a, "id": i + 1} for i, a in enumerate(gt["annotations"])]
    variants = [{}] if kind == "keypoints" else [{}, {"max_dets": (1, 3, 5)}, {"use_cats": False}]
    counts = resample_counts(len(gt["images"]), 4, seed)
    counts[0] = 0
    counts[0, :3] = [5, 0, 3]  # heavy repeats and a resample holding few images
    counts[0, 5] = len(gt["images"]) - 8
    for options in variants:
        names, values = resampled_stats(gt, results, kind, counts, **options)
        for row, count in enumerate(counts):
            reference = evaluate_coco(*resampled_files(gt, results, count), kind, **options)
            assert names == tuple(reference.metrics)
            np.testing.assert_array_equal(values[row], reference.stats, err_msg=f"{options} resample {row}")


def _filled(name: str) -> Metric:
    if name == "coco_keypoints":
        _, samples, predictions = _keypoint_samples_and_predictions(1)
        metric = METRICS.get(name)(categories=[{"id": 1, "name": "person"}])
    else:
        gt = _instances()
        samples = _detection_samples(gt)
        masks = name == "coco_segm"
        kind = "segm" if masks else "bbox"
        results = json.loads((DATA / "coco" / f"instances_val2014_fake{kind}100_results.json").read_text())
        metric = METRICS.get(name)(categories=gt["categories"])
        predictions = _detection_predictions(samples, results, masks=masks)
    metric.update(samples, predictions)
    return metric


@pytest.mark.parametrize("name", ["coco_bbox", "coco_segm", "coco_keypoints"])
def test_metric_resampling_by_reuse_equals_the_slow_path(name: str) -> None:
    metric = _filled(name)
    counts = resample_counts(len(metric.items), 5, seed=7)
    fast = metric.resampled(counts)
    slow = Metric.resampled(metric, counts)  # a full evaluation of every resampled list
    assert list(fast) == list(slow)
    for key in slow:
        np.testing.assert_array_equal(fast[key], slow[key], err_msg=key)
    assert metric.bootstrap(len(metric.items), 5, seed=7)["AP"] == tuple(
        np.percentile(slow["AP"], [2.5, 97.5]).tolist())


@pytest.mark.parametrize("kind", ["bbox", "keypoints"])
def test_compiled_resampling_equals_the_numpy_plan_across_chunks(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled weighted accumulation (chunks of resamples, never-matched detections added for a whole chunk
    at once) gives the same bits as ``AccumulationPlan.run_many``, whatever the chunk size; mmdet's maxDets
    make it score precision at two maxDets."""
    from harness.metrics.coco import evaluator, kernels

    if not kernels.ENABLED:
        pytest.skip("compiled kernels not built")
    if kind == "bbox":
        gt, results = synthetic_boxes(5, num_images=40, num_categories=5, dets_per_image=30)
        variants: list[dict] = [{}, {"max_dets": (100, 300, 1000)}, {"max_dets": (1, 2, 4)}, {"use_cats": False}]
    else:
        gt, results = synthetic_keypoints(5, num_images=40)
        variants = [{}, {"max_dets": (5, 20)}]
    counts = resample_counts(len(gt["images"]), 7, seed=3)
    counts[1] = 0
    counts[1, 4] = len(gt["images"])  # one image drawn every time: every block copied many times
    for options in variants:
        monkeypatch.setattr(evaluator, "RESAMPLE_CHUNK", 3)
        names, compiled = resampled_stats(gt, results, kind, counts, **options)
        monkeypatch.setattr(kernels, "ENABLED", False)
        numpy_names, reference = resampled_stats(gt, results, kind, counts, **options)
        monkeypatch.setattr(kernels, "ENABLED", True)
        assert names == numpy_names
        np.testing.assert_array_equal(compiled, reference, err_msg=str(options))


def test_summarize_resamples_equals_summarize() -> None:
    """The batched summary reads the same values in the same order as ``summarize`` (bit-equal means), with -1
    for categories without positives and for maxDets whose precision was not asked for."""
    from harness.metrics.coco.params import make_params
    from harness.metrics.coco.summary import summarize, summarize_resamples

    rng = np.random.default_rng(0)
    for params in (make_params("bbox"), make_params("bbox", max_dets=(1, 3, 5)), make_params("keypoints")):
        num_t, num_r, num_a, num_m = (len(params.iou_thresholds), len(params.recall_thresholds),
                                      len(params.area_ranges), len(params.max_dets))
        num_k, num_b = 6, 3
        wanted = tuple(m for m in params.max_dets if m in (100, 20, params.max_dets[-1]))
        precision = rng.random((num_b, len(wanted), num_a, num_t, num_k, num_r))
        recall = rng.random((num_b, num_m, num_a, num_t, num_k))
        precision[0, :, 1, :, 2] = -1  # a category without positives in one area range
        recall[0, :, 1, :, 2] = -1
        got = summarize_resamples(params, precision, recall, wanted)
        for b in range(num_b):
            full = -np.ones((num_t, num_r, num_k, num_a, num_m))
            for i, m in enumerate(wanted):
                full[..., params.max_dets.index(m)] = precision[b, i].transpose(1, 3, 2, 0)
            np.testing.assert_array_equal(got[b], summarize(params, full, recall[b].transpose(2, 3, 1, 0)))


@pytest.mark.parametrize("chunk,threads", [(1, 1), (5, 2), (16, 2)])
def test_compiled_resampling_at_chunk_and_thread_boundaries(chunk: int, threads: int,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled kernel equals the numpy plan bit for bit whatever the chunk and thread split (a thread with
    one resample, an odd chunk, a last chunk shorter than the rest), with a category that has no ground truth at
    all, images drawn zero times, odd maxDets and the summary computed in C."""
    from harness.metrics.coco import evaluator, kernels

    if not kernels.ENABLED:
        pytest.skip("compiled kernels not built")
    gt, results = synthetic_boxes(11, num_images=35, num_categories=7, dets_per_image=20)
    assert not any(a["category_id"] == gt["categories"][-1]["id"] for a in gt["annotations"])  # never annotated
    counts = resample_counts(len(gt["images"]), 11, seed=5)
    counts[2] = 0
    counts[2, [0, 7]] = [len(gt["images"]) - 3, 3]  # two images only: most categories without positives
    counts[3] = 1
    counts[3, ::3] = 0  # every third image left out, the rest once
    for options in ({}, {"max_dets": (1, 7, 13)}, {"max_dets": (2, 3, 9, 40)}):
        monkeypatch.setattr(evaluator, "RESAMPLE_CHUNK", chunk)
        monkeypatch.setattr(evaluator, "RESAMPLE_THREADS", threads)
        names, compiled = resampled_stats(gt, results, "bbox", counts, **options)
        monkeypatch.setattr(kernels, "ENABLED", False)
        numpy_names, reference = resampled_stats(gt, results, "bbox", counts, **options)
        monkeypatch.setattr(kernels, "ENABLED", True)
        assert names == numpy_names
        np.testing.assert_array_equal(compiled, reference, err_msg=str(options))
    for row in (2, 3):  # and the slow path itself, for the extreme rows
        reference_stats = evaluate_coco(*resampled_files(gt, results, counts[row]), "bbox").stats
        np.testing.assert_array_equal(resampled_stats(gt, results, "bbox", counts[row:row + 1])[1][0],
                                      reference_stats)


def test_compiled_resampling_refuses_counts_beyond_int32() -> None:
    """The kernel keeps its counts in int32: weights whose total times the detections of one image and category
    could pass 2**31 - 1 are refused (the evaluator then uses the numpy plan), and a weight just inside runs."""
    from harness.metrics.coco import kernels

    if not kernels.ENABLED:
        pytest.skip("compiled kernels not built")

    def run(weight: int) -> np.ndarray:
        # one image, one category, two never-matched detections (ranks 0 and 1), no ground truth
        _, _, stats = kernels.accumulate_weighted(
            np.array([0, 2]), np.array([True, True]), np.array([0, 0]), np.array([0, 1]), np.array([-1, -1]),
            np.array([1, 1], dtype=np.uint8), np.zeros((0, 1), np.uint16), np.zeros((0, 1), np.uint16),
            np.array([[weight]]), np.zeros(0, np.int64), np.zeros(0, np.int64), 1, np.linspace(0, 1, 101), [100],
            [True], 1, specs=np.array([[0, -1, 0, 0]]))
        return stats

    with pytest.raises(OverflowError):
        run(2**30)
    np.testing.assert_array_equal(run(2**30 - 1), [[-1.0]])  # no positives: the stat is -1


def test_summary_table_reads_what_summarize_resamples_reads() -> None:
    from harness.metrics.coco.params import make_params
    from harness.metrics.coco.summary import precision_max_dets, summary_table

    params = make_params("bbox", max_dets=(1, 3, 5))
    table = summary_table(params, precision_max_dets(params))
    assert table is not None
    # AP reads maxDets 100 whatever max_dets says (pycocotools' quirk): absent here, so -1; AP50 at threshold 0,
    # area all, maxDets 5; AR1 from the recall at maxDets index 0; a -1 stat never reads anything
    assert table[0].tolist() == [2, -1, 0, 0]
    assert summary_table(make_params("bbox"), (100,))[0].tolist() == [0, -1, 0, 0]
    assert table[1].tolist() == [0, 0, 0, precision_max_dets(params).index(5)]
    assert table[6].tolist() == [1, -1, 0, 0]
    keypoints = make_params("keypoints")
    assert summary_table(keypoints, precision_max_dets(keypoints))[:, 2].tolist() == [0, 0, 0, 1, 2] * 2
