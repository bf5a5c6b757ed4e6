"""Optical flow: EPE pooled over valid pixels, 1/3/5px accuracies, Fl-all, Sintel breakdowns."""
from __future__ import annotations

from harness.core.protocol import MetricSpec, Protocol
from harness.tasks import TASKS
from harness.core.task import Task


@TASKS.register("flow")
class FlowTask(Task):
    name = "flow"
    default_dataset = "sintel"
    default_protocol = Protocol(
        name="flow-pooled", version=1, metrics=(MetricSpec("flow"),), headline="EPE",
        columns=("EPE", "1px", "3px", "5px", "Fl-all", "EPE_matched", "EPE_unmatched"), submission="flo",
        reference="RAFT evaluate.py (EPE pooled over pixels)",
    )
