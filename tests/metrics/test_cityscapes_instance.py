"""``cityscapes_instance`` against cityscapesscripts' evalInstanceLevelSemanticLabeling, run on files.

The ground truth is the real gtFine frame of tests/data/cityscapes plus seeded synthetic frames in the
Cityscapes layout (see cityscapes_instance_cases.py for what they contain); predictions are written with our
``cityscapes-instance`` submission writer, scored by the reference from those files, and by our metric twice:
from the predictions read back by our reader and from the in-memory predictions (these two must agree to the bit).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from harness.datasets import DATASETS
from harness.core.errors import DataError, PredictionError
from harness.metrics import METRICS
from harness.metrics.cityscapes_instance import CLASS_NAMES, OVERLAPS, CityscapesInstanceMetric
from harness.core.protocol import MetricSpec
from harness.core.structures import DetectionPrediction, Sample
from harness.submissions import SUBMISSIONS
from harness.tasks import TASKS
from tests.metrics.cityscapes_instance_cases import (
    EVAL,
    as_prediction,
    build_root,
    official_runner,
    random_predictions,
    read_ids,
    write_frame,
)


@pytest.fixture
def official(monkeypatch):
    return official_runner(monkeypatch)


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def assert_matches_official(result, reference: dict) -> None:
    averages = reference["averages"]
    assert result.metrics["AP"] == pytest.approx(averages["allAp"], abs=1e-12)
    assert result.metrics["AP50"] == pytest.approx(averages["allAp50%"], abs=1e-12)
    assert list(result.per_class["AP"]) == list(reference["instLabels"]) == list(CLASS_NAMES)
    for name in CLASS_NAMES:
        theirs = averages["classes"][name]
        for ours_key, their_key in (("AP", "ap"), ("AP50", "ap50%")):
            ours, expected = result.per_class[ours_key][name], float(theirs[their_key])
            assert (math.isnan(ours) and math.isnan(expected)) or ours == pytest.approx(expected, abs=1e-12), \
                (name, ours_key)
    matrix = np.asarray(reference["resultApMatrix"][0], dtype=np.float64)
    ours_matrix = np.array([result.curves["AP_by_overlap"]["classes"][n] for n in CLASS_NAMES])
    np.testing.assert_allclose(ours_matrix, matrix, atol=1e-12, rtol=0)  # NaNs in the same places


def assert_identical(a, b) -> None:
    """Bit-for-bit equal results (NaN equal to NaN)."""
    assert a.metrics.keys() == b.metrics.keys()
    assert all(same(a.metrics[k], b.metrics[k]) for k in a.metrics), (a.metrics, b.metrics)
    for table in a.per_class:
        assert all(same(a.per_class[table][k], b.per_class[table][k]) for k in a.per_class[table])
    np.testing.assert_array_equal(
        np.array([a.curves["AP_by_overlap"]["classes"][n] for n in CLASS_NAMES]),
        np.array([b.curves["AP_by_overlap"]["classes"][n] for n in CLASS_NAMES]))


def scored(samples, predictions, batch: int | None = None) -> CityscapesInstanceMetric:
    metric = CityscapesInstanceMetric()
    step = batch or max(len(samples), 1)
    for start in range(0, len(samples), step):
        metric.update(samples[start : start + step], predictions[start : start + step])
    return metric


def append_lines(pred_root: Path, sample: Sample, detections) -> None:
    """Add detections to a frame's txt the way another tool might: 8-bit masks with value 7 for "inside"."""
    from PIL import Image

    city, frame = str(sample.sample_id).split("/")
    txt = pred_root / city / f"{frame}_pred.txt"
    lines = []
    for i, (label, score, mask) in enumerate(detections):
        name = f"other_{frame}_{i}.png"
        Image.fromarray((mask * 7).astype(np.uint8)).save(txt.parent / name)
        lines.append(f"{name} {label} {score!r}\n")
    with open(txt, "a", encoding="utf-8") as handle:
        handle.write("".join(lines))


def make_case(tmp_path: Path, seed: int, **kwargs):
    """(root, dataset, samples, in-memory predictions, predictions folder).  Our writer writes the evaluated
    classes; detections of Cityscapes classes the reference skips (caravan, road) are appended to the txt files
    by hand (the writer refuses them) and are part of the in-memory predictions."""
    root = tmp_path / "cityscapes"
    build_root(root, seed, **kwargs)
    dataset = DATASETS.get("cityscapes")(root, "val", "instance")
    samples = list(dataset)
    rng = np.random.default_rng(seed + 100)
    run_dir = tmp_path / "run"
    writer = SUBMISSIONS.get("cityscapes-instance")(dataset.info, run_dir)
    predictions = []
    for sample in samples:
        ids = read_ids(sample)
        detections = [] if "000001_000019" in str(sample.sample_id) else random_predictions(rng, ids)
        evaluated = [d for d in detections if d[0] in EVAL]
        others = [d for d in detections if d[0] not in EVAL]
        assert writer.add(sample, as_prediction(evaluated, *ids.shape)) == []
        append_lines(writer.path, sample, others)
        predictions.append(as_prediction(evaluated + others, *ids.shape))
    writer.finish([])
    return root, dataset, samples, predictions, writer.path


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_matches_cityscapesscripts_on_files(official, tmp_path, seed):
    root, dataset, samples, predictions, pred_root = make_case(tmp_path, seed, n_frames=8)
    reference = official(root, pred_root, tmp_path / "official")

    in_memory = scored(samples, predictions).compute()
    source = SUBMISSIONS.get("cityscapes-instance").reader(dataset.info, pred_root)
    assert source.unmatched({s.sample_id for s in samples}) == []
    from_files = scored(samples, [source.predict(s) for s in samples]).compute()

    assert_matches_official(in_memory, reference)
    assert_identical(in_memory, from_files)
    # the case is not trivial: partial APs, a class with GT and no prediction, classes without GT
    ap = in_memory.per_class["AP"]
    assert any(0 < v < 1 for v in ap.values() if not math.isnan(v))
    assert ap["bus"] == 0.0 and math.isnan(ap["truck"]) and math.isnan(ap["train"])
    # batch size and shard count do not move a bit, in any merge order
    assert_identical(scored(samples, predictions, batch=1).compute(), in_memory)
    shards = [scored(samples[r::3], predictions[r::3]) for r in range(3)]
    merged = CityscapesInstanceMetric()
    for shard in reversed(shards):
        merged.merge_state(shard.state_dict())
    assert_identical(merged.compute(), in_memory)


def test_real_frame_alone_matches_cityscapesscripts(official, tmp_path):
    root, dataset, samples, predictions, pred_root = make_case(tmp_path, 7, n_frames=0)
    samples, predictions = samples[:1], predictions[:1]  # frankfurt comes first; drop the empty frame
    assert samples[0].sample_id == "frankfurt/frankfurt_000000_000294" and len(predictions[0].scores) > 0
    gt = [samples[0].meta["instance_ids_path"]]
    reference = official(root, pred_root, tmp_path / "official", gt_files=gt)
    assert_matches_official(scored(samples, predictions).compute(), reference)


def test_hand_built_ignore_rules_match_cityscapesscripts(official, tmp_path):
    """One 20x40 frame, road everywhere except (rows x cols):
    car 26000 = [0:10, 0:10] (100 px, counted), car group 26 = [10:20, 0:8] (80 px: a group under 100 px),
    car 26001 = [0:9, 20:30] (90 px, too small), void (labelId 4) = [10:20, 30:40], person 24000 = [0:12, 10:20].
    Predictions (car unless said):
      a [0:10, 0:10]  .90   IoU 1 with 26000: the TP at every threshold t
      b [0:10, 0:9]   .90   IoU .9 with 26000: a duplicate FP while .9 > t; above that, no region over t and
                            no ignored pixels: an FP anyway (a tie with a)
      c [10:20, 0:10] .97   IoU 80/100 = .8 with the group: counts for nothing while .8 > t (t <= .75); above,
                            ignored share = 80 (group) + 80 (again, the group is under 100 px) / 100 = 1.6 > t:
                            never an FP (without the double count, .8 <= t would make it one at t >= .8)
      d [10:20, 30:40] + [10:15, 25:30] (125 px, 100 void) .95: void share .8 <= t only for t >= .8 (the
                            thresholds are .8000000000000003, ...): an FP there
      e [0:9, 20:30]  .99   IoU 1 with the small car: counts for nothing
      h [15:20, 28:32] .98  10 of 20 px void: share .5 <= t at every t, t = .5 included: an FP
      f person [0:12, 10:20] .6: TP;  g person, empty mask: skipped
    Car, t <= .75: y = {T .9, F .9, F .98}: points at .9 (p 1/3, r 1), at .98 (p 0, r 0), artificial (p 1,
      r 0); widths from recall [1, 1, 0, 0, 0] with [-.5, 0, .5]: [.5, .5, 0] -> AP = 1/3 * .5 = 1/6.
    Car, t >= .8: y = {T .9, F .9, F .95, F .98}: points (1/4, 1), (0, 0), (0, 0), (1, 0); widths
      [.5, .5, 0, 0] -> AP = 1/8.
    Person: AP 1 at every t.  AP = (10 * 1 + 6 / 6 + 4 / 8) / 20 = .575, AP50 = (1 + 1/6) / 2 = 7/12.
    """
    root = tmp_path / "cityscapes"
    ids = np.full((20, 40), 7, np.int64)
    ids[0:10, 0:10] = 26000
    ids[10:20, 0:8] = 26
    ids[0:9, 20:30] = 26001
    ids[10:20, 30:40] = 4
    ids[0:12, 10:20] = 24000
    write_frame(root, "lindau", "lindau_000000_000001", ids)

    def box(*slices_list):
        mask = np.zeros(ids.shape, bool)
        for rows, cols in slices_list:
            mask[rows, cols] = True
        return mask

    detections = [
        (26, 0.9, box((slice(0, 10), slice(0, 10)))),
        (26, 0.9, box((slice(0, 10), slice(0, 9)))),
        (26, 0.97, box((slice(10, 20), slice(0, 10)))),
        (26, 0.95, box((slice(10, 20), slice(30, 40)), (slice(10, 15), slice(25, 30)))),
        (26, 0.99, box((slice(0, 9), slice(20, 30)))),
        (26, 0.98, box((slice(15, 20), slice(28, 32)))),
        (24, 0.6, box((slice(0, 12), slice(10, 20)))),
        (24, 0.6, box()),
    ]
    dataset = DATASETS.get("cityscapes")(root, "val", "instance")
    sample = dataset[0]
    prediction = as_prediction(detections, *ids.shape)
    writer = SUBMISSIONS.get("cityscapes-instance")(dataset.info, tmp_path / "run")
    writer.add(sample, prediction)
    reference = official(root, writer.path, tmp_path / "official")
    result = scored([sample], [prediction]).compute()
    assert_matches_official(result, reference)
    car = result.curves["AP_by_overlap"]["classes"]["car"]
    assert car == pytest.approx([1 / 6] * 6 + [1 / 8] * 4, abs=1e-15)  # derived above
    assert result.curves["AP_by_overlap"]["classes"]["person"] == [1.0] * 10
    assert result.metrics["AP"] == pytest.approx(0.575, abs=1e-15)
    assert result.metrics["AP50"] == pytest.approx(7 / 12, abs=1e-15)


def test_all_predictions_ignored_gives_zero_where_the_reference_crashes(official, tmp_path):
    """A counted car and one car prediction lying wholly on void: no TP and no FP at any threshold.  The
    reference indexes an empty cumulative sum (IndexError); the integration with no TP gives 0."""
    root = tmp_path / "cityscapes"
    ids = np.full((20, 40), 7, np.int64)
    ids[0:15, 0:15] = 26000
    ids[0:10, 20:40] = 0
    write_frame(root, "lindau", "lindau_000000_000001", ids)
    mask = np.zeros(ids.shape, bool)
    mask[0:10, 25:35] = True
    dataset = DATASETS.get("cityscapes")(root, "val", "instance")
    prediction = as_prediction([(26, 0.7, mask)], *ids.shape)
    writer = SUBMISSIONS.get("cityscapes-instance")(dataset.info, tmp_path / "run")
    writer.add(dataset[0], prediction)
    with pytest.raises(IndexError):
        official(root, writer.path, tmp_path / "official")
    result = scored([dataset[0]], [prediction]).compute()
    assert result.per_class["AP"]["car"] == 0.0 and result.metrics["AP"] == 0.0
    assert result.settings["no_counted_score"].startswith("0.0")


def test_embedded_dataset_matches_cityscapesscripts(official, tmp_path):
    dataset = DATASETS.get("cityscapes")(None, None, "instance")
    samples = [dataset[i] for i in range(24)]
    rng = np.random.default_rng(11)
    predictions = []
    for sample in samples:
        detections = [d for d in random_predictions(rng, read_ids(sample)) if d[0] in EVAL]
        predictions.append(as_prediction(detections, *read_ids(sample).shape))
    writer = SUBMISSIONS.get("cityscapes-instance")(dataset.info, tmp_path / "run")
    for sample, prediction in zip(samples, predictions):
        writer.add(sample, prediction)
    gt = [s.meta["instance_ids_path"] for s in samples]
    reference = official(dataset.root, writer.path, tmp_path / "official", gt_files=gt)
    result = scored(samples, predictions).compute()
    assert_matches_official(result, reference)
    assert 0 < result.metrics["AP"] < 1


def test_embedded_dataset_perfect_predictions():
    """Every non-crowd object predicted exactly: TP at every threshold, small objects ignored, groups never
    predicted.  Classes the mini set lacks are NaN and stay out of AP."""
    dataset = DATASETS.get("cityscapes")(None, None, "instance")
    samples = list(dataset)
    predictions = []
    for sample in samples:
        target = sample.target
        keep = np.flatnonzero(~target.iscrowd)
        predictions.append(DetectionPrediction(
            boxes=target.boxes[keep], scores=np.linspace(0.2, 0.9, keep.size), labels=target.labels[keep],
            masks=[target.masks[i] for i in keep]))
    result = scored(samples, predictions, batch=7).compute()
    assert result.metrics["AP"] == pytest.approx(1.0, abs=1e-12)
    assert result.metrics["AP50"] == pytest.approx(1.0, abs=1e-12)
    for name in ("person", "car", "bicycle"):
        assert result.per_class["AP"][name] == pytest.approx(1.0, abs=1e-12)
    for name in ("rider", "truck", "bus", "train", "motorcycle"):
        assert math.isnan(result.per_class["AP"][name])
    intervals = scored(samples, predictions).bootstrap(len(samples), 5, seed=0)
    assert set(intervals) == {"AP", "AP50"}


def test_protocol_of_the_instance_reader():
    dataset = DATASETS.get("cityscapes")(None, None, "instance")
    protocol = TASKS.get("instance")().protocol(dataset.info)
    assert protocol.name == "cityscapes-instance" and protocol.headline == "AP"
    assert protocol.metrics == (MetricSpec("cityscapes_instance"), MetricSpec("coco_segm", {"key_prefix": "coco/"}))
    assert protocol.columns == ("AP", "AP50", "coco/AP") and protocol.submission == "cityscapes-instance"
    metrics = protocol.build_metrics(dataset.info)
    assert isinstance(metrics[0], CityscapesInstanceMetric) and metrics[1].key_prefix == "coco/"
    assert METRICS.get("cityscapes_instance") is CityscapesInstanceMetric
    assert protocol.higher_is_better("AP") and protocol.higher_is_better("coco/AP")
    # both metrics of the protocol score the same multi-image samples (COCO renumbers per-image instance ids)
    samples = [dataset[i] for i in range(6)]
    predictions = []
    for i, sample in enumerate(samples):
        detections = random_predictions(np.random.default_rng(i), read_ids(sample))
        predictions.append(as_prediction([d for d in detections if d[0] in EVAL], *read_ids(sample).shape))
    for metric in metrics:
        metric.update(samples, predictions)
    assert "coco/AP" in metrics[1].compute().metrics and not math.isnan(metrics[0].compute().metrics["AP"])


def test_settings_record_the_convention():
    settings = CityscapesInstanceMetric().compute().settings
    assert settings["overlaps"] == np.arange(0.5, 1.0, 0.05).tolist() == OVERLAPS.tolist()
    assert settings["min_region_size"] == 100
    assert settings["reference"] == "cityscapesscripts evalInstanceLevelSemanticLabeling"
    empty = CityscapesInstanceMetric().compute()
    assert math.isnan(empty.metrics["AP"]) and math.isnan(empty.metrics["AP50"])


# ------------------------------------------------------------------------------------------- bad input
@pytest.fixture
def one_frame(tmp_path):
    root = tmp_path / "cityscapes"
    ids = np.full((20, 40), 7, np.int64)
    ids[0:15, 0:15] = 26000
    write_frame(root, "lindau", "lindau_000000_000001", ids)
    return DATASETS.get("cityscapes")(root, "val", "instance")[0]


def good_prediction(**changes) -> DetectionPrediction:
    mask = np.zeros((20, 40), bool)
    mask[0:15, 0:14] = True
    prediction = as_prediction([(26, 0.5, mask)], 20, 40)
    for name, value in changes.items():
        setattr(prediction, name, value)
    return prediction


@pytest.mark.parametrize("changes, message", [
    ({"scores": np.array([np.nan])}, "NaN or infinite"),
    ({"scores": np.array([np.inf])}, "NaN or infinite"),
    ({"labels": np.array([99])}, "not Cityscapes labelIds"),
    ({"labels": np.array([26.5])}, "integer Cityscapes labelIds"),
    ({"masks": None}, "one mask per detection"),
    ({"labels": np.array([26, 24])}, "2 labels for 1 scores"),
    ({"masks": [{"size": [10, 40], "counts": "PP"}]}, "differs from the image size"),
])
def test_metric_refuses_bad_predictions(one_frame, changes, message):
    metric = CityscapesInstanceMetric()
    with pytest.raises(PredictionError, match=message) as error:
        metric.update([one_frame], [good_prediction(**changes)])
    assert "\n" not in str(error.value) and "lindau_000000_000001" in str(error.value)
    assert metric.images == []


def test_metric_needs_the_instance_ids_file(one_frame):
    bare = Sample(sample_id="x/y", image_path=None, target=one_frame.target, meta={})
    with pytest.raises(DataError, match="instance_ids_path"):
        CityscapesInstanceMetric().update([bare], [good_prediction()])
    with pytest.raises(PredictionError, match="needs a DetectionPrediction"):
        CityscapesInstanceMetric().update([one_frame], [object()])


def test_non_evaluated_labels_are_skipped_like_the_reference(one_frame):
    """caravan (29) and road (7) are Cityscapes labels the reference skips; the car AP is unchanged by them."""
    alone = scored([one_frame], [good_prediction()]).compute()
    everywhere = np.ones((20, 40), bool)
    car = good_prediction()
    extra = as_prediction([(29, 0.99, everywhere), (7, 0.8, everywhere)], 20, 40)
    extra = DetectionPrediction(boxes=np.concatenate([car.boxes, extra.boxes]),
                                scores=np.concatenate([car.scores, extra.scores]),
                                labels=np.concatenate([car.labels, extra.labels]), masks=car.masks + extra.masks)
    assert_identical(alone, scored([one_frame], [extra]).compute())
    # IoU 210/225 = .93: AP 1 (one TP) for t <= .9; at .95 a hard FN and an FP: AP 0
    assert alone.curves["AP_by_overlap"]["classes"]["car"] == [1.0] * 9 + [0.0]
