"""The compiled semantic and flow kernels give the numpy paths' numbers to the bit, and the same errors.

Each case runs a metric twice, once with ``stream_kernels.ENABLED`` and once without (the numpy path a machine
without a C compiler takes), on random inputs with ignore labels, out-of-range labels, NaN/inf flow, invalid
masks and empty images.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import pytest

from harness.core.errors import DataError, PredictionError
from harness.core.structures import FlowPrediction, FlowTarget, Sample
from harness.metrics import stream_kernels
from harness.metrics.flow import QUANTITIES, FlowMetric, flow_sums, flow_sums_numpy
from harness.metrics.semantic import SemanticSegmentationMetric, confusion_matrix

pytestmark = pytest.mark.skipif(not stream_kernels.ENABLED, reason="the compiled kernels are not built")

LABEL_DTYPES = ("uint8", "bool", "int8", "int16", "uint16", "int32", "uint32", "int64", "uint64")


def both_paths(monkeypatch: pytest.MonkeyPatch, run: Callable[[], Any]) -> tuple[Any, Any]:
    """(result or raised error) with the kernels, then without them."""
    outcomes = []
    for enabled in (True, False):
        monkeypatch.setattr(stream_kernels, "ENABLED", enabled)
        try:
            outcomes.append(run())
        except (DataError, PredictionError) as exc:
            outcomes.append((type(exc), str(exc)))
    monkeypatch.setattr(stream_kernels, "ENABLED", True)
    return outcomes[0], outcomes[1]


def same_float(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


# ------------------------------------------------------------------------------------------ semantic
def label_maps(rng: np.random.Generator, dtype: str, classes: int, ignore: int, bad: bool) -> tuple[np.ndarray, ...]:
    shape = (int(rng.integers(0, 40)), int(rng.integers(0, 70)))
    high = 2 if dtype == "bool" else classes
    maps = [rng.integers(0, high, shape) for _ in range(2)]
    info = np.iinfo(dtype) if dtype != "bool" else None
    for labels in maps:
        if info is not None and info.min <= ignore <= info.max:
            labels[rng.random(shape) < 0.15] = ignore
        # runs of equal pixels, as in real label maps (the kernel counts eight equal bytes at once)
        labels[:, : shape[1] // 2] = labels[:, :1]
    if bad and shape[0] * shape[1] and dtype != "bool":
        which = maps[int(rng.integers(0, 2))]
        which.flat[int(rng.integers(0, which.size))] = min(classes + 3, np.iinfo(dtype).max)
    return tuple(labels.astype(dtype) for labels in maps)


@pytest.mark.parametrize("dtype", LABEL_DTYPES)
@pytest.mark.parametrize("seed", range(4))
def test_confusion_kernel_equals_numpy(dtype: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for trial in range(20):
        classes = int(rng.integers(2, 30))
        ignore = int(rng.choice([255, -1, 1000, classes]))
        target, prediction = label_maps(rng, dtype, classes, ignore, bad=trial % 4 == 3)
        compiled = stream_kernels.confusion_counts(target, prediction, classes, ignore)
        in_range = [np.all(((m >= 0) & (m < classes)) | (m == ignore)) for m in (target, prediction)]
        if not all(in_range):
            assert compiled is None  # the caller's numpy path names the values
            continue
        if dtype == "uint64":
            assert compiled is None  # left to numpy
            continue
        assert compiled is not None and compiled.dtype == np.int64
        np.testing.assert_array_equal(compiled, confusion_matrix(target, prediction, classes, ignore))


def test_confusion_kernel_without_an_ignore_label() -> None:
    rng = np.random.default_rng(5)
    target, prediction = rng.integers(0, 34, (2, 61, 83)).astype(np.uint8)
    compiled = stream_kernels.confusion_counts(target, prediction, 34, None)
    assert compiled is not None and not compiled[:, 34].any()
    flat = target.astype(np.int64).ravel() * 34 + prediction.ravel()
    np.testing.assert_array_equal(compiled[:, :34], np.bincount(flat, minlength=34 * 34).reshape(34, 34))
    prediction[3, 4] = 255  # no ignore label: 255 is out of range
    assert stream_kernels.confusion_counts(target, prediction, 34, None) is None


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("reduce_zero", [False, True])
def test_semantic_metric_state_and_errors_equal_on_both_paths(
    monkeypatch: pytest.MonkeyPatch, seed: int, reduce_zero: bool
) -> None:
    rng = np.random.default_rng(seed)
    dtype = str(rng.choice(["uint8", "uint16", "int32", "int64"]))
    images = []
    for index in range(6):
        shape = (0, 5) if index == 0 else (int(rng.integers(1, 30)), int(rng.integers(1, 30)))
        target = rng.integers(0, 9 if reduce_zero else 8, shape)
        target[rng.random(shape) < 0.2] = 255
        prediction = rng.integers(0, 8, shape)
        prediction[rng.random(shape) < 0.1] = 255
        images.append((target.astype(dtype), prediction.astype(dtype)))
    problem = seed % 3
    if problem == 1:  # an out-of-range prediction value
        images[3][1].flat[0] = 9
    elif problem == 2:  # a shape mismatch
        images[4] = (images[4][0], np.zeros((2, 2), dtype=dtype))

    def run() -> tuple[np.ndarray, list[list[int]], dict[str, float]]:
        metric = SemanticSegmentationMetric(8, reduce_zero_label=reduce_zero)
        metric.update_arrays([t for t, _ in images], [p for _, p in images])
        return metric.confusion, [c.tolist() for c in metric.image_counts], metric.compute().metrics

    compiled, numpy_path = both_paths(monkeypatch, run)
    if problem:
        assert isinstance(compiled, tuple) and compiled[0] is PredictionError
        assert compiled == numpy_path  # the same error, the same message
        return
    np.testing.assert_array_equal(compiled[0], numpy_path[0])
    assert compiled[1] == numpy_path[1]
    assert all(same_float(compiled[2][k], numpy_path[2][k]) for k in compiled[2])


def test_semantic_target_errors_come_first_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    target = np.full((4, 4), 7, dtype=np.uint8)  # 7 is not a class of 5
    prediction = np.full((4, 4), 9, dtype=np.uint8)

    def run() -> None:
        SemanticSegmentationMetric(5).update_arrays([target], [prediction])

    compiled, numpy_path = both_paths(monkeypatch, run)
    assert compiled == numpy_path and compiled[0] is DataError and "target label map" in compiled[1]


# ------------------------------------------------------------------------------------------ flow
def flow_case(rng: np.random.Generator, trial: int) -> tuple[Any, ...]:
    shape = (0, 7) if trial == 0 else (int(rng.integers(1, 45)), int(rng.integers(1, 70)))
    gt = rng.normal(0, float(rng.choice([1, 10, 40])), shape + (2,))
    pred = gt + rng.normal(0, float(rng.choice([0.5, 3, 10])), gt.shape)
    gt[rng.random(shape) < 0.05] = 0.0  # |gt| = 0: EPE / |gt| is inf or NaN in Fl
    gt = gt.astype(str(rng.choice(["float32", "float64"])))
    pred = pred.astype(str(rng.choice(["float32", "float64"])))
    if trial % 3 == 1:  # NaN / inf, on pixels the mask may or may not exclude
        for array in (gt, pred):
            hit = rng.random(shape) < 0.05
            array[hit, int(rng.integers(0, 2))] = rng.choice([np.nan, np.inf, -np.inf])
    valid = None if trial % 2 == 0 else rng.random(shape) < float(rng.choice([0.0, 0.7, 1.0]))
    occluded = rng.random(shape) < 0.3 if trial % 4 in (1, 2) else None
    out_of_frame = rng.random(shape) < 0.1 if trial % 5 in (2, 3) else None
    return pred, gt, valid, occluded, out_of_frame


@pytest.mark.parametrize("seed", range(5))
def test_flow_sums_kernel_equals_numpy_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for trial in range(40):
        pred, gt, valid, occluded, out_of_frame = flow_case(rng, trial)
        with np.errstate(invalid="ignore"):
            expected = flow_sums_numpy(pred, gt, valid, occluded, out_of_frame)
        compiled = stream_kernels.flow_image_sums(pred, gt, valid, occluded, out_of_frame)
        assert compiled is not None
        got = flow_sums(pred, gt, valid, occluded, out_of_frame)
        assert list(got) == list(expected) and set(got) == set(QUANTITIES)
        for key in QUANTITIES:
            assert got[key][1] == expected[key][1], key
            assert same_float(got[key][0], expected[key][0]), (key, got[key], expected[key])
        scored = slice(None) if valid is None else valid
        assert compiled[2] == (not np.all(np.isfinite(pred[scored])))
        assert compiled[3] == (not np.all(np.isfinite(gt[scored])))


def test_flow_sums_large_frame_bit_for_bit() -> None:
    """Sintel-sized: numpy's pairwise summation recurses over hundreds of thousands of values."""
    rng = np.random.default_rng(11)
    gt = rng.normal(0, 20, (436, 1024, 2)).astype(np.float32)
    pred = (gt + rng.normal(0, 2, gt.shape)).astype(np.float32)
    valid = rng.random(gt.shape[:2]) < 0.9
    occluded = rng.random(gt.shape[:2]) < 0.2
    for mask in (None, valid):
        assert flow_sums(pred, gt, mask, occluded) == flow_sums_numpy(pred, gt, mask, occluded)


@pytest.mark.parametrize("averaging", ["pixels", "per-image"])
@pytest.mark.parametrize("seed", range(3))
def test_flow_metric_rows_and_errors_equal_on_both_paths(
    monkeypatch: pytest.MonkeyPatch, averaging: str, seed: int
) -> None:
    rng = np.random.default_rng(100 + seed)
    batches = []
    for trial in range(8):
        pred, gt, valid, occluded, out_of_frame = flow_case(rng, trial)
        target = FlowTarget(flow=gt, valid=valid, occluded=occluded, out_of_frame=out_of_frame)
        batches.append(([Sample(sample_id=trial, image_path=None, target=target)], [FlowPrediction(flow=pred)]))

    def run() -> list[Any]:
        metric = FlowMetric(averaging=averaging)  # type: ignore[arg-type]
        outcomes: list[Any] = []
        for samples, predictions in batches:
            try:
                metric.update(samples, predictions)
                outcomes.append(None)
            except (DataError, PredictionError) as exc:  # non-finite values on scored pixels
                outcomes.append((type(exc), str(exc)))
        rows = [(row[0].tolist(), row[1].tolist(), row[2]) for row in metric.rows]
        return [outcomes, rows, metric.compute().metrics]

    compiled, numpy_path = both_paths(monkeypatch, run)
    assert compiled[0] == numpy_path[0]
    assert any(outcome is not None for outcome in compiled[0]) and any(o is None for o in compiled[0])
    assert len(compiled[1]) == len(numpy_path[1])
    for (sums_a, counts_a, first_a), (sums_b, counts_b, first_b) in zip(compiled[1], numpy_path[1]):
        assert counts_a == counts_b and first_a == first_b
        assert all(same_float(a, b) for a, b in zip(sums_a, sums_b))
    assert all(same_float(compiled[2][k], numpy_path[2][k]) for k in compiled[2])


def test_flow_kernel_leaves_other_dtypes_to_numpy() -> None:
    gt = np.ones((3, 4, 2), dtype=np.float16)
    assert stream_kernels.flow_image_sums(gt, gt, None, None, None) is None
    assert flow_sums(gt, gt)["EPE"] == (0.0, 12)


def test_cityscapes_label_id_confusion_equal_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.metrics.cityscapes import NUM_LABEL_IDS, label_id_confusion

    rng = np.random.default_rng(9)
    target = rng.integers(0, NUM_LABEL_IDS, (33, 71)).astype(np.uint8)
    prediction = rng.integers(0, NUM_LABEL_IDS, (33, 71)).astype(np.uint8)
    target[:, :40] = 7  # a run of equal pixels
    compiled, numpy_path = both_paths(monkeypatch, lambda: label_id_confusion(target, prediction))
    assert compiled.shape == (NUM_LABEL_IDS, NUM_LABEL_IDS) and compiled.sum() == target.size
    np.testing.assert_array_equal(compiled, numpy_path)


def test_non_native_byte_order_is_left_to_numpy() -> None:
    target = np.array([[1, 2], [255, 0]], dtype=">u2")
    prediction = np.array([[1, 1], [2, 255]], dtype=">u2")
    assert stream_kernels.confusion_counts(target, prediction, 3, 255) is None
    flow = np.ones((2, 3, 2), dtype=">f4")
    assert stream_kernels.flow_image_sums(flow, flow, None, None, None) is None
    metric = SemanticSegmentationMetric(3)
    metric.update_arrays([target], [prediction])
    assert metric.confusion.tolist() == [[0, 0, 0, 1], [0, 1, 0, 0], [0, 1, 0, 0]]  # 0 predicted as 255: no class
