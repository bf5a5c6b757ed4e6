"""`bench run --task keypoints --protocol ...`: recorded, separate on the leaderboard, refused where it cannot run."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from click.testing import CliRunner
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from harness.cli import main
from tests.cli.test_run_command import FIXTURE, coco_root

DETECTIONS = FIXTURE / "test_coco_det_AP_H_56.json"


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_detector_protocol_run_is_recorded_and_scored_on_written_predictions(tmp_path: Path):
    root = coco_root(tmp_path)
    common = ("--task", "keypoints", "--data-root", str(root), "--model", "heatmap", "--bootstrap", "0", "--no-cache",
              "--reports-dir", str(tmp_path / "reports"), "--leaderboards-dir", str(tmp_path / "lb"))
    assert run("run", *common).exit_code == 0
    result = run("run", *common, "--protocol", "detector", "--person-boxes", str(DETECTIONS))
    assert result.exit_code == 0, result.output
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "reports").glob("*/metrics.json"))]
    by_name = {r["protocol"]["name"]: r for r in records}
    assert set(by_name) == {"coco-keypoints", f"coco-keypoints/detector:{DETECTIONS.name}@" +
                            next(n for n in by_name if "detector" in n).split("@")[1]}
    detector = next(r for n, r in by_name.items() if "detector" in n)
    assert detector["protocol"]["condition"]["name"] == "detector"
    assert detector["protocol"]["condition"]["nms"] == "oks-nms 0.9"
    assert by_name["coco-keypoints"]["protocol"]["condition"]["name"] == "gt-boxes"
    assert "PCK@0.2" not in detector["metrics"] and "PCK@0.2" in by_name["coco-keypoints"]["metrics"]
    # the predictions file it wrote is what it scored: pycocotools on it gives the recorded AP
    predictions = json.loads((Path(detector["run_dir"] if "run_dir" in detector else
                                   tmp_path / "reports" / detector["run_id"]) / "predictions.json").read_text())
    assert 0 < len(predictions) <= 118
    gt = COCO(str(root / "annotations" / "person_keypoints_val2017.json"))
    evaluator = COCOeval(gt, gt.loadRes(predictions), "keypoints")
    evaluator.evaluate(), evaluator.accumulate(), evaluator.summarize()
    assert abs(evaluator.stats[0] - detector["metrics"]["AP"]) < 1e-12
    # `bench eval --run` re-scores the written files under the recorded protocol: the same numbers
    from harness.run.submission_eval import score_run_folder

    again = score_run_folder(tmp_path / "reports" / detector["run_id"])
    assert again.protocol.name == detector["protocol"]["name"]
    assert again.evaluation.result.metrics["AP"] == detector["metrics"]["AP"]
    table = pd.read_csv(tmp_path / "lb" / "keypoints.csv", keep_default_na=False)
    assert sorted(table["protocol"].str.contains("detector")) == [False, True]  # two tables, one row each


def test_protocol_refusals_are_one_line(tmp_path: Path):
    root = coco_root(tmp_path)
    common = ("--task", "keypoints", "--data-root", str(root), "--reports-dir", str(tmp_path / "r"),
              "--leaderboards-dir", str(tmp_path / "lb"))
    result = run("run", *common, "--model", "heatmap", "--protocol", "bottom-up")
    assert result.exit_code == 2 and "top-down model" in result.output and "Traceback" not in result.output
    result = run("run", *common, "--model", "heatmap", "--protocol", "detector")
    assert result.exit_code == 2 and "--person-boxes" in result.output
    result = run("run", *common, "--model", "heatmap", "--person-boxes", str(DETECTIONS))
    assert result.exit_code == 2 and "need --protocol detector" in result.output
    result = run("run", *common, "--model", "openpose")
    assert result.exit_code == 2 and "bottom-up model" in result.output
