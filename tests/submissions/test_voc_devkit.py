"""The ``voc-devkit`` submission format: the devkit's comp4_det_<set>_<class>.txt files, out and back in."""
from __future__ import annotations

import math
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

from harness.datasets import DATASETS
from harness.core.errors import PredictionError
from harness.metrics.voc import AP_MODES, DIALECTS, VocAPMetric
from harness.core.structures import DetectionPrediction
from harness.submissions import SUBMISSIONS
from tests.conftest import DATA

VOC2007 = DATA / "voc" / "VOCdevkit" / "VOC2007"


def synthetic_predictions(dataset, seed: int, grid: float | None = None) -> list[DetectionPrediction]:
    """Jittered GT boxes and strays, every class, tied and untied scores, empty images, sub-pixel and
    off-image boxes.  ``grid`` rounds coordinates to multiples of 1/grid; None keeps full float64 noise."""
    rng = np.random.default_rng(seed)
    ids = np.array(dataset.info.category_ids)
    predictions = []
    for index in range(len(dataset)):
        target = dataset[index].target
        if rng.random() < 0.1:
            predictions.append(DetectionPrediction(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64)))
            continue
        n = int(rng.integers(1, 12))
        base = target.boxes[rng.integers(0, len(target.boxes), n)] if len(target.boxes) else np.tile([20.0, 20, 30, 30],
                                                                                                       (n, 1))
        boxes = base + rng.normal(0, 3, size=(n, 4))
        boxes[:, 2:] = np.abs(boxes[:, 2:])
        boxes[0] = [-0.7, 3.25, 0.3, 0.0]  # off the left edge, 0.3 px wide, 0 px tall: xmax < xmin in the file
        if grid:
            boxes = np.round(boxes * grid) / grid
        labels = np.where(rng.random(n) < 0.7, target.labels[rng.integers(0, max(len(target.labels), 1), n)]
                          if len(target.labels) else ids[0], rng.choice(ids, n))
        scores = np.round(rng.random(n), 1) if rng.random() < 0.5 else rng.random(n)
        predictions.append(DetectionPrediction(boxes, scores, labels.astype(np.int64)))
    return predictions


def write(dataset, predictions, out_dir):
    fmt = SUBMISSIONS.get("voc-devkit")(dataset.info, out_dir)
    records = []
    for index, prediction in enumerate(predictions):
        records += fmt.add(dataset[index], prediction)
    fmt.finish(records)
    return out_dir / fmt.entry


def score(dataset, predictions, **options):
    metric = VocAPMetric.from_dataset(dataset.info, **options)
    metric.update([dataset[i] for i in range(len(dataset))], predictions)
    return metric.compute()


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)


@pytest.mark.parametrize("seed", [0, 1])
def test_round_trip_is_exact_on_embedded_voc_mini(bench_cache, tmp_path, seed):
    dataset = DATASETS.get("voc")(None, None, "detection")
    predictions = synthetic_predictions(dataset, seed)
    folder = write(dataset, predictions, tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"comp4_det_val_{name}.txt" for name in dataset.info.classes)
    source = SUBMISSIONS.get("voc-devkit").reader(dataset.info, folder)
    assert source.unmatched({dataset[i].sample_id for i in range(len(dataset))}) == []
    back = [source.predict(dataset[i]) for i in range(len(dataset))]
    for original, read in zip(predictions, back):
        for label in dataset.info.category_ids:  # per class, in order: the devkit corners and scores, bit for bit
            a, b = original.boxes[original.labels == label], read.boxes[read.labels == label]
            np.testing.assert_array_equal(np.c_[a[:, :2] + 1, a[:, :2] + a[:, 2:]],
                                          np.c_[b[:, :2] + 1, b[:, :2] + b[:, 2:]])
            np.testing.assert_array_equal(original.scores[original.labels == label], read.scores[read.labels == label])
    for dialect in DIALECTS:
        for mode in AP_MODES:
            memory = score(dataset, predictions, dialect=dialect, ap_mode=mode)
            files = score(dataset, back, dialect=dialect, ap_mode=mode)
            assert same(memory.metrics, files.metrics), (dialect, mode)
            assert same(memory.per_class["AP"], files.per_class["AP"]), (dialect, mode)
            assert 0 < memory.metrics["mAP"] < 1


def parse_results(folder, image_set, classes):
    """The result files read with plain Python: {class index: [(image id, score, x1, y1, x2, y2), ...]}."""
    rows = {}
    for c, name in enumerate(classes):
        lines = (folder / f"comp4_det_{image_set}_{name}.txt").read_text().splitlines()
        rows[c] = [(f[0], *map(float, f[1:])) for f in (line.split() for line in lines)]
    return rows


def parse_xml(path, classes):
    """GT as mmdet's VOC dataset loads it (``minus_one``): 0-based inclusive corners, difficult to ignore."""
    boxes, labels, difficult = [], [], []
    for obj in ElementTree.parse(path).getroot().iter("object"):
        box = obj.find("bndbox")
        boxes.append([float(box.find(k).text) - 1 for k in ("xmin", "ymin", "xmax", "ymax")])
        labels.append(classes.index(obj.find("name").text))
        difficult.append(obj.find("difficult").text == "1")
    boxes, labels, difficult = np.array(boxes).reshape(-1, 4), np.array(labels, np.int64), np.array(difficult, bool)
    return {"bboxes": boxes[~difficult], "labels": labels[~difficult], "bboxes_ignore": boxes[difficult],
            "labels_ignore": labels[difficult]}


def test_mmdet_eval_map_on_the_written_files_equals_bench(bench_cache, tmp_path):
    from tests.metrics.voc_oracles import eval_map

    dataset = DATASETS.get("voc")(None, None, "detection")
    classes = dataset.info.classes
    predictions = synthetic_predictions(dataset, 7, grid=256)
    folder = write(dataset, predictions, tmp_path)
    rows = parse_results(folder, "val", classes)
    image_ids = [dataset[i].sample_id for i in range(len(dataset))]
    det_results = []
    for image_id in image_ids:  # mmdet's boxes are the devkit's corners minus 1 (0-based inclusive)
        det_results.append([np.array([[x1 - 1, y1 - 1, x2 - 1, y2 - 1, s] for i, s, x1, y1, x2, y2 in rows[c]
                                      if i == image_id]).reshape(-1, 5) for c in range(len(classes))])
    annotations = [parse_xml(dataset.year_dir / "Annotations" / f"{i}.xml", classes) for i in image_ids]
    assert sum(len(a["bboxes_ignore"]) for a in annotations) > 0  # difficult objects take part
    for mode in AP_MODES:
        expected_map, expected = eval_map(det_results, annotations, mode)
        result = score(dataset, predictions, dialect="mmdet", ap_mode=mode)
        assert result.metrics["mAP"] == expected_map
        assert [result.per_class["AP"][name] for name in classes] == [float(e["ap"]) for e in expected]


def test_devkit_lines_for_the_real_voc2007_image(tmp_path):
    dataset = DATASETS.get("voc")(DATA / "voc", "2007-test", "detection")
    # harness box [44, 238, 151, 68] covers pixels 45..195 x 239..306 (1-based inclusive): the devkit line says so
    prediction = DetectionPrediction(np.array([[44.0, 238, 151, 68], [0.5, 1, 2.25, 3]]), np.array([0.9, 0.125]),
                                     np.array([12, 15]))
    folder = write(dataset, [prediction], tmp_path)
    files = sorted(folder.iterdir())
    assert len(files) == 20 and sum(p.stat().st_size == 0 for p in files) == 18  # every class, even empty
    assert (folder / "comp4_det_test_dog.txt").read_text() == "000001 0.9 45.0 239.0 195.0 306.0\n"
    assert (folder / "comp4_det_test_person.txt").read_text() == "000001 0.125 1.5 2.0 2.75 4.0\n"
    read = SUBMISSIONS.get("voc-devkit").reader(dataset.info, folder).predict(dataset[0])
    np.testing.assert_array_equal(read.boxes, prediction.boxes)
    assert read.labels.tolist() == [12, 15] and read.scores.tolist() == [0.9, 0.125]


def devkit_folder(tmp_path, dog_lines: str):
    dataset = DATASETS.get("voc")(DATA / "voc", "2007-test", "detection")
    folder = write(dataset, [DetectionPrediction(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))], tmp_path)
    (folder / "comp4_det_test_dog.txt").write_text(dog_lines)
    return dataset, folder


@pytest.mark.parametrize("line, problem", [
    ("000001 0.5 1 2 3", "line 2: expected '<image id> <score> <xmin> <ymin> <xmax> <ymax>', got 5 fields"),
    ("000001 0.5 1 2 3 4 5", "line 2: expected '<image id> <score> <xmin> <ymin> <xmax> <ymax>', got 7 fields"),
    ("000001 high 1 2 3 4", "line 2: not a number in 'high 1 2 3 4'"),
    ("000001 nan 1 2 3 4", "line 2: non-finite score or coordinate"),
    ("000001 0.5 1 2 inf 4", "line 2: non-finite score or coordinate"),
    ("000001 0.5 10 2 8.5 4", "line 2: xmax < xmin - 1 or ymax < ymin - 1 (a negative width)"),
])
def test_reader_refuses_bad_lines_naming_file_and_line(tmp_path, line, problem):
    dataset, folder = devkit_folder(tmp_path, f"000001 0.9 45 239 195 306\n{line}\n")
    with pytest.raises(PredictionError) as error:
        SUBMISSIONS.get("voc-devkit").reader(dataset.info, folder)
    message = str(error.value)
    assert message == f"{folder / 'comp4_det_test_dog.txt'}: {problem}" and "\n" not in message


def test_unknown_image_ids_and_missing_files(tmp_path):
    dataset, folder = devkit_folder(tmp_path, "000001 0.9 45 239 195 306\n\n000002 0.8 1 1 5 5\n")
    source = SUBMISSIONS.get("voc-devkit").reader(dataset.info, folder)
    assert source.unmatched({"000001"}) == ["comp4_det_test_dog.txt line 3: image '000002' is not in the image set"]
    assert source.predict(dataset[0]).scores.tolist() == [0.9]
    (folder / "comp4_det_test_cat.txt").unlink()
    with pytest.raises(PredictionError, match="missing result file comp4_det_test_cat.txt"):
        SUBMISSIONS.get("voc-devkit").reader(dataset.info, folder)
    with pytest.raises(PredictionError, match="not a folder"):
        SUBMISSIONS.get("voc-devkit").reader(dataset.info, folder / "comp4_det_test_dog.txt")


def test_add_refuses_what_the_devkit_could_not_read(tmp_path):
    dataset = DATASETS.get("voc")(DATA / "voc", "2007-test", "detection")
    fmt = SUBMISSIONS.get("voc-devkit")(dataset.info, tmp_path)
    sample = dataset[0]
    with pytest.raises(PredictionError, match="'000001': category ids \\[21\\] are not classes"):
        fmt.add(sample, DetectionPrediction(np.ones((1, 4)), np.ones(1), np.array([21])))
    with pytest.raises(PredictionError, match="'000001': non-finite"):
        fmt.add(sample, DetectionPrediction(np.ones((1, 4)), np.array([np.nan]), np.array([12])))
    with pytest.raises(PredictionError, match="'000001': negative box width"):
        fmt.add(sample, DetectionPrediction(np.array([[1.0, 1, -2, 3]]), np.ones(1), np.array([12])))


def test_box_conversion_inverts_exactly():
    from harness.core.boxes import devkit_to_xywh, xywh_to_devkit

    rng = np.random.default_rng(3)
    model_like = np.c_[rng.uniform(-50, 600, (50_000, 2)), rng.exponential(80, (50_000, 2))].astype(np.float32)
    boxes = model_like.astype(np.float64)  # float32 outputs: the box itself comes back, bit for bit
    np.testing.assert_array_equal(devkit_to_xywh(xywh_to_devkit(boxes)), boxes)
    doubles = np.c_[rng.uniform(-2, 2, (50_000, 2)), rng.uniform(0, 3, (50_000, 2))]
    corners = xywh_to_devkit(doubles)  # full doubles: the devkit corners come back, bit for bit
    np.testing.assert_array_equal(xywh_to_devkit(devkit_to_xywh(corners)), corners)
    # y = 1.0188600247459279 + 1 rounds, so y' = Y1 - 1 is another double; y' + (Y2 - y') misses Y2 by an ulp and
    # the height has to be nudged.  y = -0.0934...: Y1 - 1 is too coarse to reach Y2 at all; y' gets finer bits.
    for box in ([13.686051157610263, 1.0188600247459279, 34.271314058560044, 28.113682253208776],
                [-0.44258933635812914, -0.09344430188327875, 0.08762943531949849, 0.5306832491896909]):
        corners = xywh_to_devkit(np.array([box]))
        np.testing.assert_array_equal(xywh_to_devkit(devkit_to_xywh(corners)), corners)
        naive = np.c_[corners[:, :2] - 1, corners[:, 2:] - (corners[:, :2] - 1)]
        assert (xywh_to_devkit(naive) != corners).any()  # the plain inverse would not do
