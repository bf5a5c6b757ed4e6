"""``bench models list``, ``bench metrics list``, ``bench tasks list``: what this installation can run."""
from __future__ import annotations

import json

import click

from harness.cli import main


def _print(rows: list[dict], columns: list[str], title: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    from rich.table import Table

    from harness.cli.console import console

    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right" if column == "parameters" else "left", overflow="fold")
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            if column == "parameters":
                value = "" if value is None else f"{value:,}"
            elif isinstance(value, list):
                value = ", ".join(map(str, value))
            elif isinstance(value, bool):
                value = "yes" if value else ""
            cells.append(str(value))
        table.add_row(*cells)
    console().print(table)


@main.group("models")
def models_group() -> None:
    """Registered models."""


@models_group.command("list")
@click.option("--task", default=None, help="Only this task's models.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def models_list(task, as_json) -> None:
    """Each model's task, source, parameters and whether its weights are here (no network is built)."""
    from harness.publish.discovery import list_models

    if task is not None:
        from harness.tasks import TASKS

        TASKS.get(task)  # an unknown task is a one-line error naming the known ones
    _print(list_models(task), ["name", "task", "source", "parameters", "weights", "default", "options"],
           "models (default: run by `bench run` without --model)", as_json)


@main.group("metrics")
def metrics_group() -> None:
    """Registered metrics."""


@metrics_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def metrics_list(as_json) -> None:
    """Each metric's version, dialects (first = official) and the names where lower is better."""
    from harness.publish.discovery import list_metrics

    _print(list_metrics(), ["name", "version", "dialects", "lower_is_better", "summary"], "metrics", as_json)


@main.group("tasks")
def tasks_group() -> None:
    """Registered tasks."""


@tasks_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def tasks_list(as_json) -> None:
    """Each task's default dataset, the datasets that serve it, its headline metric and how many models."""
    from harness.publish.discovery import list_tasks

    _print(list_tasks(), ["name", "default_dataset", "datasets", "headline", "metrics", "models"], "tasks", as_json)
