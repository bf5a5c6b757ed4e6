"""VOC AP against mmdetection's ``eval_map`` (the ``mmdet`` dialect, and the devkit's area mode), plus hand-built
11-point cases for the MATLAB devkit (MATLAB-only, so its answers are derived by hand in the comments)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from voc_oracles import legacy, mean_ap_module
from voc_oracles import eval_map as mmdet_eval_map

from harness.metrics.voc import VocAPMetric
from harness.core.structures import DetectionPrediction, DetectionTarget, Sample

mean_ap_module()  # skips the module without mmdet

N_CLASSES = 4  # the last class never has ground truth (an "empty class" that may still get detections)


def random_case(seed: int, ties: bool = True, duplicates: bool = True) -> list[dict]:
    """Images with GT and detections as harness xywh boxes on a 1/8-pixel grid (exact in float32 and through
    every corner conversion), labels 0..N_CLASSES-1.  Ties: scores rounded to 0.1; duplicates: a difficult copy
    of a GT placed before it (equal IoU with both, so which one argmax finds is the GT order)."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(int(rng.integers(1, 7))):
        n_gt = int(rng.integers(0, 6)) if rng.random() > 0.15 else 0  # some images without GT
        xy = rng.integers(0, 48 * 8, size=(n_gt, 2)) / 8
        wh = rng.integers(1 * 8, 24 * 8, size=(n_gt, 2)) / 8
        gt = np.concatenate([xy, wh], axis=1)
        gt_labels = rng.integers(0, N_CLASSES - 1, size=n_gt)
        difficult = rng.random(n_gt) < 0.2
        if duplicates and n_gt and rng.random() < 0.4:
            k = int(rng.integers(0, n_gt))
            gt = np.insert(gt, k, gt[k], axis=0)
            gt_labels = np.insert(gt_labels, k, gt_labels[k])
            difficult = np.insert(difficult, k, True)
            difficult[k + 1] = False
        n_det = int(rng.integers(0, 9))
        if len(gt):
            base = gt[rng.integers(0, len(gt), size=n_det)]
            labels = np.where(rng.random(n_det) < 0.8, gt_labels[rng.integers(0, len(gt), size=n_det)],
                              rng.integers(0, N_CLASSES, size=n_det))
        else:
            base = np.tile([10.0, 10.0, 12.0, 12.0], (n_det, 1))
            labels = rng.integers(0, N_CLASSES, size=n_det)
        jitter = rng.integers(-3 * 8, 3 * 8 + 1, size=(n_det, 4)) / 8
        det = base + jitter
        det[:, 2:] = np.maximum(det[:, 2:], 1.0)
        scores = np.round(rng.random(n_det), 1) if ties else rng.permutation(n_det) / 16 + rng.random() / 32
        images.append({"gt": gt, "gt_labels": gt_labels, "difficult": difficult, "det": det, "labels": labels,
                       "scores": scores})
    return images


def eval_map(images: list[dict], mode: str) -> tuple[float, list[dict]]:
    """Per image one (m, 5) array per class, GT split into ``bboxes`` and ``bboxes_ignore`` (difficult)."""
    det_results, annotations = [], []
    for image in images:
        rows = np.concatenate([legacy(image["det"]), image["scores"][:, None]], axis=1)
        det_results.append([rows[image["labels"] == c].reshape(-1, 5) for c in range(N_CLASSES)])
        keep, ignore = ~image["difficult"], image["difficult"]
        boxes = legacy(image["gt"])
        annotations.append({"bboxes": boxes[keep], "labels": image["gt_labels"][keep],
                            "bboxes_ignore": boxes[ignore], "labels_ignore": image["gt_labels"][ignore]})
    return mmdet_eval_map(det_results, annotations, mode)


def bench(images: list[dict], mode: str, dialect: str):
    metric = VocAPMetric(ap_mode=mode, dialect=dialect, class_names={c + 1: str(c) for c in range(N_CLASSES)})
    for index, image in enumerate(images):
        target = DetectionTarget(index, 100, 100, image["gt"], image["gt_labels"] + 1, np.zeros(len(image["gt"])),
                                 np.zeros(len(image["gt"]), bool), image["difficult"])
        prediction = DetectionPrediction(image["det"], image["scores"], image["labels"] + 1)
        metric.update([Sample(index, None, target)], [prediction])
    return metric.compute()


SEEDS = range(300)


@pytest.mark.parametrize("mode", ["area", "11point"])
def test_mmdet_dialect_equals_eval_map_on_random_cases(mode):
    checked = 0
    for seed in SEEDS:
        images = random_case(seed)
        expected_map, expected = eval_map(images, mode)
        result = bench(images, mode, "mmdet")
        with_gt = [c for c in range(N_CLASSES) if expected[c]["num_gts"] > 0]
        for c in with_gt:
            assert result.per_class["AP"][str(c)] == pytest.approx(float(expected[c]["ap"]), abs=1e-12, rel=0), seed
        if with_gt:  # mmdet reports 0 where nothing has GT; bench says NaN
            assert result.metrics["mAP"] == pytest.approx(expected_map, abs=1e-12, rel=0), seed
            checked += 1
        else:
            assert math.isnan(result.metrics["mAP"])
        assert all(math.isnan(result.per_class["AP"][str(c)]) for c in range(N_CLASSES) if c not in with_gt)
    assert checked > 250


def test_the_devkit_and_mmdet_disagree_on_random_cases_with_ties_and_duplicates():
    """Not an oracle test: the random cases above do tell the dialects apart (else they would prove little)."""
    differ = sum(bench(images, "area", "voc-devkit").metrics["mAP"] != bench(images, "area", "mmdet").metrics["mAP"]
                 for images in map(random_case, SEEDS))
    assert differ > 30


def exact_precision(recall: np.ndarray, precision32: np.ndarray, npos: int) -> np.ndarray:
    """mmdet returns float32 precision; the counts behind it are integers: tp = recall * npos and the number of
    scored detections n = tp / precision (exact after rounding, n is small).  Gives the float64 tp / n."""
    tp = np.rint(recall * npos)
    with np.errstate(divide="ignore", invalid="ignore"):
        n = np.rint(tp / precision32.astype(np.float64))
        return np.where(tp > 0, tp / n, 0.0)


def vocap(recall: np.ndarray, precision: np.ndarray) -> float:
    """The devkit's VOCap.m, transcribed: sentinels, monotone envelope from the right, sum over recall steps."""
    mrec = [0.0, *recall.tolist(), 1.0]
    mpre = [0.0, *precision.tolist(), 0.0]
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    return sum((mrec[i] - mrec[i - 1]) * mpre[i] for i in range(1, len(mrec)) if mrec[i] != mrec[i - 1])


def test_devkit_area_mode_equals_eval_map_without_ties():
    """mmdet's area mode is the devkit's procedure; it differs only on score ties (unstable sort), on which of
    equal-IoU GTs argmax picks (difficult GTs stacked last) and in float32 rounding.  So on tie-free cases the
    devkit dialect must reproduce mmdet's PR curve exactly; its AP is compared in float64, rebuilt from mmdet's
    curve, to 1e-12, and to mmdet's float32 AP within float32 rounding."""
    for seed in range(150):
        images = random_case(seed, ties=False, duplicates=False)
        _, expected = eval_map(images, "area")
        result = bench(images, "area", "voc-devkit")
        for c in range(N_CLASSES):
            npos = expected[c]["num_gts"]
            if npos == 0:
                continue
            name = str(c)
            recall = expected[c]["recall"]
            np.testing.assert_array_equal(result.curves[name]["recall"], recall) if recall.size else None
            precision = exact_precision(recall, expected[c]["precision"], npos)
            assert result.per_class["AP"][name] == pytest.approx(vocap(recall, precision), abs=1e-12, rel=0), seed
            assert result.per_class["AP"][name] == pytest.approx(float(expected[c]["ap"]), abs=1e-7, rel=0), seed


# ----------------------------------------------------------------------------------- hand-built cases
def five_gt_case(order: str) -> list[dict]:
    """One image, 5 GT of class 0 side by side; detections in score order, 'T' = exactly on the next unmatched
    GT, 'F' = far from everything."""
    gt = np.array([[10.0 * i, 0, 6, 6] for i in range(5)])
    det, hits = [], iter(range(5))
    for kind in order:
        det.append(gt[next(hits)] if kind == "T" else [200.0, 200, 6, 6])
    scores = np.arange(len(order), 0, -1, dtype=float)
    return [{"gt": gt, "gt_labels": np.zeros(5, int), "difficult": np.zeros(5, bool), "det": np.array(det),
             "labels": np.zeros(len(order), int), "scores": scores}]


def test_eleven_point_recall_of_exactly_three_fifths():
    # TP TP TP FP FP TP TP over 5 GT: recall .2 .4 .6 .6 .6 .8 1, precision 1 1 1 3/4 3/5 4/6 5/7.
    # Max precision at recall >= t: 1 for t <= 0.6; for t in {0.7, 0.8} max(4/6, 5/7) = 5/7; for t >= 0.9: 5/7.
    # MATLAB's 0:0.1:1 holds 0.6 exactly, so recall 0.6 reaches it: devkit AP = (7 * 1 + 4 * 5/7) / 11.
    # np.arange(0, 1 + 1e-3, 0.1)[6] is 0.6000000000000001 > 0.6: that threshold only sees recall .8 and 1,
    # so mmdet (and py-faster-rcnn) get (6 * 1 + 5 * 5/7) / 11 -- mmdet in float32: the maxima are float32
    # precisions (1 and float32(5/7)), added one by one to a float32 zero, then divided by 11 in float32.
    images = five_gt_case("TTTFFTT")
    devkit = bench(images, "11point", "voc-devkit").per_class["AP"]["0"]
    assert devkit == pytest.approx((7 + 4 * 5 / 7) / 11, abs=1e-15)
    total = np.float32(0)
    for p in [1.0] * 6 + [5 / 7] * 5:
        total = total + np.float32(p)
    by_hand = float(total / np.float32(11))
    mmdet = bench(images, "11point", "mmdet").per_class["AP"]["0"]
    assert mmdet == by_hand == float(eval_map(images, "11point")[1][0]["ap"])
    assert abs(mmdet - (6 + 5 * 5 / 7) / 11) < 1e-7 and abs(devkit - mmdet) > 0.02
    # area mode does not care: 0.6 * 1 + 0.2 * 5/7 + 0.2 * 5/7 in both (mmdet rounded to float32)
    assert bench(images, "area", "voc-devkit").per_class["AP"]["0"] == pytest.approx(0.6 + 0.4 * 5 / 7, abs=1e-15)
    assert bench(images, "area", "mmdet").per_class["AP"]["0"] == float(np.float32(0.6 + 0.4 * 5 / 7))


def test_eleven_point_recall_of_exactly_seven_tenths():
    # 10 GT, 7 TP then 3 FP then 3 TP: recall reaches 0.7 = 7/10 with precision 1.  MATLAB's 0:0.1:1 holds the
    # double nearest 0.7, which equals 7/10 in floating point, so t = 0.7 sees precision 1: 8 thresholds with 1,
    # the other three (0.8, 0.9, 1) see recall .8, .9, 1 at precisions 8/11, 9/12, 10/13 -> max 10/13 = 0.769
    # (beats 9/12 = 0.75 and 8/11 = 0.727) for t = 0.8, 0.9 and 1.
    # devkit AP = (8 + 3 * 10/13) / 11;  numpy's 0.7000000000000001 > 0.7 -> (7 + 4 * 10/13) / 11.
    gt = np.array([[10.0 * i, 0, 6, 6] for i in range(10)])
    miss = [[300.0, 300, 6, 6]] * 3
    det = np.concatenate([gt[:7], miss, gt[7:]])
    images = [{"gt": gt, "gt_labels": np.zeros(10, int), "difficult": np.zeros(10, bool), "det": det,
               "labels": np.zeros(13, int), "scores": np.arange(13, 0, -1, dtype=float)}]
    assert bench(images, "11point", "voc-devkit").per_class["AP"]["0"] == pytest.approx((8 + 30 / 13) / 11, abs=1e-15)
    assert bench(images, "11point", "py-faster-rcnn").per_class["AP"]["0"] == pytest.approx((7 + 40 / 13) / 11,
                                                                                            abs=1e-15)
    assert bench(images, "11point", "mmdet").per_class["AP"]["0"] == float(eval_map(images, "11point")[1][0]["ap"])
    assert bench(images, "11point", "mmdet").per_class["AP"]["0"] == pytest.approx((7 + 40 / 13) / 11, abs=1e-7)


def test_difficult_duplicate_before_its_twin():
    # GT #0 difficult and GT #1 not, the same box; one detection exactly on it.  The devkit's argmax takes the
    # first of equal overlaps, GT #0, which is difficult: the detection is ignored, recall stays 0 -> AP 0.
    # mmdet stacks [non-difficult; difficult] = [GT #1, GT #0]: argmax finds GT #1 -> TP -> AP 1.
    box = [20.0, 20.0, 10.0, 10.0]
    images = [{"gt": np.array([box, box]), "gt_labels": np.zeros(2, int), "difficult": np.array([True, False]),
               "det": np.array([box]), "labels": np.zeros(1, int), "scores": np.array([0.5])}]
    assert bench(images, "area", "voc-devkit").per_class["AP"]["0"] == 0.0
    assert bench(images, "area", "mmdet").per_class["AP"]["0"] == 1.0 == float(eval_map(images, "area")[1][0]["ap"])


def test_mmdet_measures_boxes_in_float32():
    # GT 100 x 100 px at the origin (harness [0, 0, 100, 100]); the detection covers its top 49.9999999 rows
    # (harness [0, 0, 100, 49.9999999]): IoU 100 * 49.9999999 / (100 * 100) = 0.499999999 < 0.5 -> the devkit
    # (double precision) calls it a miss.  mmdet's bbox_overlaps casts the corners to float32: y2 = 48.9999999
    # (0-based inclusive) is within half an ulp (2**-19 at 49) of 49, so it becomes 49, the height 49 - 0 + 1 = 50
    # and the IoU exactly 0.5 -> a match.
    images = [{"gt": np.array([[0.0, 0, 100, 100]]), "gt_labels": np.zeros(1, int), "difficult": np.zeros(1, bool),
               "det": np.array([[0.0, 0, 100, 49.9999999]]), "labels": np.zeros(1, int), "scores": np.array([0.9])}]
    assert bench(images, "area", "voc-devkit").per_class["AP"]["0"] == 0.0
    assert bench(images, "area", "mmdet").per_class["AP"]["0"] == 1.0 == float(eval_map(images, "area")[1][0]["ap"])
