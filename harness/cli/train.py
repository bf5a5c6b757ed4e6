"""``bench train``: retrain an in-repo model on a dataset's train split and score it on the validation split.

By default the weights go to the file the model loads by default, so running the command with its defaults
reproduces the committed weights (same seed, same data, same single thread).
"""
from __future__ import annotations

from pathlib import Path

import click

from harness.cli import main
from harness.cli.options import DATA_ROOT, DATASET, TASK

TRAINABLE_TASKS = ("keypoints",)


@main.command("train")
@TASK
@click.option("--model", "model_name", required=True, help="In-repo model name, e.g. heatmap, soft-argmax.")
@click.option("--epochs", type=int, default=None, help="Training epochs (default: the model's schedule).")
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
    help="Where to save the state dict (default: the model's committed weights file).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for initialisation, order and augmentation.")
@click.option("--threads", type=int, default=1, show_default=True, help="torch threads for training.")
@DATASET
@DATA_ROOT
@click.option("--split", default="train", show_default=True, help="Split to train on (a COCO download: train2017).")
@click.option("--val-split", default="val", show_default=True, help="Split scored after training ('' to skip).")
def train_command(
    task_name: str,
    model_name: str,
    epochs: int | None,
    out: Path | None,
    seed: int,
    threads: int,
    dataset_name: str | None,
    data_root: Path | None,
    split: str,
    val_split: str,
) -> None:
    """Train an in-repo model and print its validation numbers."""
    from rich.console import Console
    from rich.progress import (
        BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
    )
    from rich.table import Table

    from adapters import ADAPTERS
    from adapters.inrepo.keypoints.adapter import default_weights
    from adapters.inrepo.keypoints.train import train_model
    from adapters.inrepo.keypoints.validation import evaluate_adapter
    from harness.datasets import DATASETS
    from harness.errors import BenchError
    from harness.tasks import TASKS

    task = TASKS.get(task_name)
    if task_name not in TRAINABLE_TASKS:
        raise BenchError(f"training is implemented for {', '.join(TRAINABLE_TASKS)}, not {task_name!r}")
    open_dataset = DATASETS.get(dataset_name or task.default_dataset)
    train_set = open_dataset(data_root, split, task_name)
    out = out if out is not None else default_weights(model_name)
    console = Console()
    with Progress(
        TextColumn(f"training {model_name}"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
    ) as progress:
        bar = progress.add_task("train", total=None, loss="-")

        def on_step(step: int, total: int, loss: float) -> None:
            progress.update(bar, completed=step, total=total, loss="-" if loss != loss else f"{loss:.4f}")

        outcome = train_model(
            model_name, train_set, out=out, epochs=epochs, seed=seed, threads=threads, on_step=on_step
        )
    console.print(f"saved {outcome.weights} ({outcome.steps} steps, {outcome.epochs} epochs, {outcome.seconds:.0f} s)")
    if not val_split:
        return
    val_set = open_dataset(data_root, val_split, task_name)
    if not hasattr(val_set, "coco_ground_truth"):
        raise BenchError(f"dataset {val_set.info.name!r} is not COCO keypoints; cannot score OKS AP")
    adapter = ADAPTERS.get(model_name)(model_name, checkpoint=outcome.weights)
    numbers = evaluate_adapter(adapter, val_set)
    table = Table(title=f"{model_name} on {val_set.info.name} {val_set.info.split} (pycocotools OKS)")
    for column in ("AP", "AP50", "AP75", "AR", "images/s"):
        table.add_column(column, justify="right")
    table.add_row(*(f"{numbers[key]:.4f}" for key in ("AP", "AP50", "AP75", "AR")), f"{numbers['images_per_s']:.0f}")
    console.print(table)
