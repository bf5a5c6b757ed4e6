"""Per-task leaderboards (``leaderboards/<task>.csv`` and ``.html``): one row per model x dataset, latest run.

Only full runs enter a leaderboard: a ``--limit`` smoke run scores a different subset, and mixing the two in one
table would compare numbers that are not comparable.  A row is one (dataset, protocol, model, identity): the
identity (``harness.publish.identity``) is '' for a model's official run and a hash of what differs otherwise
(the user's checkpoint, another copy of the data, model arguments, a label map), so such a run gets its own row
and never replaces the official one.  The checkpoint digest, data and conditions are columns of every row.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from harness.core.run_record import RunRecord
from harness.io.jsonio import atomic_write_text
from harness.publish.identity import IDENTITY_COLUMNS, identity_of
from harness.publish.provenance import utc_now
from harness.publish.templating import render
from harness.io.locks import locked, race_window

DEFAULT_LEADERBOARD_DIR = Path("leaderboards")
KEY_COLUMNS = ["dataset", "protocol", "model", "identity"]
TEXT_COLUMNS = ["dataset", "protocol", "model", *IDENTITY_COLUMNS, "headline", "run_id", "finished_utc", "git_sha",
                "device"]
THROUGHPUT_COLUMNS = ["images_per_s", "latency_p50_ms"]
#: kept in the CSV, left out of the page (the run id and device are in each run's report; the rest is a heading)
HTML_HIDDEN = ("dataset", "protocol", "identity", "headline", "headline_higher", "run_id", "device")
#: page headings of columns whose CSV names are for programs
HTML_HEADINGS = {"images_per_s": "img/s", "latency_p50_ms": "p50 ms", "finished_utc": "finished (UTC)",
                 "git_sha": "commit"}
TRAILING_COLUMNS = ["samples", "published", "headline", "headline_higher", "run_id", "finished_utc", "git_sha", "device"]


def protocol_key(record: dict[str, Any] | RunRecord) -> str:
    """The protocol and metric-code version a record was scored under ('' for records from before versions)."""
    return (record if isinstance(record, RunRecord) else RunRecord.from_dict(record)).protocol_key


def row_from_record(record: dict[str, Any] | RunRecord, metric_columns: tuple[str, ...], headline: str = "",
                    headline_higher: bool = True) -> dict[str, Any]:
    run = record if isinstance(record, RunRecord) else RunRecord.from_dict(record)
    identity = identity_of(run.to_dict())
    row: dict[str, Any] = {"dataset": run.dataset.name, "protocol": run.protocol_key, "model": run.model.name,
                           "identity": identity.key, **identity.columns()}
    for column in metric_columns:
        row[column] = run.metrics.get(column)
    for column in THROUGHPUT_COLUMNS:  # not published when no warm-up batch could be excluded
        row[column] = run.throughput.get(column) if run.throughput.get("reliable", True) else None
    row["samples"] = run.samples
    # the model zoo's number for the headline, beside the one this run measured (empty when none is)
    row["published"] = (run.model.published or {}).get(headline)
    row["headline"] = headline
    row["headline_higher"] = bool(headline_higher)
    row["run_id"] = run.run_id
    row["finished_utc"] = run.finished_utc
    row["git_sha"] = (run.provenance.get("git_sha") or "")[:10]
    row["device"] = run.provenance.get("device", "")
    return row


def update_leaderboard(
    directory: Path, task_name: str, record: dict[str, Any], metric_columns: tuple[str, ...], headline: str,
    headline_higher: bool,
) -> Path:
    """Insert or replace the record's (dataset, protocol, model) row, then rewrite CSV and HTML atomically.

    Rows scored under another protocol version stay, in a table of their own: numbers from two versions of a
    protocol are never ranked against each other.
    """
    csv_path = directory / f"{task_name}.csv"
    with locked(csv_path):  # read-modify-write: without the lock, concurrent runs lose each other's rows
        return _update_locked(directory, task_name, csv_path, record, metric_columns, headline, headline_higher)


def _update_locked(directory: Path, task_name: str, csv_path: Path, record: dict[str, Any],
                   metric_columns: tuple[str, ...], headline: str, headline_higher: bool) -> Path:
    new_row = pd.DataFrame([row_from_record(record, metric_columns, headline, headline_higher)])
    if csv_path.is_file():
        table = pd.read_csv(csv_path, dtype={"git_sha": str, "protocol": str, "headline": str, "identity": str,
                                             **{c: str for c in IDENTITY_COLUMNS}},
                            keep_default_na=False, na_values=[""])
        for column in ("protocol", "headline", "identity"):  # tables written before these columns: official rows
            if column not in table:
                table[column] = ""
        table["protocol"] = table["protocol"].fillna("")
        table["identity"] = table["identity"].fillna("")
        same = ((table["dataset"] == new_row.at[0, "dataset"]) & (table["model"] == new_row.at[0, "model"])
                & (table["protocol"] == new_row.at[0, "protocol"]) & (table["identity"] == new_row.at[0, "identity"]))
        table = pd.concat([table[~same], new_row], ignore_index=True)
    else:
        table = new_row
    fixed = KEY_COLUMNS + list(IDENTITY_COLUMNS) + THROUGHPUT_COLUMNS + TRAILING_COLUMNS
    known = [c for c in table.columns if c not in fixed]
    metrics = list(metric_columns) + [c for c in known if c not in metric_columns]
    table = table.reindex(columns=KEY_COLUMNS + list(IDENTITY_COLUMNS) + metrics + THROUGHPUT_COLUMNS
                          + TRAILING_COLUMNS)
    race_window()
    write_leaderboard(directory, task_name, sort_groups(table))
    return csv_path


def sort_groups(table: pd.DataFrame) -> pd.DataFrame:
    """Rows grouped by (dataset, protocol), each group ranked by its own headline in its own direction."""
    parts = []
    for _, group in table.groupby(["dataset", "protocol"], sort=True, dropna=False):
        headline = next((h for h in group["headline"] if isinstance(h, str) and h in group.columns), None)
        if headline is None:
            parts.append(group.sort_values("model", kind="mergesort"))
            continue
        higher = bool(group["headline_higher"].iloc[-1]) if "headline_higher" in group else True
        parts.append(group.sort_values([headline, "model"], ascending=[not higher, True], kind="mergesort",
                                       na_position="last"))
    return pd.concat(parts, ignore_index=True) if parts else table


def write_leaderboard(directory: Path, task_name: str, table: pd.DataFrame) -> None:
    atomic_write_text(directory / f"{task_name}.csv", table.to_csv(index=False, float_format="%.6f"))
    groups = []
    for (dataset, protocol), group in table.groupby(["dataset", "protocol"], sort=False, dropna=False):
        # a column no row fills (or COCO's -1 "no such objects" everywhere) says nothing on the page
        columns = [c for c in table.columns if c not in HTML_HIDDEN and not group[c].isna().all()
                   and not (group[c] == -1).all()]
        rows = [{key: (None if pd.isna(value) else value) for key, value in row.items()}
                for row in group.to_dict("records")]
        headline = rows[0].get("headline") or ""
        groups.append({"dataset": dataset, "protocol": protocol, "headline": headline,
                       "higher": bool(rows[0].get("headline_higher", True)), "columns": columns, "rows": rows})
    html = render("leaderboard.html.j2", task=task_name, groups=groups, text_columns=TEXT_COLUMNS, generated=utc_now(),
                  headings=HTML_HEADINGS)
    atomic_write_text(directory / f"{task_name}.html", html)
