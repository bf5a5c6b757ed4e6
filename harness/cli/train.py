"""``bench train``: retrain an in-repo model on a dataset's train split and score it on the validation split.

By default the weights go to the file the model loads by default, so running the command with its defaults
reproduces the committed weights (same seed, same data, same single thread).
"""
from __future__ import annotations

from pathlib import Path

import click

from harness.cli import main
from harness.cli.options import DATA_ROOT, DATASET, TASK
from harness.io.validation import cli as checks


@main.command("train")
@TASK
@click.option("--model", "model_name", required=True, help="In-repo model name, e.g. heatmap, centernet.")
@click.option("--epochs", type=int, default=None, help="Training epochs (default: the model's schedule).")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Training length in optimiser steps instead of epochs (wins over --epochs).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Batch size (default: the model's schedule).")
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
    help="Where to save the weights (default: the model's committed weights file).",
)
@click.option("--seed", type=int, default=0, show_default=True, callback=checks.seed, help="Seed for initialisation, order and augmentation.")
@click.option("--threads", type=int, default=1, show_default=True, help="torch threads for training.")
@DATASET
@DATA_ROOT
@click.option("--split", default=None, help="Split to train on (default: the trainer's, e.g. train).")
@click.option("--val-split", default=None, help="Split scored after training (default: the trainer's; '' to skip).")
def train_command(task_name: str, model_name: str, epochs: int | None, steps: int | None, batch_size: int | None,
                  out: Path | None, seed: int, threads: int, dataset_name: str | None, data_root: Path | None,
                  split: str | None, val_split: str | None) -> None:
    """Train an in-repo model and print its validation numbers."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.table import Table

    from harness.core.catalog import ADAPTERS
    from harness.tasks import get_task
    from harness.cli.console import console
    from harness.datasets import DATASETS
    from harness.core.errors import BenchError
    from harness.run.trainers import TRAINERS, validate

    task = get_task(task_name)
    if task_name not in TRAINERS:
        raise BenchError(f"no in-repo trainer for task {task_name!r} (trainable: {', '.join(TRAINERS.names())})")
    trainer = TRAINERS.get(task_name)
    model_task = getattr(ADAPTERS.get(model_name), "task", None)
    if model_task != task_name:
        raise BenchError(f"model {model_name!r} is a {model_task} model, not {task_name}")
    open_dataset = DATASETS.get(dataset_name or task.default_dataset)
    train_set = open_dataset(data_root, split or trainer.train_split, task_name)
    out = out if out is not None else trainer.weights_file(model_name, train_set.info)
    with Progress(
        TextColumn(f"training {model_name}"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console(), transient=False,
    ) as progress:
        bar = progress.add_task("train", total=None, loss="-")

        def on_step(step: int, total: int, loss: float) -> None:
            progress.update(bar, completed=step, total=total, loss="-" if loss != loss else f"{loss:.4f}")

        outcome = trainer.train(model_name, train_set, out=out, epochs=epochs, steps=steps, batch_size=batch_size,
                                seed=seed, threads=threads, on_step=on_step)
    console().print(f"saved {outcome.weights} ({outcome.steps} steps, {outcome.epochs} epochs, {outcome.seconds:.0f} s)")
    val_split = trainer.val_split if val_split is None else val_split
    if not val_split:
        return
    val_set = open_dataset(data_root, val_split, task_name)
    adapter = ADAPTERS.get(model_name)(model_name, checkpoint=outcome.weights)
    numbers = validate(adapter, val_set)
    columns = [name for name in task.protocol(val_set.info).columns if name in numbers]
    table = Table(title=f"{model_name} on {val_set.info.name} {val_set.info.split}")
    for column in (*columns, "images/s"):
        table.add_column(column, justify="right")
    table.add_row(*(f"{numbers[key]:.4f}" for key in columns), "n/a" if numbers["images_per_s"] != numbers["images_per_s"] else f"{numbers['images_per_s']:.0f}")
    console().print(table)
