"""Bounds on segmentations before pycocotools: valid masks always pass, and the decoder agrees with the
mask pycocotools itself decodes (an independent oracle: runs of the decoded mask in column-major order)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

from harness.core.errors import PredictionError
from harness.io.validation.coco_geometry import (check_compressed_rles, check_polygons, check_segmentations,
                                              decode_counts)


def runs(mask: np.ndarray) -> list[int]:
    """Run lengths of a binary mask in column-major order, starting with a run of zeros (COCO's RLE)."""
    flat = mask.flatten(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    lengths = np.diff(bounds).tolist()
    return ([0] + lengths) if flat.size and flat[0] == 1 else lengths


def where(i: int) -> str:
    return f"result #{i}"


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(0, 2**32 - 1), st.floats(0.0, 1.0))
def test_decoder_equals_the_runs_of_the_mask_pycocotools_decodes(h, w, seed, density):
    mask = (np.random.default_rng(seed).random((h, w)) < density).astype(np.uint8)
    rle = mask_utils.encode(np.asfortranarray(mask))
    counts = rle["counts"]
    values, owner, problem = decode_counts(counts, np.array([len(counts)]))
    assert problem is None and owner.tolist() == [0] * len(values)
    assert values.tolist() == runs(mask_utils.decode(rle))
    check_compressed_rles([counts.decode()], np.array([h * w]), where, PredictionError, "p.json")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=[chr(c) for c in range(40, 120)], max_size=12), st.integers(1, 12), st.integers(1, 12))
def test_any_string_the_check_accepts_decodes_to_a_mask_of_its_size(counts, h, w):
    """Random strings: refused with PredictionError, or pycocotools decodes them to exactly h*w pixels."""
    try:
        check_compressed_rles([counts], np.array([h * w]), where, PredictionError, "p.json")
    except PredictionError as exc:
        assert str(exc).startswith("p.json: result #0: RLE counts")
        return
    rle = {"size": [h, w], "counts": counts.encode()}
    decoded = mask_utils.decode(rle)
    assert decoded.shape == (h, w)
    assert int(mask_utils.area(rle)) == int(decoded.sum())


def test_many_masks_checked_in_one_pass_name_the_culprit():
    masks = [mask_utils.encode(np.asfortranarray((np.arange(48 * 64).reshape(48, 64) % (k + 2) == 0)
                                                 .astype(np.uint8)))["counts"].decode() for k in range(50)]
    check_compressed_rles(masks, np.full(50, 48 * 64), where, PredictionError, "p.json")
    masks[37] = masks[37][:-1] + "1"
    with pytest.raises(PredictionError, match=r"^p.json: result #37: RLE counts"):
        check_compressed_rles(masks, np.full(50, 48 * 64), where, PredictionError, "p.json")


@pytest.mark.parametrize("polygon, message", [
    ([[float("nan"), 1, 2, 3, 4, 5]], "finite"),
    ([[1e9, 1, 2, 3, 4, 5]], "finite"),
    ([[10**400, 1, 2, 3, 4, 5]], "finite"),
    ([[1, 2, 3]], "even"),
    ([[]], "even"),
    ([["1", 2, 3, 4, 5, 6]], "numbers"),
    ([[True, 2, 3, 4, 5, 6]], "numbers"),
    ([[0, 0, 9e6, 0, 0, 9e6]], "perimeter"),
])
def test_polygons_out_of_bounds_are_refused(polygon, message):
    with pytest.raises(PredictionError, match=rf"^p.json: result #3: .*{message}"):
        check_polygons([[[0, 0, 1, 0, 1, 1]], polygon], [0, 3], where, PredictionError, "p.json")


def test_a_polygon_far_outside_the_image_within_bounds_still_scores_like_pycocotools():
    polygon = [[-500.0, -500.0, 900.0, -400.0, 800.0, 700.0]]
    check_segmentations([polygon], np.array([0]), np.array([[48, 64]]), where, PredictionError, "p.json")
    assert mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(polygon, 48, 64))) > 0


def test_image_sizes_must_be_small_positive_integers():
    for size in ([0, 10], [10.5, 10], [1e6, 1e6], [-1, 5]):
        with pytest.raises(PredictionError, match="height and width"):
            check_segmentations([[[0, 0, 1, 0, 1, 1]]], np.array([0]), np.array([size]), where, PredictionError,
                                "p.json")
