"""Fixtures for adapter tests."""
from __future__ import annotations

import pytest

from tests.adapters.samples import TinyCoco, make_tiny_coco


@pytest.fixture(scope="session")
def tiny_coco(tmp_path_factory: pytest.TempPathFactory) -> TinyCoco:
    return make_tiny_coco(tmp_path_factory.mktemp("tiny-coco"))
