import json

import numpy as np
import pytest
import scipy.io

from harness.datasets import DATASETS
from harness.datasets.mpii import Mpii
from harness.embedded import mpii_figures
from harness.core.errors import DataError
from harness.labels.keypoints import MPII_JOINT_CODES, MPII_KEYPOINT_NAMES

from harness.core.protocol import MetricSpec
from tests.conftest import DATA
from tests.datasets.checking import assert_clean, assert_problems, copy_tree, run_check
from tests.datasets.mpii_files import write_gt_mat

FIXTURE = DATA / "mpii"


def test_real_mmpose_json_layout():
    dataset = DATASETS.get("mpii")(FIXTURE, None, "keypoints")
    assert dataset.info.split == "val" and dataset.info.keypoint_names == MPII_KEYPOINT_NAMES
    assert dataset.counts() == {"images": 5, "people": 5, "labelled joints": 76, "head boxes": 0}
    assert [s.meta["file_name"] for s in dataset] == ["005808361.jpg", "052475643.jpg", "051423444.jpg",
                                                      "004645041.jpg", "060754485.jpg"]  # json order
    first = dataset[0]
    target = first.target
    assert (target.width, target.height) == (1280, 720) and target.head_boxes is None
    # the json holds MATLAB's 1-based pixels ([804, 711] for the right ankle); samples are 0-based
    np.testing.assert_array_equal(target.keypoints[0, :3], [[803, 710, 2], [815, 509, 2], [907, 437, 2]])
    np.testing.assert_allclose(target.keypoints[0, 9], [961.2409, 79.0306, 2])  # head top
    side = 4.718488 * 200
    np.testing.assert_allclose(target.boxes, [[965 - side / 2, 339 - side / 2, side, side]])  # around center - 1
    np.testing.assert_allclose(first.prompts.boxes, target.boxes)
    third = dataset[2].target
    assert third.num_keypoints.tolist() == [14] and third.ann_ids.tolist() == [2]
    np.testing.assert_array_equal(third.keypoints[0, [0, 5]], np.zeros((2, 3)))  # unlabelled ankles
    assert_clean(run_check("mpii", FIXTURE))


def test_embedded_mpii_with_official_gt_mat(bench_cache):
    dataset = DATASETS.get("mpii")(None, None, "keypoints")
    assert dataset.info.name == "mpii-mini" and dataset.info.split == "val"
    counts = dataset.counts()
    assert counts["images"] == 100 and 100 <= counts["people"] <= 150 and counts["head boxes"] == counts["people"]
    mat = scipy.io.loadmat(dataset.info.extra["gt_mat"])
    people = json.loads(dataset.annotation_file.read_text())
    assert mat["pos_gt_src"].shape == (16, 2, len(people)) and mat["headboxes_src"].shape == (2, 2, len(people))
    truncated = 0
    for sample in dataset:
        target = sample.target
        for person, keypoints, head in zip(target.ann_ids, target.keypoints, target.head_boxes):
            labelled = keypoints[:, 2] > 0
            np.testing.assert_array_equal(labelled, mat["jnt_missing"][:, person] == 0)
            np.testing.assert_allclose(keypoints[labelled, :2] + 1, mat["pos_gt_src"][labelled, :, person])
            np.testing.assert_allclose(head[:2] + 1, mat["headboxes_src"][0, :, person])
            head_top, neck = keypoints[9, :2], keypoints[8, :2]
            if labelled[8] and labelled[9]:  # head top and upper neck sit on the drawn head, inside its box
                assert np.all((head_top >= head[:2] - 1e-6) & (head_top <= head[:2] + head[2:] + 1e-6))
                assert np.linalg.norm(head_top - neck) == pytest.approx(head[2], rel=1e-3)
            truncated += int((~labelled).sum())
    assert truncated > 0  # some joints leave the frame, as in MPII
    assert_clean(run_check("mpii"))


def test_embedded_train_split_is_separate_and_deterministic(bench_cache, tmp_path):
    train = DATASETS.get("mpii")(None, "train", "keypoints")
    assert train.counts()["images"] == mpii_figures.SPLITS["train"][0] == 800
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    mpii_figures.write_split(tmp_path, "train", 3, *mpii_figures.SPLITS["train"][1:])
    again = json.loads((tmp_path / "annotations" / "mpii_train.json").read_text())
    mine = json.loads(train.annotation_file.read_text())
    assert again == mine[: len(again)]


def test_gt_mat_must_agree_with_the_json(tmp_path):
    root = copy_tree(FIXTURE, tmp_path / "mpii")
    scipy.io.savemat(str(root / "annotations" / "mpii_gt_val.mat"), {
        "dataset_joints": np.array([[np.array([c]) for c in MPII_JOINT_CODES]], dtype=object),
        "jnt_missing": np.zeros((16, 4)), "pos_gt_src": np.zeros((16, 2, 4)), "headboxes_src": np.zeros((2, 2, 4)),
    })
    with pytest.raises(DataError, match=r"jnt_missing has shape \(16, 4\), expected \(16, 5\) for 5 people"):
        Mpii(root, "val")
    (root / "annotations" / "mpii_gt_val.mat").write_bytes(b"MATLAB 5.0 but not really")
    with pytest.raises(DataError, match="cannot read MATLAB file"):
        Mpii(root, "val")


def test_check_lists_every_planted_fault(tmp_path):
    root = copy_tree(FIXTURE, tmp_path / "mpii")
    path = root / "annotations" / "mpii_val.json"
    people = json.loads(path.read_text())
    del people[1]["scale"]
    people[3]["joints"] = people[3]["joints"][:15]
    path.write_text(json.dumps(people))
    (root / "images" / "060754485.jpg").unlink()
    (root / "images" / "005808361.jpg").write_bytes(b"not an image")
    result = run_check("mpii", root, "val")
    assert_problems(result, "[1]: missing key 'scale'", "[3]: joints must be 16 x 2",
                    "060754485.jpg: image file is missing", "005808361.jpg: cannot read image header")
    with pytest.raises(DataError, match=r"\[1\]: missing key 'scale'"):
        Mpii(root, "val")


def fixture_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fixture's 5 people as the official .mat holds them, with made-up head boxes.

    Joints: the json's (1-based, like the .mat).  Head boxes (not in the fixture): a box from 12 px left of /
    above the upper neck and head top to 9 px right of / below them, whatever the real MPII boxes are.
    """
    people = json.loads((FIXTURE / "annotations" / "mpii_val.json").read_text())
    joints = np.array([p["joints"] for p in people], np.float64)
    present = np.array([p["joints_vis"] for p in people]) > 0
    heads = joints[:, 8:10]
    boxes = np.stack([heads.min(axis=1) - 12.0, heads.max(axis=1) + 9.0], axis=1)
    return joints, present, boxes


def test_official_gt_mat_gives_the_evaluated_joints_and_the_head_boxes(tmp_path):
    root = copy_tree(FIXTURE, tmp_path / "mpii")
    joints, present, boxes = fixture_arrays()
    official = present.copy()
    official[0, 3] = False  # the .mat may label fewer (or more) joints than the json: the .mat decides
    write_gt_mat(root / "annotations" / "mpii_gt_val.mat", joints, official, boxes)
    dataset = Mpii(root, "val")
    assert dataset.counts() == {"images": 5, "people": 5, "labelled joints": 75, "head boxes": 5}
    assert dataset.info.extra["head_boxes"] is True and dataset.info.extra["people"] == 5
    protocol = dataset.info.protocol
    assert protocol.metrics == (MetricSpec("mpii_pckh"),) and protocol.headline == "PCKh@0.5"
    assert protocol.columns[:3] == ("PCKh@0.5", "PCKh@0.1", "AUC") and protocol.submission == "mpii-mat"
    for sample in dataset:
        target = sample.target
        (person,) = target.ann_ids
        labelled = target.keypoints[0, :, 2] > 0
        np.testing.assert_array_equal(labelled, official[person])
        # 0-based: the .mat's value minus one, exactly
        np.testing.assert_array_equal(target.keypoints[0, labelled, :2], joints[person, labelled] - 1.0)
        (x1, y1), (x2, y2) = boxes[person]
        np.testing.assert_array_equal(target.head_boxes, [[x1 - 1, y1 - 1, x2 - x1, y2 - y1]])
    assert dataset[0].target.num_keypoints.tolist() == [15]
    assert dataset.fingerprint() != Mpii(FIXTURE, "val").fingerprint()  # the .mat is part of the ground truth


def test_a_gt_mat_of_another_order_is_refused(tmp_path):
    root = copy_tree(FIXTURE, tmp_path / "mpii")
    joints, present, boxes = fixture_arrays()
    order = [1, 0, 2, 3, 4]  # two people swapped: same count, different people
    write_gt_mat(root / "annotations" / "mpii_gt_val.mat", joints[order], present[order], boxes[order])
    with pytest.raises(DataError, match=r"\[0\]: joint right_ankle is at \[804.0, 711.0\] in the json but "
                                        r"\[317.0, 412.0\] in the .mat \(column 1\)"):
        Mpii(root, "val")
    result = run_check("mpii", root, "val")
    assert_problems(result, "[0]: joint right_ankle", "[1]: joint right_ankle")
    codes = list(MPII_JOINT_CODES)
    codes[0], codes[5] = codes[5], codes[0]
    write_gt_mat(root / "annotations" / "mpii_gt_val.mat", joints, present, boxes, codes)
    with pytest.raises(DataError, match="dataset_joints .* differ from MPII's"):
        Mpii(root, "val")


def test_without_the_gt_mat_pckh_is_refused_before_any_model_runs():
    from harness.tasks import get_task
    from harness.core.errors import BenchError

    dataset = DATASETS.get("mpii")(FIXTURE, None, "keypoints")
    assert dataset.info.extra["head_boxes"] is False
    with pytest.raises(BenchError, match="no head boxes, which PCKh needs: put the official mpii_gt_val.mat"):
        get_task("keypoints").metrics(dataset.info)
