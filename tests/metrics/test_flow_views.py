"""Without a valid mask, flow sums use flat views instead of boolean-indexed copies; the bits must not move."""
from __future__ import annotations

import numpy as np
import pytest

from harness.metrics.flow import flow_sums


@pytest.mark.parametrize("seed", range(3))
def test_no_mask_equals_an_all_true_mask_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (37, 53)  # odd sizes: pairwise summation blocks do not line up with rows
    gt = rng.normal(0, 30, shape + (2,)).astype(np.float32)
    pred = (gt + rng.normal(0, 5, gt.shape)).astype(np.float32)
    occluded = rng.random(shape) < 0.2
    for extra in ({}, {"occluded": occluded}):
        fast = flow_sums(pred, gt, None, **extra)
        masked = flow_sums(pred, gt, np.ones(shape, dtype=bool), **extra)
        assert fast == masked  # floats compared exactly
