"""A run's report folder: ``reports/<run-id>/{metrics.json, report.html}`` plus the predictions in the dataset's
official submission format (``predictions.json`` for COCO, ``predictions/`` for file-per-image formats).

``metrics.json`` is the record of truth (leaderboards and gates are rebuilt from it); it is written last and
atomically, so a folder without it is an interrupted run, never a half-written result.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from harness.core.run_record import RunRecord
from harness.io.jsonio import atomic_write_json, atomic_write_text
from harness.publish.templating import render

DEFAULT_REPORTS_DIR = Path("reports")


def make_run_id(task: str, dataset: str, model: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    safe = lambda text: re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")  # noqa: E731
    return f"{stamp}_{safe(task)}_{safe(dataset)}_{safe(model)}"


def write_report(run_dir: Path, record: dict[str, Any] | RunRecord, pictures: Any = None) -> None:
    """The report page and ``metrics.json`` (last); the predictions were written by the run's submission format.

    ``pictures`` (``harness.publish.pictures.build.Pictures``) adds the charts, error analysis and gallery.
    """
    from harness.publish.pictures.view import report_view

    if isinstance(record, RunRecord):
        record = record.to_dict()
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "report.html", render("report.html.j2", run=record, view=report_view(record),
                                                      pictures=pictures))
    atomic_write_json(run_dir / "metrics.json", record)


def iter_records(reports_dir: Path) -> Iterator[dict[str, Any]]:
    """Every finished run's metrics.json under ``reports_dir``, oldest first."""
    if not reports_dir.is_dir():
        return
    for path in sorted(reports_dir.glob("*/metrics.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            continue  # unreadable leftovers are not results; `bench` never writes them half-way
        RunRecord.from_dict(record, path)  # a readable file with a malformed field is an error naming both
        record.setdefault("run_dir", str(path.parent))
        yield record


def iter_run_records(reports_dir: Path) -> Iterator[RunRecord]:
    """Every finished run under ``reports_dir``, oldest first, typed (``run_dir`` is in ``extra``)."""
    for record in iter_records(reports_dir):
        yield RunRecord.from_dict(record, Path(record["run_dir"]) / "metrics.json")


def latest_records(reports_dir: Path, task: str | None = None, key: Any = None) -> dict[tuple, dict[str, Any]]:
    """The newest record per (task, dataset, model, limit), or per ``key(record)``."""
    key_of = key or record_key
    latest: dict[tuple, dict[str, Any]] = {}
    for record in iter_records(reports_dir):
        if task is not None and record.get("task") != task:
            continue
        key = key_of(record)
        if key not in latest or record["finished_utc"] >= latest[key]["finished_utc"]:
            latest[key] = record
    return latest


def record_key(record: dict[str, Any]) -> tuple:
    return (record["task"], record["dataset"]["name"], record["model"]["name"], record.get("limit"))


def named_record_key(record: dict[str, Any]) -> tuple:
    """``record_key`` plus the run's ``--name`` and identity: runs of one model under different names, with
    another checkpoint, on another copy of the data or with other model arguments are different rows."""
    from harness.publish.identity import identity_of

    return (*record_key(record), record.get("name"), identity_of(record).key)


def latest_run_records(reports_dir: Path, task: str | None = None,
                       key: Callable[[RunRecord], tuple] | None = None) -> dict[tuple, RunRecord]:
    """``latest_records``, typed: the newest ``RunRecord`` per (task, dataset, model, limit), or per ``key``."""
    key_of = key or run_key
    latest: dict[tuple, RunRecord] = {}
    for record in iter_run_records(reports_dir):
        if task is not None and record.task != task:
            continue
        found = key_of(record)
        if found not in latest or record.finished_utc >= latest[found].finished_utc:
            latest[found] = record
    return latest


def run_key(record: RunRecord) -> tuple:
    """``record_key`` of a typed record."""
    return (record.task, record.dataset.name, record.model.name, record.limit)


def named_run_key(record: RunRecord) -> tuple:
    """``named_record_key`` of a typed record."""
    from harness.publish.identity import identity_of

    return (*run_key(record), record.extra.get("name"), identity_of(record).key)
