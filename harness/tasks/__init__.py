"""Tasks (what is measured), registered by name and discovered from this package."""
from __future__ import annotations

from typing import TYPE_CHECKING

from harness.core.catalog import TASKS  # the registry lives in core; modules here fill it

if TYPE_CHECKING:
    from harness.core.task import Task


def get_task(name: str) -> Task:
    """The registered task, instantiated (the registry holds classes)."""
    entry = TASKS.get(name)
    return entry() if isinstance(entry, type) else entry
