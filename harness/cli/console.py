"""rich output shared by the commands: one console, one progress bar style, the results table."""
from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:  # rich.progress costs ~10 ms of start-up; `bench eval` on COCO files never shows a bar
    from rich.progress import Progress

    from harness.core.run_record import RunRecord  # annotations only: `bench eval` prints no run records


@lru_cache(maxsize=1)
def console() -> Console:
    """The terminal's console; in logs and pipes a 200-column one, where rich's 80-column default would
    squeeze every table into ellipses."""
    terminal = Console()
    return terminal if terminal.is_terminal else Console(width=200)


def progress_bar() -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console(), transient=False)


def results_table(records: list[RunRecord], columns: Sequence[str] = ()) -> Table:
    """One row per record; ``columns`` (the task's leaderboard columns) first, else every metric."""
    if not records:
        return Table(title="no results")
    first = records[0]
    present = [name for name in columns if any(name in record.metrics for record in records)]
    names = present or list(first.metrics)
    protocol = first.protocol
    scored = f", {protocol['name']}" + (f" ({protocol['dialect']} dialect)" if protocol.get("dialect") else "") \
        if protocol.get("name") else ""
    # names come from files and registries: printed literally, never read as rich markup ("[/bold]" in a name)
    table = Table(title=escape(f"{first.task} on {first.dataset.name} ({first.samples} samples{scored})"))
    table.add_column("model", no_wrap=True)
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("img/s", justify="right")
    for record in records:
        values = [_cell(record.metrics.get(name)) for name in names]
        table.add_row(escape(record.model.name), *values, images_per_s(record.throughput))
    return table


def images_per_s(throughput: dict[str, Any]) -> str:
    """The img/s cell: "n/a" when no batch was timed after the warm-up (never "0.0")."""
    rate = throughput.get("images_per_s")
    return "n/a" if rate is None or not throughput.get("reliable", True) else f"{rate:.1f}"


def _cell(value: Any) -> str:
    return "" if value is None else f"{value:.4f}"
