"""Suites: a YAML matrix, validated up front with one-line errors, resumable, one report per entry."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

import toyplugin
from harness.cli import main
from harness.core.errors import DataError
from harness.io.jsonio import read_json
from harness.run.suite import load_suite


def write(path, text):
    path.write_text(text)
    return path


SUITE = """
defaults: {batch_size: 8, bootstrap: 10}
runs:
  - task: toy
    models: [toy-linear, toy-hungry]   # toy-hungry runs out of memory above 2 per batch
    limit: 6
    batch_size: 2
  - {task: toy, dataset: toy-set, model: toy-linear, data_root: DATA}
"""


def test_suite_runs_the_matrix_once_and_resumes(tmp_path, monkeypatch):
    data = tmp_path / "data"
    toyplugin.write_toy_data(data, count=12, seed=5)
    suite = write(tmp_path / "suite.yaml", SUITE.replace("DATA", str(data)))
    args = ["run", "--suite", str(suite), "--reports-dir", str(tmp_path / "r"), "--leaderboards-dir", str(tmp_path / "lb"),
            "--cache-dir", str(tmp_path / "cache")]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    reports = sorted(tmp_path.glob("r/*/metrics.json"))
    assert len(reports) == 3 and "3/3" in first.output
    # each entry ran in its own process: what it ran is read back from its report
    ran = sorted((r["model"]["name"], r["samples"], r["batch_size"]) for r in map(read_json, reports))
    assert ran == [("toy-hungry", 6, 2), ("toy-linear", 6, 2), ("toy-linear", 12, 8)]

    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and again.output.count("kept existing report") == 3
    assert len(list(tmp_path.glob("r/*/metrics.json"))) == 3

    toyplugin.write_toy_data(data, count=12, seed=6)  # new ground truth: that entry is stale, the others are not
    changed = CliRunner().invoke(main, args)
    assert changed.output.count("kept existing report") == 2 and len(list(tmp_path.glob("r/*/metrics.json"))) == 4

    forced = CliRunner().invoke(main, [*args, "--force"])
    assert forced.exit_code == 0 and "kept existing report" not in forced.output
    assert len(list(tmp_path.glob("r/*/metrics.json"))) == 7


@pytest.mark.parametrize("text, message", [
    ("runs: [{task: toy, modle: x}]", r"runs\[0\]: unknown key 'modle' \(allowed: batch_size, "),
    ("runs: [{model: toy-linear}]", r"runs\[0\]: missing task"),
    ("runs: [{task: toy}, {task: toyy}]", r"runs\[1\]: unknown task 'toyy'; did you mean 'toy'\?"),
    ("runs: [{task: toy, models: [toy-linear, nope]}]", r"runs\[0\]: unknown model 'nope'"),
    ("runs: [{task: toy, dataset: coco-nope}]", r"runs\[0\]: unknown dataset 'coco-nope'"),
    ("runs: [{task: toy, limit: 0}]", r"runs\[0\]: limit must be positive, got 0"),
    ("runs: [{task: toy, limit: many}]", r"runs\[0\]: limit must be an integer, got 'many'"),
    ("runs: [{task: toy, model: a, models: [b]}]", r"runs\[0\]: give either model or models, not both"),
    ("runs: [{task: toy, models: toy-linear}]", r"runs\[0\]: models must be a list"),
    ("defaults: {batchsize: 2}\nruns: [{task: toy}]", r"defaults: unknown key 'batchsize'"),
    ("runs: []", r"expected a non-empty 'runs' list"),
    ("suite: 1", r"unknown top-level key 'suite'"),
    ("runs: [task: toy", r"malformed YAML: "),
])
def test_bad_suites_are_one_line_errors_naming_file_and_entry(tmp_path, text, message):
    path = write(tmp_path / "s.yaml", text)
    with pytest.raises(DataError, match=message) as info:
        load_suite(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_cli_refuses_a_suite_mixed_with_a_task(tmp_path):
    path = write(tmp_path / "s.yaml", "runs: [{task: toy}]")
    result = CliRunner().invoke(main, ["run", "--suite", str(path), "--task", "toy"])
    assert result.exit_code == 2 and "error: --suite takes tasks" in result.output
    result = CliRunner().invoke(main, ["run"])
    assert result.exit_code == 2 and "error: give --task" in result.output
