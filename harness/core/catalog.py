"""Every registry of bench in one place: the names a user can type, and where their entries come from.

The registries live here, below everything that fills them, so that a contract (a protocol building its
metrics, the runner building a model) can look a name up without importing the package that implements it:
``adapters`` is named by string and never imported by ``harness``.  The plugin packages re-export their
registry (``from harness.metrics import METRICS`` keeps working) so a new module registers itself in one line.
"""
from __future__ import annotations

from harness.core.registry import Registry

TASKS: Registry = Registry("task", ("harness.tasks",))
#: callables ``(data_root: Path | None, split: str | None, task: str) -> Dataset``
DATASETS: Registry = Registry("dataset", ("harness.datasets",))
METRICS: Registry = Registry("metric", ("harness.metrics",))
SUBMISSIONS: Registry = Registry("submission format", ("harness.submissions",))
FILE_EVALUATORS: Registry = Registry("file-evaluation task", ("harness.file_eval",))
#: ``Adapter`` subclasses; ``--model PREFIX:ARG`` finds the entry registered as ``"PREFIX:"``
ADAPTERS: Registry = Registry("model", ("adapters",))
