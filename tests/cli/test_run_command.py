"""`bench run --task keypoints` end to end: reports, predictions, leaderboard, and one-line errors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from harness.cli import main

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "coco-keypoints"
KEYPOINT_STATS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def pycocotools_stats(annotation_file: Path, predictions: list[dict], image_ids: list[int]) -> np.ndarray:
    gt = COCO(str(annotation_file))
    evaluator = COCOeval(gt, gt.loadRes(predictions), "keypoints")
    evaluator.params.imgIds = image_ids
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return evaluator.stats


def coco_root(tmp_path: Path) -> Path:
    """The real COCO keypoint fixture arranged as a COCO download: annotations/ + val2017/."""
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    shutil.copy(FIXTURE / "test_coco.json", root / "annotations" / "person_keypoints_val2017.json")
    (root / "val2017").mkdir()
    for image in FIXTURE.glob("*.jpg"):
        shutil.copy(image, root / "val2017" / image.name)
    return root


def test_smoke_run_writes_a_report_that_pycocotools_agrees_with(tmp_path):
    reports, boards = tmp_path / "reports", tmp_path / "boards"
    # batches of 4: throughput needs batches after the warm-up (one batch of 12 would publish no images/s)
    result = run("run", "--task", "keypoints", "--model", "heatmap", "--model", "mean-pose", "--limit", "12",
                 "--batch-size", "4", "--bootstrap", "20", "--no-cache", "--reports-dir", str(reports),
                 "--leaderboards-dir", str(boards))
    assert result.exit_code == 0, result.output
    assert "heatmap" in result.output and "PCK@0.2" in result.output
    runs = sorted(reports.iterdir())
    assert len(runs) == 2 and not boards.exists()  # --limit runs stay off the leaderboard
    record = json.loads((runs[0] / "metrics.json").read_text())
    assert record["task"] == "keypoints" and record["model"]["name"] == "heatmap" and record["samples"] == 12
    assert record["dataset"]["name"] == "coco-mini" and len(record["dataset"]["fingerprint"]) == 16
    assert set(record["provenance"]) >= {"git_sha", "packages", "device", "seed"}
    assert record["throughput"]["images_per_s"] > 0 and "latency_p95_ms" in record["throughput"]
    assert set(record["throughput"]["stages_ms"]) >= {"data_wait", "model", "metric"}
    assert "ms per batch: data wait" in result.output
    lo, hi = record["confidence"]["AP"]
    assert lo <= record["metrics"]["AP"] <= hi
    predictions = json.loads((runs[0] / "predictions.json").read_text())
    annotation_file = Path(record["dataset"]["root"]) / "annotations" / "person_keypoints_val.json"
    image_ids = sorted({image["id"] for image in json.loads(annotation_file.read_text())["images"]})[:12]
    stats = pycocotools_stats(annotation_file, predictions, image_ids)
    ours = [record["metrics"][name] for name in KEYPOINT_STATS]
    np.testing.assert_allclose(ours, stats, rtol=0, atol=1e-12)
    assert "<table" in (runs[0] / "report.html").read_text()


def test_full_run_on_a_coco_download_updates_the_leaderboard(tmp_path):
    boards = tmp_path / "boards"
    args = ["run", "--task", "keypoints", "--data-root", str(coco_root(tmp_path)), "--model", "regression",
            "--bootstrap", "0", "--reports-dir", str(tmp_path / "reports"), "--leaderboards-dir", str(boards)]
    assert run(*args).exit_code == 0
    assert run(*args, "--model", "mean-pose").exit_code == 0
    table = pd.read_csv(boards / "keypoints.csv")
    assert table["dataset"].tolist() == ["coco", "coco"]
    assert sorted(table["model"]) == ["mean-pose", "regression"]  # latest row per model, not one per run
    assert (table["samples"] == 4).all()
    assert "regression" in (boards / "keypoints.html").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data-root", "/nonexistent/coco"], "/nonexistent/coco: data root does not exist"),
        (["--model", "heatmapp"], "unknown model 'heatmapp'; did you mean 'heatmap'?"),
        (["--dataset", "cocoo"], "unknown dataset 'cocoo'; did you mean 'coco'?"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    result = CliRunner().invoke(main, ["run", "--task", "keypoints", "--reports-dir", str(tmp_path), *args])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output


def test_malformed_annotation_file_is_one_line(tmp_path):
    root = coco_root(tmp_path)
    path = root / "annotations" / "person_keypoints_val2017.json"
    data = json.loads(path.read_text())
    del data["annotations"][2]["keypoints"]
    path.write_text(json.dumps(data))
    result = CliRunner().invoke(main, ["run", "--task", "keypoints", "--data-root", str(root),
                                       "--reports-dir", str(tmp_path / "r")])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "person_keypoints_val2017.json" in lines[0] and "missing key 'keypoints'" in lines[0]


def test_a_default_run_leaves_out_models_without_weights_for_the_dataset(tmp_path):
    """mask-rcnn has COCO weights only: the default Cityscapes instance run compares the others and says so;
    naming it still gives its one-line error."""
    common = ["--task", "instance", "--dataset", "cityscapes", "--limit", "2", "--bootstrap", "0", "--gallery", "0",
              "--reports-dir", str(tmp_path / "r"), "--leaderboards-dir", str(tmp_path / "b"), "--no-cache"]
    result = CliRunner().invoke(main, ["run", *common])
    assert result.exit_code == 0, result.output
    assert "left out (no weights for cityscapes-mini): mask-rcnn" in result.output
    assert not any("mask-rcnn" in p.name for p in (tmp_path / "r").iterdir())
    named = CliRunner().invoke(main, ["run", *common, "--model", "mask-rcnn"])
    assert named.exit_code == 2 and "has no weights for dataset 'cityscapes-mini'" in named.output
