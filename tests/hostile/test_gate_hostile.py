"""The gate (issue 11, finding 5): the interval never widens the tolerance, -1/NaN resamples never enter an
interval, baselines and metrics.json are validated with one-line errors, per-class gates."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from harness.cli import main
from harness.publish.gate import load_baselines, run_gate
from harness.core.metric import percentile_intervals
from tests.core.test_gate_and_leaderboard import BASE, PROTOCOL, record


def write_report(run_dir, run):
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_text(json.dumps(run))


def baselines(path, *entries):
    path.write_text(yaml.safe_dump({"baselines": list(entries)}))
    return path


def test_no_data_resamples_are_left_out_of_intervals():
    draws = {"APm": np.array([-1.0, -1.0, 0.05, 0.06, 0.07, np.nan, 0.0757])}
    lo, hi = percentile_intervals(draws, 0.95)["APm"]
    assert 0.05 <= lo <= hi <= 0.0757
    assert "APl" not in percentile_intervals({"APl": np.full(5, -1.0)}, 0.95)


def test_a_wide_interval_never_widens_the_tolerance(tmp_path):
    reports = tmp_path / "reports"
    run = record("heatmap", 0.60, "2")
    run["confidence"] = {"AP": [0.06, 1.14]}  # half-width 0.54: the old gate allowed a 0.54 drop
    write_report(reports / run["run_id"], run)
    [check] = run_gate(load_baselines(baselines(tmp_path / "b.yaml", {**BASE, "model": "heatmap", "expected": 0.65})),
                       reports)
    assert check.allowed == 0.02 and not check.passed  # a drop of 0.05 > tolerance 0.02, though inside the CI
    [same] = run_gate(load_baselines(baselines(tmp_path / "c.yaml", {**BASE, "model": "heatmap", "expected": 0.615})),
                      reports)
    assert same.passed


def test_per_class_gate(tmp_path):
    reports = tmp_path / "reports"
    run = record("heatmap", 0.6, "2")  # per_class {"PCK": {"nose": 0.5}}
    write_report(reports / run["run_id"], run)
    entry = {**BASE, "model": "heatmap", "metric": "PCK", "class": "nose", "tolerance": 0.01}
    [fail] = run_gate(load_baselines(baselines(tmp_path / "a.yaml", {**entry, "expected": 0.6})), reports)
    [ok] = run_gate(load_baselines(baselines(tmp_path / "b.yaml", {**entry, "expected": 0.505})), reports)
    [missing] = run_gate(load_baselines(baselines(tmp_path / "c.yaml", {**entry, "class": "ear", "expected": 0.5})),
                         reports)
    assert not fail.passed and ok.passed and missing.actual is None and "[nose]" in fail.describe()


@pytest.mark.parametrize("change, message", [
    ({"tolerence": 0.01}, r"baselines\[0\]\.tolerence: unknown key"),
    ({"tolerance": -0.01}, r"baselines\[0\]\.tolerance: must be a finite number >= 0"),
    ({"tolerance": "0.01"}, r"baselines\[0\]\.tolerance: Input should be a valid number"),
    ({"expected": True}, r"baselines\[0\]\.expected: Input should be a valid number"),
    ({"expected": float("nan")}, r"baselines\[0\]\.expected: must be a finite number"),
    ({"limit": 0}, r"baselines\[0\]\.limit: Input should be greater than or equal to 1"),
    ({"direction": "up"}, r"baselines\[0\]\.direction: direction must be"),
    ({"metric": 3}, r"baselines\[0\]\.metric: Input should be a valid string"),
])
def test_bad_baselines_exit_2_with_one_line(tmp_path, change, message):
    path = baselines(tmp_path / "b.yaml", {**BASE, "model": "m", "expected": 0.5, **change})
    result = CliRunner().invoke(main, ["gate", "--baselines", str(path), "--reports-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: ")
    assert __import__("re").search(message, lines[0]), lines[0]


@pytest.mark.parametrize("edit, message", [
    (lambda r: r.update(metrics=[0.5]), r"field 'metrics': expected an object"),
    (lambda r: r["metrics"].update(AP="0.5"), r"field 'metrics\.AP': expected a number"),
    (lambda r: r.pop("task"), r"field 'task': missing"),
    (lambda r: r.update(dataset="coco"), r"field 'dataset': expected an object"),
    (lambda r: r.update(confidence={"AP": "wide"}), r"field 'confidence\.AP': expected \[low, high\]"),
])
def test_gate_refuses_malformed_metrics_json_naming_file_and_field(tmp_path, edit, message):
    reports = tmp_path / "reports"
    run = record("heatmap", 0.6, "2")
    edit(run)
    (reports / "x").mkdir(parents=True)
    (reports / "x" / "metrics.json").write_text(json.dumps(run))
    path = baselines(tmp_path / "b.yaml", {**BASE, "model": "heatmap", "expected": 0.6})
    result = CliRunner().invoke(main, ["gate", "--baselines", str(path), "--reports-dir", str(reports)])
    assert result.exit_code == 2, result.output
    [line] = [line for line in result.output.splitlines() if line.strip()]
    assert line.startswith(f"error: {reports / 'x' / 'metrics.json'}: ")
    assert __import__("re").search(message, line), line
