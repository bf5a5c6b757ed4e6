"""`bench report RUN_DIR`: pictures drawn afterwards for a run made without them; metrics untouched."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from harness.run.bench_run import RunConfig, run_models
from harness.cli import main


def test_report_draws_pictures_for_an_existing_run(tmp_path):
    [record] = run_models(RunConfig(task="instance", models=("centernet-mask",), limit=8, batch_size=8, gallery=0,
                                    reports_dir=tmp_path / "reports", leaderboards_dir=tmp_path / "lb",
                                    cache_dir=tmp_path / "cache", bootstrap=0))
    run_dir = Path(record["run_dir"])
    assert not (run_dir / "pictures").exists() and "analysis" not in json.loads((run_dir / "metrics.json").read_text())
    result = CliRunner().invoke(main, ["report", str(run_dir), "--gallery", "5"])
    assert result.exit_code == 0, result.output
    after = json.loads((run_dir / "metrics.json").read_text())
    assert after["metrics"] == record["metrics"] and after["analysis"]["per_image_score"] == "f1"
    assert len(after["analysis"]["gallery"]) == 5 and len(list((run_dir / "pictures" / "gallery").glob("*.png"))) == 5
    assert after["analysis"]["tide"]["counts"]["bkg"] >= 0 and "run_dir" not in after
    html = (run_dir / "report.html").read_text()
    assert html.count('class="shot') == 5 and "pictures/pr_by_class.png" in html
    missing = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert missing.exit_code == 2 and "metrics.json" in missing.output
