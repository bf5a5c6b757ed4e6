"""Bootstrap confidence intervals for a run's metrics, as stored in metrics.json.

Images are the unit of resampling (the test set is a sample of images, not of pixels or detections).  Every
metric is resampled with the same seed, hence the same image sets.  Metrics that cannot be resampled (``sum``
states without per-sample contributions) are listed as such instead of getting a made-up interval.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

from harness.metrics.base import Metric

DEFAULT_RESAMPLES = 200
DEFAULT_LEVEL = 0.95


def confidence_intervals(
    metrics: Sequence[Metric], n_samples: int, n_resamples: int, seed: int, level: float = DEFAULT_LEVEL
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """``({metric: [lo, hi]}, settings)``; empty intervals when ``n_resamples`` is 0."""
    started = time.perf_counter()
    intervals: dict[str, list[float]] = {}
    unsupported: list[str] = []
    if n_resamples > 0:
        for metric in metrics:
            try:
                found = metric.bootstrap(n_samples, n_resamples, seed, level)
            except NotImplementedError:
                unsupported.append(metric.name or type(metric).__name__)
                continue
            intervals.update({name: [lo, hi] for name, (lo, hi) in found.items()})
    settings = {
        "method": "percentile bootstrap over images",
        "n_resamples": n_resamples,
        "seed": seed,
        "level": level,
        "seconds": round(time.perf_counter() - started, 3),
        "unsupported": unsupported,
    }
    return intervals, settings
