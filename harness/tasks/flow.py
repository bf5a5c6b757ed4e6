"""Optical flow: EPE pooled over valid pixels, 1/3/5px accuracies, Fl-all, Sintel breakdowns."""
from __future__ import annotations

from typing import Any

from harness.datasets.base import DatasetInfo
from harness.metrics import METRICS
from harness.metrics.base import Metric
from harness.structures import FlowPrediction, Sample
from harness.tasks import TASKS
from harness.tasks.base import Task


@TASKS.register("flow")
class FlowTask(Task):
    name = "flow"
    default_dataset = "sintel"
    headline = "EPE"
    leaderboard_columns = ("EPE", "1px", "3px", "5px", "Fl-all", "EPE_matched", "EPE_unmatched")
    lower_is_better = frozenset({"EPE", "Fl-all", "EPE_matched", "EPE_unmatched", "EPE_s0-10", "EPE_s10-40", "EPE_s40+"})

    def metrics(self, dataset: DatasetInfo) -> list[Metric]:
        return [METRICS.get("flow")()]

    def to_records(self, sample: Sample, prediction: FlowPrediction, dataset: DatasetInfo) -> list[dict[str, Any]]:
        """Dense flow fields are not written to predictions.json (they would dwarf the report)."""
        return []
