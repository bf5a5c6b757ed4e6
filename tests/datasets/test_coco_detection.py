import json

import numpy as np
import pytest
from pycocotools import mask as mask_codec

from harness.datasets import DATASETS
from harness.datasets.coco_detection import CocoDetection
from harness.embedded import shapes_coco
from harness.core.errors import DataError

from tests.conftest import DATA
from tests.datasets.checking import assert_clean, assert_problems, copy_tree, run_check

SOURCE = DATA / "coco" / "instances_val2014_100.json"


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory):
    """The real val2014 annotation file arranged in the COCO layout (its images are not in the source)."""
    root = tmp_path_factory.mktemp("coco")
    (root / "annotations").mkdir()
    (root / "val2014").mkdir()
    (root / "annotations" / "instances_val2014.json").write_bytes(SOURCE.read_bytes())
    return root


@pytest.fixture
def open_fixture(coco_root):
    return lambda task="detection": DATASETS.get("coco")(coco_root, "val2014", task)


@pytest.mark.parametrize("task", ["detection", "instance"])
def test_real_instances_file_counts_classes_and_order(open_fixture, task):
    dataset = open_fixture(task)
    assert dataset.counts() == {"images": 100, "instances": 830, "crowd regions": 9, "classes": 80,
                                "classes present": 70}
    assert dataset.info.task == task and dataset.info.split == "val2014"
    assert dataset.info.classes[0] == "person" and dataset.info.classes[-1] == "toothbrush"
    assert dataset.info.category_ids[:3] == [1, 2, 3] and dataset.info.category_ids[-1] == 90
    assert [dataset[i].sample_id for i in range(3)] == [42, 73, 74]  # sorted by image id, as pycocotools


def test_real_targets_carry_boxes_labels_areas_and_segmentations(open_fixture):
    dataset = open_fixture("instance")
    first = dataset[0]
    assert first.image_path.name == "COCO_val2014_000000000042.jpg"
    target = first.target
    assert (target.width, target.height) == (640, 478)
    np.testing.assert_array_equal(target.boxes, [[214.15, 41.29, 348.26, 243.78]])
    assert target.labels.tolist() == [18] and target.areas.tolist() == [53481.5118]
    assert target.ann_ids.tolist() == [1817255] and not target.iscrowd.any() and not target.ignore.any()
    assert isinstance(target.masks[0], list)  # polygons
    crowded = dataset[[s.sample_id for s in dataset].index(715)].target
    assert len(crowded.labels) == 44 and crowded.iscrowd.sum() == 1
    crowd_mask = crowded.masks[int(np.flatnonzero(crowded.iscrowd)[0])]
    assert crowd_mask["size"] == [480, 640] and crowded.labels[crowded.iscrowd].tolist() == [55]


def test_reading_samples_does_not_touch_images(open_fixture):
    dataset = open_fixture()  # the fixture ships no images: listing and targets must still work
    assert sum(len(sample.target.labels) for sample in dataset) == 839


def test_check_lists_every_missing_image_not_just_the_first(coco_root):
    result = run_check("coco", coco_root, "val2014", "detection")
    assert result.exit_code == 1 and len(result.problems) == 100
    assert all(p.endswith(": image file is missing") for p in result.problems)
    assert "COCO_val2014_000000000042.jpg" in result.problems[0]


def test_instance_task_validates_segmentations(tmp_path):
    data = json.loads(SOURCE.read_text())
    crowd = next(a for a in data["annotations"] if a["iscrowd"])
    crowd["segmentation"]["size"] = [10, 10]
    data["annotations"][0]["segmentation"] = [[1.0, 2.0]]
    path = tmp_path / "instances_bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"RLE size \[10, 10\] does not match the image|at least 3 finite"):
        CocoDetection(path, tmp_path, task="instance")
    CocoDetection(path, tmp_path, task="detection")  # boxes alone do not need valid segmentations


def test_embedded_shapes_val_split(bench_cache):
    dataset = DATASETS.get("coco")(None, None, "instance")
    assert dataset.info.name == "coco-mini" and dataset.info.split == "val"
    assert dataset.info.classes == ["circle", "square", "triangle", "cross", "ring"]
    assert dataset.info.category_ids == [1, 2, 3, 4, 5]
    counts = dataset.counts()
    assert counts["images"] == 100 and 250 <= counts["instances"] <= 600 and counts["crowd regions"] >= 2
    assert counts["classes present"] == 5
    kinds, sizes = set(), []
    for sample in dataset:
        target = sample.target
        assert 128 <= target.width <= 192 and 128 <= target.height <= 192
        for box, area, mask in zip(target.boxes, target.areas, target.masks):
            kinds.add(type(mask).__name__)
            rle = (mask_codec.merge(mask_codec.frPyObjects(mask, target.height, target.width))
                   if isinstance(mask, list) else {"size": mask["size"], "counts": mask["counts"].encode()})
            assert mask_codec.area(rle) == area  # area and bbox are those of the stored segmentation
            np.testing.assert_allclose(mask_codec.toBbox(rle), box)
            sizes.append(max(box[2:]))
    assert kinds == {"list", "dict"}  # polygons and RLE both occur
    assert min(sizes) >= 6 and 60 <= max(sizes) <= 90


def test_embedded_generation_is_deterministic(bench_cache, tmp_path):
    dataset = DATASETS.get("coco")(None, "val", "detection")
    shapes_coco.write_split(tmp_path, "val", 4, shapes_coco.SPLITS["val"][1])
    again = json.loads((tmp_path / "annotations" / "instances_val.json").read_text())
    mine = json.loads(dataset.annotation_file.read_text())
    assert again["annotations"] == [a for a in mine["annotations"] if a["image_id"] <= 4]
    assert (tmp_path / "val" / "000000000001.jpg").read_bytes() == (dataset.image_dir / "000000000001.jpg").read_bytes()


def test_check_is_clean_on_embedded_and_lists_every_planted_fault(bench_cache, tmp_path):
    assert_clean(run_check("coco", task="instance"))
    root = DATASETS.get("coco")(None, "val", "detection").annotation_file.parent.parent
    broken = copy_tree(root, tmp_path / "coco")
    annotations = broken / "annotations" / "instances_val.json"
    data = json.loads(annotations.read_text())
    del data["annotations"][5]["area"]
    data["annotations"][9]["category_id"] = 77
    annotations.write_text(json.dumps(data))
    (broken / "val" / "000000000003.jpg").unlink()
    (broken / "val" / "000000000007.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    result = run_check("coco", broken, "val", "instance")
    assert_problems(result, "annotations[5] (id 6): missing key 'area'", "category_id 77 is not in categories",
                    "000000000003.jpg: image file is missing", "000000000007.jpg: cannot decode image")
    assert all("\n" not in p and str(broken) in p for p in result.problems)


def test_unknown_task_and_missing_root_are_one_line_errors(coco_root, tmp_path):
    result = run_check("coco", tmp_path / "nowhere", "val2017", "detection")
    assert_problems(result, "data root does not exist")
    with pytest.raises(Exception, match="serves tasks detection, instance and keypoints"):
        DATASETS.get("coco")(coco_root, "val2014", "flow")
