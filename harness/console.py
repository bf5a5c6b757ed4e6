"""rich output shared by the commands: one console, one progress bar style, the results table."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


@lru_cache(maxsize=1)
def console() -> Console:
    return Console()


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console(), transient=False)


def results_table(records: list[dict[str, Any]], max_metrics: int = 10) -> Table:
    if not records:
        return Table(title="no results")
    names = list(records[0]["metrics"])[:max_metrics]
    first = records[0]
    table = Table(title=f"{first['task']} on {first['dataset']['name']} ({first['samples']} samples)")
    table.add_column("model")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("img/s", justify="right")
    for record in records:
        values = [f"{record['metrics'].get(name, float('nan')):.4f}" for name in names]
        table.add_row(record["model"]["name"], *values, f"{record['throughput'].get('images_per_s', 0):.1f}")
    return table
