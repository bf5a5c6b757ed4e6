"""Regression gate: compare the latest results with ``leaderboards/baselines.yaml`` and name every regression.

A baseline entry::

    - {task: keypoints, dataset: coco-mini, model: heatmap, metric: AP, expected: 0.71, tolerance: 0.02,
       direction: higher, limit: 48}

``direction`` says which way is better; only a move the wrong way by more than ``tolerance`` fails.  ``limit``
(optional) matches runs made with ``--limit`` that many samples, so a CI smoke run is compared with a smoke
baseline and never with the full-dataset number.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import DataError
from harness.reports import latest_records

DEFAULT_BASELINES = Path("leaderboards/baselines.yaml")
REQUIRED = ("task", "dataset", "model", "metric", "expected", "tolerance", "direction")


@dataclass
class Baseline:
    task: str
    dataset: str
    model: str
    metric: str
    expected: float
    tolerance: float
    direction: str
    limit: int | None = None

    def key(self) -> tuple:
        return (self.task, self.dataset, self.model, self.limit)


@dataclass
class Check:
    baseline: Baseline
    actual: float | None
    run_id: str | None

    @property
    def delta(self) -> float | None:
        return None if self.actual is None else self.actual - self.baseline.expected

    @property
    def passed(self) -> bool:
        if self.actual is None or self.actual != self.actual:
            return False
        worse_by = -self.delta if self.baseline.direction == "higher" else self.delta
        return worse_by <= self.baseline.tolerance

    def describe(self) -> str:
        b = self.baseline
        where = f"{b.task}/{b.dataset}/{b.model}{'' if b.limit is None else f' (limit {b.limit})'} {b.metric}"
        if self.actual is None:
            return f"{where}: no result found (run it first)"
        return (f"{where}: {self.actual:.4f} vs expected {b.expected:.4f} "
                f"({self.delta:+.4f}, tolerance {b.tolerance}, {b.direction} is better)")


def load_baselines(path: Path) -> list[Baseline]:
    if not path.is_file():
        raise DataError("baselines file not found", path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DataError(f"malformed YAML: {str(exc).splitlines()[0]}", path) from None
    entries = data.get("baselines") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise DataError("expected a top-level 'baselines' list", path)
    baselines = []
    for index, entry in enumerate(entries):
        missing = [key for key in REQUIRED if not isinstance(entry, dict) or key not in entry]
        if missing:
            raise DataError(f"baselines[{index}]: missing {', '.join(missing)}", path)
        if entry["direction"] not in ("higher", "lower"):
            raise DataError(f"baselines[{index}]: direction must be 'higher' or 'lower'", path)
        baselines.append(Baseline(**{key: entry[key] for key in (*REQUIRED, "limit") if key in entry}))
    return baselines


def run_gate(baselines: list[Baseline], reports_dir: Path) -> list[Check]:
    latest = latest_records(reports_dir)
    checks = []
    for baseline in baselines:
        record: dict[str, Any] | None = latest.get(baseline.key())
        actual = None if record is None else record["metrics"].get(baseline.metric)
        checks.append(Check(baseline, None if actual is None else float(actual), record and record["run_id"]))
    return checks
