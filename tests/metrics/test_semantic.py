"""Semantic segmentation: ADE20K devkit's published numbers, closed-form cases, dialects, properties."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from harness.core.errors import DataError, PredictionError
from harness.metrics import METRICS
from harness.metrics.semantic import (
    SemanticSegmentationMetric,
    confusion_matrix,
    reduce_zero_label,
    scores_from_counts,
    semantic_segmentation_scores,
)
from harness.core.structures import Sample, SemanticPrediction, SemanticTarget

ADE = Path(__file__).resolve().parents[1] / "data" / "ade20k"


def ade_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    names = sorted(p.name for p in (ADE / "annotations").glob("*.png"))
    return [(np.asarray(Image.open(ADE / "annotations" / n)), np.asarray(Image.open(ADE / "predictions" / n)))
            for n in names]


# ------------------------------------------------------------------------------------------ ADE20K
def test_ade20k_devkit_published_numbers():
    """The devkit README: 'Mean IoU over 150 classes: 0.1000', 'Pixel-wise Accuracy: 100.00%'."""
    pairs = ade_pairs()
    summary, per_class = semantic_segmentation_scores(
        [reduce_zero_label(gt) for gt, _ in pairs], [reduce_zero_label(pred) for _, pred in pairs],
        num_classes=150, dialect="ade20k-devkit",
    )
    assert round(summary["mIoU"], 4) == 0.1000
    assert summary["mIoU"] == pytest.approx(15 / 150, abs=1e-12)  # 15 classes present, each IoU 1
    assert summary["aAcc"] == 1.0
    assert np.count_nonzero(per_class["IoU"]) == 15


def test_ade20k_under_mmseg_with_reduce_zero_label():
    metric = SemanticSegmentationMetric(150, dialect="mmseg", reduce_zero_label=True)
    metric.update_arrays([gt for gt, _ in ade_pairs()], [reduce_zero_label(pred) for _, pred in ade_pairs()])
    result = metric.compute()
    assert result.metrics["mIoU"] == 1.0 and result.metrics["aAcc"] == 1.0
    assert result.metrics["mDice"] == 1.0 and result.metrics["mFscore"] == 1.0
    assert sum(not math.isnan(v) for v in result.per_class["IoU"].values()) == 15


def test_reduce_zero_label():
    raw = np.array([[0, 1, 150, 255]], dtype=np.uint8)
    assert reduce_zero_label(raw).tolist() == [[255, 0, 149, 255]]


# ------------------------------------------------------------------------------------- closed form
def test_closed_form_scores_and_ignore():
    gt = np.array([[0, 0, 1, 1],
                   [0, 0, 1, 255]])
    pred = np.array([[0, 1, 1, 1],
                     [0, 255, 2, 0]])  # 255 on a labelled pixel: a false negative of class 0
    matrix = confusion_matrix(gt, pred, num_classes=3)
    assert matrix.tolist() == [[2, 1, 0, 1], [0, 2, 1, 0], [0, 0, 0, 0]]
    summary, per_class = scores_from_counts(*[np.array(v) for v in ([2, 2, 0], [0, 1, 1], [2, 1, 0])])
    # class 0: TP 2, FP 0, FN 2; class 1: TP 2, FP 1, FN 1; class 2: TP 0, FP 1, FN 0
    np.testing.assert_allclose(per_class["IoU"], [2 / 4, 2 / 4, 0.0])
    np.testing.assert_allclose(per_class["Acc"][:2], [2 / 4, 2 / 3])
    assert math.isnan(per_class["Acc"][2])
    np.testing.assert_allclose(per_class["Dice"], [4 / 6, 4 / 6, 0.0])
    assert summary["mIoU"] == pytest.approx(1 / 3)
    assert summary["mAcc"] == pytest.approx((2 / 4 + 2 / 3) / 2)
    assert summary["aAcc"] == pytest.approx(4 / 7)
    # mmseg's F-score: class 2 has p = 0 / 1 = 0 and r = 0 / 0 = NaN -> NaN, drops out
    assert math.isnan(per_class["Fscore"][2])
    assert summary["mFscore"] == pytest.approx((2 / 3 + 2 / 3) / 2)

    via_metric, _ = semantic_segmentation_scores([gt], [pred], num_classes=3)
    assert via_metric == pytest.approx(summary, nan_ok=True)


def test_mmseg_fscore_quirk_zero_precision_and_recall_is_nan():
    # class 1 has GT and predictions but no TP: p = r = 0 -> mmseg's 2pr/(p+r) is NaN, Dice is 0
    summary, per_class = scores_from_counts(np.array([5, 0]), np.array([3, 2]), np.array([2, 3]))
    assert math.isnan(per_class["Fscore"][1]) and per_class["Dice"][1] == 0.0
    assert summary["mFscore"] == pytest.approx(per_class["Fscore"][0])


def test_dialects_differ_on_absent_classes():
    gt = np.array([[0, 0, 1, 1]])
    pred = np.array([[0, 0, 1, 1]])
    mmseg, _ = semantic_segmentation_scores([gt], [pred], num_classes=4, dialect="mmseg")
    devkit, per_class = semantic_segmentation_scores([gt], [pred], num_classes=4, dialect="ade20k-devkit")
    assert mmseg["mIoU"] == 1.0
    assert devkit["mIoU"] == pytest.approx(0.5, abs=1e-15)
    assert per_class["IoU"].tolist()[2:] == [0.0, 0.0]


# ------------------------------------------------------------------------------------------ errors
def test_size_mismatch_names_the_item():
    metric = METRICS.get("semantic")(num_classes=3)
    sample = Sample("img-42", None, SemanticTarget(np.zeros((4, 5), dtype=np.uint8)))
    with pytest.raises(PredictionError, match="img-42.*shape"):
        metric.update([sample], [SemanticPrediction(np.zeros((5, 4), dtype=np.uint8))])


def test_out_of_range_labels_are_errors():
    metric = SemanticSegmentationMetric(num_classes=3)
    good = np.zeros((2, 2), dtype=np.uint8)
    sample = Sample("img-1", None, SemanticTarget(good))
    with pytest.raises(PredictionError, match="img-1.*outside 0..2 or 255: 3"):
        metric.update([sample], [SemanticPrediction(np.array([[0, 3], [1, 255]], dtype=np.uint8))])
    with pytest.raises(DataError, match="img-1.*target.*7"):
        metric.update([Sample("img-1", None, SemanticTarget(np.full((2, 2), 7)))], [SemanticPrediction(good)])
    with pytest.raises(PredictionError, match="integers"):
        metric.update([sample], [SemanticPrediction(good.astype(np.float32))])
    assert not metric.confusion.any()


def test_ignore_index_must_not_be_a_class():
    with pytest.raises(ValueError):
        SemanticSegmentationMetric(num_classes=300, ignore_index=255)


# -------------------------------------------------------------------------------------- properties
label_maps = st.integers(min_value=1, max_value=6).flatmap(
    lambda n: st.lists(
        st.tuples(st.integers(0, 2**31 - 1), st.integers(1, 12), st.integers(1, 12)), min_size=n, max_size=n
    )
)


def random_pairs(specs, num_classes=5):
    pairs = []
    for seed, h, w in specs:
        rng = np.random.default_rng(seed)
        gt = rng.integers(0, num_classes, size=(h, w))
        gt[rng.random((h, w)) < 0.1] = 255
        pred = np.where(rng.random((h, w)) < 0.6, gt, rng.integers(0, num_classes, size=(h, w)))
        pred[rng.random((h, w)) < 0.05] = 255
        pairs.append((gt, pred))
    return pairs


@settings(max_examples=40, deadline=None)
@given(label_maps, st.randoms(use_true_random=False), st.sampled_from(["mmseg", "ade20k-devkit"]))
def test_order_and_chunking_do_not_matter(specs, random, dialect):
    pairs = random_pairs(specs)
    whole = SemanticSegmentationMetric(5, dialect=dialect)
    whole.update_arrays(*zip(*pairs))
    shuffled = list(pairs)
    random.shuffle(shuffled)
    cut = random.randint(0, len(shuffled))
    first, second = SemanticSegmentationMetric(5, dialect=dialect), SemanticSegmentationMetric(5, dialect=dialect)
    if cut:
        first.update_arrays(*zip(*shuffled[:cut]))
    if cut < len(shuffled):
        second.update_arrays(*zip(*shuffled[cut:]))
    first.merge_state(second.state_dict())
    np.testing.assert_array_equal(first.confusion, whole.confusion)
    assert first.compute().metrics == pytest.approx(whole.compute().metrics, nan_ok=True)


@settings(max_examples=30, deadline=None)
@given(label_maps)
def test_perfect_predictions_score_one(specs):
    pairs = [(gt, gt) for gt, _ in random_pairs(specs)]
    summary, _ = semantic_segmentation_scores(*zip(*pairs), num_classes=5)
    if any((gt != 255).any() for gt, _ in pairs):
        for key in ("mIoU", "mAcc", "aAcc", "mDice", "mFscore"):
            assert summary[key] == 1.0, key
