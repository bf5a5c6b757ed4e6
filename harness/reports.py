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
from typing import Any, Iterator

from harness.jsonio import atomic_write_json, atomic_write_text
from harness.templating import render

DEFAULT_REPORTS_DIR = Path("reports")


def make_run_id(task: str, dataset: str, model: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    safe = lambda text: re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")  # noqa: E731
    return f"{stamp}_{safe(task)}_{safe(dataset)}_{safe(model)}"


def write_report(run_dir: Path, record: dict[str, Any]) -> None:
    """The report page and ``metrics.json`` (last); the predictions were written by the run's submission format."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "report.html", render("report.html.j2", run=record))
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
        from harness.validation.schemas import RecordView, validate

        validate(RecordView, record, path)  # a parsed record with wrong fields is named, not trusted
        record.setdefault("run_dir", str(path.parent))
        yield record


def latest_records(reports_dir: Path, task: str | None = None) -> dict[tuple, dict[str, Any]]:
    """The newest record per (task, dataset, model, limit)."""
    latest: dict[tuple, dict[str, Any]] = {}
    for record in iter_records(reports_dir):
        if task is not None and record.get("task") != task:
            continue
        key = record_key(record)
        if key not in latest or record["finished_utc"] >= latest[key]["finished_utc"]:
            latest[key] = record
    return latest


def record_key(record: dict[str, Any]) -> tuple:
    return (record["task"], record["dataset"]["name"], record["model"]["name"], record.get("limit"))
