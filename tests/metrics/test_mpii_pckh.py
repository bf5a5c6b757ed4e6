"""MPII PCKh through the dataset reader, the protocol and the metric: a case counted by hand, and the embedded data
against the toolkit's formula written out here (evaluatePCKh.m is MATLAB-only, so no installed oracle exists)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.io

from harness.tasks import get_task
from harness.datasets import DATASETS
from harness.datasets.mpii import Mpii
from harness.metrics.matlab import colon
from harness.core.structures import KeypointsPrediction
from tests.datasets.mpii_files import write_root

J = {name: i for i, name in enumerate((
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax",
    "upper_neck", "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist"))}

# Two people in one image, 1-based as in the .mat.  Head boxes (made up): A [[11, 21], [41, 61]] -> w 30, h 40,
# diagonal 50, head size 0.6 * 50 = 30 px (0.5 -> 15 px, 0.1 -> 3 px); B [[101, 1], [113, 17]] -> 12 x 16,
# diagonal 20, head size 12 px (0.5 -> 6 px, 0.1 -> 1.2 px).  B's left ankle is missing from the ground truth.
GT_A = np.array([[20.0 + j, 30.0 + 2 * j] for j in range(16)])
GT_B = np.array([[100.0 + j, 5.0 + j] for j in range(16)])
HEAD_BOXES = np.array([[[11.0, 21.0], [41.0, 61.0]], [[101.0, 1.0], [113.0, 17.0]]])
# prediction offsets in pixels (whole numbers, so every distance below is exact)
OFFSETS_A = {
    "r_ankle": (15, 0),      # 15/30 = 0.5   right at 0.5 (<=), wrong at 0.1
    "r_knee": (0, 15),       # 0.5           right at 0.5, wrong at 0.1
    "r_hip": (0, 16),        # 0.533         wrong
    "l_hip": (3, 0),         # 0.1           right at 0.5 and at 0.1 (<=)
    "l_ankle": (30, 40),     # 50/30         wrong
    "pelvis": (100, 0),      # wrong, but pelvis is not in the mean
    "upper_neck": (0, 3),    # 0.1           right at both
    "head_top": (0, -15),    # 0.5           right at 0.5
    "r_wrist": (0, 4),       # 0.133         right at 0.5
    "r_elbow": (20, 0),      # 0.667         wrong
    "r_shoulder": (6, 8),    # 10/30 = 0.333 right at 0.5
    "l_elbow": (-15, 0),     # 0.5           right at 0.5
    "l_wrist": (np.nan, np.nan),  # no prediction: wrong, as the toolkit counts NaN
}                            # l_knee, thorax, l_shoulder: exact (distance 0)
OFFSETS_B = {
    "r_ankle": (6, 0),       # 6/12 = 0.5    right at 0.5
    "r_knee": (0, 7),        # 0.583         wrong
    "r_hip": (1, 1),         # 1.414/12 = 0.118: right at 0.5, wrong at 0.1
    "l_ankle": (50, 50),     # missing from the GT: not scored at all
}                            # every other joint exact
#
# Scored joints of the mean (pelvis and thorax excluded): A 14, B 13 (no left ankle) = 27.
# Right at 0.5: A 14 - 4 (r_hip, l_ankle, r_elbow, l_wrist) = 10; B 13 - 1 (r_knee) = 12  -> PCKh@0.5 = 22/27.
# Right at 0.1: A l_hip, l_knee, upper_neck, l_shoulder = 4; B 13 - 3 (r_ankle, r_knee, r_hip) = 10 -> 14/27.
# Parts at 0.5 (each joint's ratio over the people scoring it, then left/right averaged):
#   Head = (upper_neck 2/2 + head_top 2/2) / 2 = 1;  Shoulder = 1;  Elbow = (r 1/2 + l 2/2) / 2 = 0.75;
#   Wrist = (r 2/2 + l 1/2) / 2 = 0.75;  Hip = (r 1/2 + l 2/2) / 2 = 0.75;  Knee = (r 1/2 + l 2/2) / 2 = 0.75;
#   Ankle = (r 2/2 + l 0/1) / 2 = 0.5.
# AUC: the 27 normalised distances are 0 (x12), 0.1 (x2), 0.118, 0.133, 0.333, 0.5 (x5) and > 0.5 (x5), so the
# mean curve over t = 0, 0.01, ..., 0.5 counts 12 for t < 0.10; 14 at 0.10-0.11; 15 at 0.12-0.13; 16 at
# 0.14-0.33; 17 at 0.34-0.49; 22 at 0.5.  Trapezoid on x = t / 0.5 (steps of 0.02):
#   0.02 * (10*12 + 2*14 + 2*15 + 20*16 + 16*17 + 22 - (12 + 22) / 2) / 27 = 0.02 * 775 / 27 = 15.5 / 27.
# mmpose (< instead of <=, Head = head top): the five distances of exactly 0.5 and the two of exactly 0.1 turn
# wrong: PCKh@0.5 = 17/27, PCKh@0.1 = 12/27, Head = head top (A wrong, B right) = 0.5.
HAND = {"PCKh@0.5": 22 / 27, "PCKh@0.1": 14 / 27, "AUC": 15.5 / 27, "Head": 1.0, "Shoulder": 1.0, "Elbow": 0.75,
        "Wrist": 0.75, "Hip": 0.75, "Knee": 0.75, "Ankle": 0.5}
HAND_MMPOSE = {"PCKh@0.5": 17 / 27, "PCKh@0.1": 12 / 27, "Head": 0.5}


def offsets(table: dict[str, tuple[float, float]]) -> np.ndarray:
    moved = np.zeros((16, 2))
    for name, offset in table.items():
        moved[J[name]] = offset
    return moved


@pytest.fixture
def hand_case(tmp_path):
    present = np.ones((2, 16), bool)
    present[1, J["l_ankle"]] = False
    root = write_root(tmp_path / "mpii", ["000000001.jpg"] * 2, np.stack([GT_A, GT_B]), present, HEAD_BOXES)
    dataset = Mpii(root, "val")
    (sample,) = list(dataset)
    # the model's predictions are 0-based, like the samples: the .mat's value - 1, moved by the offsets
    xy = np.stack([GT_A, GT_B]) - 1.0 + np.stack([offsets(OFFSETS_A), offsets(OFFSETS_B)])
    prediction = KeypointsPrediction(keypoints=np.concatenate([xy, np.ones((2, 16, 1))], axis=-1),
                                     scores=np.ones(2), boxes=sample.prompts.boxes)
    return dataset, sample, prediction


def score(dataset, samples, predictions, dialect=None):
    metrics = get_task("keypoints").metrics(dataset.info, dialect)
    assert [metric.name for metric in metrics] == ["mpii_pckh"]  # the MPII protocol replaces COCO OKS
    metrics[0].update(samples, predictions)
    return metrics[0].compute()


def test_pckh_counted_by_hand(hand_case):
    dataset, sample, prediction = hand_case
    result = score(dataset, [sample], [prediction])
    assert list(result.metrics) == list(HAND)
    for name, value in HAND.items():
        assert result.metrics[name] == pytest.approx(value, abs=1e-12), name
    per_joint = result.per_class["PCKh@0.5"]
    assert per_joint["pelvis"] == 0.5 and per_joint["thorax"] == 1.0 and per_joint["l_ankle"] == 0.0
    assert result.per_class["PCKh@0.1"]["r_hip"] == 0.0 and result.settings["dialect"] == "official"


def test_pckh_mmpose_dialect_counted_by_hand(hand_case):
    dataset, sample, prediction = hand_case
    result = score(dataset, [sample], [prediction], dialect="mmpose")
    for name, value in HAND_MMPOSE.items():
        assert result.metrics[name] == pytest.approx(value, abs=1e-12), name


def test_pckh_does_not_depend_on_batching_or_sample_order(bench_cache):
    dataset = DATASETS.get("mpii")(None, None, "keypoints")
    samples = list(dataset)
    predictions = [jittered(sample, seed=sample.sample_id) for sample in samples]
    whole = score(dataset, samples, predictions)
    reversed_order = get_task("keypoints").metrics(dataset.info)[0]
    for sample, prediction in reversed(list(zip(samples, predictions))):
        reversed_order.update([sample], [prediction])
    assert reversed_order.compute().metrics == whole.metrics


def jittered(sample, seed: int, scale: float = 0.35) -> KeypointsPrediction:
    """GT moved by a random fraction of each person's head size (about 0..0.7 head sizes), 0-based."""
    rng = np.random.default_rng(seed)
    target = sample.target
    head = 0.6 * np.hypot(target.head_boxes[:, 2], target.head_boxes[:, 3])
    xy = target.keypoints[..., :2] + rng.normal(0, scale, target.keypoints.shape[:2] + (2,)) * head[:, None, None]
    return KeypointsPrediction(keypoints=np.concatenate([xy, np.ones(xy.shape[:2] + (1,))], axis=-1),
                               scores=np.ones(len(xy)), boxes=sample.prompts.boxes)


def toolkit_pckh(pos_pred_src: np.ndarray, gt_mat: str) -> dict[str, float]:
    """evaluatePCKh.m's arithmetic, written out from the toolkit's description on the raw .mat arrays."""
    gt = scipy.io.loadmat(gt_mat)
    visible = 1 - gt["jnt_missing"]                                             # 16 x N
    err = np.linalg.norm(pos_pred_src - gt["pos_gt_src"], axis=1)                # 16 x N
    heads = 0.6 * np.linalg.norm(gt["headboxes_src"][1] - gt["headboxes_src"][0], axis=0)
    scaled = err / heads[None, :]
    mean_joints = [j for j in range(16) if j not in (6, 7)]

    def mean_at(t: float) -> float:
        ok = (scaled <= t) & (visible == 1)
        return ok[mean_joints].sum() / visible[mean_joints].sum()

    thresholds = colon(0.0, 0.01, 0.5)
    curve = np.array([mean_at(t) for t in thresholds])
    return {"PCKh@0.5": mean_at(0.5), "PCKh@0.1": mean_at(0.1),
            "AUC": float(np.trapezoid(curve, thresholds / 0.5))}


def test_embedded_mpii_against_the_toolkit_formula(bench_cache):
    dataset = DATASETS.get("mpii")(None, None, "keypoints")
    samples = list(dataset)
    perfect = [KeypointsPrediction(keypoints=s.target.keypoints.copy(), scores=np.ones(len(s.target.ann_ids)),
                                   boxes=s.prompts.boxes) for s in samples]
    result = score(dataset, samples, perfect)
    assert all(value == 1.0 for value in result.metrics.values())  # distance 0 <= every threshold, 0 included
    predictions = [jittered(sample, seed=sample.sample_id) for sample in samples]
    result = score(dataset, samples, predictions)
    pos_pred_src = np.zeros((16, 2, dataset.info.extra["people"]))
    for sample, prediction in zip(samples, predictions):
        pos_pred_src[:, :, sample.target.ann_ids] = np.transpose(prediction.keypoints[..., :2] + 1.0, (1, 2, 0))
    expected = toolkit_pckh(pos_pred_src, dataset.info.extra["gt_mat"])
    assert 0.3 < expected["PCKh@0.5"] < 0.9  # a case where thresholds matter
    for name, value in expected.items():
        assert result.metrics[name] == pytest.approx(value, abs=1e-12), name
    assert not math.isnan(result.metrics["Ankle"])
