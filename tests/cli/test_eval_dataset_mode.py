"""`bench eval` in dataset mode: submission files read by the protocol's format, refused in one line when they
do not belong to the dataset."""
from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner
from PIL import Image

from harness.cli import main
from harness.datasets import DATASETS


def bench(*args: str):
    return CliRunner().invoke(main, list(args))


def test_coco_results_of_the_ground_truth_score_one(tmp_path):
    dataset = DATASETS.get("coco")(None, None, "detection")
    results = []
    for index in range(6):
        sample = dataset[index]
        target = sample.target
        for box, label, crowd in zip(target.boxes, target.labels, target.iscrowd):
            if not crowd:
                results.append({"image_id": sample.sample_id, "category_id": int(label),
                                "bbox": [float(v) for v in box], "score": 1.0})
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    out = tmp_path / "out.json"
    result = bench("eval", "--task", "detection", "--pred", str(path), "--limit", "6", "--json", str(out))
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["protocol"]["name"] == "coco-bbox" and record["samples"] == 6
    assert record["metrics"]["AP50"] == 1.0


def test_results_for_images_outside_the_dataset_are_refused(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps([{"image_id": 987654321, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}]))
    result = bench("eval", "--task", "detection", "--pred", str(path))
    assert result.exit_code == 2
    assert "image_id 987654321" in result.output and "not in the dataset" in result.output
    assert "Traceback" not in result.output


def test_a_missing_label_png_names_the_item(tmp_path):
    dataset = DATASETS.get("voc")(None, None, "semantic")
    folder = tmp_path / "predictions"
    folder.mkdir()
    first = dataset[0]
    Image.fromarray(np.zeros(first.target.label_map.shape, np.uint8)).save(folder / f"{first.sample_id}.png")
    result = bench("eval", "--task", "semantic", "--dataset", "voc", "--pred", str(folder), "--limit", "2")
    assert result.exit_code == 2
    assert f"no prediction for item {dataset[1].sample_id!r}" in result.output


def test_file_mode_flags_are_refused_in_dataset_mode(tmp_path):
    result = bench("eval", "--task", "detection", "--pred", str(tmp_path), "--max-dets", "mmdet")
    assert result.exit_code == 2 and "--max-dets belong to file mode" in result.output
    result = bench("eval", "--task", "detection", "--pred", str(tmp_path), "--dialect", "11point")
    assert result.exit_code == 2 and "no dialect '11point'" in result.output


def test_allow_missing_counts_nan_mpii_joints_as_wrong_and_is_refused_elsewhere(tmp_path):
    """The MPII toolkit counts a joint predicted as NaN as wrong; by default bench refuses such a file (a NaN is
    more often a bug than a choice), and ``--allow-missing`` gives the toolkit's number."""
    import scipy.io

    dataset = DATASETS.get("mpii")(None, None, "keypoints")
    (gt_file,) = dataset.info.root.rglob("mpii_gt_val.mat")
    gt = scipy.io.loadmat(gt_file)
    predicted = gt["pos_gt_src"].astype(np.float64).copy()
    visible = gt["jnt_missing"] == 0
    person = int(np.flatnonzero(visible[0])[0])  # a visible right ankle: scored by PCKh's mean
    predicted[0, :, person] = np.nan  # pos_gt_src is (joint, xy, person)
    pred = tmp_path / "pred.mat"
    scipy.io.savemat(pred, {"pos_pred_src": predicted})
    refused = bench("eval", "--task", "keypoints", "--dataset", "mpii", "--pred", str(pred))
    assert refused.exit_code == 2 and "--allow-missing" in refused.output and "pred.mat" in refused.output
    out = tmp_path / "out.json"
    scored = bench("eval", "--task", "keypoints", "--dataset", "mpii", "--pred", str(pred), "--allow-missing",
                   "--json", str(out))
    assert scored.exit_code == 0, scored.output
    keep = np.ones(16, bool)
    keep[[6, 7]] = False  # pelvis and thorax are outside the mean
    assert json.loads(out.read_text())["metrics"]["PCKh@0.5"] == 1 - 1 / visible[keep].sum()
    wrong_format = bench("eval", "--task", "detection", "--pred", str(pred), "--allow-missing")
    assert wrong_format.exit_code == 2 and "--allow-missing does not apply to coco-results files" in wrong_format.output
