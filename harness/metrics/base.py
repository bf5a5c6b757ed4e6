"""The Metric contract: ``update`` with samples and predictions, ``compute`` the numbers, merge across processes.

State is declared with its reduction (``sum`` for counters and confusion matrices, ``cat`` for per-item lists),
so merging the states of several ranks or resumed chunks is correct by construction and a metric never depends
on how the data was batched or sharded.
"""
from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import numpy as np

Reduction = Literal["sum", "cat"]


@dataclass
class MetricResult:
    """Headline numbers plus the breakdowns a report shows.

    ``metrics`` holds the names from docs (AP, AP50, mIoU, EPE, ...); ratios are in [0, 1], errors in pixels or
    the ground truth's unit.  ``per_class`` maps a metric name to {class or joint name: value}.  ``curves`` holds
    plottable series such as precision/recall.  ``settings`` records the evaluator settings used, so a result
    always states its convention (dialect, thresholds, maxDets).
    """

    metrics: dict[str, float]
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    curves: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    higher_is_better: dict[str, bool] = field(default_factory=dict)


class Metric(ABC):
    """Accumulates evidence with ``update`` and turns it into a ``MetricResult`` with ``compute``."""

    #: registry name; set by subclasses
    name: str = ""

    def __init__(self) -> None:
        self._reductions: dict[str, Reduction] = {}
        self._defaults: dict[str, Any] = {}

    def add_state(self, name: str, default: Any, reduce: Reduction) -> None:
        if reduce == "cat" and not isinstance(default, list):
            raise TypeError(f"state {name!r}: 'cat' states must start as a list")
        self._reductions[name] = reduce
        self._defaults[name] = copy.deepcopy(default)
        setattr(self, name, copy.deepcopy(default))

    def reset(self) -> None:
        for name, default in self._defaults.items():
            setattr(self, name, copy.deepcopy(default))

    def state_dict(self) -> dict[str, Any]:
        """A picklable snapshot of the accumulated state (what ranks send to rank 0)."""
        return {name: getattr(self, name) for name in self._reductions}

    def merge_state(self, state: dict[str, Any]) -> None:
        """Fold another instance's ``state_dict`` into this one, by each state's declared reduction."""
        for name, reduce in self._reductions.items():
            mine, theirs = getattr(self, name), state[name]
            if reduce == "sum":
                setattr(self, name, np.add(mine, theirs) if isinstance(mine, np.ndarray) else mine + theirs)
            else:
                setattr(self, name, list(mine) + list(theirs))

    @abstractmethod
    def update(self, samples: Sequence[Any], predictions: Sequence[Any]) -> None:
        """Add one batch: ``samples[i]`` carries the target that ``predictions[i]`` is scored against."""

    @abstractmethod
    def compute(self) -> MetricResult:
        """Numbers over everything seen so far."""
