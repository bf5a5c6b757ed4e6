"""``bench eval``: score prediction files, no model involved.

Two ways in:

* on a dataset (``--dataset``/``--data-root``/``--split``, or ``--run`` with a report folder): the files are read
  in the dataset's official submission format and scored by the same pipeline and protocol as ``bench run``
  (``harness.run.submission_eval``), so a run's written predictions re-score to the run's numbers;
* against ground-truth files (``--gt``): the file evaluators of ``harness.file_eval``, for files outside a
  dataset layout (a COCO annotation json, a folder of label PNGs, MPII .mat, .flo folders).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from harness.cli import main
from harness.cli.eval_files import print_record, score_files
from harness.io.validation import cli as checks


@main.command("eval")
@click.option("--task", "task_name", default=None,
              help="detection, instance, keypoints (COCO json), semantic (PNG folders), flow (.flo folders), mpii.")
@click.option("--gt", "gt_path", default=None, type=click.Path(path_type=Path),
              help="Ground-truth file or folder (file mode; without it the dataset's reader reads the ground truth).")
@click.option("--pred", "pred_path", default=None, type=click.Path(path_type=Path),
              help="Prediction file or folder (a run writes its own in the report folder).")
@click.option("--run", "run_dir", default=None, type=click.Path(path_type=Path),
              help="A report folder: re-score its written predictions on the dataset the run used.")
@click.option("--dataset", "dataset_name", default=None,
              help="Dataset (with --data-root; default: the task's); with --gt a preset: ade20k, voc, cityscapes, sintel.")
@click.option("--data-root", type=click.Path(path_type=Path), default=None,
              help="Dataset mode: the dataset in its native layout (default: the embedded mini dataset).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Dataset mode: only the first N samples.")
@click.option("--format", "submission", default=None,
              help="Dataset mode: submission format of --pred (default: the dataset's official one).")
@click.option("--dialect", default=None,
              help="Convention to reproduce: pycocotools|detectron2|mmdet (COCO), ade20k-devkit|mmseg (semantic), "
                   "pixels|per-image (flow), official|mmpose (mpii). Default: the official one.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, callback=checks.output_file,
              help="Write the result as JSON here.")
@click.option("--max-dets", default=None, help="COCO maxDets: coco, mmdet (100,300,1000) or a list like 1,10,100.")
@click.option("--iou-type", type=click.Choice(["bbox", "segm", "keypoints"]), default=None,
              help="COCO iou type (default: by task), e.g. bbox for the boxes of instance results.")
@click.option("--sigmas", default=None, help="COCO keypoints: comma-separated OKS sigmas for a non-COCO-17 skeleton.")
@click.option("--num-classes", type=click.IntRange(min=1), default=None, help="Semantic without a preset: classes.")
@click.option("--ignore-index", type=int, default=None, help="Semantic without a preset: ignore label (default 255).")
@click.option("--reduce-zero-label", is_flag=True, help="Semantic without a preset: label 0 is ignored, k is class k-1.")
@click.option("--ids", type=click.Path(path_type=Path), default=None,
              help="Semantic: score only the ids listed in this file (e.g. VOC ImageSets/Segmentation/val.txt).")
@click.option("--split", default=None, help="Cityscapes: split folder under gtFine (default val).")
@click.option("--prediction-ids", type=click.Choice(["label_id", "train_id"]), default=None,
              help="Cityscapes: what prediction PNGs hold (default label_id, the official encoding).")
@click.option("--headboxes", type=click.Path(path_type=Path), default=None,
              help="MPII with json ground truth: mpii_gt_val.mat (headboxes_src) or a json list of boxes.")
@click.option("--allow-missing", is_flag=True, help="MPII: count NaN/missing predictions as wrong (official toolkit).")
@click.option("--px-convention", type=click.Choice(["accuracy", "error-rate"]), default=None,
              help="Flow: 1px/3px/5px as EPE < N (default) or EPE > N.")
def eval_command(task_name: str | None, gt_path: Path | None, pred_path: Path | None, run_dir: Path | None,
                 dataset_name: str | None, data_root: Path | None, limit: int | None, submission: str | None,
                 dialect: str | None, json_out: Path | None, **options: Any) -> None:
    """Score prediction files and print the official numbers."""
    from harness.io.jsonio import gc_paused

    # imports (numpy, the evaluator) make many objects and no garbage: the cyclic collector would walk them again
    # and again, ~8% of a keypoints evaluation's CPU time; the evaluation pauses it on its own
    with gc_paused():
        from harness.core.errors import BenchError

    if gt_path is None:
        given = sorted("--" + name.replace("_", "-") for name, value in options.items()
                       if value not in (None, False) and name not in ("split", "allow_missing"))
        if given:
            raise BenchError(f"{', '.join(given)} belong to file mode (--gt); the dataset's protocol fixes them")
        reader_options = {"allow_missing": True} if options.get("allow_missing") else {}
        record = _score_dataset(task_name, pred_path, run_dir, dataset_name, data_root, options.get("split"), limit,
                                submission, dialect, reader_options)
        print_record(record, record["dataset"], json_out)
        return
    if run_dir is not None or data_root is not None or limit is not None or submission is not None:
        raise BenchError("--run, --data-root, --limit and --format read a dataset; drop --gt, or drop them")
    score_files(task_name, gt_path, pred_path, dataset_name, dialect, json_out, options)


def _score_dataset(task_name: str | None, pred_path: Path | None, run_dir: Path | None, dataset_name: str | None,
                   data_root: Path | None, split: str | None, limit: int | None, submission: str | None,
                   dialect: str | None, reader_options: dict[str, Any]) -> dict[str, Any]:
    from harness.core.errors import BenchError
    from harness.run.submission_eval import score_run_folder, score_submission

    if run_dir is not None:
        if any(v is not None for v in (task_name, pred_path, dataset_name, data_root, split, limit, submission)) \
                or reader_options:
            raise BenchError("--run takes the task, dataset and predictions from the report; give only --run "
                             "(and --dialect)")
        scored = score_run_folder(run_dir, dialect=dialect)
    else:
        if task_name is None or pred_path is None:
            raise BenchError("give --task and --pred (with --dataset/--data-root/--split), or --run REPORT_DIR")
        scored = score_submission(task_name, dataset_name, data_root, split, pred_path, submission=submission,
                                  dialect=dialect, limit=limit, reader_options=reader_options)
    result = scored.evaluation.result
    return {
        "task": scored.dataset.info.task,
        "dataset": scored.dataset.info.name,
        "samples": scored.evaluation.samples,
        "predictions": {"format": scored.submission, "path": str(scored.path)},
        "protocol": scored.protocol.describe(dialect),
        "metrics": result.metrics,
        "per_class": result.per_class,
        "settings": {**result.settings, **({"dialect": dialect} if dialect else {})},
        "higher_is_better": result.higher_is_better,
    }
