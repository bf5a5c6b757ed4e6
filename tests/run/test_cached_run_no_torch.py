"""Issue 15: a fully cached re-run of ``bench run --task keypoints`` (and ``flow``, ``semantic``, ``detection``,
``instance``) imports no torch, and writes the same metrics.json as the run that predicted (parameter counts, and
the detection models' classes and category ids, included)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: runs the CLI in-process, then says whether torch got imported
SCRIPT = """
import sys
from harness.cli import main
try:
    main(sys.argv[1:], prog_name="bench", standalone_mode=False)
finally:
    print("TORCH_IMPORTED=" + str("torch" in sys.modules))
"""

#: what may differ between two runs of one command: clocks, the run's id, cache counters, torch's settings
VOLATILE = ("run_id", "throughput", "provenance", "started_utc", "finished_utc")


def _bench_run(tmp_path: Path, task: str) -> tuple[str, dict[str, dict]]:
    """One ``bench run --task TASK --limit 8`` in a fresh process; its output and metrics.json by model."""
    reports = tmp_path / "reports"
    before = set(reports.iterdir()) if reports.is_dir() else set()
    # the plugin example of this tree first: the installed one may be another checkout's
    path = os.pathsep.join([str(ROOT), str(ROOT / "examples" / "bench-plugin-example")])
    env = {**os.environ, "PYTHONPATH": path, "BENCH_CACHE": str(tmp_path / "bench-cache"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, "run", "--task", task, "--limit", "8",
         "--cache-dir", str(tmp_path / "predictions"), "--reports-dir", str(reports),
         "--leaderboards-dir", str(tmp_path / "leaderboards")],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    records = {}
    for folder in set(reports.iterdir()) - before:
        record = json.loads((folder / "metrics.json").read_text())
        records[record["model"]["name"]] = record
    return done.stdout, records


def _stable(record: dict) -> dict:
    record = {key: value for key, value in record.items() if key not in VOLATILE}
    record["bootstrap"] = {key: value for key, value in record["bootstrap"].items() if not key.startswith("seconds")}
    return record


@pytest.mark.parametrize("task, models", [
    ("keypoints", {"heatmap", "hourglass", "mean-pose", "regression", "soft-argmax"}),
    ("flow", {"flownet-s", "zero-flow", "horn-schunck", "lucas-kanade", "farneback"}),
    ("semantic", {"fcn", "unet", "aspp", "pspnet", "majority-class"}),
    ("detection", {"centernet", "prior-boxes", "yolo", "ssd", "retinanet", "detr"}),
    ("instance", {"centernet-mask", "prior-boxes-mask", "mask-rcnn"}),
])
def test_a_cached_rerun_imports_no_torch_and_writes_the_same_metrics(tmp_path, task, models):
    first_out, first = _bench_run(tmp_path, task)
    assert "TORCH_IMPORTED=True" in first_out  # the first run predicts: the check below is not vacuous
    again_out, again = _bench_run(tmp_path, task)
    assert "TORCH_IMPORTED=False" in again_out

    assert set(first) == set(again) == models
    for name, record in again.items():
        assert record["throughput"]["cached_samples"] == 8 and record["throughput"]["predicted_samples"] == 0
        # counted from the network in the first run, remembered for the second
        assert record["model"]["parameters"] == first[name]["model"]["parameters"], name
        assert _stable(record) == _stable(first[name]), name
    assert any(record["model"]["parameters"] > 0 for record in again.values())  # a network among them
