"""``bench eval`` on COCO files loads no model library: its start-up is part of every score's wall time."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COCO = ROOT / "tests" / "data" / "coco"
HEAVY = ("torch", "torchvision", "PIL", "cv2", "scipy", "pandas", "mmdet", "mmcv", "numpy.ma")

# at exit: the fast entry of `bench eval` ends the process itself (after the atexit handlers)
PROBE = """
import atexit, json, runpy, sys
heavy = %r
atexit.register(lambda: print(json.dumps(sorted(m for m in sys.modules if m in heavy or m.split(".")[0] in heavy))))
sys.argv = ["bench", "eval", "--task", sys.argv[1], "--gt", sys.argv[2], "--pred", sys.argv[3]]
runpy.run_module("harness.cli", run_name="__main__")
"""


@pytest.mark.parametrize("task, results", [("detection", "instances_val2014_fakebbox100_results.json"),
                                           ("instance", "instances_val2014_fakesegm100_results.json")])
def test_bench_eval_on_coco_files_imports_no_model_library(task: str, results: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE % (HEAVY,), task, str(COCO / "instances_val2014_100.json"), str(COCO / results)],
        capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, check=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
