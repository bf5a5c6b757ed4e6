"""The Metric contract: ``update`` with samples and predictions, ``compute`` the numbers, merge across processes.

State is declared with its reduction (``sum`` for counters and confusion matrices, ``cat`` for per-item lists),
so merging the states of several ranks or resumed chunks is correct by construction and a metric never depends
on how the data was batched or sharded.  Bit for bit, that holds only for exact arithmetic: a ``sum`` state must
hold integers (counts, confusion matrices).  A float total would round differently when ranks add partial
totals, so float evidence is kept per sample in a ``cat`` state and added up in ``compute``, either with
``math.fsum`` (correctly rounded, so independent of order) or one by one in sample order where a reference's
own summation order is to be reproduced (ranks hold contiguous slices concatenated in order, so ``cat`` lists
are always in sample order).

Confidence intervals come from resampling images: ``subset(positions)`` gives a metric whose state covers only
those images (repeats allowed) and ``bootstrap`` recomputes on many such resamples.  The generic ``subset``
works when every state is a ``cat`` list with one entry per sample (the order ``update`` saw them).  A metric
with ``sum`` states (counters, confusion matrices) cannot be resampled from its totals: keep per-sample
contributions in a ``cat`` state and sum them in ``compute`` (which also makes float sums independent of how
the work was sharded), or override ``subset``/``bootstrap`` with something cheaper (COCO: resample the
per-image match results and only redo the accumulation).
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
    """Accumulates evidence with ``update`` and turns it into a ``MetricResult`` with ``compute``.

    A metric declares, once, which of its values are better when lower (``lower_is_better``) and the version of
    its numbers (``version``: bump it whenever a change can move any value it reports), so leaderboards and gates
    never compare numbers that two versions of the code would not agree on.
    """

    #: registry name; set by subclasses
    name: str = ""
    #: reported names (last path component, so ``bbox/AP`` is ``AP``) where a lower value is better
    lower_is_better: frozenset[str] = frozenset()
    #: bump when a change can move any reported value
    version: int = 1
    #: dialect names this metric accepts as its ``dialect`` option (first = the official default)
    dialects: tuple[str, ...] = ()

    @classmethod
    def from_dataset(cls, info: Any, **options: Any) -> "Metric":
        """A metric for one run on the dataset described by ``info`` (a ``DatasetInfo``).

        Protocols name metrics and options as data; this hook fills in what only the dataset knows (classes,
        sigmas, ignore label).  The default passes the options through.
        """
        return cls(**options)

    @classmethod
    def is_higher_better(cls, reported: str) -> bool:
        return reported.rsplit("/", 1)[-1] not in cls.lower_is_better

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

    def subset(self, positions: np.ndarray, n_samples: int) -> "Metric":
        """A copy whose state holds only the samples at ``positions`` (0-based, repeats allowed).

        ``n_samples`` is how many samples ``update`` has seen; the generic version needs every state to be a
        ``cat`` list of exactly that length, and raises ``NotImplementedError`` otherwise.
        """
        if not self._reductions or any(reduce != "cat" for reduce in self._reductions.values()):
            raise NotImplementedError(f"{type(self).__name__} has 'sum' states; it needs per-sample state to resample")
        lengths = {name: len(getattr(self, name)) for name in self._reductions}
        if any(length != n_samples for length in lengths.values()):
            raise NotImplementedError(f"{type(self).__name__}: 'cat' states are not one entry per sample {lengths}")
        clone = copy.copy(self)
        for name in self._reductions:
            values = getattr(self, name)
            setattr(clone, name, [values[int(i)] for i in positions])
        return clone

    def bootstrap(
        self, n_samples: int, n_resamples: int, seed: int, level: float = 0.95
    ) -> dict[str, tuple[float, float]]:
        """Percentile bootstrap intervals over images for every scalar this metric computes.

        Resample ``n_samples`` images with replacement ``n_resamples`` times (numpy ``default_rng(seed)``, so
        the same seed draws the same image sets for every metric), recompute, and take the
        ``(1-level)/2`` and ``(1+level)/2`` percentiles, ignoring resamples where a value is undefined (NaN).
        """
        if n_samples < 1 or n_resamples < 1:
            return {}
        rng = np.random.default_rng(seed)
        draws: dict[str, list[float]] = {}
        for _ in range(n_resamples):
            positions = rng.integers(0, n_samples, size=n_samples)
            for name, value in self.subset(positions, n_samples).compute().metrics.items():
                draws.setdefault(name, []).append(float(value))
        intervals = {}
        for name, values in draws.items():
            array = np.asarray(values, dtype=np.float64)
            array = array[np.isfinite(array)]
            if array.size:
                lo, hi = np.percentile(array, [50 * (1 - level), 50 * (1 + level)])
                intervals[name] = (float(lo), float(hi))
        return intervals

    @abstractmethod
    def update(self, samples: Sequence[Any], predictions: Sequence[Any]) -> None:
        """Add one batch: ``samples[i]`` carries the target that ``predictions[i]`` is scored against."""

    @abstractmethod
    def compute(self) -> MetricResult:
        """Numbers over everything seen so far."""
