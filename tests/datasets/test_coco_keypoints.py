import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.datasets import DATASETS
from harness.datasets.coco_keypoints import CocoKeypoints, open_coco_keypoints
from harness.core.errors import DataError
from harness.labels.keypoints import COCO_KEYPOINT_NAMES, COCO_SIGMAS

FIXTURE = Path(__file__).parents[1] / "data" / "coco-keypoints"


def fixture_dataset() -> CocoKeypoints:
    return CocoKeypoints(FIXTURE / "test_coco.json", FIXTURE)


def test_real_fixture_counts_and_values():
    dataset = fixture_dataset()
    assert [dataset[i].sample_id for i in range(len(dataset))] == [785, 40083, 196141, 197388]
    assert dataset.counts() == {"images": 4, "people": 14, "crowd regions": 0, "labelled keypoints": 181}
    assert dataset.info.keypoint_names == COCO_KEYPOINT_NAMES
    assert dataset.info.sigmas == COCO_SIGMAS
    assert (15, 13) in dataset.info.skeleton  # [16, 14] 1-based: left_ankle - left_knee
    first = dataset[0]
    assert first.target.keypoints.shape == (1, 17, 3)
    assert first.target.num_keypoints.tolist() == [17]
    assert first.load_image().shape == (425, 640, 3)
    raw = json.loads((FIXTURE / "test_coco.json").read_text())
    ann = next(a for a in raw["annotations"] if a["image_id"] == 785)
    np.testing.assert_array_equal(first.target.keypoints.reshape(-1), ann["keypoints"])
    np.testing.assert_array_equal(first.target.boxes[0], ann["bbox"])


def test_prompts_are_the_non_crowd_people_with_labelled_keypoints():
    dataset = fixture_dataset()
    for sample in dataset:
        keep = ~sample.target.iscrowd & (sample.target.num_keypoints > 0)
        np.testing.assert_array_equal(sample.prompts.boxes, sample.target.boxes[keep])
    assert sum(len(s.prompts.boxes) for s in dataset) == 12  # two people have num_keypoints == 0


def test_embedded_dataset_is_deterministic_and_in_the_coco_layout(bench_cache):
    dataset = DATASETS.get("coco")(None, None, "keypoints")
    assert dataset.info.name == "coco-mini" and dataset.info.split == "val"
    root = dataset.annotation_file.parent.parent
    assert (root / "annotations" / "person_keypoints_val.json").is_file() and (root / "val").is_dir()
    counts = dataset.counts()
    assert counts["images"] == 160 and 200 <= counts["people"] <= 400 and counts["crowd regions"] >= 3
    flags = np.concatenate([s.target.keypoints[..., 2].ravel() for s in dataset])
    assert {0, 1, 2} <= set(flags.tolist())  # truncated, occluded and visible joints all occur
    from harness.embedded import stick_figures

    other = bench_cache / "again"
    stick_figures.write_split(other, "val", 5, stick_figures.SPLITS["val"][1])
    again = json.loads((other / "annotations" / "person_keypoints_val.json").read_text())
    mine = json.loads(dataset.annotation_file.read_text())
    assert again["annotations"] == [a for a in mine["annotations"] if a["image_id"] <= 5]


def test_missing_data_root_is_one_line(tmp_path):
    with pytest.raises(DataError, match="data root does not exist"):
        open_coco_keypoints(tmp_path / "nowhere", "val2017")


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda d: d["annotations"][3].pop("num_keypoints"), r"annotations\[3\] \(id \d+\): missing key 'num_keypoints'"),
        (lambda d: d["annotations"][0].update(keypoints=[1, 2, 2]), r"3 keypoint values, category defines 17 keypoints \(51 values\)"),
        (lambda d: d["annotations"][1].update(image_id=1), r"image_id 1 is not in images"),
        (lambda d: d["annotations"][1].update(bbox=[0, 0, -3, 4]), r"negative width or height"),
        (lambda d: d.pop("categories"), r"missing or non-list top-level key 'categories'"),
    ],
)
def test_malformed_annotation_file_names_file_and_item(tmp_path, corrupt, message):
    data = json.loads((FIXTURE / "test_coco.json").read_text())
    corrupt(data)
    path = tmp_path / "person_keypoints_bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=message) as info:
        CocoKeypoints(path, FIXTURE)
    assert str(path) in str(info.value)


def test_corrupt_image_is_reported_by_check(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "copy")
    (tmp_path / "copy" / "000000000785.jpg").write_bytes(b"not a jpeg")
    dataset = CocoKeypoints(tmp_path / "copy" / "test_coco.json", tmp_path / "copy")
    problems = dataset.check()
    assert len(problems) == 1 and "000000000785.jpg: cannot decode image" in problems[0]
