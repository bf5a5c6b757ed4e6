"""`bench throughput`: rows per batch size, FLOPs and parameters from the module, OOM back-off, CSV upsert."""
from __future__ import annotations

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

import toyplugin  # noqa: F401
from harness.cli import main
from harness.core.errors import BenchError
from harness.run.throughput_benchmark import ThroughputConfig, count_flops, measure_throughput, time_calls


def test_rows_carry_latency_percentiles_flops_and_versions(tmp_path):
    args = ["throughput", "--task", "toy", "--model", "toy-linear", "--batch-sizes", "1,4", "--repeats", "7",
            "--warmup", "1", "--leaderboards-dir", str(tmp_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "throughput.csv")
    assert table["batch_size"].tolist() == [1, 4] and (table["status"] == "ok").all()
    assert (table["parameters"] == 12).all()
    assert table["gflops_per_image"].tolist() == pytest.approx([2 * 4 * 3 / 1e9] * 2)  # Linear(4, 3): 12 MACs
    assert (table["latency_p50_ms"] <= table["latency_p90_ms"]).all() and (table["latency_p90_ms"] <= table["latency_p99_ms"]).all()
    assert table["images_per_s"].tolist() == pytest.approx((table["batch_size"] / table["latency_p50_ms"] * 1000).tolist())
    assert (table["torch"] == torch.__version__).all() and (table["memory_measure"] == "process max RSS").all()
    assert (table["peak_memory_mb"] > 10).all()

    CliRunner().invoke(main, [*args, "--precision", "bf16"])
    CliRunner().invoke(main, args)  # same settings again: rows replaced, not duplicated
    table = pd.read_csv(tmp_path / "throughput.csv")
    assert len(table) == 4 and sorted(table["precision"].unique()) == ["bf16", "fp32"]


def test_out_of_memory_halves_the_batch_and_says_so(tmp_path):
    rows = measure_throughput(ThroughputConfig(task="toy", model="toy-hungry", batch_sizes=(2, 9), repeats=2, warmup=0,
                                               leaderboards_dir=tmp_path))
    assert [(r["batch_size"], r["effective_batch_size"], r["oom_backoff"]) for r in rows] == [(2, 2, False), (9, 2, True)]
    assert rows[1]["status"] == "out of memory at 9, measured at 2"


def test_compile_channels_last_and_predict_mode(tmp_path):
    compiled = measure_throughput(ThroughputConfig(task="toy", model="toy-linear", batch_sizes=(3,), repeats=2, warmup=1,
                                                   compile=True, compile_backend="eager", channels_last=True,
                                                   leaderboards_dir=tmp_path))
    assert compiled[0]["compile"] and compiled[0]["channels_last"] and compiled[0]["status"] == "ok"
    predict = measure_throughput(ThroughputConfig(task="toy", model="toy-linear", batch_sizes=(3,), repeats=2, warmup=0,
                                                  mode="predict", leaderboards_dir=tmp_path))
    assert predict[0]["mode"] == "predict" and predict[0]["gflops_per_image"] is None
    with pytest.raises(BenchError, match="time the torch module"):
        measure_throughput(ThroughputConfig(task="toy", model="toy-linear", mode="predict", channels_last=True,
                                            leaderboards_dir=tmp_path))
    amp = measure_throughput(ThroughputConfig(task="toy", model="toy-linear", batch_sizes=(3,), repeats=2, warmup=0,
                                              mode="predict", precision="bf16", leaderboards_dir=tmp_path))
    assert amp[0]["mode"] == "predict" and amp[0]["precision"] == "bf16" and amp[0]["status"] == "ok"
    assert len(pd.read_csv(tmp_path / "throughput.csv")) == 3


def test_timing_counts_only_the_timed_calls_and_flops_of_a_conv():
    calls = []
    times = time_calls(lambda: calls.append(1), "cpu", warmup=3, repeats=5)
    assert len(calls) == 8 and times.shape == (5,) and (times >= 0).all()
    conv = torch.nn.Conv2d(3, 8, 3, bias=False)
    assert count_flops(conv, torch.zeros(1, 3, 10, 10)) == 2 * 8 * 8 * 8 * 3 * 3 * 3


def test_compile_that_cannot_work_falls_back_with_a_recorded_note(tmp_path):
    """When torch.compile cannot work (no C++ compiler, a model dynamo cannot trace), the module is measured
    without it: one note, and the row says compile=False with the reason."""
    def broken_backend(graph, example_inputs):
        raise RuntimeError("no working C++ compiler found")

    rows = measure_throughput(ThroughputConfig(task="toy", model="toy-linear", batch_sizes=(1, 3), repeats=2, warmup=1,
                                               compile=True, compile_backend=broken_backend, leaderboards_dir=tmp_path))
    assert [r["compile"] for r in rows] == [False, False] and all(r["status"] == "ok" for r in rows)
    assert all("torch.compile failed" in r["notes"] and "no working C++ compiler" in r["notes"] for r in rows)
    table = pd.read_csv(tmp_path / "throughput.csv")
    assert table["compile"].tolist() == [False, False]
    result = CliRunner().invoke(main, ["throughput", "--task", "toy", "--model", "toy-linear", "--batch-sizes", "1",
                                       "--repeats", "1", "--compile", "--compile-backend", "no-such-backend",
                                       "--leaderboards-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "note: torch.compile unavailable" in result.output
