"""PCK, MPII PCKh (both dialects) and MPJPE / PA-MPJPE / N-MPJPE: closed-form cases and properties."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from harness.core.errors import DataError, PredictionError
from harness.metrics import METRICS
from harness.metrics.pose import (
    MPII_JOINTS,
    MPJPEMetric,
    PCKMetric,
    head_sizes,
    mpii_pckh,
    mpjpe,
    n_mpjpe,
    pa_mpjpe,
    pck,
)
from harness.core.structures import KeypointsPrediction, KeypointsTarget, Sample

J = {name: i for i, name in enumerate(MPII_JOINTS)}


# ------------------------------------------------------------------------------------------------ PCK
def test_pck_closed_form():
    gt = np.zeros((1, 4, 2))
    pred = np.array([[[4.0, 0], [5.0, 0], [0, 6.0], [50.0, 50]]])
    mask = np.array([[True, True, True, False]])  # the far-off last joint is unlabelled
    per_joint, mean = pck(pred, gt, mask, norm=np.array([100.0]), alpha=0.05)
    # 4/100 < .05 yes; 5/100 < .05 no (strict, as mmpose); 6/100 no; joint 3 never scored
    assert per_joint[:3].tolist() == [1.0, 0.0, 0.0] and math.isnan(per_joint[3])
    assert mean == pytest.approx(1 / 3)


def keypoint_sample(item, gt_xy, labelled, boxes, crowd=None):
    n, k = labelled.shape
    keypoints = np.concatenate([gt_xy, np.where(labelled, 2, 0)[..., None]], axis=-1)
    target = KeypointsTarget(
        image_id=1, width=640, height=480, boxes=np.asarray(boxes, dtype=float), keypoints=keypoints,
        areas=np.ones(n), iscrowd=np.zeros(n, dtype=bool) if crowd is None else np.asarray(crowd),
        num_keypoints=labelled.sum(axis=1), ann_ids=np.arange(n),
    )
    return Sample(item, None, target)


def prediction(xy):
    xy = np.asarray(xy, dtype=float)
    return KeypointsPrediction(np.concatenate([xy, np.ones(xy.shape[:2] + (1,))], axis=-1),
                               np.ones(len(xy)), np.zeros((len(xy), 4)))


def test_pck_wrapper_uses_box_long_side_and_skips_crowds():
    gt = np.zeros((2, 2, 2))
    labelled = np.ones((2, 2), dtype=bool)
    sample = keypoint_sample("im", gt, labelled, [[0, 0, 40, 100], [0, 0, 10, 10]], crowd=[False, True])
    pred = np.array([[[9.0, 0], [11.0, 0]], [[99.0, 99], [99.0, 99]]])  # crowd person's junk ignored
    metric = METRICS.get("pck")(alpha=0.1)
    metric.update([sample], [prediction(pred)])
    result = metric.compute()
    assert result.per_class["PCK@0.1"] == {"0": 1.0, "1": 0.0}  # 9/100 < .1, 11/100 not
    assert result.metrics["PCK@0.1"] == 0.5


def test_predictions_for_the_prompted_people_pair_with_them_in_order():
    gt = np.array([[[0.0, 0], [0, 0]], [[5.0, 5], [6, 6]], [[50.0, 50], [60, 60]]])
    labelled = np.ones((3, 2), dtype=bool)
    sample = keypoint_sample("im", gt, labelled, [[0, 0, 9, 9], [0, 0, 100, 100], [0, 0, 100, 100]],
                             crowd=[True, False, False])
    metric = METRICS.get("pck")(alpha=0.1)
    metric.update([sample], [prediction(gt[1:] + 1.0)])  # one prediction per non-crowd person
    assert metric.compute().metrics["PCK@0.1"] == 1.0
    with pytest.raises(PredictionError, match="do not pair one-to-one"):
        metric.update([sample], [prediction(gt[:1])])


def test_pairing_errors_name_the_item():
    sample = keypoint_sample("img-9", np.zeros((2, 3, 2)), np.ones((2, 3), dtype=bool), np.ones((2, 4)))
    with pytest.raises(PredictionError, match="img-9.*pair"):
        PCKMetric().update([sample], [prediction(np.zeros((1, 3, 2)))])
    with pytest.raises(PredictionError, match="img-9.*non-finite"):
        MPJPEMetric().update([sample], [prediction(np.full((2, 3, 2), np.nan))])


# ----------------------------------------------------------------------------------------------- PCKh
def mpii_person(offsets: dict[str, tuple[float, float]] | None = None):
    gt = np.arange(32, dtype=float).reshape(1, 16, 2) * 10
    pred = gt.copy()
    for name, offset in (offsets or {}).items():
        pred[0, J[name]] += offset
    return pred, gt


HEAD_BOX = np.array([[[0.0, 0.0], [30.0, 40.0]]])  # diagonal 50 -> head size 30


def test_head_size_is_point_six_of_the_diagonal():
    assert head_sizes(HEAD_BOX).tolist() == [30.0]
    assert head_sizes(np.array([[0.0, 0, 30, 40]])).tolist() == [30.0]


def test_pckh_threshold_boundary_and_head_definition():
    # head top exactly 0.5 head sizes away (15 px), upper neck exact
    pred, gt = mpii_person({"head_top": (0.0, 15.0)})
    present = np.ones((1, 16), dtype=bool)
    official, joints = mpii_pckh(pred, gt, present, HEAD_BOX)
    assert joints["head_top"] == 1.0  # 15 / 30 <= 0.5
    assert official["Head"] == 1.0 and official["PCKh@0.5"] == 1.0
    # mmpose: adds 1 to predictions, so shift the prediction back to keep the distance at 15 px
    mm, mm_joints = mpii_pckh(pred - 1.0, gt, present, HEAD_BOX, dialect="mmpose")
    assert mm_joints["head_top"] == 0.0  # 0.5 < 0.5 is false
    assert mm["Head"] == 0.0  # head top only
    # official Head averages upper neck (right) and head top: move the head top further out
    pred, gt = mpii_person({"head_top": (0.0, 16.0)})
    official, _ = mpii_pckh(pred, gt, present, HEAD_BOX)
    assert official["Head"] == 0.5
    assert official["PCKh@0.5"] == pytest.approx(13 / 14)


def test_pckh_mmpose_offsets_predictions_by_one_pixel():
    pred, gt = mpii_person()
    present = np.ones((1, 16), dtype=bool)
    official, _ = mpii_pckh(pred, gt, present, HEAD_BOX)
    mm, _ = mpii_pckh(pred, gt, present, HEAD_BOX, dialect="mmpose")
    assert official["PCKh@0.1"] == 1.0
    # every joint is sqrt(2) px off after +1: sqrt(2)/30 = .047 -> still within 0.1, outside 0.03
    assert mm["PCKh@0.1"] == 1.0
    assert mm["AUC"] < official["AUC"] == 1.0


def test_pckh_mean_excludes_pelvis_and_thorax_and_skips_missing_joints():
    pred, gt = mpii_person({"pelvis": (100.0, 0), "thorax": (100.0, 0), "l_ankle": (100.0, 0)})
    present = np.ones((1, 16), dtype=bool)
    table, joints = mpii_pckh(pred, gt, present, HEAD_BOX)
    assert joints["pelvis"] == 0.0 and table["PCKh@0.5"] == pytest.approx(13 / 14)
    assert table["Ankle"] == 0.5
    present[0, J["l_ankle"]] = False  # missing in the GT: skipped, not wrong
    table, joints = mpii_pckh(pred, gt, present, HEAD_BOX)
    assert table["PCKh@0.5"] == 1.0 and math.isnan(joints["l_ankle"])


def test_pckh_missing_prediction_is_wrong():
    pred, gt = mpii_person()
    pred[0, J["r_wrist"]] = np.nan
    table, joints = mpii_pckh(pred, gt, np.ones((1, 16), dtype=bool), HEAD_BOX)
    assert joints["r_wrist"] == 0.0 and table["Wrist"] == 0.5


def test_pckh_auc_closed_form():
    # every joint exactly 0.25 head sizes off: the mean curve is 0 below 0.25 and 1 from 0.25 on (the
    # MATLAB range holds 0.25 exactly as its midpoint); on x = t / 0.5 the area is 0.5 + 0.02 / 2
    pred, gt = mpii_person({name: (7.5, 0.0) for name in MPII_JOINTS})
    table, _ = mpii_pckh(pred, gt, np.ones((1, 16), dtype=bool), HEAD_BOX)
    assert table["AUC"] == pytest.approx(0.51, abs=1e-12)
    assert table["PCKh@0.5"] == 1.0 and table["PCKh@0.1"] == 0.0


def test_mpii_metric_reads_head_boxes_from_the_target_and_compares_in_one_based_pixels():
    # head box [x, y, w, h] = [0, 0, 30, 40]: diagonal 50, head size 0.6 * 50 = 30 px.  Head top 15 px off =
    # exactly 0.5 head sizes: right under the toolkit's <=, wrong under mmpose's <.  The prediction and the GT
    # both get +1 (0-based -> the toolkit's 1-based), which moves no distance here: all values are integers.
    pred, gt = mpii_person({"head_top": (0.0, 15.0)})
    sample = keypoint_sample("mpii-1", gt, np.ones((1, 16), dtype=bool), np.ones((1, 4)))
    sample.target.head_boxes = np.array([[0.0, 0, 30, 40]])
    metric = METRICS.get("mpii_pckh")()
    metric.update([sample], [prediction(pred)])
    result = metric.compute()
    assert result.metrics["Head"] == 1.0 and result.metrics["PCKh@0.5"] == 1.0
    assert list(result.metrics) == ["PCKh@0.5", "PCKh@0.1", "AUC", "Head", "Shoulder", "Elbow", "Wrist", "Hip",
                                    "Knee", "Ankle"]
    assert result.per_class["PCKh@0.5"]["head_top"] == 1.0 and result.per_class["PCKh@0.1"]["head_top"] == 0.0
    mmpose = METRICS.get("mpii_pckh")(dialect="mmpose")
    mmpose.update([sample], [prediction(pred)])  # no extra pixel: the +1 is the 0-based -> 1-based step itself
    assert mmpose.compute().per_class["PCKh@0.5"]["head_top"] == 0.0  # 0.5 < 0.5 is false
    sample.target.head_boxes = None
    with pytest.raises(DataError, match="mpii-1.*head_boxes"):
        metric.update([sample], [prediction(pred)])


def test_mpii_metric_refuses_a_dataset_it_cannot_score():
    from harness.core.dataset import DatasetInfo
    from harness.core.errors import BenchError
    from harness.labels.keypoints import COCO_KEYPOINT_NAMES, MPII_KEYPOINT_NAMES

    cls = METRICS.get("mpii_pckh")
    coco = DatasetInfo(name="coco", task="keypoints", split="val", root=Path("."), keypoint_names=COCO_KEYPOINT_NAMES)
    with pytest.raises(BenchError, match="MPII's 16 joints.*17 keypoints"):
        cls.from_dataset(coco)
    no_heads = DatasetInfo(name="mpii", task="keypoints", split="train", root=Path("."),
                           keypoint_names=MPII_KEYPOINT_NAMES, extra={"head_boxes": False})
    with pytest.raises(BenchError, match="no head boxes.*mpii_gt_train.mat"):
        cls.from_dataset(no_heads)
    no_heads.extra["head_boxes"] = True
    assert cls.from_dataset(no_heads, dialect="mmpose").dialect == "mmpose"


# ---------------------------------------------------------------------------------------------- MPJPE
def similarity_copy(gt: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    d = gt.shape[-1]
    if d == 3:
        rotation = Rotation.random(len(gt), random_state=seed).as_matrix()
    else:
        angle = rng.uniform(0, 2 * np.pi, size=len(gt))
        rotation = np.stack([np.stack([np.cos(angle), -np.sin(angle)], -1),
                             np.stack([np.sin(angle), np.cos(angle)], -1)], 1)
    scale = rng.uniform(0.3, 3.0, size=(len(gt), 1, 1))
    shift = rng.normal(size=(len(gt), 1, d)) * 100
    return scale * np.einsum("nij,nkj->nki", rotation, gt) + shift


@pytest.mark.parametrize("dims", [2, 3])
def test_pa_mpjpe_of_a_similarity_copy_is_zero(dims):
    gt = np.random.default_rng(1).normal(size=(5, 17, dims)) * 200
    pred = similarity_copy(gt, seed=2)
    assert mpjpe(pred, gt) > 1.0
    assert pa_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-9)


def test_pa_mpjpe_does_not_reflect():
    gt = np.random.default_rng(3).normal(size=(1, 17, 3))
    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    assert pa_mpjpe(mirrored, gt) > 0.1


def test_mpjpe_and_n_mpjpe_closed_form():
    gt = np.random.default_rng(4).normal(size=(2, 5, 3))
    assert mpjpe(gt + np.array([3.0, 4.0, 0.0]), gt) == pytest.approx(5.0)
    assert n_mpjpe(gt * 2.5, gt) == pytest.approx(0.0, abs=1e-12)
    mask = np.zeros((2, 5), dtype=bool)
    mask[0, :2] = True
    pred = gt.copy()
    pred[0, 0] += [0, 0, 2.0]
    pred[1] += 100.0  # outside the mask
    assert mpjpe(pred, gt, mask) == pytest.approx(1.0)


def test_mpjpe_wrapper_fits_alignment_on_labelled_joints_only():
    gt = np.random.default_rng(5).normal(size=(1, 17, 2)) * 50 + 200
    labelled = np.ones((1, 17), dtype=bool)
    labelled[0, 12:] = False
    gt_stored = np.where(labelled[..., None], gt, 0.0)  # COCO stores unlabelled joints as (0, 0)
    pred = similarity_copy(gt, seed=6)
    pred[0, 12:] = 1e4  # junk where nothing is labelled
    metric = METRICS.get("mpjpe")()
    metric.update([keypoint_sample("p", gt_stored, labelled, [[0, 0, 100, 100]])], [prediction(pred)])
    result = metric.compute()
    assert result.metrics["PA-MPJPE"] == pytest.approx(0.0, abs=1e-9)
    assert result.metrics["MPJPE"] == pytest.approx(float(np.linalg.norm(pred - gt, axis=-1)[labelled].mean()))
    assert result.settings["joints"] == 12


# ------------------------------------------------------------------------------------------ properties
people = st.tuples(st.integers(0, 10_000), st.integers(1, 6))


def random_keypoint_samples(seed: int, count: int):
    rng = np.random.default_rng(seed)
    samples, predictions = [], []
    for index in range(count):
        n = int(rng.integers(1, 4))
        gt = rng.uniform(0, 300, size=(n, 17, 2))
        labelled = rng.random((n, 17)) < 0.8
        boxes = np.concatenate([gt.min(axis=1), np.ptp(gt, axis=1)], axis=1)
        samples.append(keypoint_sample(index, gt, labelled, boxes, crowd=rng.random(n) < 0.2))
        predictions.append(prediction(gt + rng.normal(scale=8, size=gt.shape)))
    return samples, predictions


@settings(max_examples=30, deadline=None)
@given(people, st.randoms(use_true_random=False))
def test_merge_state_matches_one_stream(spec, random):
    samples, predictions = random_keypoint_samples(*spec)
    cut = random.randint(0, len(samples))
    for name, kwargs in (("pck", {"alpha": 0.05}), ("mpjpe", {})):
        whole = METRICS.get(name)(**kwargs)
        whole.update(samples, predictions)
        first, second = METRICS.get(name)(**kwargs), METRICS.get(name)(**kwargs)
        first.update(samples[:cut], predictions[:cut])
        second.update(samples[cut:], predictions[cut:])
        first.merge_state(second.state_dict())
        assert first.compute().metrics == pytest.approx(whole.compute().metrics, nan_ok=True, rel=1e-12)
        order = list(range(len(samples)))
        random.shuffle(order)
        shuffled = METRICS.get(name)(**kwargs)
        shuffled.update([samples[i] for i in order], [predictions[i] for i in order])
        assert shuffled.compute().metrics == pytest.approx(whole.compute().metrics, nan_ok=True, rel=1e-12)


@settings(max_examples=30, deadline=None)
@given(people)
def test_perfect_predictions(spec):
    samples, _ = random_keypoint_samples(*spec)
    perfect = [prediction(s.target.keypoints[..., :2]) for s in samples]
    pck_metric, mpjpe_metric = PCKMetric(), MPJPEMetric()
    pck_metric.update(samples, perfect)
    mpjpe_metric.update(samples, perfect)
    if any(row[3] for row in mpjpe_metric.per_sample):
        assert pck_metric.compute().metrics["PCK@0.05"] == 1.0
        assert mpjpe_metric.compute().metrics["MPJPE"] == 0.0
        assert mpjpe_metric.compute().metrics["PA-MPJPE"] == pytest.approx(0.0, abs=1e-9)
