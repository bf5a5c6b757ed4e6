"""``bench gate --throughput``: images/s against this machine's baselines, kept apart from accuracy baselines;
another machine's baselines are skipped with a note, never failed (issue 15)."""
from __future__ import annotations

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

import toyplugin  # noqa: F401
from harness.cli import main
from harness.publish.machine import machine_fingerprint, machine_key
from harness.publish.throughput_gate import run_throughput_gate

SETTINGS = {"task": "toy", "model": "toy-linear", "mode": "module", "device": "cpu", "precision": "fp32",
            "channels_last": False, "compile": False}


def write_csv(path, machine, rows):
    pd.DataFrame([{**SETTINGS, "batch_size": size, "machine": machine, "images_per_s": speed, "status": "ok",
                   "measured_utc": "2026-12-03T00:00:00Z"} for size, speed in rows]).to_csv(path, index=False)


def write_baselines(path, groups):
    path.write_text(yaml.safe_dump({"machines": {
        machine: {"description": {"cpu": "test"}, "baselines": [{**SETTINGS, "batch_size": size, "images_per_s": speed}
                                                                 for size, speed in entries]}
        for machine, entries in groups.items()}}))


def test_slower_than_tolerance_fails_and_other_machines_are_skipped(tmp_path):
    csv, baselines = tmp_path / "throughput.csv", tmp_path / "tb.yaml"
    write_csv(csv, "cpu-here", [(1, 85.0), (8, 740.0), (16, 500.0)])
    write_csv(tmp_path / "elsewhere.csv", "cpu-there", [(1, 1.0)])
    write_baselines(baselines, {"cpu-here": [(1, 100.0), (8, 1000.0), (32, 50.0)], "cpu-there": [(1, 5000.0)]})
    gate = run_throughput_gate(baselines, csv, "cpu-here")
    # 15 % slower passes the default 20 %, 26 % slower fails, no row at batch 32 fails
    assert [(c.baseline.batch_size, c.passed) for c in gate.checks] == [(1, True), (8, False), (32, False)]
    assert gate.checks[1].change == pytest.approx(-0.26)
    assert "no `bench throughput` row on this machine" in gate.checks[2].describe()
    assert gate.skipped == ["skipped 1 baseline(s) of machine cpu-there (cpu test): not this machine"]
    # the same file on the other machine gates only that machine's baseline
    assert [c.baseline.images_per_s for c in run_throughput_gate(baselines, csv, "cpu-there").checks] == [5000.0]


def test_update_then_gate_on_this_machine_through_the_cli(tmp_path):
    lb = tmp_path / "lb"
    measure = ["throughput", "--task", "toy", "--model", "toy-linear", "--batch-sizes", "1,4", "--repeats", "3",
               "--leaderboards-dir", str(lb)]
    assert CliRunner().invoke(main, measure).exit_code == 0
    here = machine_key(machine_fingerprint("cpu"))
    assert set(pd.read_csv(lb / "throughput.csv")["machine"]) == {here}
    gate = ["gate", "--throughput", "--throughput-baselines", str(lb / "tb.yaml"), "--throughput-csv",
            str(lb / "throughput.csv")]
    missing = CliRunner().invoke(main, gate)
    assert missing.exit_code == 2 and "throughput baselines file not found" in missing.output
    assert CliRunner().invoke(main, [*gate, "--update"]).exit_code == 0
    recorded = yaml.safe_load((lb / "tb.yaml").read_text())
    assert list(recorded["machines"]) == [here]
    assert [e["batch_size"] for e in recorded["machines"][here]["baselines"]] == [1, 4]
    assert all(e["tolerance"] == 0.2 for e in recorded["machines"][here]["baselines"])
    passed = CliRunner().invoke(main, gate)
    assert passed.exit_code == 0 and "all 2 throughput checks passed" in passed.output, passed.output

    recorded["machines"][here]["baselines"][0]["images_per_s"] *= 3  # now we are 67 % slower than "before"
    recorded["machines"]["cuda-0123456789ab"] = {"description": {"device": "A100"}, "baselines": [
        {**SETTINGS, "device": "cuda", "batch_size": 64, "images_per_s": 1e6}]}
    (lb / "tb.yaml").write_text(yaml.safe_dump(recorded))
    failed = CliRunner().invoke(main, gate)
    assert failed.exit_code == 1
    assert "slower: toy/toy-linear module cpu fp32 batch 1:" in failed.output
    assert "error: 1 of 2 throughput checks failed" in failed.output
    assert "skipped 1 baseline(s) of machine cuda-0123456789ab (device A100): not this machine" in failed.output


@pytest.mark.parametrize("text, message", [
    ("machines: {m: {baselines: [{task: t, model: m, batch_size: 1, images_per_s: 10, tolerance: 1.5}]}}",
     "machines.m.baselines[0].tolerance"),
    ("machines: {m: {baselines: [{task: t, model: m, batch_size: 1, images_per_s: 10, metric: AP}]}}",
     "unknown key"),
    ("baselines: []", "missing machines"),  # an accuracy baselines file given by mistake
])
def test_bad_throughput_baselines_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "tb.yaml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["gate", "--throughput", "--throughput-baselines", str(path),
                                       "--throughput-csv", str(tmp_path / "none.csv")])
    assert result.exit_code == 2 and message in result.output and str(path) in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_throughput_gate_refuses_accuracy_options(tmp_path):
    result = CliRunner().invoke(main, ["gate", "--throughput", "--paired"])
    assert result.exit_code == 2 and "--paired and --limit are accuracy-gate options" in result.output
