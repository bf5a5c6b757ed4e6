"""Suites survive their entries (issue 15): each entry in its own process, killed at its timeout, retried at
half the batch on out-of-memory; the summary names what ran, what was skipped and what failed, and why."""
from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

import toyplugin  # noqa: F401  (registers toy-hungry, found by the entries' processes too)
from harness.cli import main
from harness.io.jsonio import read_json
from harness.run.bench_run import RunConfig
from harness.run.suite import run_suite

MODELS = Path(__file__).with_name("suite_models.py")

SUITE = f"""
defaults: {{limit: 6, bootstrap: 0}}
runs:
  - {{task: toy, model: "{MODELS}:Crasher"}}
  - {{task: toy, model: "{MODELS}:Sleeper", timeout: 20}}
  - {{task: toy, model: toy-linear}}
  - {{task: toy, model: "{MODELS}:Raiser"}}
  - {{task: toy, model: toy-hungry, batch_size: 8}}
"""


def test_a_crash_a_hang_and_a_bug_cost_only_their_entries(tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    base = RunConfig(task="", reports_dir=tmp_path / "r", leaderboards_dir=tmp_path / "lb", cache=False, gallery=0)
    result = run_suite(suite, base)
    status = [(o.entry.model.rsplit(":", 1)[-1], o.status) for o in result.outcomes]
    assert status == [("Crasher", "crashed"), ("Sleeper", "timeout"), ("toy-linear", "ok"), ("Raiser", "failed"),
                      ("toy-hungry", "ok")]
    crashed, timed_out, _, raised, hungry = result.outcomes
    assert "exit code 3" in crashed.reason
    assert "killed after 20 s" in timed_out.reason and timed_out.seconds < 60
    assert raised.reason == "ValueError: shape mismatch in the head"
    # out of memory above 2 per batch: 8 -> 4 -> 2, every try recorded, the report says what it ran at
    assert [(a["batch_size"], a["error"] is not None) for a in hungry.attempts] == [(8, True), (4, True), (2, False)]
    assert hungry.batch_size == 2 and "out of memory at batch size 8, 4; ran at 2" in hungry.reason
    reports = {r["model"]["name"]: r for r in map(read_json, (tmp_path / "r").glob("*/metrics.json"))}
    assert sorted(reports) == ["toy-hungry", "toy-linear"] and reports["toy-hungry"]["batch_size"] == 2
    assert [len(o.records) for o in result.outcomes] == [0, 0, 1, 0, 1]


def test_cli_prints_the_summary_and_fails_when_an_entry_failed(tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"""
defaults: {{limit: 4, bootstrap: 0}}
runs:
  - {{task: toy, model: toy-linear}}
  - {{task: toy, model: "{MODELS}:Sleeper"}}
""")
    args = ["run", "--suite", str(suite), "--reports-dir", str(tmp_path / "r"), "--leaderboards-dir", str(tmp_path / "lb"),
            "--no-cache", "--gallery", "0", "--entry-timeout", "15"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "suite summary" in result.output and "killed after 15 s" in result.output
    assert "error: 1 of 2 suite entries did not complete (1 timeout)" in result.output
    again = CliRunner().invoke(main, [*args[:-2], "--entry-timeout", "15"])  # the finished entry is kept, not rerun
    assert again.exit_code == 1 and "report exists" in again.output


def test_under_torchrun_an_entry_error_costs_only_that_entry(tmp_path):
    """Under torchrun the ranks run each entry together in their own processes; an error, raised on every rank
    alike, is that entry's outcome and the suite goes on."""
    import os
    import subprocess
    import sys

    suite = tmp_path / "suite.yaml"
    suite.write_text(f"""
defaults: {{limit: 4, bootstrap: 0}}
runs:
  - {{task: toy, model: "{MODELS}:Raiser"}}
  - {{task: toy, model: toy-linear}}
""")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(Path(__file__).parent)]), "OMP_NUM_THREADS": "1"}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "harness.cli",
         "run", "--suite", str(suite), "--no-cache", "--gallery", "0", "--reports-dir", str(tmp_path / "r"),
         "--leaderboards-dir", str(tmp_path / "lb")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "error: 1 of 2 suite entries did not complete (1 failed)" in done.stderr + done.stdout
    [report] = (tmp_path / "r").glob("*/metrics.json")
    record = read_json(report)
    assert record["model"]["name"] == "toy-linear" and record["provenance"]["world_size"] == 2
