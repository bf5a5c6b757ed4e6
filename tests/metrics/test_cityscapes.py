"""Cityscapes scores against the official cityscapesscripts evaluation, run on label-map files.

The ground truth is the real gtFine frame in tests/data/cityscapes plus flipped/rolled copies of it (so the
dataset has several images and instances of different sizes); predictions perturb the ground truth with a
seeded RNG, including predictions of ignored classes, predictions of caravan/trailer on vehicles, and a
prediction that leaves most classes out (NaN classes).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.core.errors import DataError, PredictionError
from harness.metrics import METRICS
from harness.metrics.cityscapes import (
    EVAL_LABEL_IDS,
    CityscapesSemanticMetric,
    train_id_to_label_id,
)
from harness.core.structures import Sample, SemanticPrediction, SemanticTarget

DATA = Path(__file__).resolve().parents[1] / "data" / "cityscapes" / "gtFine" / "val" / "frankfurt"
STEM = "frankfurt_000000_000294_gtFine_"


def load_frame() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels = np.asarray(Image.open(DATA / f"{STEM}labelIds.png"))
    instances = np.asarray(Image.open(DATA / f"{STEM}instanceIds.png"))
    train_ids = np.asarray(Image.open(DATA / f"{STEM}labelTrainIds.png"))
    return labels, instances, train_ids


def ground_truth_frames() -> list[tuple[np.ndarray, np.ndarray]]:
    labels, instances, _ = load_frame()
    return [
        (labels, instances),
        (np.fliplr(labels).copy(), np.fliplr(instances).copy()),
        (np.roll(labels, 37, axis=1), np.roll(instances, 37, axis=1)),
        (np.flipud(labels).copy(), np.flipud(instances).copy()),
    ]


def perturb(labels: np.ndarray, rng: np.random.Generator, kind: str) -> np.ndarray:
    pred = labels.copy()
    if kind == "noise":  # any labelId, ignored ones included
        flip = rng.random(labels.shape) < 0.3
        pred[flip] = rng.integers(0, 34, size=int(flip.sum()))
    elif kind == "blocks":  # rectangles of one label, incl. caravan (29) / trailer (30) over vehicles
        for _ in range(12):
            y, x = rng.integers(0, labels.shape[0] - 8), rng.integers(0, labels.shape[1] - 8)
            h, w = rng.integers(4, 40), rng.integers(4, 60)
            pred[y : y + h, x : x + w] = rng.choice([0, 7, 11, 21, 24, 25, 26, 27, 29, 30, 33])
    elif kind == "sparse":  # only a few classes ever predicted -> NaN classes drop out
        pred = np.where(rng.random(labels.shape) < 0.5, 7, 11).astype(np.uint8)
        pred[labels == 24] = 24
    elif kind == "perfect":
        pass
    return pred.astype(np.uint8)


def write_png(path: Path, array: np.ndarray) -> str:
    Image.fromarray(array).save(path)
    return str(path)


@pytest.fixture
def reference(monkeypatch):
    """cityscapesscripts' evaluateImgLists configured for in-memory use (numpy 2 lacks np.in1d)."""
    monkeypatch.setattr(np, "in1d", lambda a, b, invert=False: np.isin(np.ravel(a), b, invert=invert),
                        raising=False)
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official

    args = official.args
    for name, value in dict(quiet=True, JSONOutput=False, evalInstLevelScore=True, evalPixelAccuracy=False,
                            colorized=False).items():
        monkeypatch.setattr(args, name, value)

    def run(tmp_path: Path, frames, predictions) -> dict:
        gt_files, pred_files = [], []
        for index, ((labels, instances), pred) in enumerate(zip(frames, predictions)):
            gt_files.append(write_png(tmp_path / f"city_{index:06d}_000019_gtFine_labelIds.png", labels))
            write_png(tmp_path / f"city_{index:06d}_000019_gtFine_instanceIds.png", instances)
            pred_files.append(write_png(tmp_path / f"pred_{index}.png", pred))
        return official.evaluateImgLists(pred_files, gt_files, args)

    return run


def assert_close_dicts(ours: dict, theirs: dict) -> None:
    for name, value in ours.items():
        expected = theirs[name]
        if math.isnan(expected):
            assert math.isnan(value), name
        else:
            assert value == pytest.approx(expected, abs=1e-12, rel=1e-12), name


def ours_for(frames, predictions, **kwargs) -> CityscapesSemanticMetric:
    metric = CityscapesSemanticMetric(**kwargs)
    for index, ((labels, instances), pred) in enumerate(zip(frames, predictions)):
        metric.add_image(labels, pred, instances, item=index)
    return metric


@pytest.mark.parametrize("seed, kinds", [
    (0, ["noise", "blocks", "perfect", "noise"]),
    (1, ["blocks", "blocks", "noise", "blocks"]),
    (2, ["sparse", "sparse", "sparse", "sparse"]),
])
def test_matches_cityscapesscripts(reference, tmp_path, seed, kinds):
    rng = np.random.default_rng(seed)
    frames = ground_truth_frames()
    predictions = [perturb(labels, rng, kind) for (labels, _), kind in zip(frames, kinds)]
    official = reference(tmp_path, frames, predictions)
    metric = ours_for(frames, predictions)
    result = metric.compute()

    np.testing.assert_array_equal(metric.confusion, np.asarray(official["confMatrix"], dtype=np.int64))
    assert result.metrics["mIoU"] == pytest.approx(official["averageScoreClasses"], abs=1e-12)
    assert result.metrics["iIoU"] == pytest.approx(official["averageScoreInstClasses"], abs=1e-12)
    assert result.metrics["IoU_category"] == pytest.approx(official["averageScoreCategories"], abs=1e-12)
    assert result.metrics["iIoU_category"] == pytest.approx(official["averageScoreInstCategories"], abs=1e-12)
    assert_close_dicts(result.per_class["IoU"], official["classScores"])
    assert_close_dicts(result.per_class["iIoU"], official["classInstScores"])
    assert_close_dicts(result.per_class["IoU_category"], official["categoryScores"])
    assert_close_dicts(result.per_class["iIoU_category"], official["categoryInstScores"])
    assert len(result.per_class["IoU"]) == 19


def test_sparse_prediction_has_nan_classes_that_drop_out(reference, tmp_path):
    rng = np.random.default_rng(2)
    frames = ground_truth_frames()[:1]
    predictions = [perturb(frames[0][0], rng, "sparse")]
    result = ours_for(frames, predictions).compute()
    ious = result.per_class["IoU"]
    assert math.isnan(ious["train"]) and math.isnan(ious["bus"])  # absent from GT and never predicted
    valid = [v for v in ious.values() if not math.isnan(v)]
    assert result.metrics["mIoU"] == pytest.approx(sum(valid) / len(valid), abs=1e-15)


def test_perfect_prediction_scores_one():
    frames = ground_truth_frames()
    result = ours_for(frames, [labels for labels, _ in frames]).compute()
    for key in ("mIoU", "iIoU", "IoU_category", "iIoU_category", "mAcc", "aAcc", "mDice", "mFscore"):
        assert result.metrics[key] == pytest.approx(1.0, abs=1e-15), key


def test_ignored_class_prediction_is_a_false_negative():
    labels = np.full((4, 4), 7, dtype=np.uint8)  # all road
    pred = labels.copy()
    pred[0, :] = 0  # 'unlabeled' (ignored) predicted on road pixels
    metric = CityscapesSemanticMetric(instance_level=False)
    metric.add_image(labels, pred)
    result = metric.compute()
    assert result.per_class["IoU"]["road"] == pytest.approx(12 / 16)
    assert result.metrics["mIoU"] == pytest.approx(12 / 16)
    assert result.metrics["aAcc"] == pytest.approx(12 / 16)


def test_ignored_ground_truth_counts_for_nothing():
    labels = np.array([[7, 7, 0, 0]], dtype=np.uint8)  # two road, two unlabeled
    pred = np.array([[7, 7, 7, 11]], dtype=np.uint8)  # predictions on ignored GT are no FP
    metric = CityscapesSemanticMetric(instance_level=False)
    metric.add_image(labels, pred)
    result = metric.compute()
    assert result.per_class["IoU"]["road"] == 1.0
    assert math.isnan(result.per_class["IoU"]["building"])


def test_train_id_inputs_score_like_label_ids():
    # the fixture's labelTrainIds PNG was resized on its own (77 pixels disagree), so derive trainIds from
    # labelIds with cityscapesscripts' table
    from cityscapesscripts.helpers.labels import labels as official_labels

    labels, instances, _ = load_frame()
    lookup = np.full(256, 255, dtype=np.uint8)
    for label in official_labels:
        if label.id >= 0:
            lookup[label.id] = label.trainId
    train_ids = lookup[labels]
    rng = np.random.default_rng(5)
    pred_train = rng.integers(0, 19, size=labels.shape).astype(np.uint8)
    pred_train[rng.random(labels.shape) < 0.5] = 255
    by_label = CityscapesSemanticMetric()
    by_label.add_image(labels, train_id_to_label_id(pred_train), instances)
    by_train = CityscapesSemanticMetric(target_ids="train_id", prediction_ids="train_id")
    by_train.add_image(train_ids, pred_train, instances)
    assert by_train.compute().metrics == pytest.approx(by_label.compute().metrics, abs=1e-15, nan_ok=True)
    assert train_id_to_label_id(np.array([0, 18, 255])).tolist() == [7, 33, 0]
    assert sorted(train_id_to_label_id(np.arange(19)).tolist()) == EVAL_LABEL_IDS.tolist()


def bitwise_equal(left: dict, right: dict) -> bool:
    """Equal keys and values bit for bit (NaN equals NaN), nested dicts included."""
    if left.keys() != right.keys():
        return False
    for key, a in left.items():
        b = right[key]
        if isinstance(a, dict):
            if not bitwise_equal(a, b):
                return False
        elif not (a == b or (math.isnan(a) and math.isnan(b))):
            return False
    return True


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_shards_merged_in_order_match_one_stream_bit_for_bit(cut):
    """Two ranks hold contiguous slices; merged in rank order they give exactly the single stream's numbers
    (the weighted iIoU sums are added instance by instance in sample order, not as per-shard float totals)."""
    rng = np.random.default_rng(3)
    frames = ground_truth_frames()
    predictions = [perturb(labels, rng, "noise") for labels, _ in frames]
    whole = ours_for(frames, predictions).compute()
    first = ours_for(frames[:cut], predictions[:cut])
    second = ours_for(frames[cut:], predictions[cut:])
    first.merge_state(second.state_dict())
    merged = first.compute()
    assert bitwise_equal(merged.metrics, whole.metrics)
    assert bitwise_equal(merged.per_class, whole.per_class)
    # per-shard float totals added afterwards (the old state) differ in the last bits on these frames, so
    # the test tells the two designs apart
    left = ours_for(frames[:cut], predictions[:cut]).instance_sums()
    right = ours_for(frames[cut:], predictions[cut:]).instance_sums()
    assert not np.array_equal(left.class_tp + right.class_tp, first.instance_sums().class_tp)


def test_wrapper_validates_items():
    labels, instances, _ = load_frame()
    metric = METRICS.get("cityscapes_semantic")()
    sample = Sample("frame-7", None, SemanticTarget(labels, instances))
    with pytest.raises(PredictionError, match="frame-7.*shape"):
        metric.update([sample], [SemanticPrediction(labels[:, :-1])])
    with pytest.raises(PredictionError, match="frame-7.*outside 0..33"):
        metric.update([sample], [SemanticPrediction(np.full_like(labels, 40))])
    with pytest.raises(DataError, match="frame-7.*instance map"):
        metric.update([Sample("frame-7", None, SemanticTarget(labels))], [SemanticPrediction(labels)])
    bad_instances = instances.astype(np.int32).copy()
    bad_instances[0, 0] = 7001  # road has no instances
    with pytest.raises(DataError, match="frame-7.*road"):
        metric.update([Sample("frame-7", None, SemanticTarget(labels, bad_instances))], [SemanticPrediction(labels)])
    assert not metric.confusion.any() and not metric.instances
