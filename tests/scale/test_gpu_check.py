"""``benchmarks/gpu_check.sh`` on a machine without CUDA: one clean line, exit 0 (issue 15)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.sh"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present: the script runs its checks")
def test_without_cuda_it_says_skipped_and_exits_0():
    done = subprocess.run(["sh", str(SCRIPT)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "BENCH_PYTHON": sys.executable})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"skipped: no CUDA device (torch {torch.__version__})"
    assert done.stderr == ""


def test_without_torch_it_names_the_python_it_tried(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1\n")
    fake.chmod(0o755)
    done = subprocess.run(["sh", str(SCRIPT)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "BENCH_PYTHON": str(fake)})
    assert done.returncode == 2
    assert done.stderr.strip() == f"gpu_check: cannot import torch with {fake}: ModuleNotFoundError: No module named 'torch'"
