"""The Task contract: which dataset by default and the default protocol its datasets start from.

A task knows nothing about models; adapters know nothing about metrics.  The runner joins them.  What is scored
and how (metrics, headline, columns, submission format) is a ``Protocol``: the task's default, changed by the
dataset where its official evaluation differs (``DatasetInfo.protocol``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from harness.core.dataset import DatasetInfo
from harness.core.protocol import Protocol

if TYPE_CHECKING:
    from harness.core.metric import Metric


class Task:
    name: ClassVar[str] = ""
    default_dataset: ClassVar[str] = ""
    #: what a dataset of this task is scored with unless it says otherwise
    default_protocol: ClassVar[Protocol]

    @property
    def headline(self) -> str:
        return self.default_protocol.headline

    @property
    def leaderboard_columns(self) -> tuple[str, ...]:
        return self.default_protocol.columns

    def protocol(self, dataset: DatasetInfo) -> Protocol:
        """The official protocol for ``dataset``: the task's default with the dataset's override applied."""
        return self.default_protocol.apply(dataset.protocol)

    def metrics(self, dataset: DatasetInfo, dialect: str | None = None) -> list[Metric]:
        """Fresh metric objects for one run on ``dataset``."""
        return self.protocol(dataset).build_metrics(dataset, dialect)

    def higher_is_better(self, metric: str) -> bool:
        """Direction as the default protocol's metrics declare it (``bbox/AP`` and ``AP`` share a direction)."""
        return self.default_protocol.higher_is_better(metric)
