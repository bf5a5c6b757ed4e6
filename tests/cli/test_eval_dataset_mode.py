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
