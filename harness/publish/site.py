"""``bench site``: a static leaderboard site built from every report (metrics.json), readable offline.

Pages: ``index.html`` (every task, its best models, the throughput table), one ``<task>.html`` per task
(sortable tables per dataset and sample limit, confidence intervals, per-class breakdowns, curves, accuracy vs
throughput), ``<task>.csv`` with the same rows, and ``runs/<run-id>.html`` copies of each run's report.  Pages
carry their own CSS, JavaScript and SVG, so the folder works from ``file://`` or any static host, no network.

Rows are the latest run per (dataset, model, limit); runs with different ``--limit`` are never ranked together.

Curves (``MetricResult.curves``) are drawn when an entry is ``{"recall": [...], "precision": [...]}`` or
``{"x": [...], "y": [...], "xlabel": ..., "ylabel": ...}``, or a mapping of such entries (one line each).
"""
from __future__ import annotations

import math
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.core.run_record import RunRecord
from harness.io.jsonio import atomic_write_text
from harness.publish.provenance import utc_now
from harness.publish.reports import latest_run_records, named_run_key
from harness.publish.svgplot import PALETTE, line_chart, scatter_chart
from harness.publish.templating import render


@dataclass
class TaskMeta:
    name: str
    headline: str
    columns: list[str]
    higher: dict[str, bool]


@dataclass
class Board:
    """The comparable runs of one task: same dataset, same sample limit."""

    dataset: str
    limit: int | None
    records: list[RunRecord]
    slug: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def title(self) -> str:
        return self.dataset if self.limit is None else f"{self.dataset} · first {self.limit} samples (smoke runs)"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-") or "x"


def task_meta(task: str, records: list[RunRecord]) -> TaskMeta:
    """Headline and columns from the registered task; from the records when the task is not installed here."""
    higher: dict[str, bool] = {}
    seen: list[str] = []
    for record in records:
        higher.update(record.higher_is_better)
        seen += [name for name in record.metrics if name not in seen]
    try:
        from harness.tasks import get_task

        entry = get_task(task)
        columns = [name for name in (entry.headline, *entry.leaderboard_columns) if name in seen]
        headline = entry.headline if entry.headline in seen else (columns or seen or [""])[0]
        for name in seen:
            higher.setdefault(name, entry.higher_is_better(name))
    except Exception:  # a report from a task this install does not have: still show it
        columns, headline = [], (seen or [""])[0]
    columns = list(dict.fromkeys(columns or seen[:12]))
    return TaskMeta(task, headline, columns, higher)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def display_name(record: RunRecord) -> str:
    """The model, and the run's ``--name`` when it has one: ``heatmap [lr-0.1]``."""
    from harness.publish.identity import identity_of

    name = record.model.name
    identity = identity_of(record)
    if not identity.official:  # another checkpoint / data copy / arguments: never the official model's row name
        name = f"{name} ({identity.label})"
    return f"{name} [{record.run_name}]" if record.run_name else name


def board_rows(board: Board, meta: TaskMeta) -> list[dict[str, Any]]:
    from harness.publish.identity import identity_of

    rows = []
    for record in board.records:
        row: dict[str, Any] = {"task": meta.name, "dataset": board.dataset, "limit": board.limit,
                               "model": display_name(record)}
        for name in meta.columns:
            row[name] = _number(record.metrics.get(name))
            interval = record.confidence.get(name)
            row[f"{name}_ci_low"] = None if interval is None else _number(interval[0])
            row[f"{name}_ci_high"] = None if interval is None else _number(interval[1])
        row["images_per_s"] = _number(record.throughput.get("images_per_s"))
        row["latency_p50_ms"] = _number(record.throughput.get("latency_p50_ms"))
        row["samples"] = record.samples
        identity = identity_of(record)
        row.update(identity.columns())  # checkpoint digest, data copy, score conditions
        row["official"] = identity.official  # the shipped weights: the name says the file, the row shows its digest
        row["run_id"] = record.run_id
        row["finished_utc"] = record.finished_utc
        row["git_sha"] = (record.provenance.get("git_sha") or "")[:10]
        rows.append(row)
    higher = meta.higher.get(meta.headline, True)
    rows.sort(key=lambda r: (r[meta.headline] is None, -(r[meta.headline] or 0) if higher else (r[meta.headline] or 0), r["model"]))
    return rows


def curve_series(curves: dict[str, Any]) -> dict[str, list[tuple[str, list[float], list[float], str, str, bool]]]:
    """{curve name: [(sub-label, xs, ys, xlabel, ylabel, is_pr)]} from one record's curves; unknown shapes skipped."""
    found: dict[str, list] = {}

    def one(entry: Any) -> tuple | None:
        if not isinstance(entry, dict):
            return None
        if "recall" in entry and "precision" in entry:
            xs, ys, xlabel, ylabel, pr = entry["recall"], entry["precision"], "recall", "precision", True
        elif "x" in entry and "y" in entry:
            xs, ys = entry["x"], entry["y"]
            xlabel, ylabel, pr = str(entry.get("xlabel", "x")), str(entry.get("ylabel", "y")), False
        else:
            return None
        if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys) or not xs:
            return None
        try:
            return [float(v) for v in xs], [float(v) for v in ys], xlabel, ylabel, pr
        except (TypeError, ValueError):
            return None

    for name, entry in (curves or {}).items():
        single = one(entry)
        if single is not None:
            found[name] = [("", *single)]
        elif isinstance(entry, dict):
            lines = [(str(sub), *parsed) for sub, value in entry.items() if (parsed := one(value)) is not None]
            if lines:
                found[name] = lines
    return found


def board_charts(board: Board, meta: TaskMeta, colours: dict[str, str], site_dir: Path | None = None
                 ) -> dict[str, Any]:
    """Per-class tables and the charts of one board; with ``site_dir`` the charts are matplotlib PNGs under
    ``charts/`` (``harness.publish.site_charts``), else the inline SVG of ``harness.publish.svgplot``."""
    per_class: dict[str, dict[str, dict[str, float | None]]] = {}
    for record in board.records:
        for metric, table in record.per_class.items():
            if isinstance(table, dict):
                for cls, value in table.items():
                    per_class.setdefault(metric, {}).setdefault(str(cls), {})[display_name(record)] = _number(value)
    curves: dict[str, list] = {}
    for record in board.records:
        for name, lines in curve_series(record.curves).items():
            for sub, xs, ys, xlabel, ylabel, pr in lines:
                label = display_name(record) + (f" · {sub}" if sub else "")
                curves.setdefault(name, []).append((label, xs, ys, xlabel, ylabel, pr))
    models = [row["model"] for row in board.rows]
    if site_dir is not None:
        from harness.publish.site_charts import line_chart_png, scatter_chart_png

        charts_dir = Path(site_dir) / "charts"
        charts_dir.mkdir(parents=True, exist_ok=True)
        stem = f"{slug(meta.name)}-{board.slug}"
        curve_imgs = [
            line_chart_png([(label, xs, ys) for label, xs, ys, *_ in lines],
                           title=("precision-recall" + (f" ({name})" if name != "pr" else "")) if all(
                               line[5] for line in lines) else name, xlabel=lines[0][3],
                           ylabel=lines[0][4], unit_square=all(line[5] for line in lines), colours=colours,
                           path=charts_dir / f"{stem}-{slug(name)}.png", site_dir=Path(site_dir))
            for name, lines in curves.items()
        ]
        scatter = scatter_chart_png(
            [(row["model"], row["images_per_s"], row[meta.headline]) for row in board.rows],
            title=f"{meta.headline} vs throughput", xlabel="images/s", ylabel=meta.headline, colours=colours,
            path=charts_dir / f"{stem}-speed.png", site_dir=Path(site_dir),
            higher_is_better=meta.higher.get(meta.headline, True))
        return {"per_class": per_class, "curves": curve_imgs, "scatter": scatter, "models": models}
    curve_svgs = [
        line_chart([(label, xs, ys) for label, xs, ys, *_ in lines], title=name, xlabel=lines[0][3],
                   ylabel=lines[0][4], unit_square=all(line[5] for line in lines), colours=colours)
        for name, lines in curves.items()
    ]
    scatter = scatter_chart([(row["model"], row["images_per_s"], row[meta.headline]) for row in board.rows],
                            title=f"{meta.headline} vs throughput", xlabel="images/s", ylabel=meta.headline,
                            colours=colours)
    return {"per_class": per_class, "curves": curve_svgs, "scatter": scatter, "models": models}


def build_site(reports_dir: Path, out_dir: Path, leaderboards_dir: Path | None = None) -> dict[str, Any]:
    """Write the site; returns {task: number of rows} for the command's summary."""
    out_dir = Path(out_dir)
    records = list(latest_run_records(Path(reports_dir), key=named_run_key).values())
    by_task: dict[str, list[RunRecord]] = {}
    for record in records:
        by_task.setdefault(record.task, []).append(record)
    generated = utc_now()
    summary: dict[str, Any] = {}
    index_tasks = []
    (out_dir / "runs").mkdir(parents=True, exist_ok=True)
    for task in sorted(by_task):
        meta = task_meta(task, by_task[task])
        groups: dict[tuple, list] = {}
        for record in by_task[task]:
            groups.setdefault((record.dataset.name, record.limit), []).append(record)
        boards = []
        for (dataset, limit), members in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1] is not None, item[0][1] or 0)):
            board = Board(dataset, limit, members, slug=slug(f"{dataset}-{'full' if limit is None else limit}"))
            board.rows = board_rows(board, meta)
            boards.append(board)
        rows = [row for board in boards for row in board.rows]
        csv_name = f"{slug(task)}.csv"
        table = pd.DataFrame(rows)
        table["limit"] = table["limit"].astype("Int64")  # blank for full runs, never "20.0"
        atomic_write_text(out_dir / csv_name, table.to_csv(index=False))
        names = sorted({row["model"] for row in rows})
        from harness.publish.site_charts import model_colours

        colours = model_colours(names)  # one distinct colour per model, page-wide
        pages = [{"board": board, "charts": board_charts(board, meta, colours, out_dir)} for board in boards]
        atomic_write_text(out_dir / f"{slug(task)}.html", render(
            "site_task.html.j2", meta=meta, pages=pages, csv_name=csv_name, generated=generated,
            script=SORT_SCRIPT, style=STYLE))
        for record in by_task[task]:
            _copy_run_page(record, out_dir / "runs")
        index_tasks.append({"meta": meta, "page": f"{slug(task)}.html", "csv": csv_name,
                            "boards": [{"title": b.title, "best": b.rows[0] if b.rows else None, "count": len(b.rows)} for b in boards]})
        summary[task] = len(rows)
    throughput = _throughput_table(leaderboards_dir)
    atomic_write_text(out_dir / "index.html", render(
        "site_index.html.j2", tasks=index_tasks, generated=generated, throughput=throughput, script=SORT_SCRIPT,
        style=STYLE))
    return summary


RUN_ASSETS = ("pictures", "per_image.csv", "per_image.parquet")


def _copy_run_page(record: RunRecord, runs_dir: Path) -> None:
    """``runs/<run-id>/report.html`` with the pictures and per-image table it links to (relative paths); a run
    without its page gets one rendered from its metrics.json as stored (the template reads the JSON object)."""
    import json

    from harness.publish.pictures.view import report_view

    run_dir = record.run_dir or Path("")
    target = runs_dir / slug(record.run_id)
    target.mkdir(parents=True, exist_ok=True)
    if (run_dir / "report.html").is_file():
        shutil.copyfile(run_dir / "report.html", target / "report.html")
        for name in RUN_ASSETS:
            if (run_dir / name).is_dir():
                shutil.copytree(run_dir / name, target / name, dirs_exist_ok=True)
            elif (run_dir / name).is_file():
                shutil.copyfile(run_dir / name, target / name)
    else:
        stored = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        stored.setdefault("run_dir", str(run_dir))
        atomic_write_text(target / "report.html", render("report.html.j2", run=stored, view=report_view(stored),
                                                         pictures=None))


def _throughput_table(leaderboards_dir: Path | None) -> dict[str, Any] | None:
    if leaderboards_dir is None or not (Path(leaderboards_dir) / "throughput.csv").is_file():
        return None
    from harness.io.validation.tables import read_csv

    table = read_csv(Path(leaderboards_dir) / "throughput.csv", required=("task", "model"),
                     numeric=("batch_size", "images_per_s"))
    for column in table.columns:
        if pd.api.types.is_float_dtype(table[column]):
            # 11,410 rather than 1.141e+04; integers stored as floats by pandas print as integers
            table[column] = table[column].map(lambda v: "" if pd.isna(v) else f"{v:,.0f}" if float(v).is_integer()
                                              or abs(v) >= 100 else f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}")
    table = table.astype(str).replace({"nan": "", "<NA>": ""})
    columns = [c for c in ("task", "model", "mode", "device_name", "precision", "channels_last", "compile", "batch_size",
                           "effective_batch_size", "images_per_s", "latency_p50_ms", "latency_p99_ms", "peak_memory_mb",
                           "parameters", "gflops_per_image") if c in table.columns]
    # a column with one value in every row is said once above the table instead of repeated (the table fits)
    constant = {c: table[c].iloc[0] for c in columns if c not in ("task", "model", "images_per_s")
                and len(table) > 1 and table[c].nunique() == 1}
    columns = [c for c in columns if c not in constant]
    return {"columns": columns, "rows": table[columns].to_dict("records"),
            "constant": {k.replace("_", " "): v for k, v in constant.items() if v != ""}}


STYLE = """
table.sortable th { cursor: pointer; user-select: none; white-space: nowrap; }
table.sortable th[data-sort=asc]::after { content: " \\25B2"; }
table.sortable th[data-sort=desc]::after { content: " \\25BC"; }
td .ci { color: #777; font-size: .8rem; display: block; }
td .ci.identity { white-space: normal; overflow-wrap: anywhere; max-width: 11rem; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; }
.chart { border: 1px solid #ddd; background: #fafafa; }
nav a { margin-right: 1rem; }
section.board { margin-bottom: 2.5rem; }
#throughput th { white-space: normal; min-width: 3.5rem; }
#throughput td.text { max-width: 14rem; overflow-wrap: anywhere; }
img.chart { max-width: 100%; height: auto; }
"""

SORT_SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, column) {
    th.addEventListener('click', function () {
      var ascending = th.getAttribute('data-sort') !== 'asc';
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('data-sort'); });
      th.setAttribute('data-sort', ascending ? 'asc' : 'desc');
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var cell = row.cells[column];
        var raw = cell.hasAttribute('data-value') ? cell.getAttribute('data-value') : cell.textContent.trim();
        var number = parseFloat(raw);
        return raw === '' ? null : (isNaN(number) || !/^[-+0-9.eE]+$/.test(raw) ? raw.toLowerCase() : number);
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null || y === null) { return x === null ? (y === null ? 0 : 1) : -1; }
        if (x < y) { return ascending ? -1 : 1; }
        if (x > y) { return ascending ? 1 : -1; }
        return 0;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""
