"""``bench gate --paired``: is the new run significantly worse than the baseline run on the same samples?

The plain gate compares a number with a number.  On a small set a real drop and noise look alike; the
paired test resamples the *same* images for both runs (one ``resample_counts`` matrix, ``Metric.resampled``
on each run's re-scored predictions, as for confidence intervals), so the noise shared by both runs cancels
in the per-resample difference.  A check fails only on a significant drop: the observed drop exceeds the
tolerance *and* the paired interval of (new - baseline), in the metric's better direction, lies entirely below
zero.  Resamples where either run has no data (-1, NaN) are left out.

Both runs are re-scored from their written predictions (``bench eval --run``), so the baseline run's report
folder must still exist; ``bench gate --update`` records it in the baseline entry (``run``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.errors import BenchError
from harness.core.metric import resample_counts

DEFAULT_RESAMPLES = 200
DEFAULT_LEVEL = 0.95


@dataclass
class PairedCheck:
    delta: float  # new - baseline on the full set
    low: float  # paired interval of new - baseline
    high: float
    resamples: int  # resamples where both runs had data
    higher_is_better: bool
    tolerance: float

    @property
    def drop(self) -> float:
        return -self.delta if self.higher_is_better else self.delta

    @property
    def significant(self) -> bool:
        """The interval excludes zero on the worse side."""
        return self.high < 0 if self.higher_is_better else self.low > 0

    @property
    def passed(self) -> bool:
        return not (self.drop > self.tolerance and self.significant)

    def describe(self) -> str:
        return (f"paired delta {self.delta:+.4f}, {DEFAULT_LEVEL:.0%} interval [{self.low:+.4f}, {self.high:+.4f}] "
                f"over {self.resamples} resamples, tolerance {self.tolerance}")


def _draws(run_dir: Path, metric: str, counts: np.ndarray) -> tuple[float, np.ndarray, int]:
    from harness.run.submission_eval import score_run_folder

    score = score_run_folder(run_dir)
    value = score.evaluation.result.metrics.get(metric)
    if value is None:
        raise BenchError(f"run {run_dir.name} reports no metric {metric!r}", run_dir)
    for candidate in score.evaluation.metrics:
        try:
            draws = candidate.resampled(counts)
        except NotImplementedError:
            continue
        if metric in draws:
            return float(value), np.asarray(draws[metric], dtype=np.float64), score.evaluation.samples
    raise BenchError(f"metric {metric!r} cannot be resampled, so it cannot be gated --paired", run_dir)


def paired_check(baseline_run: Path, new_run: Path, metric: str, higher_is_better: bool, tolerance: float,
                 resamples: int = DEFAULT_RESAMPLES, seed: int = 0, level: float = DEFAULT_LEVEL) -> PairedCheck:
    from harness.io.jsonio import read_json

    records = [read_json(Path(run) / "metrics.json") for run in (baseline_run, new_run)]
    keys = [(r.get("dataset", {}).get("fingerprint"), r.get("samples"), r.get("limit")) for r in records]
    if keys[0] != keys[1]:
        raise BenchError(f"runs {Path(baseline_run).name} and {Path(new_run).name} scored different samples "
                         f"(dataset fingerprint, samples, limit: {keys[0]} vs {keys[1]}); a paired test needs the same")
    counts = resample_counts(int(records[0]["samples"]), resamples, seed)
    base_value, base, _ = _draws(Path(baseline_run), metric, counts)
    new_value, new, _ = _draws(Path(new_run), metric, counts)
    usable = np.isfinite(base) & np.isfinite(new) & (base != -1.0) & (new != -1.0)
    if not usable.any():
        raise BenchError(f"metric {metric!r}: no resample where both runs have data", new_run)
    difference = new[usable] - base[usable]
    low, high = np.percentile(difference, [50 * (1 - level), 50 * (1 + level)])
    return PairedCheck(new_value - base_value, float(low), float(high), int(usable.sum()), higher_is_better, tolerance)


def run_folder(reports_dir: Path, run: Any) -> Path:
    """The baseline entry's ``run`` (a run id under ``reports_dir`` or a folder path) as a folder with a report."""
    if not isinstance(run, str) or not run:
        raise BenchError("a --paired check needs the baseline entry's 'run' (set by `bench gate --update`)")
    for folder in (Path(reports_dir) / run, Path(run)):
        if (folder / "metrics.json").is_file():
            return folder
    raise BenchError(f"baseline run {run!r} has no report folder with metrics.json under {reports_dir}")
