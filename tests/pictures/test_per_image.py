"""Per-image results on hand-built images whose numbers are worked out in the comments."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from harness.publish.pictures.build import select_gallery
from harness.publish.pictures.collect import Pair
from harness.publish.pictures.per_image import per_image
from harness.core.structures import (DetectionPrediction, DetectionTarget, FlowPrediction, FlowTarget, Sample,
                                SemanticPrediction, SemanticTarget)


def det_pair(sample_id, gt, preds):
    target = DetectionTarget(image_id=sample_id, width=100, height=100,
                             boxes=np.array([b for b, _ in gt], float).reshape(-1, 4),
                             labels=np.array([c for _, c in gt], int), areas=np.ones(len(gt)),
                             iscrowd=np.zeros(len(gt), bool))
    prediction = DetectionPrediction(boxes=np.array([b for b, _, _ in preds], float).reshape(-1, 4),
                                     scores=np.array([s for _, _, s in preds], float),
                                     labels=np.array([c for _, c, _ in preds], int))
    return Pair(Sample(sample_id, None, target), prediction)


INFO = SimpleNamespace(category_ids=[1, 2], classes=["a", "b"], ignore_index=255, sigmas=[], keypoint_names=[])


def test_detection_counts_at_the_f1_threshold():
    # image 1: two objects, hits at 0.9 and 0.8, a false detection at 0.3.
    # image 2: one object missed; false detections at 0.7 (other class, on the object) and 0.2.
    # Sorted scores 0.9 T, 0.8 T, 0.7 F, 0.3 F, 0.2 F with 3 objects: F1 = 2TP / (k + 3) ->
    # k=1: 0.5, k=2: 0.8, k=3: 0.667, k=4: 0.571, k=5: 0.5 -> threshold 0.8.
    a, b = [0, 0, 10, 10], [50, 50, 10, 10]
    pairs = [det_pair(1, [(a, 1), (b, 2)], [(a, 1, 0.9), (b, 2, 0.8), ([80, 80, 5, 5], 1, 0.3)]),
             det_pair(2, [(a, 1)], [(a, 2, 0.7), ([80, 80, 5, 5], 2, 0.2)])]
    result = per_image("detection", INFO, pairs)
    assert result.notes["score_threshold"] == 0.8
    rows = result.table.set_index("image_id")
    assert rows.loc["1", ["tp", "fp", "fn"]].tolist() == [2, 0, 0] and rows.loc["1", "f1"] == 1.0
    assert rows.loc["2", ["tp", "fp", "fn"]].tolist() == [0, 0, 1] and rows.loc["2", "f1"] == 0.0
    # class confusion at the threshold: the two hits on the diagonal, image 2's object counted as missed
    confusion = result.extras["class_confusion"]
    assert confusion[0, 0] == 1 and confusion[1, 1] == 1 and confusion[0, 2] == 1 and confusion.sum() == 3


def test_semantic_per_image_miou_and_accuracy():
    # 2x3 map, 255 ignored: gt [[0,0,1],[1,255,1]], pred [[0,1,1],[1,1,0]] on the 5 valid pixels:
    # class 0: TP 1, FP 1 (the last pixel), FN 1 -> IoU 1/3; class 1: TP 2, FP 1, FN 1 -> IoU 2/4.
    gt = np.array([[0, 0, 1], [1, 255, 1]])
    pred = np.array([[0, 1, 1], [1, 1, 0]])
    pair = Pair(Sample("x", None, SemanticTarget(label_map=gt)), SemanticPrediction(label_map=pred))
    info = SimpleNamespace(classes=["bg", "fg", "unused"], ignore_index=255)
    result = per_image("semantic", info, [pair])
    assert result.table.loc[0, "miou"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert result.table.loc[0, "pixel_accuracy"] == pytest.approx(3 / 5)
    assert result.extras["confusion"].tolist() == [[1, 1, 0], [1, 2, 0], [0, 0, 0]]


def test_flow_per_image_epe_on_valid_pixels():
    gt = np.zeros((2, 2, 2), np.float32)
    pred = np.zeros((2, 2, 2), np.float32)
    pred[0, 0] = (3, 4)  # EPE 5 (an outlier: > 3 px and > 5% of |gt| = 0)
    pred[1, 1] = (0, 9)  # EPE 9 but not valid
    valid = np.array([[True, True], [True, False]])
    pair = Pair(Sample("f", None, FlowTarget(flow=gt, valid=valid)), FlowPrediction(flow=pred))
    row = per_image("flow", None, [pair]).table.loc[0]
    assert row["epe"] == pytest.approx(5 / 3) and row["within_1px"] == pytest.approx(2 / 3)
    assert row["Fl"] == pytest.approx(1 / 3) and row["valid_pixels"] == 3


def test_gallery_takes_the_worst_half_then_a_seeded_sample():
    scores = np.array([0.9, 0.1, 0.5, np.nan, 0.3, 0.8, 0.7, 0.2])
    chosen = select_gallery(scores, True, 4, seed=0)
    assert [i for i, why in chosen if why == "worst"] == [1, 7]  # 0.1 and 0.2; n/a goes last, not first
    assert chosen == select_gallery(scores, True, 4, seed=0) and len({i for i, _ in chosen}) == 4
    assert [i for i, _ in select_gallery(np.array([1.0, 3.0, 2.0]), False, 12, 0)] == [1, 2, 0]  # EPE: worst first
