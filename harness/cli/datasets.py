"""``bench datasets list`` and ``bench datasets check``: what can be read, and is this copy readable?

``check`` exists because a half-broken dataset (a missing image, a label PNG saved in RGB, a truncated .flo)
otherwise shows up as a crash an hour into a run, or worse as a quietly wrong score.  It lists every problem at
once, one line each, and exits 1 if there is any.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from harness.cli import main, options


@main.group("datasets")
def datasets_group() -> None:
    """List the dataset readers and validate a dataset copy."""


def _summary(factory: object) -> str:
    module = sys.modules.get(getattr(factory, "__module__", ""), None)
    doc = (getattr(factory, "__doc__", None) or getattr(module, "__doc__", None) or "").strip()
    first = doc.split("\n\n")[0].replace("\n", " ")
    return re.sub(r"^``--dataset \w+``:\s*", "", first).replace("``", "")


@datasets_group.command("list")
def list_command() -> None:
    """Registered datasets, the tasks each serves (first = default), and what they read."""
    from rich.table import Table

    from harness.cli.console import console
    from harness.datasets import DATASETS

    table = Table(title="datasets (without --data-root: the embedded mini dataset)")
    table.add_column("name")
    table.add_column("tasks")
    table.add_column("reads")
    for name, factory in DATASETS.items():
        table.add_row(name, ", ".join(getattr(factory, "tasks", ())) or "?", _summary(factory))
    console().print(table)


@datasets_group.command("check")
@click.option("--dataset", "dataset_name", required=True, help="Dataset name (see `bench datasets list`).")
@options.DATA_ROOT
@options.SPLIT
@click.option("--task", "task_name", default=None, help="Task to read the dataset for (default: its first task).")
def check_command(dataset_name: str, data_root: Path | None, split: str | None, task_name: str | None) -> None:
    """Read every sample and file of a dataset; print counts and every problem found (exit 1 if any)."""
    from rich.table import Table

    from harness.cli.console import console, progress_bar
    from harness.datasets import DATASETS
    from harness.core.dataset import collecting_problems
    from harness.core.errors import BenchError, UnknownNameError

    factory = DATASETS.get(dataset_name)
    tasks = tuple(getattr(factory, "tasks", ()))
    task = task_name or (tasks[0] if tasks else None)
    if task is None:
        raise UnknownNameError(f"dataset {dataset_name!r} does not declare its tasks; pass --task")
    if tasks and task not in tasks:
        raise UnknownNameError(f"dataset {dataset_name!r} serves tasks {', '.join(tasks)}, not {task!r}")

    dataset, counts = None, {}
    with collecting_problems() as problems:
        try:
            dataset = factory(data_root, split, task)
        except BenchError as exc:
            problems.append(str(exc))
        if dataset is not None:
            if console().is_terminal:
                with progress_bar() as progress:
                    bar = progress.add_task("checking", total=len(dataset))
                    problems.extend(dataset.check(lambda n: progress.advance(bar, n)))
            else:
                problems.extend(dataset.check())
            counts = dataset.counts()

    where = "embedded" if data_root is None else str(data_root)
    if dataset is not None:
        info = dataset.info
        click.echo(f"{info.name}: task {info.task}, split {info.split}, {where}")
        table = Table()
        table.add_column("count")
        table.add_column("value", justify="right")
        for key, value in counts.items():
            table.add_row(key, str(value))
        console().print(table)
    for problem in problems:
        click.echo(f"problem: {problem}")
    if problems:
        click.echo(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found in {dataset_name} at {where}")
        sys.exit(1)
    click.echo(f"ok: {dataset_name} at {where} has no problems")
