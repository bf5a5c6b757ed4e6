import re
import shutil

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from harness.datasets import DATASETS
from harness.datasets.voc import VOC_CLASSES, VocDetection
from harness.embedded import shapes_voc
from harness.core.errors import DataError
from harness.io.imageio import voc_palette

from tests.conftest import DATA
from tests.datasets.checking import assert_clean, assert_problems, copy_tree, run_check

FIXTURE = DATA / "voc"


def open_voc(split=None, task="detection", root=FIXTURE):
    return DATASETS.get("voc")(root, split, task)


def test_real_voc2007_test_detection_boxes_and_classes():
    dataset = open_voc()
    assert dataset.info.split == "2007-test" and dataset.info.classes == VOC_CLASSES
    assert dataset.info.category_ids == list(range(1, 21))
    assert dataset.counts() == {"images": 1, "objects": 2, "difficult": 0, "classes": 20, "classes present": 2}
    sample = dataset[0]
    assert sample.sample_id == "000001" and sample.image_path.name == "000001.jpg"
    target = sample.target
    assert (target.width, target.height) == (353, 500)
    assert [VOC_CLASSES[label - 1] for label in target.labels] == ["dog", "person"]
    np.testing.assert_array_equal(sample.meta["voc_boxes"], [[48, 240, 195, 371], [8, 12, 352, 498]])
    np.testing.assert_array_equal(target.boxes, [[47, 239, 148, 132], [7, 11, 345, 487]])
    np.testing.assert_array_equal(target.areas, [148 * 132, 345 * 487])
    assert not target.ignore.any() and not target.iscrowd.any()
    assert sample.load_image().shape == (500, 353, 3)


def _devkit_iou(a, b):  # the VOC devkit's overlap on raw 1-based inclusive boxes
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter)


def _continuous_iou(a, b):  # plain xywh IoU
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


voc_box = st.tuples(st.integers(1, 400), st.integers(1, 400), st.integers(0, 60), st.integers(0, 60)).map(
    lambda t: (t[0], t[1], t[0] + t[2], t[1] + t[3]))


@given(voc_box, voc_box)
def test_box_convention_makes_continuous_iou_equal_the_devkit_iou(a, b):
    def convert(box):
        return (box[0] - 1, box[1] - 1, box[2] - box[0] + 1, box[3] - box[1] + 1)

    assert _continuous_iou(convert(a), convert(b)) == pytest.approx(_devkit_iou(a, b), abs=1e-15)


@pytest.mark.parametrize("root", [FIXTURE, FIXTURE / "VOCdevkit", FIXTURE / "VOCdevkit" / "VOC2012"])
def test_data_root_may_be_devkit_parent_devkit_or_year_folder(root):
    dataset = open_voc("2012-trainval", root=root)
    assert [VOC_CLASSES[label - 1] for label in dataset[0].target.labels] == ["train"]


def test_bare_split_must_be_unambiguous():
    with pytest.raises(DataError, match="ambiguous or absent \\(years with it: 2007, 2012\\).*--split 2007-trainval"):
        open_voc("trainval")
    assert open_voc("val", "semantic").info.split == "2012-val"  # only VOC2012 has Segmentation/val
    with pytest.raises(DataError, match="no VOC2010 folder"):
        open_voc("2010-val")


def test_real_segmentation_palette_pngs():
    dataset = open_voc(None, "semantic")
    assert dataset.info.split == "2012-val" and dataset.info.classes == ["background", *VOC_CLASSES]
    assert dataset.info.ignore_index == 255 and len(dataset) == 3
    expected = {"2011_000003": [0, 5, 15, 255], "2011_000006": [0, 9, 15, 18, 255], "2011_000025": [0, 6, 7]}
    for sample in dataset:
        assert np.unique(sample.target.label_map).tolist() == expected[sample.sample_id]
        raw = np.asarray(Image.open(FIXTURE / "VOCdevkit/VOC2012/SegmentationClass" / f"{sample.sample_id}.png"))
        np.testing.assert_array_equal(sample.target.label_map, raw)  # palette index = class index
        assert sample.load_image().shape[:2] == sample.target.label_map.shape
    assert_clean(run_check("voc", FIXTURE, task="semantic"))
    assert_clean(run_check("voc", FIXTURE, task="detection"))


def test_embedded_voc_layout(bench_cache):
    detection = open_voc(None, "detection", root=None)
    assert detection.info.name == "voc-mini" and detection.info.split == "2012-val"
    assert detection.info.classes == ["circle", "square", "triangle", "cross", "ring"]
    counts = detection.counts()
    assert counts["images"] == 100 and 250 <= counts["objects"] <= 600 and counts["difficult"] >= 1
    raw = np.concatenate([s.meta["voc_boxes"] for s in detection])
    assert raw.min() >= 1 and raw[:, 2].max() <= 192 and raw[:, 3].max() <= 192  # 1-based inclusive
    semantic = open_voc("2012-val", "semantic", root=None)
    assert semantic.info.classes[1:] == detection.info.classes and len(semantic) == 100
    values = set(np.unique(np.concatenate([np.unique(s.target.label_map) for s in semantic])).tolist())
    assert values == {0, 1, 2, 3, 4, 5, 255}
    assert_clean(run_check("voc", task="semantic"))
    assert (detection.year_dir / "ImageSets" / "Segmentation" / "val.txt").is_file()
    assert not (detection.year_dir / "ImageSets" / "Main" / "train.txt").exists()  # train is generated on demand


def test_check_lists_label_range_corrupt_and_missing_files(bench_cache, tmp_path):
    source = open_voc("val", "semantic", root=None).year_dir.parent.parent
    broken = copy_tree(source, tmp_path / "voc")
    year = broken / "VOCdevkit" / "VOC2012"
    ids = (year / "ImageSets" / "Segmentation" / "val.txt").read_text().split()
    label = np.asarray(Image.open(year / "SegmentationClass" / f"{ids[0]}.png")).copy()
    label[:3, :3] = 30
    image = Image.fromarray(label, mode="P")
    image.putpalette(voc_palette())
    image.save(year / "SegmentationClass" / f"{ids[0]}.png")
    (year / "JPEGImages" / f"{ids[1]}.jpg").unlink()
    (year / "SegmentationClass" / f"{ids[2]}.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(year / "SegmentationClass" / f"{ids[3]}.png")
    result = run_check("voc", broken, "val", "semantic")
    assert_problems(result, "label values 30 outside the class range (0..5, 255 = void)",
                    f"{ids[1]}.jpg: image file is missing", f"{ids[2]}.png: cannot decode image",
                    "expected a single-channel or palette label PNG, got mode RGB")


def test_missing_folder_is_reported_once_with_the_other_problems(bench_cache, tmp_path):
    source = open_voc("val", "detection", root=None).year_dir.parent.parent
    broken = copy_tree(source, tmp_path / "voc")
    year = broken / "VOCdevkit" / "VOC2012"
    ids = (year / "ImageSets" / "Main" / "val.txt").read_text().split()
    xml = year / "Annotations" / f"{ids[4]}.xml"
    xml.write_text(re.sub(r"<name>\w+</name>", "<name>hexagon</name>", xml.read_text()))
    (year / "Annotations" / f"{ids[5]}.xml").write_text("<annotation><size>")
    (year / "JPEGImages" / f"{ids[5]}.jpg").write_bytes(b"")  # same sample: both files are reported
    shutil.rmtree(year / "SegmentationClass")
    assert_problems(run_check("voc", broken, "val", "semantic"), "folder SegmentationClass/ is missing",
                    f"{ids[5]}.jpg: cannot decode image")
    assert_problems(run_check("voc", broken, "val", "detection"), "unknown class 'hexagon'", "malformed XML",
                    f"{ids[5]}.jpg: cannot decode image")
    with pytest.raises(DataError, match="folder SegmentationClass/ is missing"):
        open_voc("val", "semantic", root=broken)


def test_class_names_file_replaces_the_voc_classes(tmp_path):
    year = copy_tree(FIXTURE / "VOCdevkit" / "VOC2007", tmp_path / "VOC2007")
    (year / "class_names.txt").write_text("_background_\ndog\nperson\n")
    dataset = VocDetection(year, "test")
    assert dataset.info.classes == ["dog", "person"] and dataset[0].target.labels.tolist() == [1, 2]


def test_annotation_ids_are_unique_nonzero_and_independent_of_read_order(bench_cache):
    dataset = open_voc(None, "detection", root=None)
    forward = {i: dataset[i].target.ann_ids.tolist() for i in range(len(dataset))}
    fresh = open_voc(None, "detection", root=None)  # a new reader, samples read backwards (as another shard would)
    backward = {i: fresh[i].target.ann_ids.tolist() for i in reversed(range(len(fresh)))}
    assert forward == backward
    ids = [a for i in range(len(dataset)) for a in forward[i]]
    assert len(ids) == len(set(ids)) and min(ids) >= 1
    assert forward[0][:2] == [1, 2] and forward[3][0] == 30_001  # image index * 10000 + k + 1


def test_coco_metric_accepts_voc_targets(bench_cache):
    # `bench run --task detection --dataset voc` stopped with "annotation #2: duplicate id 0": the COCO tables
    # refuse repeated annotation ids, and every XML numbered its objects from 0
    from harness.metrics import METRICS
    from harness.core.structures import DetectionPrediction

    dataset = open_voc(None, "detection", root=None)
    metric = METRICS.get("coco_bbox").from_dataset(dataset.info)
    samples = [dataset[i] for i in range(4)]
    predictions = [DetectionPrediction(s.target.boxes, np.ones(len(s.target.boxes)), s.target.labels) for s in samples]
    metric.update(samples, predictions)
    assert metric.compute().metrics["AP"] > 0.9


def test_detection_protocol_follows_the_devkit_of_the_year():
    from harness.datasets.voc import detection_protocol

    for year, name, mode in [("2007", "voc07-devkit", "11point"), ("2009", "voc07-devkit", "11point"),
                             ("2010", "voc-devkit", "area"), ("2012", "voc-devkit", "area")]:
        protocol = detection_protocol(year)
        assert protocol.name == name and dict(protocol.metrics[0].options) == {"ap_mode": mode}
        assert protocol.headline == "mAP" and protocol.submission == "voc-devkit"
        assert protocol.columns == ("mAP", "mAP_11point", "mAP_area")
    assert open_voc(None, "detection", root=None).info.protocol.name == "voc-devkit"  # the embedded VOC2012


def test_detection_task_resolves_the_voc_protocol():
    from harness.metrics.voc import VocAPMetric
    from harness.submissions import SUBMISSIONS
    from harness.tasks import TASKS

    info = open_voc().info  # VOC2007 test
    protocol = TASKS.get("detection")().protocol(info)
    assert protocol.name == "voc07-devkit" and protocol.headline == "mAP" and protocol.version_key.startswith(
        "voc07-devkit@1[voc_ap:2]")
    assert protocol.dialects() == ("voc-devkit", "py-faster-rcnn", "mmdet")
    (metric,) = protocol.build_metrics(info, "mmdet")
    assert isinstance(metric, VocAPMetric) and (metric.dialect, metric.ap_mode) == ("mmdet", "11point")
    assert metric.class_names[12] == "dog"
    assert SUBMISSIONS.get(protocol.submission).entry == "predictions"
