"""The registries of the contracts in one place: the names a user can type, and where their entries come from.

The registries live here, below everything that fills them, so that a contract (a protocol building its
metrics, the runner building a model) can look a name up without importing the package that implements it:
``adapters`` is named by string and never imported by ``harness``.  The plugin packages re-export their
registry (``from harness.metrics import METRICS`` keeps working) so a new module registers itself in one line.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from harness.core.registry import Registry

if TYPE_CHECKING:
    from harness.core.adapter import Adapter
    from harness.core.dataset import Dataset
    from harness.core.metric import Metric
    from harness.core.submission import SubmissionFormat
    from harness.core.task import Task

#: what a dataset registry entry is: ``(data_root, split, task) -> Dataset`` (``data_root=None``: embedded copy)
DatasetFactory = Callable[[Path | None, str | None, str], "Dataset"]

TASKS: Registry[type[Task]] = Registry("task", ("harness.tasks",), symbol="TASKS", group="bench.tasks",
                           base="harness.core.task:Task")
#: callables ``(data_root: Path | None, split: str | None, task: str) -> Dataset``
DATASETS: Registry[DatasetFactory] = Registry("dataset", ("harness.datasets",), symbol="DATASETS", group="bench.datasets")
METRICS: Registry[type[Metric]] = Registry("metric", ("harness.metrics",), symbol="METRICS", group="bench.metrics",
                             base="harness.core.metric:Metric")
SUBMISSIONS: Registry[type[SubmissionFormat]] = Registry("submission format", ("harness.submissions",), symbol="SUBMISSIONS",
                                 group="bench.submissions", base="harness.core.submission:SubmissionFormat")
#: ``Adapter`` subclasses; ``--model PREFIX:ARG`` finds the entry registered as ``"PREFIX:"``
ADAPTERS: Registry[type[Adapter]] = Registry("model", ("adapters",), symbol="ADAPTERS", group="bench.adapters",
                              base="harness.core.adapter:Adapter")

#: entry-point group of each registry, for plugin authors (``[project.entry-points."bench.adapters"]``)
GROUPS: dict[str, str] = {"bench.tasks": "TASKS", "bench.datasets": "DATASETS", "bench.metrics": "METRICS",
                          "bench.submissions": "SUBMISSIONS", "bench.adapters": "ADAPTERS",
                          "bench.file_evaluators": "harness.file_eval.FILE_EVALUATORS",
                          "bench.trainers": "harness.run.trainers.TRAINERS"}
