"""Regression gate: compare the latest results with ``leaderboards/baselines.yaml`` and name every regression.

A baseline entry::

    - {task: keypoints, dataset: coco-mini, model: heatmap, metric: AP, expected: 0.71, tolerance: 0.02,
       direction: higher, limit: 48}

``direction`` says which way is better; a move the wrong way by more than ``tolerance`` fails.  The run's
bootstrap interval (``confidence`` in metrics.json) is shown beside it but never widens the allowed drop: a wide
interval on a small set would otherwise let large regressions through (issue 11: a 0.01 tolerance became an
allowed AP drop of 0.54).  ``class: NAME`` gates one class of a per-class metric (``per_class`` in
metrics.json).  The file is validated by ``harness.io.validation.schemas.BaselinesFile``: unknown (misspelt) keys,
negative tolerances and non-numbers are one-line errors.  ``limit`` (optional) matches runs made with
``--limit`` that many samples, so a CI smoke run is compared with a smoke baseline and never with the
full-dataset number.

``protocol`` is the version key of the protocol and metric code the expected value was measured under
(``metrics.json`` ``protocol.key``): a result scored under another key is not compared at all and fails, naming
both keys, because a changed protocol moves numbers without the model changing.

Baselines change only through ``bench gate --update``, which rewrites ``expected`` and ``protocol`` from the latest
results and keeps every other field (tolerances, directions, limits) and the file's leading comment.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.core.run_record import RunRecord
from harness.core.errors import DataError
from harness.io.jsonio import atomic_write_text
from harness.publish.reports import latest_records, record_key
from harness.io.yamlio import read_yaml
from harness.io.locks import locked, race_window

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
    protocol: str | None = None
    #: gate one class of a per-class metric (YAML key ``class``)
    class_name: str | None = None
    #: the run ``expected`` was taken from (for ``bench gate --paired``)
    run: str | None = None

    def key(self) -> tuple:
        return (self.task, self.dataset, self.model, self.limit)


@dataclass
class Check:
    baseline: Baseline
    actual: float | None
    run_id: str | None
    confidence: tuple[float, float] | None = None
    #: the protocol version key of the result found
    protocol: str | None = None

    @property
    def comparable(self) -> bool:
        return self.actual is None or (self.baseline.protocol is not None and self.protocol == self.baseline.protocol)

    @property
    def delta(self) -> float | None:
        return None if self.actual is None else self.actual - self.baseline.expected

    @property
    def half_width(self) -> float | None:
        return None if self.confidence is None else (self.confidence[1] - self.confidence[0]) / 2.0

    @property
    def allowed(self) -> float:
        """The drop tolerated: the baseline's tolerance (the interval is evidence to show, never a licence)."""
        return self.baseline.tolerance

    @property
    def passed(self) -> bool:
        if self.actual is None or self.actual != self.actual or not self.comparable:
            return False
        delta = self.delta
        assert delta is not None  # actual is a number here
        worse_by = -delta if self.baseline.direction == "higher" else delta
        return worse_by <= self.allowed

    def describe(self) -> str:
        b = self.baseline
        where = f"{b.task}/{b.dataset}/{b.model}{'' if b.limit is None else f' (limit {b.limit})'} {b.metric}"
        if b.class_name is not None:
            where += f"[{b.class_name}]"
        if self.actual is None:
            return f"{where}: no result found (run it first)"
        if not self.comparable:
            return (f"{where}: result scored under protocol {self.protocol or 'unversioned'}, baseline under "
                    f"{b.protocol or 'unversioned'}: not comparable (re-baseline with `bench gate --update` "
                    "if the protocol change is intended)")
        ci = "" if self.half_width is None else f", CI half-width {self.half_width:.4f}"
        return (f"{where}: {self.actual:.4f} vs expected {b.expected:.4f} "
                f"({self.delta:+.4f}, tolerance {b.tolerance}{ci}, {b.direction} is better)")


def _read_entries(path: Path) -> tuple[dict, list]:
    data = read_yaml(path, "baselines file")
    entries = data.get("baselines") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise DataError("expected a top-level 'baselines' list", path)
    return data, entries


def load_baselines(path: Path) -> list[Baseline]:
    from harness.io.validation.schemas import BaselinesFile, validate

    data, _ = _read_entries(path)
    parsed = validate(BaselinesFile, data, path)
    return [Baseline(**entry.model_dump(exclude={"class_name"}), class_name=entry.class_name)
            for entry in parsed.baselines]


def run_gate(baselines: list[Baseline], reports_dir: Path) -> list[Check]:
    from harness.publish.identity import identity_of

    # a run with the user's weights instead of the shipped ones, or with model arguments, is not the model the
    # baseline names: it never stands in for it (``harness.publish.identity``)
    latest = {key[:-1]: record for key, record in
              latest_records(reports_dir, key=lambda r: (*record_key(r), identity_of(r).gated)).items() if key[-1]}
    checks = []
    for baseline in baselines:
        found: dict[str, Any] | None = latest.get(baseline.key())
        run = None if found is None else RunRecord.from_dict(found, Path(found["run_dir"]) / "metrics.json")
        if run is None:
            checks.append(Check(baseline, None, None, None, None))
            continue
        if baseline.class_name is None:
            actual, interval = run.metric(baseline.metric), run.interval(baseline.metric)
        else:
            classes = run.per_class.get(baseline.metric) or {}
            value = classes.get(baseline.class_name) if isinstance(classes, dict) else None
            actual = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
            interval = None
        checks.append(Check(baseline, actual, run.run_id, interval, run.protocol.get("key")))
    return checks


@dataclass
class Update:
    baseline: Baseline
    new: float | None  # None: no result found, entry left as it was


def update_baselines(path: Path, reports_dir: Path) -> list[Update]:
    """Rewrite ``expected`` of every entry that has a latest result; everything else stays as written.

    Under a lock on the baselines file: two concurrent updates would otherwise each write back their own read.
    """
    with locked(path):
        return _update_locked(path, reports_dir)


def _update_locked(path: Path, reports_dir: Path) -> list[Update]:
    data, entries = _read_entries(path)
    baselines = load_baselines(path)
    checks = run_gate(baselines, reports_dir)
    updates = []
    for entry, check in zip(entries, checks):
        if check.actual is not None and check.actual == check.actual:
            entry["expected"] = float(check.actual)
            entry["protocol"] = check.protocol
            entry["run"] = check.run_id
        updates.append(Update(check.baseline, entry["expected"] if check.actual is not None else None))
    text = path.read_text(encoding="utf-8")
    header = "".join(line for line in _leading_comments(text))
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=200)
    race_window()
    atomic_write_text(path, header + body)
    return updates


def _leading_comments(text: str) -> list[str]:
    lines = []
    for line in text.splitlines(keepends=True):
        if line.startswith("#") or not line.strip():
            lines.append(line if line.endswith("\n") else line + "\n")
        else:
            break
    return lines
