"""Bootstrap confidence intervals for a run's metrics, as stored in metrics.json.

Images are the unit of resampling (the test set is a sample of images, not of pixels or detections).  Every
metric is resampled with the same seed, hence the same image multisets (``harness.core.metric.resample_counts``),
and always with the requested number of resamples: the intervals are a function of the predictions, the seed
and that number, never of how busy the machine was.  Metrics score resamples by reuse (``Metric.resampled``:
COCO re-accumulates one set of matches with image weights, count and sum metrics weight their per-image rows),
so 200 resamples cost a fraction of 200 evaluations.  Metrics that cannot be resampled are listed as such
instead of getting a made-up interval.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

from harness.core.metric import Metric, percentile_intervals, resample_counts

DEFAULT_RESAMPLES = 200
DEFAULT_LEVEL = 0.95


def confidence_intervals(
    metrics: Sequence[Metric], n_samples: int, n_resamples: int, seed: int, level: float = DEFAULT_LEVEL,
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """``({metric: [lo, hi]}, settings)``; empty intervals when ``n_resamples`` is 0."""
    started = time.perf_counter()
    intervals: dict[str, list[float]] = {}
    unsupported: list[str] = []
    seconds: dict[str, float] = {}
    if n_resamples > 0 and n_samples > 0:
        counts = resample_counts(n_samples, n_resamples, seed)
        for metric in metrics:
            label = metric.name or type(metric).__name__
            one = time.perf_counter()
            try:
                draws = metric.resampled(counts)
            except NotImplementedError:
                unsupported.append(label)
                continue
            seconds[label] = round(time.perf_counter() - one, 3)
            intervals.update({name: [lo, hi] for name, (lo, hi) in percentile_intervals(draws, level).items()})
    settings = {
        "method": "percentile bootstrap over images",
        "n_resamples": n_resamples,
        "seed": seed,
        "level": level,
        "seconds": round(time.perf_counter() - started, 3),
        "seconds_per_metric": seconds,
        "unsupported": unsupported,
    }
    return intervals, settings
