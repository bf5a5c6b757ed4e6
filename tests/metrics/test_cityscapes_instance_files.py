"""The ``cityscapes-instance`` submission format: exact round trip, the reference's file rules, and bad input.

(The differential test against cityscapesscripts on files written by this format is in
test_cityscapes_instance.py.)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.datasets import DATASETS
from harness.core.errors import PredictionError
from harness.metrics.cityscapes_instance import CityscapesInstanceMetric
from harness.submissions import SUBMISSIONS
from harness.tasks import TASKS
from tests.metrics.cityscapes_instance_cases import as_prediction, write_frame

FRAME = "lindau_000000_000001"
FORMAT = SUBMISSIONS.get("cityscapes-instance")


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "cityscapes"
    ids = np.full((20, 40), 7, np.int64)
    ids[0:15, 0:15] = 26000
    ids[2:12, 20:26] = 24000
    ids[15:20, 30:40] = 4
    write_frame(root, "lindau", FRAME, ids)
    write_frame(root, "lindau", "lindau_000000_000002", ids[:, ::-1].copy())
    return DATASETS.get("cityscapes")(root, "val", "instance")


def awkward_prediction(seed: int = 0):
    """Confidences whose short decimal forms are not what they look like, ties, an empty mask."""
    rng = np.random.default_rng(seed)
    scores = [0.1 + 0.2, 1 / 3, float(np.float32(0.7)), 5e-324, 1 - 2**-53, 0.0, -0.25, 1 / 3, 1e300]
    labels = [26, 24, 33, 26, 25, 32, 28, 27, 31]
    masks = [rng.random((20, 40)) < 0.3 for _ in scores]
    masks[5][:] = False
    return as_prediction(list(zip(labels, scores, masks)), 20, 40)


def test_round_trip_is_exact(dataset, tmp_path):
    from pycocotools import mask as mask_codec

    samples = list(dataset)
    written = [awkward_prediction(0), as_prediction([], 20, 40)]
    fmt = FORMAT(dataset.info, tmp_path / "run")
    assert fmt.path == tmp_path / "run" / "predictions"
    for sample, prediction in zip(samples, written):
        assert fmt.add(sample, prediction) == []
    fmt.finish([])
    folder = fmt.path / "lindau"
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary files left behind
    lines = (folder / f"{FRAME}_pred.txt").read_text().splitlines()
    assert lines[0] == f"{FRAME}_0_car.png 26 0.30000000000000004"
    assert lines[2] == f"{FRAME}_2_bicycle.png 33 0.699999988079071"
    assert (folder / "lindau_000000_000002_pred.txt").read_text() == ""
    with Image.open(folder / f"{FRAME}_0_car.png") as image:
        assert image.mode == "1" and image.size == (40, 20)

    source = FORMAT.reader(dataset.info, fmt.path)
    read = [source.predict(sample) for sample in samples]
    for before, after in zip(written, read):
        assert after.labels.dtype == np.int64 and after.labels.tolist() == before.labels.tolist()
        np.testing.assert_array_equal(after.scores.view(np.int64), before.scores.view(np.int64))  # to the bit
        assert len(after.masks) == len(before.masks)
        for a, b in zip(after.masks, before.masks):
            np.testing.assert_array_equal(mask_codec.decode(a), mask_codec.decode(b))
        np.testing.assert_array_equal(after.boxes, np.asarray(mask_codec.toBbox(after.masks)).reshape(-1, 4)
                                      if after.masks else np.zeros((0, 4)))
    assert read[1].boxes.shape == (0, 4) and read[1].masks == []

    # every metric of the protocol gives the same numbers from either side
    protocol = TASKS.get("instance")().protocol(dataset.info)
    for side_a, side_b in zip(protocol.build_metrics(dataset.info), protocol.build_metrics(dataset.info)):
        side_a.update(samples, written)
        side_b.update(samples, read)
        a, b = side_a.compute(), side_b.compute()
        assert a.metrics.keys() == b.metrics.keys()
        np.testing.assert_array_equal(np.array(list(a.metrics.values())), np.array(list(b.metrics.values())))


def test_reader_takes_other_tools_layouts(dataset, tmp_path):
    """mmdetection's flat folder: ``<image stem>_pred.txt`` (stem = ``<frame>_leftImg8bit``), masks 0/1."""
    flat = tmp_path / "mmdet"
    flat.mkdir()
    mask = np.zeros((20, 40), np.uint8)
    mask[0:15, 0:15] = 1
    Image.fromarray(mask).save(flat / f"{FRAME}_leftImg8bit_0_car.png")
    (flat / f"{FRAME}_leftImg8bit_pred.txt").write_text(f"{FRAME}_leftImg8bit_0_car.png 26 0.875\n")
    (flat / "lindau_000000_000002_leftImg8bit_pred.txt").write_text("")
    source = FORMAT.reader(dataset.info, flat)
    prediction = source.predict(dataset[0])
    assert prediction.labels.tolist() == [26] and prediction.scores.tolist() == [0.875]
    assert prediction.boxes.tolist() == [[0.0, 0.0, 15.0, 15.0]]
    metric = CityscapesInstanceMetric()
    metric.update(list(dataset), [prediction, source.predict(dataset[1])])
    # one car of two found: point (p 1, r 1/2) + artificial (1, 0); widths [.25, .25] -> AP .5
    assert metric.compute().per_class["AP50"]["car"] == 0.5


def test_reader_drops_classes_the_reference_skips(dataset, tmp_path):
    folder = tmp_path / "pred"
    folder.mkdir()
    mask = np.zeros((20, 40), bool)
    mask[0:15, 0:15] = True
    Image.fromarray(mask).save(folder / "m.png")
    Image.fromarray(mask).save(folder / "n.png")
    (folder / f"{FRAME}_pred.txt").write_text("m.png 29 0.9\nn.png 26.0 0.5\n")
    prediction = FORMAT.reader(dataset.info, folder).predict(dataset[0])
    assert prediction.labels.tolist() == [26] and prediction.scores.tolist() == [0.5]


# ------------------------------------------------------------------------------------------- bad input
def _good_mask(folder: Path, name: str = "a.png", size: tuple[int, int] = (20, 40)) -> None:
    mask = np.zeros(size, bool)
    mask[0:5, 0:5] = True
    Image.fromarray(mask).save(folder / name)


@pytest.mark.parametrize("content, message", [
    ("a.png 26\n", "line 1: expected '<relative mask png> <labelId> <confidence>'"),
    ("a.png  26 0.5\n", "line 1: expected"),
    ("a.png 26 0.5\n\n", "line 2: expected"),
    ("{abs} 26 0.5\n", "must be relative"),
    ("../../outside.png 26 0.5\n", "points outside the predictions folder"),
    ("missing.png 26 0.5\n", "mask file missing.png is missing"),
    ("small.png 26 0.5\n", "mask small.png is 10x5, the image 40x20"),
    ("broken.png 26 0.5\n", "mask broken.png cannot be decoded"),
    ("a.png 99 0.5\n", "'99' is not a Cityscapes labelId"),
    ("a.png 26.5 0.5\n", "'26.5' is not a Cityscapes labelId"),
    ("a.png car 0.5\n", "labelId 'car' is not a number"),
    ("a.png 26 nan\n", "confidence 'nan' is NaN or infinite"),
    ("a.png 26 -inf\n", "confidence '-inf' is NaN or infinite"),
    ("a.png 26 high\n", "confidence 'high' is not a number"),
    ("a.png 26 0.5\nb.png 24 0.2\na.png 26 0.6\n", "line 3: mask a.png is listed twice (also on line 1)"),
])
def test_reader_refuses_bad_lines(dataset, tmp_path, content, message):
    folder = tmp_path / "pred" / "lindau"
    folder.mkdir(parents=True)
    _good_mask(folder)
    _good_mask(folder, "b.png")
    _good_mask(folder, "small.png", (5, 10))
    _good_mask(tmp_path, "outside.png")
    (folder / "broken.png").write_bytes(b"not a png")
    txt = folder / f"{FRAME}_pred.txt"
    txt.write_text(content.replace("{abs}", str(folder / "a.png")))
    source = FORMAT.reader(dataset.info, tmp_path / "pred")
    with pytest.raises(PredictionError) as error:
        source.predict(dataset[0])
    text = str(error.value)
    assert message in text and str(txt) in text and "\n" not in text


def test_reader_finds_exactly_one_file_per_frame(dataset, tmp_path):
    folder = tmp_path / "pred"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    (folder / "a" / f"{FRAME}_pred.txt").write_text("")
    (folder / "b" / f"{FRAME}_leftImg8bit_pred.txt").write_text("")
    (folder / "b" / "lindau_000000_000099_pred.txt").write_text("")  # a frame the split does not have
    source = FORMAT.reader(dataset.info, folder)
    with pytest.raises(PredictionError, match="several prediction files for frame 'lindau/lindau_000000_000001'"):
        source.predict(dataset[0])
    with pytest.raises(PredictionError, match=r"no prediction file lindau_000000_000002\*\.txt"):
        source.predict(dataset[1])
    ids = {sample.sample_id for sample in dataset}
    assert source.unmatched(ids) == ["b/lindau_000000_000099_pred.txt: no frame of the dataset matches it"]
    with pytest.raises(PredictionError, match="must be a folder"):
        FORMAT.reader(dataset.info, folder / "a" / f"{FRAME}_pred.txt")


@pytest.mark.parametrize("change, message", [
    ({"scores": np.array([np.nan])}, "NaN or infinite"),
    ({"labels": np.array([99])}, "not Cityscapes labelIds"),
    ({"labels": np.array([29])}, "not evaluated instance classes"),
    ({"masks": [{"size": [20, 41], "counts": "PP"}]}, "differs from the image size"),
])
def test_writer_refuses_bad_predictions(dataset, tmp_path, change, message):
    mask = np.zeros((20, 40), bool)
    mask[0:3, 0:3] = True
    prediction = as_prediction([(26, 0.5, mask)], 20, 40)
    for name, value in change.items():
        setattr(prediction, name, value)
    fmt = FORMAT(dataset.info, tmp_path / "run")
    with pytest.raises(PredictionError, match=message) as error:
        fmt.add(dataset[0], prediction)
    assert "\n" not in str(error.value) and FRAME in str(error.value)
    assert not (fmt.path / "lindau" / f"{FRAME}_pred.txt").exists()
