"""``bench gate --paired``: the same resampled images for the baseline run and the new run; a check fails only
when the drop exceeds the tolerance and the paired interval excludes zero."""
from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import yaml
from click.testing import CliRunner

from harness.run.bench_run import RunConfig, run_models
from harness.cli import main
from harness.run.paired_gate import paired_check


def test_paired_gate_fails_a_significant_drop_and_passes_the_same_model(tmp_path):
    config = RunConfig(task="detection", models=("centernet",), limit=12, batch_size=4,
                       reports_dir=tmp_path / "reports", leaderboards_dir=tmp_path / "lb",
                       cache_dir=tmp_path / "cache", bootstrap=0)
    [base] = run_models(config)
    baselines = tmp_path / "baselines.yaml"
    baselines.write_text(yaml.safe_dump({"baselines": [
        {"task": "detection", "dataset": base["dataset"]["name"], "model": "centernet", "metric": "AP",
         "expected": 0.0, "tolerance": 0.01, "direction": "higher", "limit": 12}]}))
    runner = CliRunner()
    gate = ["--baselines", str(baselines), "--reports-dir", str(config.reports_dir), "--limit", "12"]
    assert runner.invoke(main, ["gate", "--update", *gate]).exit_code == 0
    assert yaml.safe_load(baselines.read_text())["baselines"][0]["run"] == base["run_id"]

    [same] = run_models(config)  # served from the cache: the same predictions
    result = paired_check(Path(base["run_dir"]), Path(same["run_dir"]), "AP", True, 0.01, resamples=50)
    assert result.delta == 0.0 and result.low == result.high == 0.0 and result.passed
    passed = runner.invoke(main, ["gate", "--paired", "--resamples", "50", *gate])
    assert passed.exit_code == 0, passed.output

    [worse] = run_models(replace(config, models=("prior-boxes",)))
    result = paired_check(Path(base["run_dir"]), Path(worse["run_dir"]), "AP", True, 0.01, resamples=50)
    assert result.drop > 0.3 and result.significant and not result.passed
    # the regressed model as the latest run of the gated one: its folder, renamed
    regressed = config.reports_dir / (worse["run_id"] + "-as-centernet")
    shutil.copytree(worse["run_dir"], regressed)
    record = json.loads((regressed / "metrics.json").read_text())
    record.update(run_id=regressed.name, finished_utc="9999", model={**record["model"], "name": "centernet"})
    (regressed / "metrics.json").write_text(json.dumps(record))
    failed = runner.invoke(main, ["gate", "--paired", "--resamples", "50", *gate])
    assert failed.exit_code == 1 and "FAIL: detection/" in failed.output and "paired delta" in failed.output
