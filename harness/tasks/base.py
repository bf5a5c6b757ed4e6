"""The Task contract: which dataset by default, which metrics, which number leads, how predictions are saved.

A task knows nothing about models; adapters know nothing about metrics.  The runner joins them.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from harness.datasets.base import DatasetInfo
from harness.metrics.base import Metric
from harness.structures import Sample


class Task(ABC):
    name: str = ""
    default_dataset: str = ""
    #: the leaderboard sorts by this metric
    headline: str = ""
    #: metrics shown as leaderboard columns, in order
    leaderboard_columns: tuple[str, ...] = ()
    #: metrics where lower is better (everything else: higher is better)
    lower_is_better: frozenset[str] = frozenset()

    @abstractmethod
    def metrics(self, dataset: DatasetInfo) -> list[Metric]:
        """Fresh metric objects for one run on ``dataset``."""

    @abstractmethod
    def to_records(self, sample: Sample, prediction: Any, dataset: DatasetInfo) -> list[dict[str, Any]]:
        """The prediction in the dataset's native results format (e.g. COCO results entries)."""

    def higher_is_better(self, metric: str) -> bool:
        """``bbox/AP`` and ``AP`` share a direction: only the last path component names the quantity."""
        return metric.rsplit("/", 1)[-1] not in self.lower_is_better
