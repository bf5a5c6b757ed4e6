"""``bench run``: evaluate models on a dataset, write reports, update the leaderboard."""
from __future__ import annotations

from pathlib import Path

import click

from harness.cli import main, options


@main.command("run")
@options.TASK
@options.DATASET
@options.DATA_ROOT
@options.SPLIT
@click.option("--model", "models", multiple=True, help="Model name (repeatable; default: every in-repo model of the task).")
@options.CHECKPOINT
@options.TRUST
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Evaluate only the first N samples (smoke run; not put on the leaderboard).")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@options.DEVICE
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--reports-dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True)
@click.option("--leaderboards-dir", type=click.Path(path_type=Path), default=Path("leaderboards"), show_default=True)
def run_command(task_name, dataset_name, data_root, split, models, checkpoint, trust_checkpoint, limit, batch_size,
                device, seed, reports_dir, leaderboards_dir) -> None:
    """Run models on a dataset and score them (default: all in-repo models on the embedded dataset)."""
    from harness.bench_run import RunConfig, run_models
    from harness.console import console, progress_bar, results_table

    config = RunConfig(task=task_name, dataset=dataset_name, data_root=data_root, split=split, models=models,
                       checkpoint=checkpoint, trust_checkpoint=trust_checkpoint, limit=limit, batch_size=batch_size,
                       device=device, seed=seed, reports_dir=reports_dir, leaderboards_dir=leaderboards_dir)
    with progress_bar() as progress:
        def track(model: str, total: int):
            task_id = progress.add_task(model, total=total)
            return lambda n: progress.advance(task_id, n)

        records = run_models(config, progress=track)
    console().print(results_table(records))
    for record in records:
        console().print(f"[dim]{record['model']['name']}: {record['run_dir']}/[/dim]")
    if limit is not None:
        console().print("[dim]--limit run: reports written, leaderboard left unchanged[/dim]")
