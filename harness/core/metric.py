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
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Sequence

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

    if TYPE_CHECKING:
        # States are attributes created at run time by ``add_state``; to a type checker each is what its
        # declared default was (a list for 'cat', an int or array for 'sum'), i.e. any value.
        def __getattr__(self, name: str) -> Any: ...

        def __setattr__(self, name: str, value: Any) -> None: ...

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

        Resample ``n_samples`` images with replacement ``n_resamples`` times (``resample_counts``: the same
        seed draws the same image multisets for every metric), score each resample (``resampled``) and take the
        ``(1-level)/2`` and ``(1+level)/2`` percentiles, ignoring resamples where a value is undefined (NaN).
        """
        if n_samples < 1 or n_resamples < 1:
            return {}
        return percentile_intervals(self.resampled(resample_counts(n_samples, n_resamples, seed)), level)

    def resampled(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        """Every scalar of ``compute`` on each resample: ``counts`` is (resamples, samples), how many times each
        sample is drawn; returns {name: (resamples,) values}.

        This generic version scores ``subset`` of the drawn samples (in sample order, an image's copies side by
        side), a full ``compute`` per resample.  Metrics override it with a path that reuses the per-sample work
        (COCO: one matching, re-accumulated with image weights; counts and sums: weighted totals), and their
        tests check that the override equals this version exactly.
        """
        counts = np.asarray(counts)
        draws: dict[str, list[float]] = {}
        for row in counts:
            positions = np.repeat(np.arange(len(row)), row)
            for name, value in self.subset(positions, len(row)).compute().metrics.items():
                draws.setdefault(name, []).append(float(value))
        return {name: np.asarray(values, dtype=np.float64) for name, values in draws.items()}

    @abstractmethod
    def update(self, samples: Sequence[Any], predictions: Sequence[Any]) -> None:
        """Add one batch: ``samples[i]`` carries the target that ``predictions[i]`` is scored against."""

    @abstractmethod
    def compute(self) -> MetricResult:
        """Numbers over everything seen so far."""


def resample_counts(n_samples: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n_samples) int64: how often each sample is drawn in each bootstrap resample.

    Draw r takes ``n_samples`` positions uniformly with replacement from numpy ``default_rng(seed)``, so the
    multisets are a function of the seed, the sample count and the draw index only: the same for every
    metric of a run, and the first k of ``n`` resamples are the k resamples of a smaller run.
    """
    rng = np.random.default_rng(seed)
    out = np.zeros((n_resamples, n_samples), dtype=np.int64)
    for r in range(n_resamples):
        out[r] = np.bincount(rng.integers(0, n_samples, size=n_samples), minlength=n_samples)
    return out


def percentile_intervals(draws: dict[str, np.ndarray], level: float) -> dict[str, tuple[float, float]]:
    """(lo, hi) percentiles of each value's resampled distribution, NaN and -1 resamples left out.

    -1 is COCO's "no data" cell (a resample without any medium object has APm -1): it is not a value the
    metric took, and an interval [-1.0, 0.076] would tell a gate that any drop is noise.
    """
    intervals = {}
    for name, values in draws.items():
        array = np.asarray(values, dtype=np.float64)
        array = array[np.isfinite(array) & (array != -1.0)]
        if array.size:
            lo, hi = np.percentile(array, [50 * (1 - level), 50 * (1 + level)])
            intervals[name] = (float(lo), float(hi))
    return intervals


def weighted_fsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``math.fsum`` of ``values`` with value i taken ``counts[r, i]`` times, for each row r: (rows,) float64.

    Exactly what ``math.fsum`` gives on the resampled list (correctly rounded, so order-free), without
    rounding ``count * value`` first.
    """
    values = np.asarray(values, dtype=np.float64)
    return np.array([math.fsum(np.repeat(values, row)) for row in np.asarray(counts)], dtype=np.float64)


def weighted_counts(per_sample: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Integer per-sample counts (samples, ...) summed with multiplicities (rows, samples): (rows, ...) int64.

    A float64 matrix product is exact here (integer products and partial sums stay far below 2**53) and runs
    through BLAS, which integer matrix products do not.
    """
    per_sample = np.asarray(per_sample)
    flat = per_sample.reshape(len(per_sample), -1).astype(np.float64)
    total = np.asarray(counts, dtype=np.float64) @ flat
    if flat.size and np.abs(total).max(initial=0.0) >= 2.0**53:
        raise OverflowError("weighted counts beyond 2**53 cannot be summed exactly in float64")
    return np.rint(total).astype(np.int64).reshape((len(counts),) + per_sample.shape[1:])
