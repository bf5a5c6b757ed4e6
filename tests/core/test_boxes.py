"""Boxes carry their convention; ``to`` is the one conversion.  Expected corners derived by hand below."""
from __future__ import annotations

import numpy as np
import pytest

from harness.core.boxes import Boxes, BoxMode


def test_one_box_in_every_convention() -> None:
    # x=10, y=20, w=30, h=40 covers [10, 40) x [20, 60) continuously.
    # XYXY: the continuous corners (10, 20, 40, 60).  VOC devkit: 1-based pixel indices of the first and last
    # pixel, pixel i covering [i - 1, i): first = 10 + 1 = 11, last = 40 (covers [39, 40)) -> (11, 21, 40, 60).
    # mmdet VOC: 0-based inclusive corners -> (10, 20, 39, 59).
    box = Boxes(np.array([[10.0, 20.0, 30.0, 40.0]]), BoxMode.XYWH)
    assert box.to(BoxMode.XYXY).array.tolist() == [[10, 20, 40, 60]]
    assert box.to(BoxMode.VOC_DEVKIT).array.tolist() == [[11, 21, 40, 60]]
    assert box.to(BoxMode.MMDET_VOC).array.tolist() == [[10, 20, 39, 59]]
    # a single VOC pixel (1, 1, 1, 1) is the unit square at the origin: the +1 applied exactly once
    assert Boxes(np.array([1, 1, 1, 1]), BoxMode.VOC_DEVKIT).xywh().tolist() == [[0, 0, 1, 1]]
    for mode in BoxMode:
        assert box.to(mode).xywh().tolist() == [[10, 20, 30, 40]]
        assert box.to(mode).mode is mode


def test_devkit_round_trip_is_exact_for_model_outputs() -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 500, (1000, 2)).astype(np.float32)
    wh = rng.uniform(0.5, 300, (1000, 2)).astype(np.float32)
    boxes = Boxes(np.concatenate([xy, wh], axis=1), BoxMode.XYWH)
    np.testing.assert_array_equal(boxes.to(BoxMode.VOC_DEVKIT).xywh(), boxes.array)
    np.testing.assert_allclose(boxes.to(BoxMode.XYXY).xywh(), boxes.array, rtol=0, atol=1e-12)


def test_shapes() -> None:
    assert len(Boxes(np.zeros((0,)), BoxMode.XYWH)) == 0 and Boxes(np.zeros(0), BoxMode.XYWH).array.shape == (0, 4)
    box = Boxes(np.ones((2, 4)), BoxMode.XYXY)
    assert box.to(BoxMode.XYXY) is box
    with pytest.raises(ValueError, match=r"boxes must be \(N, 4\)"):
        Boxes(np.ones((2, 3)), BoxMode.XYWH)
