"""Finite but absurd coordinates must not become an infinite MPJPE on the leaderboard: the squared error of a
joint at 1e300 overflows float64, so the prediction is refused in one line (found by tests/hostile/test_fuzz.py)."""
import numpy as np
import pytest

from harness.core.errors import PredictionError
from harness.core.structures import KeypointsPrediction, KeypointsTarget, Sample
from harness.metrics.pose import MPJPEMetric


def person(value: float) -> tuple[Sample, KeypointsPrediction]:
    gt = np.zeros((1, 3, 3))
    gt[..., 2] = 2
    gt[0, :, 0] = [1, 2, 3]
    target = KeypointsTarget(image_id=1, width=10, height=10, boxes=np.array([[0, 0, 5, 5.0]]), keypoints=gt,
                             areas=np.array([25.0]), iscrowd=np.zeros(1, bool), num_keypoints=np.array([3]),
                             ann_ids=np.array([1]))
    prediction = KeypointsPrediction(keypoints=np.full((1, 3, 3), value), scores=np.ones(1),
                                     boxes=np.array([[0, 0, 5, 5.0]]))
    return Sample(sample_id=7, image_path=None, target=target), prediction


def test_an_overflowing_error_is_refused_naming_the_item():
    sample, prediction = person(1e300)
    with pytest.raises(PredictionError, match=r"item 7: predicted keypoints too far away to score"):
        MPJPEMetric().update([sample], [prediction])


def test_a_large_but_representable_error_is_scored():
    sample, prediction = person(1e150)  # squares to 1e300: finite
    metric = MPJPEMetric()
    metric.update([sample], [prediction])
    assert np.isfinite(metric.compute().metrics["MPJPE"])
