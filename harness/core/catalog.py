"""Every registry of bench in one place: the names a user can type, and where their entries come from.

The registries live here, below everything that fills them, so that a contract (a protocol building its
metrics, the runner building a model) can look a name up without importing the package that implements it:
``adapters`` is named by string and never imported by ``harness``.  The plugin packages re-export their
registry (``from harness.metrics import METRICS`` keeps working) so a new module registers itself in one line.
"""
from __future__ import annotations

from harness.core.registry import Registry

TASKS: Registry = Registry("task", ("harness.tasks",), symbol="TASKS", group="bench.tasks",
                           base="harness.core.task:Task")
#: callables ``(data_root: Path | None, split: str | None, task: str) -> Dataset``
DATASETS: Registry = Registry("dataset", ("harness.datasets",), symbol="DATASETS", group="bench.datasets")
METRICS: Registry = Registry("metric", ("harness.metrics",), symbol="METRICS", group="bench.metrics",
                             base="harness.core.metric:Metric")
SUBMISSIONS: Registry = Registry("submission format", ("harness.submissions",), symbol="SUBMISSIONS",
                                 group="bench.submissions", base="harness.core.submission:SubmissionFormat")
FILE_EVALUATORS: Registry = Registry("file-evaluation task", ("harness.file_eval",), symbol="FILE_EVALUATORS",
                                     group="bench.file_evaluators", base="harness.file_eval.base:FileEvaluator")
#: ``Adapter`` subclasses; ``--model PREFIX:ARG`` finds the entry registered as ``"PREFIX:"``
ADAPTERS: Registry = Registry("model", ("adapters",), symbol="ADAPTERS", group="bench.adapters",
                              base="harness.core.adapter:Adapter")

#: entry-point group of each registry, for plugin authors (``[project.entry-points."bench.adapters"]``)
GROUPS: dict[str, Registry] = {registry.group: registry for registry in
                               (TASKS, DATASETS, METRICS, SUBMISSIONS, FILE_EVALUATORS, ADAPTERS) if registry.group}
