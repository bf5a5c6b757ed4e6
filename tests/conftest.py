"""Shared fixtures: an isolated cache for embedded datasets, so tests never touch the user's ~/.cache."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session", autouse=True)
def bench_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache per test session (per xdist worker), generated on first use like a user's would be."""
    shared = os.environ.get("BENCH_TEST_CACHE")  # set to reuse generated datasets across sessions locally
    path = Path(shared) if shared else tmp_path_factory.getbasetemp() / "bench-cache"
    os.environ["BENCH_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session", autouse=True)
def share_cores_between_workers() -> None:
    """Under pytest-xdist every worker would start one torch thread per core; on 2 cores two workers then
    oversubscribe and run slower than one.  Split the cores between the workers instead."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
