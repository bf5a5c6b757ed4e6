"""Bootstrap by reuse for the count and sum metrics (semantic, PCK, PCKh, MPJPE, flow): each metric's fast
``resampled`` equals, exactly, scoring a fresh metric on the resampled sample list (copies side by side)."""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

from harness.core.metric import Metric, resample_counts, weighted_counts, weighted_fsum
from harness.metrics.flow import FlowMetric
from harness.metrics.pose import MPJPEMetric, MpiiPCKhMetric, PCKMetric
from harness.metrics.semantic import SemanticSegmentationMetric
from harness.core.structures import (
    FlowPrediction, FlowTarget, KeypointsPrediction, KeypointsTarget, Sample, SemanticPrediction, SemanticTarget,
)


def _semantic(rng: np.random.Generator, n: int):
    samples, predictions = [], []
    for i in range(n):
        shape = tuple(rng.integers(4, 9, 2))
        gt = rng.integers(0, 5, shape)
        gt[rng.random(shape) < 0.1] = 255
        pred = np.where(rng.random(shape) < 0.7, np.where(gt == 255, 0, gt), rng.integers(0, 5, shape))
        samples.append(Sample(sample_id=i, image_path=None, target=SemanticTarget(label_map=gt)))
        predictions.append(SemanticPrediction(label_map=pred))
    return samples, predictions


def _people(rng: np.random.Generator, n: int, joints: int, head_boxes: bool = False):
    samples, predictions = [], []
    for i in range(n):
        people = int(rng.integers(1, 4))
        xy = rng.uniform(0, 100, (people, joints, 2))
        visible = (rng.random((people, joints)) < 0.8).astype(np.float64)
        boxes = np.concatenate([xy.min(axis=1), np.ptp(xy, axis=1) + 1], axis=1)
        target = KeypointsTarget(
            image_id=i, width=100, height=100, boxes=boxes, keypoints=np.concatenate([xy, visible[..., None]], 2),
            areas=boxes[:, 2] * boxes[:, 3], iscrowd=np.zeros(people, bool),
            num_keypoints=visible.sum(axis=1).astype(int), ann_ids=np.arange(people))
        if head_boxes:  # MPII: one xywh head box per person
            target.head_boxes = np.concatenate([xy[:, 9] - 8, np.full((people, 2), 16.0)], axis=1)
        pred = xy + rng.normal(0, 4, xy.shape)
        samples.append(Sample(sample_id=i, image_path=None, target=target))
        predictions.append(KeypointsPrediction(keypoints=np.concatenate([pred, np.ones((people, joints, 1))], 2),
                                               scores=np.ones(people), boxes=boxes))
    return samples, predictions


def _flow(rng: np.random.Generator, n: int):
    samples, predictions = [], []
    for i in range(n):
        shape = tuple(rng.integers(3, 7, 2))
        gt = rng.normal(0, 20, shape + (2,)).astype(np.float32)
        valid = rng.random(shape) < 0.8
        if i % 5 == 0:
            valid[:] = False  # an image without valid pixels is no unit of the per-image mean
        target = FlowTarget(flow=gt, valid=valid, occluded=rng.random(shape) < 0.3,
                            out_of_frame=rng.random(shape) < 0.1)
        samples.append(Sample(sample_id=i, image_path=None, target=target))
        predictions.append(FlowPrediction(flow=(gt + rng.normal(0, 3, gt.shape)).astype(np.float32)))
    return samples, predictions


CASES: dict[str, tuple[Callable[[], Metric], Callable]] = {
    "semantic-mmseg": (lambda: SemanticSegmentationMetric(5), _semantic),
    "semantic-devkit": (lambda: SemanticSegmentationMetric(5, dialect="ade20k-devkit"), _semantic),
    "pck": (lambda: PCKMetric(alpha=0.1), lambda rng, n: _people(rng, n, 17)),
    "mpjpe": (MPJPEMetric, lambda rng, n: _people(rng, n, 17)),
    "pckh": (MpiiPCKhMetric, lambda rng, n: _people(rng, n, 16, head_boxes=True)),
    "pckh-mmpose": (lambda: MpiiPCKhMetric("mmpose"), lambda rng, n: _people(rng, n, 16, head_boxes=True)),
    "flow-pixels": (FlowMetric, _flow),
    "flow-per-image": (lambda: FlowMetric(averaging="per-image"), _flow),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_resampling_by_reuse_equals_scoring_the_resampled_list(case: str, seed: int) -> None:
    make, data = CASES[case]
    rng = np.random.default_rng(seed)
    samples, predictions = data(rng, 23)
    metric = make()
    for start in range(0, len(samples), 4):  # batched, as a run feeds it
        metric.update(samples[start:start + 4], predictions[start:start + 4])
    counts = resample_counts(len(samples), 12, seed)
    fast = metric.resampled(counts)
    assert set(fast) == set(metric.compute().metrics)
    for row, count in enumerate(counts):
        positions = np.repeat(np.arange(len(samples)), count)
        slow = make()
        slow.update([samples[p] for p in positions], [predictions[p] for p in positions])
        for name, value in slow.compute().metrics.items():
            assert np.array_equal(fast[name][row], value, equal_nan=True), (name, row, fast[name][row], value)
    # every sample once reproduces the metric itself
    once = metric.resampled(np.ones((1, len(samples)), dtype=np.int64))
    for name, value in metric.compute().metrics.items():
        assert np.array_equal(once[name][0], value, equal_nan=True), name
    intervals = metric.bootstrap(len(samples), 50, seed=seed)
    assert intervals and all(lo <= hi for lo, hi in intervals.values())


def test_weighted_helpers_are_exact() -> None:
    values = np.array([1e16, 1.0, -1e16, 0.1, 0.2])
    counts = np.array([[1, 3, 1, 2, 0], [0, 0, 0, 0, 0], [2, 1, 1, 1, 1]])
    import math

    expected = [math.fsum(np.repeat(values, row)) for row in counts]
    assert weighted_fsum(values, counts).tolist() == expected  # 3.2 exactly, not lost to 1e16's rounding
    per_sample = np.array([[[3, 4]], [[5, 6]], [[0, 1]], [[2**40, 7]], [[1, 1]]])
    np.testing.assert_array_equal(weighted_counts(per_sample, counts),
                                  np.einsum("rs,sij->rij", counts, per_sample))
