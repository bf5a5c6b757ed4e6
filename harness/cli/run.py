"""``bench run``: evaluate models on a dataset (or a suite of them), write reports, update the leaderboard.

Under ``torchrun`` every rank runs this command; rank 0 alone prints and writes.
"""
from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import click
from rich.markup import escape

from harness.cli import main, options
from harness.io.validation import cli as checks


@main.command("run")
@click.option("--task", "task_name", default=None, help="Task name, e.g. keypoints, detection, semantic, flow.")
@options.DATASET
@options.DATA_ROOT
@options.SPLIT
@click.option("--model", "models", multiple=True, help="Model name (repeatable; default: every in-repo model of the task).")
@options.CHECKPOINT
@options.TRUST
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Evaluate only the first N samples (smoke run; not put on the leaderboard).")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Data-loading processes decoding ahead of the model (default: one per spare core, at most 4; "
                   "0: decode in the run loop's process). Scores are the same for any count.")
@options.DEVICE
@click.option("--seed", type=int, default=0, show_default=True, callback=checks.seed, help="Seeds torch/numpy and the bootstrap.")
@click.option("--reports-dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True,
              callback=checks.directory)
@click.option("--leaderboards-dir", type=click.Path(path_type=Path), default=Path("leaderboards"), show_default=True,
              callback=checks.directory)
@click.option("--no-cache", is_flag=True, help="Neither reuse nor store per-sample predictions.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None, callback=checks.directory,
              help="Prediction cache folder (default: $BENCH_CACHE/predictions).")
@click.option("--bootstrap", "bootstrap", type=click.IntRange(min=0), default=200, show_default=True,
              help="Bootstrap resamples over images for confidence intervals (0: none).")
@click.option("--dialect", default=None,
              help="Score with a named convention of the dataset's metrics instead of the official one (e.g. mmdet, "
                   "py-faster-rcnn, mmseg, per-image); such runs stay off the leaderboard.")
@click.option("--gallery", type=click.IntRange(min=0), default=12, show_default=True,
              help="Images drawn in report.html's gallery (worst + random); 0: no pictures, per-image table or error analysis.")
@click.option("--name", "run_name", default=None, help="A label for this run (e.g. lr-0.1): in its run id, report and site row.")
@click.option("--tag", "tags", multiple=True, help="Free-form label recorded with the run (repeatable).")
@click.option("--protocol", "keypoint_protocol", type=click.Choice(["gt-boxes", "detector", "bottom-up"]), default=None,
              help="Keypoints: where people come from: gt-boxes (default), detector (boxes from --person-boxes or "
                   "--person-detector, mmpose's rescoring and OKS-NMS) or bottom-up (no boxes); recorded, and a "
                   "leaderboard table of its own.")
@click.option("--person-boxes", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="With --protocol detector: person boxes as a COCO detection results file.")
@click.option("--person-detector", default=None,
              help="With --protocol detector: a bottom-up keypoints model whose people give the boxes.")
@click.option("--flip-test", is_flag=True,
              help="Keypoints: heatmap models also see the mirrored crop and average (ranked as MODEL+flip).")
@click.option("--suite", type=click.Path(path_type=Path), default=None,
              help="YAML matrix of tasks x datasets x models; entries with a matching report are skipped.")
@click.option("--force", is_flag=True, help="With --suite: run entries again even when their report exists.")
def run_command(task_name, dataset_name, data_root, split, models, checkpoint, trust_checkpoint, limit, batch_size,
                workers, device, seed, reports_dir, leaderboards_dir, no_cache, cache_dir, bootstrap, dialect, gallery, run_name,
                tags, keypoint_protocol, person_boxes, person_detector, flip_test, suite, force) -> None:
    """Run models on a dataset and score them (default: all in-repo models on the embedded dataset)."""
    from harness.run import distributed
    from harness.run.bench_run import RunConfig, run_models
    from harness.tasks import get_task
    from harness.cli.console import console, progress_bar, results_table
    from harness.core.errors import BenchError
    from harness.run.latency import describe_stages

    if suite is None and task_name is None:
        raise BenchError("give --task (or --suite FILE.yaml)")
    if suite is not None and (task_name or dataset_name or models):
        raise BenchError("--suite takes tasks, datasets and models from the file; drop --task/--dataset/--model")
    if (person_boxes is not None or person_detector is not None) and keypoint_protocol != "detector":
        raise BenchError("--person-boxes/--person-detector need --protocol detector")
    config = RunConfig(task=task_name or "", dataset=dataset_name, data_root=data_root, split=split, models=models,
                       checkpoint=checkpoint, trust_checkpoint=trust_checkpoint, limit=limit, batch_size=batch_size,
                       device=device, seed=seed, reports_dir=reports_dir, leaderboards_dir=leaderboards_dir,
                       cache=not no_cache, cache_dir=cache_dir, bootstrap=bootstrap, dialect=dialect,
                       gallery=gallery, name=run_name, tags=tuple(tags),
                       keypoint_protocol=keypoint_protocol, person_boxes=person_boxes, person_detector=person_detector,
                       flip_test=flip_test, workers=workers)
    main_rank = distributed.context().is_main
    with (progress_bar() if main_rank else nullcontext()) as progress:
        track: Callable[[str, int], Callable[[int], None]] | None = None  # other ranks stay quiet
        if progress is not None:
            bar = progress

            def track_model(model: str, total: int) -> Callable[[int], None]:
                task_id = bar.add_task(model, total=total)
                return lambda n: bar.advance(task_id, n)

            track = track_model

        if suite is not None:
            from harness.run.suite import run_suite

            def announce(entry, number, total):
                if main_rank:
                    progress.console.print(f"[bold]{number}/{total}[/bold] {entry.task} · {entry.dataset or 'default'} · "
                                           f"{entry.model or 'default models'} [dim]({entry.where})[/dim]")

            records = run_suite(suite, config, force=force, progress=track, announce=announce)
        else:
            records = run_models(config, progress=track)
    if not main_rank:
        return
    fresh = [record for record in records if not record.get("skipped")]
    for group in _by_table(fresh):
        protocol = group[0].get("protocol") or {}
        console().print(results_table(group, protocol.get("columns") or get_task(group[0]["task"]).leaderboard_columns))
    for record in fresh:
        stages = describe_stages(record.get("throughput") or {})
        if stages:
            console().print(f"[dim]{escape(record['model']['name'])}: {escape(stages)}[/dim]")
    for record in records:
        status = "kept existing report" if record.get("skipped") else "wrote"
        console().print(f"[dim]{escape(record['model']['name'])} on {escape(record['dataset']['name'])}: {status} "
                        f"{escape(str(record['run_dir']))}/[/dim]")
    if limit is not None:
        console().print("[dim]--limit run: reports written, leaderboard left unchanged[/dim]")
    elif dialect is not None:
        console().print(f"[dim]--dialect {dialect}: not the official protocol; leaderboard left unchanged[/dim]")


def _by_table(records: list[dict]) -> list[list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        groups.setdefault((record["task"], record["dataset"]["name"], record["samples"]), []).append(record)
    return list(groups.values())
