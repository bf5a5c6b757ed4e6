"""Per-task leaderboards (``leaderboards/<task>.csv`` and ``.html``): one row per model x dataset, latest run.

Only full runs enter a leaderboard: a ``--limit`` smoke run scores a different subset, and mixing the two in one
table would compare numbers that are not comparable.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from harness.jsonio import atomic_write_text
from harness.provenance import utc_now
from harness.templating import render

DEFAULT_LEADERBOARD_DIR = Path("leaderboards")
KEY_COLUMNS = ["dataset", "model"]
TEXT_COLUMNS = ["dataset", "model", "run_id", "finished_utc", "git_sha", "device"]
THROUGHPUT_COLUMNS = ["images_per_s", "latency_p50_ms"]


def row_from_record(record: dict[str, Any], metric_columns: tuple[str, ...]) -> dict[str, Any]:
    row: dict[str, Any] = {"dataset": record["dataset"]["name"], "model": record["model"]["name"]}
    for column in metric_columns:
        row[column] = record["metrics"].get(column)
    for column in THROUGHPUT_COLUMNS:
        row[column] = record["throughput"].get(column)
    row["samples"] = record["samples"]
    row["run_id"] = record["run_id"]
    row["finished_utc"] = record["finished_utc"]
    row["git_sha"] = (record["provenance"].get("git_sha") or "")[:10]
    row["device"] = record["provenance"].get("device", "")
    return row


def update_leaderboard(
    directory: Path, task_name: str, record: dict[str, Any], metric_columns: tuple[str, ...], headline: str,
    headline_higher: bool,
) -> Path:
    """Insert or replace the record's (dataset, model) row, then rewrite CSV and HTML atomically."""
    csv_path = directory / f"{task_name}.csv"
    new_row = pd.DataFrame([row_from_record(record, metric_columns)])
    if csv_path.is_file():
        table = pd.read_csv(csv_path, dtype={"git_sha": str})
        same = (table["dataset"] == new_row.at[0, "dataset"]) & (table["model"] == new_row.at[0, "model"])
        table = pd.concat([table[~same], new_row], ignore_index=True)
    else:
        table = new_row
    columns = KEY_COLUMNS + list(metric_columns) + THROUGHPUT_COLUMNS + ["samples", "run_id", "finished_utc", "git_sha", "device"]
    table = table.reindex(columns=columns)
    table = table.sort_values(["dataset", headline], ascending=[True, not headline_higher], kind="mergesort")
    write_leaderboard(directory, task_name, table, headline, headline_higher)
    return csv_path


def write_leaderboard(directory: Path, task_name: str, table: pd.DataFrame, headline: str, headline_higher: bool) -> None:
    atomic_write_text(directory / f"{task_name}.csv", table.to_csv(index=False, float_format="%.6f"))
    rows = [{key: (None if pd.isna(value) else value) for key, value in row.items()} for row in table.to_dict("records")]
    html = render(
        "leaderboard.html.j2", task=task_name, headline=headline, headline_higher=headline_higher,
        columns=list(table.columns), text_columns=TEXT_COLUMNS, rows=rows, generated=utc_now(),
    )
    atomic_write_text(directory / f"{task_name}.html", html)
