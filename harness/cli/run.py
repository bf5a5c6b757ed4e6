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
from harness.core.run_record import RunRecord
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
@click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16"]), default="fp32", show_default=True,
              help="Forward passes under torch.autocast to fp16/bf16; recorded, and ranked as MODEL+fp16 / MODEL+bf16.")
@click.option("--ann-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="A COCO-format annotation file anywhere (detection, instance, keypoints; with --img-dir): scored "
                   "with the COCO protocol as dataset file:<stem>.")
@click.option("--img-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="With --ann-file: the image folder; every file_name must stay inside it.")
@click.option("--model-arg", "model_args", multiple=True, metavar="KEY=VALUE",
              help="An adapter option (repeatable; YAML value, dotted key for a dict option, e.g. "
                   "model_kwargs.box_score_thresh=0.05); checked against the model's accepted options.")
@click.option("--cfg-options", "cfg_options", multiple=True, metavar="KEY=VALUE",
              help="OpenMMLab models: a config override (repeatable), e.g. model.test_cfg.score_thr=0.05.")
@click.option("--label-map", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="YAML/JSON mapping model classes (names or ids) to dataset classes; unmapped ones are dropped.")
@click.option("--log", "trackers", multiple=True, metavar="TRACKER",
              help="Also log metrics, per-class tables and the gallery to an experiment tracker (repeatable): "
                   "wandb, mlflow, tensorboard.")
@click.option("--multi-scale", "multi_scale", default=None, callback=checks.scales, metavar="SCALES",
              help="Semantic: in-repo networks also see the image rescaled by each factor (e.g. 0.5,1.0,1.5) and "
                   "average the class probabilities at the image's size (ranked as MODEL+msSCALES).")
@click.option("--suite", type=click.Path(path_type=Path), default=None,
              help="YAML matrix of tasks x datasets x models; entries with a matching report are skipped.")
@click.option("--force", is_flag=True, help="With --suite: run entries again even when their report exists.")
@click.option("--entry-timeout", type=click.FloatRange(min=1), default=None,
              help="With --suite: seconds an entry may run before it is killed (an entry's timeout: key wins).")
def run_command(task_name, dataset_name, data_root, split, models, checkpoint, trust_checkpoint, limit, batch_size,
                workers, device, seed, reports_dir, leaderboards_dir, no_cache, cache_dir, bootstrap, dialect, gallery,
                run_name, tags, keypoint_protocol, person_boxes, person_detector, flip_test, precision, ann_file, img_dir,
                model_args, cfg_options, label_map, trackers, multi_scale, suite, force, entry_timeout) -> None:
    """Run models on a dataset and score them (default: all in-repo models on the embedded dataset)."""
    from harness.run import distributed
    from harness.run.bench_run import RunConfig, run_models
    from harness.tasks import get_task
    from harness.cli.console import console, progress_bar, results_table
    from harness.core.errors import BenchError
    from harness.run.model_options import parse_assignments
    from harness.run.latency import describe_stages

    if suite is None and task_name is None:
        raise BenchError("give --task (or --suite FILE.yaml)")
    if suite is not None and (task_name or dataset_name or models or ann_file or img_dir):
        raise BenchError("--suite takes tasks, datasets and models from the file; drop --task/--dataset/--model")
    if (person_boxes is not None or person_detector is not None) and keypoint_protocol != "detector":
        raise BenchError("--person-boxes/--person-detector need --protocol detector")
    config = RunConfig(task=task_name or "", dataset=dataset_name, data_root=data_root, split=split, models=models,
                       checkpoint=checkpoint, trust_checkpoint=trust_checkpoint, limit=limit, batch_size=batch_size,
                       device=device, seed=seed, reports_dir=reports_dir, leaderboards_dir=leaderboards_dir,
                       cache=not no_cache, cache_dir=cache_dir, bootstrap=bootstrap, dialect=dialect,
                       gallery=gallery, name=run_name, tags=tuple(tags),
                       keypoint_protocol=keypoint_protocol, person_boxes=person_boxes, person_detector=person_detector,
                       flip_test=flip_test, precision=precision, ann_file=ann_file, img_dir=img_dir,
                       model_args=parse_assignments(model_args, "--model-arg"),
                       cfg_options=parse_assignments(cfg_options, "--cfg-options"), label_map=label_map,
                       trackers=tuple(trackers), multi_scale=multi_scale, workers=workers)
    main_rank = distributed.context().is_main
    with (progress_bar() if main_rank else nullcontext()) as progress:
        track: Callable[[str, int], Callable[[int], None]] | None = None  # other ranks stay quiet
        if progress is not None:
            bar = progress

            def track_model(model: str, total: int) -> Callable[[int], None]:
                task_id = bar.add_task(model, total=total)
                return lambda n: bar.advance(task_id, n)

            track = track_model

        outcomes = None
        if suite is not None:
            from harness.run.suite import run_suite

            def announce(entry, number, total):
                if not main_rank:
                    return
                progress.console.print(f"[bold]{number}/{total}[/bold] {escape(entry.task)} · "
                                       f"{escape(entry.dataset or 'default')} · {escape(entry.model or 'default models')} "
                                       f"[dim]({entry.where})[/dim]")

            def finished(outcome):
                if not main_rank:
                    return
                colour = {"ok": "green", "skipped": "dim"}.get(outcome.status, "red")
                progress.console.print(f"  [{colour}]{outcome.status}[/{colour}] {escape(outcome.reason)}")

            if entry_timeout is not None and distributed.context().world_size > 1:
                raise BenchError("--entry-timeout needs each entry in its own process; start the suite without torchrun")
            result = run_suite(suite, config, force=force, entry_timeout=entry_timeout, announce=announce,
                               finished=finished, progress=track)
            records, outcomes = result.records, result.outcomes
        else:
            if entry_timeout is not None:
                raise BenchError("--entry-timeout applies to --suite entries")
            records = [RunRecord.from_dict(record) for record in run_models(config, progress=track)]
    if not main_rank:
        return
    fresh = [record for record in records if not record.skipped]
    for group in _by_table(fresh):
        columns = group[0].protocol.get("columns") or get_task(group[0].task).leaderboard_columns
        console().print(results_table(group, columns))
    for record in fresh:
        stages = describe_stages(record.throughput)
        if stages:
            console().print(f"[dim]{escape(record.model.name)}: {escape(stages)}[/dim]")
    for record in records:
        status = "kept existing report" if record.skipped else "wrote"
        console().print(f"[dim]{escape(record.model.name)} on {escape(record.dataset.name)}: {status} "
                        f"{escape(str(record.run_dir))}/[/dim]")
    for record in fresh:
        for where in record.extra.get("logged") or []:
            console().print(f"[dim]logged {escape(record.model.name)} to {escape(where)}[/dim]")
    if limit is not None:
        console().print("[dim]--limit run: reports written, leaderboard left unchanged[/dim]")
    elif dialect is not None:
        console().print(f"[dim]--dialect {dialect}: not the official protocol; leaderboard left unchanged[/dim]")
    if outcomes is not None:
        _suite_summary(outcomes)


def _suite_summary(outcomes: list) -> None:
    """What ran, what was skipped, what failed and why; a failed, timed-out or crashed entry fails the command."""
    from rich.table import Table

    from harness.cli.console import console
    from harness.run.suite import SuiteFailure

    table = Table(title="suite summary")
    for column in ("#", "entry", "task", "dataset", "model", "status", "batch", "seconds", "reason"):
        table.add_column(column)
    colours = {"ok": "green", "skipped": "dim"}
    for number, outcome in enumerate(outcomes, start=1):
        entry, colour = outcome.entry, colours.get(outcome.status, "red")
        table.add_row(str(number), escape(entry.where), escape(entry.task), escape(entry.dataset or "default"),
                      escape(entry.model or "default models"), f"[{colour}]{outcome.status}[/{colour}]",
                      "" if outcome.batch_size is None else str(outcome.batch_size), f"{outcome.seconds:.1f}",
                      escape(outcome.reason))
    console().print(table)
    failed = [outcome for outcome in outcomes if outcome.failed]
    for outcome in failed:
        console().print(f"[dim]{escape(outcome.entry.where)} log: {escape(str(outcome.log))}[/dim]")
    if failed:
        counts = ", ".join(f"{sum(o.status == s for o in failed)} {s}" for s in ("failed", "timeout", "crashed")
                           if any(o.status == s for o in failed))
        raise SuiteFailure(f"{len(failed)} of {len(outcomes)} suite entries did not complete ({counts})")


def _by_table(records: list[RunRecord]) -> list[list[RunRecord]]:
    groups: dict[tuple, list[RunRecord]] = {}
    for record in records:
        groups.setdefault((record.task, record.dataset.name, record.samples), []).append(record)
    return list(groups.values())
