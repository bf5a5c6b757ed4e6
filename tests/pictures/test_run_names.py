"""`--name` / `--tag`: recorded, in the run id and the report, and two names of one model are two site rows."""
from __future__ import annotations

import json

import pandas as pd
from click.testing import CliRunner

from harness.cli import main


def test_named_runs_are_separate_rows(tmp_path):
    common = ["--task", "flow", "--model", "zero-flow", "--limit", "3", "--bootstrap", "0", "--gallery", "0",
              "--reports-dir", str(tmp_path / "reports"), "--leaderboards-dir", str(tmp_path / "lb"),
              "--cache-dir", str(tmp_path / "cache")]
    for name in ("first", "second"):
        result = CliRunner().invoke(main, ["run", *common, "--name", name, "--tag", "smoke", "--tag", name])
        assert result.exit_code == 0, result.output
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "reports").glob("*/metrics.json"))]
    assert sorted(r["name"] for r in records) == ["first", "second"]
    assert all(r["run_id"].endswith("_zero-flow_" + r["name"]) and r["tags"] == ["smoke", r["name"]] for r in records)
    html = (tmp_path / "reports" / records[0]["run_id"] / "report.html").read_text()
    assert f"zero-flow · {records[0]['name']}" in html and '<span class="chip">smoke</span>' in html
    result = CliRunner().invoke(main, ["site", "--reports-dir", str(tmp_path / "reports"), "--out", str(tmp_path / "site")])
    assert result.exit_code == 0, result.output
    assert sorted(pd.read_csv(tmp_path / "site" / "flow.csv")["model"]) == ["zero-flow [first]", "zero-flow [second]"]
