"""Fixtures for adapter tests."""
from __future__ import annotations

import os

import pytest

from tests.adapters.samples import TinyCoco, make_tiny_coco


@pytest.fixture(scope="session", autouse=True)
def share_cores_between_workers() -> None:
    """Under pytest-xdist every worker would start one torch thread per core; on 2 cores two workers then
    oversubscribe and run slower than one.  Split the cores between the workers instead."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


@pytest.fixture(scope="session")
def tiny_coco(tmp_path_factory: pytest.TempPathFactory) -> TinyCoco:
    return make_tiny_coco(tmp_path_factory.mktemp("tiny-coco"))
