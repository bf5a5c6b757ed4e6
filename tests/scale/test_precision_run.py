"""``bench run --precision``: a recorded run condition (issue 15).  A bf16 run is another model on the
leaderboard (``MODEL+bf16``), another prediction-cache entry and says so in its provenance."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from click.testing import CliRunner

import toyplugin
from harness.cli import main
from harness.core.catalog import ADAPTERS
from harness.io.jsonio import read_json


@ADAPTERS.register("toy-bf16-numpy")
class ToyNumpyOutputs(toyplugin.ToyLinear):
    """Hands the layer's raw output to numpy: fine in fp32, impossible in bfloat16."""

    runs_by_default = False

    def predict(self, samples):
        x = torch.as_tensor(np.stack([s.prompts for s in samples]))
        with torch.no_grad():
            logits = self.module(x).numpy()
        return [toyplugin.ToyPrediction(scores=np.exp(row) / np.exp(row).sum()) for row in logits.astype(np.float64)]


def run(tmp_path, *extra):
    args = ["run", "--task", "toy", "--model", "toy-linear", "--reports-dir", str(tmp_path / "r"), "--leaderboards-dir",
            str(tmp_path / "lb"), "--cache-dir", str(tmp_path / "cache"), "--bootstrap", "0", "--gallery", "0", *extra]
    return CliRunner().invoke(main, args)


def test_bf16_is_its_own_row_cache_entry_and_provenance(tmp_path, monkeypatch):
    monkeypatch.setattr(toyplugin.ToyLinear, "calls", [])
    assert run(tmp_path).exit_code == 0
    calls_fp32 = len(toyplugin.ToyLinear.calls)
    result = run(tmp_path, "--precision", "bf16")
    assert result.exit_code == 0, result.output
    assert len(toyplugin.ToyLinear.calls) == 2 * calls_fp32  # fp32's cached predictions were not reused
    records = {r["model"]["name"]: r for r in map(read_json, (tmp_path / "r").glob("*/metrics.json"))}
    assert sorted(records) == ["toy-linear", "toy-linear+bf16"]
    assert records["toy-linear"]["provenance"]["precision"] == "fp32"
    assert records["toy-linear+bf16"]["provenance"]["precision"] == "bf16"
    assert records["toy-linear"]["model"]["fingerprint"] != records["toy-linear+bf16"]["model"]["fingerprint"]
    board = pd.read_csv(tmp_path / "lb" / "toy.csv")
    assert sorted(board["model"]) == ["toy-linear", "toy-linear+bf16"]  # never one row for both
    again = run(tmp_path, "--precision", "bf16")  # the bf16 run's own cache entry is reused
    assert again.exit_code == 0 and len(toyplugin.ToyLinear.calls) == 2 * calls_fp32


def test_a_model_that_cannot_hand_bf16_to_numpy_is_one_line(tmp_path):
    args = ["run", "--task", "toy", "--model", "toy-bf16-numpy", "--reports-dir", str(tmp_path / "r"), "--no-cache",
            "--leaderboards-dir", str(tmp_path / "lb"), "--bootstrap", "0", "--gallery", "0"]
    assert CliRunner().invoke(main, args).exit_code == 0
    result = CliRunner().invoke(main, [*args, "--precision", "bf16"])
    assert result.exit_code == 2
    assert "error: model 'toy-bf16-numpy' cannot run under --precision bf16" in result.output
    assert "Traceback" not in result.output
