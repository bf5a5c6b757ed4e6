"""Optical flow: .flo/.pfm reading on real mmflow test files, EPE / px / Fl / breakdowns in closed form."""
from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from harness.core.errors import DataError, PredictionError
from harness.io.flowio import read_flo, read_pfm, write_flo
from harness.metrics import METRICS
from harness.metrics.flow import FlowMetric, flow_metrics
from harness.core.structures import FlowPrediction, FlowTarget, Sample

FLOW = Path(__file__).resolve().parents[1] / "data" / "flow-small"


# -------------------------------------------------------------------------------------------- files
def test_reads_real_flo_files():
    forward = read_flo(FLOW / "0000000-flow_01.flo")
    backward = read_flo(FLOW / "0000000-flow_10.flo")
    chairs = read_flo(FLOW / "00001_flow.flo")
    assert forward.shape == backward.shape == chairs.shape == (50, 50, 2)
    assert forward.dtype == np.float32
    assert forward[0, 0].tolist() == [0.0, 0.0]
    assert forward[10, 20].tolist() == [0.28125, -0.1875]
    assert backward[10, 20].tolist() == [-0.28125, 0.1875]
    assert forward[49, 49].tolist() == [-18.84375, 13.5]
    # first pixel of the FlyingChairs crop: bytes a6170bc1 2fb8e0c0 (little-endian float32)
    assert chairs[0, 0].tolist() == pytest.approx([-8.693274, -7.0224833], abs=1e-6)
    raw = (FLOW / "00001_flow.flo").read_bytes()
    offset = 12 + (10 * 50 + 20) * 8  # row-major (u, v) pairs after the 12-byte header
    assert chairs[10, 20].tolist() == list(struct.unpack("<2f", raw[offset : offset + 8]))


def test_flo_round_trip(tmp_path):
    flow = np.random.default_rng(0).normal(size=(7, 11, 2)).astype(np.float32)
    write_flo(tmp_path / "a.flo", flow)
    assert (tmp_path / "a.flo").stat().st_size == 12 + 7 * 11 * 8
    np.testing.assert_array_equal(read_flo(tmp_path / "a.flo"), flow)
    real = read_flo(FLOW / "00001_flow.flo")
    write_flo(tmp_path / "b.flo", real)
    assert (tmp_path / "b.flo").read_bytes() == (FLOW / "00001_flow.flo").read_bytes()


def test_flo_errors_name_the_file(tmp_path):
    good = (FLOW / "00001_flow.flo").read_bytes()
    cases = {
        "tag.flo": (struct.pack("<f", 123.0) + good[4:], "not a Middlebury .flo file"),
        "short.flo": (good[:-8], "truncated flow body"),
        "header.flo": (good[:6], "truncated .flo header"),
        "huge.flo": (good[:4] + struct.pack("<ii", 10**6, 10**6) + good[12:], "implausible size"),
        "negative.flo": (good[:4] + struct.pack("<ii", -50, 50) + good[12:], "implausible size"),
        "long.flo": (good + b"\0" * 8, "trailing bytes"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(DataError, match=message) as info:
            read_flo(tmp_path / name)
        assert name in str(info.value)
    with pytest.raises(DataError, match="missing"):
        read_flo(tmp_path / "absent.flo")


def test_pfm_is_read_top_row_first():
    for direction in ("01", "10"):
        weights = read_pfm(FLOW / f"0000000-occ_weights_{direction}.pfm")
        occlusion = np.asarray(Image.open(FLOW / f"0000000-occ_{direction}.png"))[..., 0] > 0
        assert weights.shape == (50, 50)
        np.testing.assert_array_equal(weights > 0, occlusion)


def test_pfm_errors(tmp_path):
    (tmp_path / "bad.pfm").write_bytes(b"P6\n2 2\n-1\n" + b"\0" * 16)
    with pytest.raises(DataError, match="bad.pfm.*not a .pfm"):
        read_pfm(tmp_path / "bad.pfm")
    (tmp_path / "short.pfm").write_bytes(b"Pf\n2 2\n-1\n" + b"\0" * 12)
    with pytest.raises(DataError, match="truncated .pfm body"):
        read_pfm(tmp_path / "short.pfm")
    (tmp_path / "big.pfm").write_bytes(b"PF\n1 1\n1.0\n" + struct.pack(">3f", 1.0, 2.0, 3.0))
    assert read_pfm(tmp_path / "big.pfm").tolist() == [[[1.0, 2.0, 3.0]]]  # positive scale: big-endian


# ------------------------------------------------------------------------------------------- metrics
def constant(h, w, u, v):
    flow = np.zeros((h, w, 2), dtype=np.float32)
    flow[..., 0], flow[..., 1] = u, v
    return flow


def test_epe_px_and_fl_closed_form():
    gt = constant(2, 2, 10.0, 0.0)
    pred = gt.copy()
    pred[0, 0] += [3.0, 4.0]  # EPE 5: outlier (5 > 3 and 5/10 > .05)
    pred[0, 1] += [0.0, 2.0]  # EPE 2
    pred[1, 0] += [0.5, 0.0]  # EPE 0.5
    # pred[1, 1] exact: EPE 0
    metrics = flow_metrics([pred], [gt])
    assert metrics["EPE"] == pytest.approx(7.5 / 4)
    assert (metrics["1px"], metrics["3px"], metrics["5px"]) == (0.5, 0.75, 0.75)  # EPE < N
    errors = flow_metrics([pred], [gt], px_convention="error-rate")
    assert (errors["1px"], errors["3px"], errors["5px"]) == (0.5, 0.25, 0.0)  # EPE > N: 5 > 5 is false
    assert metrics["Fl-all"] == 0.25
    assert metrics["EPE_s10-40"] == metrics["EPE"] and math.isnan(metrics["EPE_s0-10"])


def test_fl_needs_both_conditions():
    gt = constant(1, 3, 100.0, 0.0)
    pred = gt.copy()
    pred[0, 0, 0] += 4.0  # EPE 4 > 3 but 4 % of |gt|: not an outlier
    pred[0, 1, 0] += 6.0  # 6 % of |gt|: outlier
    gt[0, 2] = 0.0  # |gt| = 0 and EPE 100: outlier
    assert flow_metrics([pred], [gt])["Fl-all"] == pytest.approx(2 / 3)


def test_valid_mask_speed_bands_and_matched_regions():
    gt = np.zeros((1, 4, 2), dtype=np.float32)
    gt[0, :, 0] = [5.0, 10.0, 40.0, 3.0]  # bands: s0-10, s10-40, s40+, s0-10
    pred = gt + np.array([1.0, 0.0], dtype=np.float32)
    pred[0, 2, 0] += 2.0  # EPE 3 at the fast pixel
    target = FlowTarget(gt, valid=np.array([[True, True, True, False]]),
                        occluded=np.array([[False, True, False, False]]),
                        out_of_frame=np.array([[False, False, True, False]]))
    metric = METRICS.get("flow")()
    metric.update([Sample("f", None, target)], [FlowPrediction(pred)])
    m = metric.compute().metrics
    assert m["EPE"] == pytest.approx(5 / 3)
    assert (m["EPE_s0-10"], m["EPE_s10-40"], m["EPE_s40+"]) == (1.0, 1.0, 3.0)
    assert (m["EPE_matched"], m["EPE_unmatched"]) == (1.0, 2.0)


def test_averaging_dialects():
    big, small = constant(2, 2, 0, 0), constant(1, 1, 0, 0)
    big_pred, small_pred = big + np.float32(1.0), small.copy()
    big_pred[..., 1] = 0.0  # EPE 1 on 4 pixels; small image EPE 0 on 1 pixel
    pooled = flow_metrics([big_pred, small_pred], [big, small])
    per_image = flow_metrics([big_pred, small_pred], [big, small], averaging="per-image")
    assert pooled["EPE"] == pytest.approx(4 / 5) and per_image["EPE"] == pytest.approx(0.5)
    per_batch = FlowMetric(averaging="per-batch")
    per_batch.add_batch([(big_pred, FlowTarget(big), 0), (small_pred, FlowTarget(small), 1)])
    per_batch.add_batch([(small_pred, FlowTarget(small), 2)])
    assert per_batch.compute().metrics["EPE"] == pytest.approx((4 / 5 + 0) / 2)


def test_shape_mismatch_and_bad_values_name_the_item():
    metric = FlowMetric()
    sample = Sample("pair-3", None, FlowTarget(constant(4, 4, 1, 1)))
    with pytest.raises(PredictionError, match="pair-3.*shape"):
        metric.update([sample], [FlowPrediction(constant(4, 5, 1, 1))])
    bad = constant(4, 4, 1, 1)
    bad[1, 1, 0] = np.nan
    with pytest.raises(PredictionError, match="pair-3.*non-finite"):
        metric.update([sample], [FlowPrediction(bad)])
    with pytest.raises(DataError, match="pair-3.*valid mask"):
        metric.update([Sample("pair-3", None, FlowTarget(constant(4, 4, 1, 1), valid=np.ones((3, 3))))],
                      [FlowPrediction(constant(4, 4, 1, 1))])
    assert metric.denominators.sum() == 0


def test_real_flow_pair_epe():
    forward = read_flo(FLOW / "0000000-flow_01.flo")
    backward = read_flo(FLOW / "0000000-flow_10.flo")
    result = flow_metrics([-backward], [forward])
    expected = np.sqrt(((forward.astype(np.float64) + backward) ** 2).sum(-1)).mean()
    assert result["EPE"] == pytest.approx(expected, rel=1e-12)
    assert flow_metrics([forward], [forward])["EPE"] == 0.0


# ------------------------------------------------------------------------------------------ properties
flows = st.tuples(st.integers(0, 10_000), st.integers(1, 6))


def random_flows(seed: int, count: int):
    rng = np.random.default_rng(seed)
    samples, predictions = [], []
    for index in range(count):
        h, w = (int(v) for v in rng.integers(1, 9, size=2))
        gt = (rng.normal(size=(h, w, 2)) * 20).astype(np.float32)
        target = FlowTarget(gt, valid=rng.random((h, w)) < 0.8, occluded=rng.random((h, w)) < 0.3,
                            out_of_frame=rng.random((h, w)) < 0.1)
        samples.append(Sample(index, None, target))
        predictions.append(FlowPrediction(gt + rng.normal(size=gt.shape).astype(np.float32) * 3))
    return samples, predictions


@settings(max_examples=40, deadline=None)
@given(flows, st.randoms(use_true_random=False), st.sampled_from(["pixels", "per-image"]))
def test_chunks_and_order_do_not_matter(spec, random, averaging):
    samples, predictions = random_flows(*spec)
    whole = FlowMetric(averaging=averaging)
    whole.update(samples, predictions)
    order = list(range(len(samples)))
    random.shuffle(order)
    cut = random.randint(0, len(order))
    first, second = FlowMetric(averaging=averaging), FlowMetric(averaging=averaging)
    first.update([samples[i] for i in order[:cut]], [predictions[i] for i in order[:cut]])
    for i in order[cut:]:  # batch size 1 on this side
        second.update([samples[i]], [predictions[i]])
    first.merge_state(second.state_dict())
    merged, expected = first.compute().metrics, whole.compute().metrics
    # bit for bit: per-image rows summed with math.fsum (correctly rounded) do not depend on order or grouping
    assert merged.keys() == expected.keys()
    assert all(merged[k] == expected[k] or (math.isnan(merged[k]) and math.isnan(expected[k])) for k in merged)


def test_float_running_totals_would_depend_on_the_grouping():
    """Why the state is per-image rows: summing per-image EPE sums in two groups and adding the totals (what
    a 'sum' state merged across two ranks did) differs in the last bits from one stream on these flows."""
    samples, predictions = random_flows(11, 40)
    sums = [FlowMetric()._image_sums(p.flow, s.target, s.sample_id)["EPE"][0] for s, p in zip(samples, predictions)]
    streams = {cut: sum(sums[:cut]) + sum(sums[cut:]) for cut in range(1, 40)}
    assert len(set(streams.values())) > 1  # float running totals: the grouping shows
    metric = FlowMetric()
    metric.update(samples, predictions)
    assert metric.numerators[0] == math.fsum(sums)


def test_bootstrap_resamples_flow_images_but_not_batches():
    samples, predictions = random_flows(5, 6)
    metric = FlowMetric()
    metric.update(samples[:4], predictions[:4])
    metric.update(samples[4:], predictions[4:])
    again = metric.subset(np.arange(6), 6).compute().metrics
    assert again == pytest.approx(metric.compute().metrics, nan_ok=True, rel=0, abs=0)
    twice_first = metric.subset(np.array([0, 0]), 6)
    alone = FlowMetric()
    alone.update(samples[:1], predictions[:1])
    assert twice_first.compute().metrics["EPE"] == alone.compute().metrics["EPE"]
    assert set(metric.bootstrap(6, 10, seed=0)) >= {"EPE", "1px", "Fl-all"}
    per_batch = FlowMetric(averaging="per-batch")
    per_batch.update(samples, predictions)
    with pytest.raises(NotImplementedError, match="per-batch"):
        per_batch.subset(np.arange(6), 6)


@settings(max_examples=30, deadline=None)
@given(flows)
def test_perfect_predictions(spec):
    samples, _ = random_flows(*spec)
    metric = FlowMetric()
    metric.update(samples, [FlowPrediction(s.target.flow.copy()) for s in samples])
    m = metric.compute().metrics
    if metric.denominators[0]:
        assert m["EPE"] == 0.0 and m["Fl-all"] == 0.0 and m["1px"] == 1.0


def test_non_finite_flow_on_a_scored_pixel_is_refused_and_elsewhere_ignored():
    """The finiteness scan runs only when the EPE sum is not finite: it must still name the side at fault, skip
    pixels the valid mask drops."""
    gt = np.zeros((4, 5, 2), dtype=np.float32)
    valid = np.ones((4, 5), dtype=bool)
    valid[0, 0] = False

    def score(pred: np.ndarray, target: np.ndarray, mask=valid) -> float:
        metric = FlowMetric()
        metric.update([Sample(sample_id=0, image_path=None, target=FlowTarget(flow=target, valid=mask))],
                      [FlowPrediction(flow=pred)])
        return metric.compute().metrics["EPE"]

    pred = np.ones_like(gt)
    pred[0, 0] = np.nan  # not scored
    assert score(pred, gt) == pytest.approx(math.sqrt(2))
    pred[1, 1] = np.nan
    with pytest.raises(PredictionError, match="predicted flow has non-finite values"):
        score(pred, gt)
    broken_gt = gt.copy()
    broken_gt[2, 2, 1] = np.inf
    with pytest.raises(DataError, match="ground-truth flow has non-finite values"):
        score(np.ones_like(gt), broken_gt, None)
