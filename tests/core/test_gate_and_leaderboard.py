"""Gate and leaderboard on records shaped exactly like the ones `bench run` writes."""
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from harness.cli import main
from harness.publish.gate import load_baselines, run_gate
from harness.core.errors import DataError
from harness.publish.leaderboard import update_leaderboard
from harness.publish.reports import latest_records, write_report


PROTOCOL = "coco-keypoints@1[coco_keypoints:1]"


def record(model: str, ap: float, finished: str, limit=None, protocol: str = PROTOCOL) -> dict:
    return {
        "protocol": {"key": protocol, "headline": "AP"},
        "run_id": f"{finished}_{model}", "task": "keypoints",
        "dataset": {"name": "coco-mini", "split": "val", "root": "/x", "fingerprint": "f", "size": 10},
        "model": {"name": model, "fingerprint": "m", "checkpoint": None, "input_size": None, "parameters": 1},
        "limit": limit, "samples": 10, "metrics": {"AP": ap, "MPJPE": 3.0}, "higher_is_better": {},
        "per_class": {"PCK": {"nose": 0.5}}, "curves": {}, "settings": {"maxDets": 20},
        "throughput": {"images_per_s": 100.0, "latency_p50_ms": 1.0},
        "provenance": {"git_sha": "abc", "device": "cpu"}, "started_utc": finished, "finished_utc": finished,
    }


def write_baselines(path, entries):
    path.write_text(yaml.safe_dump({"baselines": entries}))
    return path


BASE = {"task": "keypoints", "dataset": "coco-mini", "metric": "AP", "tolerance": 0.02, "direction": "higher",
        "protocol": PROTOCOL}


def test_gate_uses_the_latest_run_and_names_each_regression(tmp_path):
    reports = tmp_path / "reports"
    write_report(reports / "r1", record("heatmap", 0.70, "2026-01-01T00:00:00Z"))
    write_report(reports / "r2", record("heatmap", 0.60, "2026-01-02T00:00:00Z"))
    write_report(reports / "r3", record("regression", 0.50, "2026-01-01T00:00:00Z"))
    baselines = write_baselines(tmp_path / "b.yaml", [
        {**BASE, "model": "heatmap", "expected": 0.70},
        {**BASE, "model": "regression", "expected": 0.51},
        {**BASE, "model": "regression", "metric": "MPJPE", "expected": 2.0, "direction": "lower", "tolerance": 0.5},
        {**BASE, "model": "soft-argmax", "expected": 0.6},
    ])
    checks = run_gate(load_baselines(baselines), reports)
    assert [c.passed for c in checks] == [False, True, False, False]
    assert checks[0].actual == 0.60 and "no result found" in checks[3].describe()
    result = CliRunner().invoke(main, ["gate", "--baselines", str(baselines), "--reports-dir", str(reports)])
    assert result.exit_code == 1
    assert "regression: keypoints/coco-mini/heatmap AP: 0.6000 vs expected 0.7000" in result.output
    assert "3 of 4 checks failed" in result.output


def test_limited_runs_are_only_compared_with_limited_baselines(tmp_path):
    reports = tmp_path / "reports"
    write_report(reports / "full", record("heatmap", 0.70, "2026-01-01T00:00:00Z"))
    write_report(reports / "smoke", record("heatmap", 0.40, "2026-01-02T00:00:00Z", limit=8))
    baselines = write_baselines(tmp_path / "b.yaml", [
        {**BASE, "model": "heatmap", "expected": 0.70},
        {**BASE, "model": "heatmap", "expected": 0.41, "limit": 8},
    ])
    assert all(check.passed for check in run_gate(load_baselines(baselines), reports))
    assert len(latest_records(reports)) == 2
    gate = lambda *extra: CliRunner().invoke(  # noqa: E731
        main, ["gate", "--baselines", str(baselines), "--reports-dir", str(reports), *extra])
    smoke = gate("--limit", "8")
    assert smoke.exit_code == 0 and "all 1 checks passed" in smoke.output
    assert gate().exit_code == 0
    missing = gate("--limit", "9")
    assert missing.exit_code == 2 and "no baselines for runs with --limit 9" in missing.output
    assert gate("--task", "keypoints").exit_code == 0
    other = gate("--task", "flow")
    assert other.exit_code == 2 and "no baselines of task flow for full runs" in other.output


def test_malformed_baselines_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match=r"baselines\[0\]: missing tolerance"):
        load_baselines(write_baselines(tmp_path / "b.yaml", [{k: v for k, v in {**BASE, "model": "m", "expected": 1}.items() if k != "tolerance"}]))
    with pytest.raises(DataError, match="direction must be"):
        load_baselines(write_baselines(tmp_path / "c.yaml", [{**BASE, "model": "m", "expected": 1, "direction": "up"}]))


def test_leaderboard_keeps_one_row_per_model_and_dataset_sorted_by_headline(tmp_path):
    for model, ap, when in (("a", 0.3, "1"), ("b", 0.6, "1"), ("a", 0.9, "2")):
        update_leaderboard(tmp_path, "keypoints", record(model, ap, when), ("AP", "MPJPE"), "AP", True)
    table = pd.read_csv(tmp_path / "keypoints.csv")
    assert table["model"].tolist() == ["a", "b"] and table["AP"].tolist() == [0.9, 0.6]
    html = (tmp_path / "keypoints.html").read_text()
    assert html.index(">a<") < html.index(">b<") and "0.9000" in html


def test_gate_refuses_results_of_another_protocol_version(tmp_path):
    reports = tmp_path / "reports"
    write_report(reports / "r1", record("heatmap", 0.70, "2026-01-01T00:00:00Z", protocol="coco-keypoints@2[x:1]"))
    unversioned = {k: v for k, v in BASE.items() if k != "protocol"}
    baselines = write_baselines(tmp_path / "b.yaml", [{**BASE, "model": "heatmap", "expected": 0.70},
                                                      {**unversioned, "model": "heatmap", "expected": 0.70}])
    checks = run_gate(load_baselines(baselines), reports)
    assert [c.passed for c in checks] == [False, False]  # same number, but not comparable
    assert "not comparable" in checks[0].describe() and "coco-keypoints@2[x:1]" in checks[0].describe()
    result = CliRunner().invoke(main, ["gate", "--baselines", str(baselines), "--reports-dir", str(reports), "--update"])
    assert result.exit_code == 0, result.output
    assert all(c.passed for c in run_gate(load_baselines(baselines), reports))  # --update records the new key


def test_leaderboard_never_ranks_two_protocol_versions_together(tmp_path):
    update_leaderboard(tmp_path, "keypoints", record("a", 0.3, "1"), ("AP",), "AP", True)
    update_leaderboard(tmp_path, "keypoints", record("b", 0.9, "1", protocol="new@2"), ("AP",), "AP", True)
    update_leaderboard(tmp_path, "keypoints", record("a", 0.5, "2", protocol="new@2"), ("AP",), "AP", True)
    table = pd.read_csv(tmp_path / "keypoints.csv")
    assert list(zip(table["protocol"], table["model"], table["AP"])) == [
        ("coco-keypoints@1[coco_keypoints:1]", "a", 0.3), ("new@2", "b", 0.9), ("new@2", "a", 0.5)]
    assert (tmp_path / "keypoints.html").read_text().count("<table") == 2


def test_leaderboard_sets_the_published_headline_beside_the_measured_one(tmp_path):
    zoo = record("rtmpose", 0.41, "1")
    zoo["model"]["published"] = {"AP": 0.685, "AR": 0.72}
    update_leaderboard(tmp_path, "keypoints", zoo, ("AP",), "AP", True)
    update_leaderboard(tmp_path, "keypoints", record("heatmap", 0.5, "1"), ("AP",), "AP", True)
    table = pd.read_csv(tmp_path / "keypoints.csv").set_index("model")
    assert table.at["rtmpose", "published"] == 0.685 and pd.isna(table.at["heatmap", "published"])
    html = (tmp_path / "keypoints.html").read_text()
    assert "published" in html and "0.6850" in html
