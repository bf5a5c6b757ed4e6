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
DEFAULT_BUDGET_SECONDS = 300.0
MIN_RESAMPLES = 20


def confidence_intervals(
    metrics: Sequence[Metric], n_samples: int, n_resamples: int, seed: int, level: float = DEFAULT_LEVEL,
    budget_seconds: float | None = DEFAULT_BUDGET_SECONDS,
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """``({metric: [lo, hi]}, settings)``; empty intervals when ``n_resamples`` is 0.

    A metric whose ``compute`` is slow (a full COCO evaluation per resample) gets fewer resamples, so that the
    intervals fit in ``budget_seconds`` (never fewer than 20); the count used is recorded per metric.  Because
    the draws come from one seeded stream, fewer resamples are a prefix of the full set.
    """
    started = time.perf_counter()
    intervals: dict[str, list[float]] = {}
    unsupported: list[str] = []
    used: dict[str, int] = {}
    if n_resamples > 0:
        for position, metric in enumerate(metrics):
            label = metric.name or type(metric).__name__
            count = n_resamples
            if budget_seconds is not None:
                share = max(budget_seconds - (time.perf_counter() - started), 0.0) / (len(metrics) - position)
                one = time.perf_counter()
                metric.compute()
                seconds_per_compute = time.perf_counter() - one
                if seconds_per_compute * n_resamples > share:
                    count = max(MIN_RESAMPLES, int(share / max(seconds_per_compute, 1e-9)))
                    count = min(count, n_resamples)
            try:
                found = metric.bootstrap(n_samples, count, seed, level)
            except NotImplementedError:
                unsupported.append(label)
                continue
            used[label] = count
            intervals.update({name: [lo, hi] for name, (lo, hi) in found.items()})
    settings = {
        "method": "percentile bootstrap over images",
        "n_resamples": n_resamples,
        "seed": seed,
        "level": level,
        "seconds": round(time.perf_counter() - started, 3),
        "resamples_used": used,
        "unsupported": unsupported,
    }
    return intervals, settings
