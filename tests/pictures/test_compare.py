"""`bench compare`: paired bootstrap on the same images, per-class and per-image differences, refusals."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from harness.run.bench_run import RunConfig, run_models
from harness.cli import main
from harness.run.compare import compare_runs, paired_draws
from harness.core.metric import percentile_intervals
from harness.core.run_record import RunRecord


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    config = RunConfig(task="semantic", models=("fcn", "majority-class"), limit=12, batch_size=6,
                       reports_dir=tmp / "reports", leaderboards_dir=tmp / "lb", cache_dir=tmp / "cache", bootstrap=40)
    records = {r["model"]["name"]: r for r in run_models(config)}
    other = run_models(RunConfig(task="semantic", models=("fcn",), limit=8, batch_size=8, reports_dir=tmp / "reports",
                                 leaderboards_dir=tmp / "lb", cache_dir=tmp / "cache", bootstrap=0, gallery=0))[0]
    return records["majority-class"], records["fcn"], other


def test_deltas_and_paired_intervals(runs):
    a, b, _ = runs
    result = compare_runs(Path(a["run_dir"]), Path(b["run_dir"]), resamples=40, seed=0)
    miou = result.metrics["mIoU"]
    assert miou["delta"] == pytest.approx(b["metrics"]["mIoU"] - a["metrics"]["mIoU"], abs=1e-15)
    assert miou["low"] <= miou["delta"] <= miou["high"] and miou["share_b_better"] == 1.0
    # the paired draws are the runs' own bootstrap: with the runs' seed and count, each side's percentile
    # interval is exactly the interval its metrics.json recorded
    draws_a, draws_b, unsupported = paired_draws(RunRecord.from_dict(a), RunRecord.from_dict(b), 40, 0)
    assert not unsupported
    assert list(percentile_intervals(draws_a, 0.95)["mIoU"]) == a["confidence"]["mIoU"]
    assert list(percentile_intervals(draws_b, 0.95)["mIoU"]) == b["confidence"]["mIoU"]
    # per-class deltas sorted by size; the per-image table joined on image id
    iou = result.per_class["IoU"]
    assert list(iou["delta"].abs()) == sorted(iou["delta"].abs(), reverse=True)
    assert len(result.images) == 10 and result.settings["per_image_score"] == "miou"
    assert np.allclose(result.images["delta"], result.images["miou_b"] - result.images["miou_a"])
    assert list(result.images["delta"].abs()) == sorted(result.images["delta"].abs(), reverse=True)


def test_a_run_against_itself_is_zero_everywhere(runs):
    _, b, _ = runs
    result = compare_runs(Path(b["run_dir"]), Path(b["run_dir"]), resamples=20)
    for name, row in result.metrics.items():
        assert row["delta"] == 0 and row["low"] == row["high"] == 0, name


def test_cli_tables_json_and_refusal(runs):
    a, b, other = runs
    result = CliRunner().invoke(main, ["compare", a["run_dir"], b["run_dir"], "--bootstrap", "20"])
    assert result.exit_code == 0, result.output
    assert "mIoU" in result.output and "IoU per class" in result.output and "differ most" in result.output
    payload = json.loads(CliRunner().invoke(main, ["compare", a["run_dir"], b["run_dir"], "--bootstrap", "0",
                                                   "--json"]).output)
    assert payload["metrics"]["mIoU"]["delta"] == pytest.approx(b["metrics"]["mIoU"] - a["metrics"]["mIoU"])
    page = Path(a["run_dir"]).parent / "compare.html"
    drawn = CliRunner().invoke(main, ["compare", a["run_dir"], b["run_dir"], "--bootstrap", "10", "--html", str(page)])
    assert drawn.exit_code == 0, drawn.output
    html = page.read_text()
    sources = [line.split('src="')[1].split('"')[0] for line in html.split("<img")[1:]]
    assert len(sources) == 1 + 2 * 6  # the per-class chart, then A and B for the six most different images
    assert all((page.parent / src).is_file() for src in sources) and "+0." in html
    refused = CliRunner().invoke(main, ["compare", a["run_dir"], other["run_dir"]])
    assert refused.exit_code == 2 and "sample count" in refused.output
