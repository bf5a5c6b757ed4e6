"""The Python API: the README example runs as written, and results equal the CLI's files."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from harness import api
from harness.core.errors import BenchError

README = Path(__file__).resolve().parents[2] / "README.md"
DATA = Path(__file__).resolve().parents[1] / "data" / "coco"


def test_readme_example_runs(tmp_path, monkeypatch, capsys):
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- api-example[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert block, "README lost its API example"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    namespace: dict = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)
    fcn, diff = namespace["fcn"], namespace["diff"]
    record = json.loads((fcn.run_dir / "metrics.json").read_text())
    assert fcn.headline == "mIoU" and fcn.value == record["metrics"]["mIoU"]
    assert list(fcn.interval("mIoU")) == record["confidence"]["mIoU"]
    frame = fcn.to_pandas()
    assert frame.loc["mIoU", "value"] == record["metrics"]["mIoU"] and frame.loc["mIoU", "ci_low"] <= fcn.value
    assert len(namespace["worst"]) == 3 and namespace["worst"]["miou"].is_monotonic_increasing
    assert diff.metrics["mIoU"]["delta"] == pytest.approx(namespace["unet"].value - fcn.value)
    assert "mIoU" in capsys.readouterr().out
    assert (tmp_path / "reports").is_dir()  # the default reports_dir, relative to the working directory


def test_evaluate_scores_files_like_bench_eval():
    result = api.evaluate("detection", DATA / "instances_val2014_100.json",
                          DATA / "instances_val2014_fakebbox100_results.json")
    # cocoapi's published bbox AP for these fake results (tests/data/coco/val2014_fake_eval_res.txt: 0.505)
    assert round(result.metrics["AP"], 3) == 0.505
    frame = result.to_pandas()
    assert frame.loc["AP", "value"] == result.metrics["AP"] and np.isnan(frame.loc["APl", "value"]) == (result.metrics["APl"] == -1)


def test_unknown_options_are_refused(tmp_path):
    with pytest.raises(BenchError, match="batchsize"):
        api.run("flow", models=["zero-flow"], limit=2, batchsize=4, reports_dir=tmp_path)
