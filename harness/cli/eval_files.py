"""``bench eval`` against ground-truth files (``--gt``), and the printing of every ``bench eval`` result.

Without click on purpose: the command line's fast entry (``harness.cli.early.run_fast_eval``) scores the plain
``bench eval --task T --gt G --pred P [--json J]`` through ``score_files`` without importing click at all (its
import is ~10% of a keypoints evaluation's whole process); the click command (``harness.cli.eval``) calls the
same functions for every other form, so both print the same thing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

#: per-class tables longer than this are written to --json only
MAX_TABLE_ROWS = 40

#: the file-mode options of ``bench eval`` other than --task/--gt/--pred/--dataset/--dialect/--json, as the click
#: command passes them on (``tests/cli/test_eval_fast_entry.py`` checks this against the command's options)
FILE_OPTIONS = ("max_dets", "iou_type", "sigmas", "num_classes", "ignore_index", "reduce_zero_label", "ids", "split",
                "prediction_ids", "headboxes", "allow_missing", "px_convention")


def score_files(task_name: str | None, gt_path: Path, pred_path: Path | None, dataset_name: str | None,
                dialect: str | None, json_out: Path | None, options: dict[str, Any]) -> None:
    """Score ``pred_path`` against ``gt_path`` with the task's file evaluator and print the result
    (``options``: every name of ``FILE_OPTIONS``, None or False when not given)."""
    from harness.io.jsonio import gc_paused

    # imports (numpy, the evaluator) make many objects and no garbage: the cyclic collector would walk them again
    # and again, ~8% of a keypoints evaluation's CPU time; the evaluation pauses it on its own
    with gc_paused():
        from harness.core.errors import BenchError
        from harness.file_eval import FILE_EVALUATORS
        from harness.file_eval.base import EvalRequest

    if task_name is None or pred_path is None:
        raise BenchError("file mode needs --task, --gt and --pred")
    with gc_paused():
        evaluator = FILE_EVALUATORS.get(task_name)  # imports the evaluator's module
    given_options = {name: (None if value is False else value) for name, value in options.items()}
    request = EvalRequest(task_name, gt_path, pred_path, dataset_name, dialect, given_options, tracker=_progress)
    evaluator.check(request)
    result = evaluator.run(request)
    record = {
        "task": task_name,
        "metrics": result.metrics,
        "per_class": result.per_class,
        "settings": result.settings,
        "higher_is_better": result.higher_is_better,
    }
    print_record(record, dataset_name, json_out)


def print_record(record: dict[str, Any], dataset_name: str | None, json_out: Path | None) -> None:
    from harness.io.jsonio import atomic_write_json, gc_paused

    with gc_paused():  # rich's import: thousands of objects, no garbage
        from harness.cli.console import console
        from harness.file_eval.base import json_safe

    out = console()
    out.print(_metrics_table(record, dataset_name))
    per_class = _per_class_table(record["per_class"])
    if per_class is not None:
        out.print(per_class)
    for note in record["settings"].get("notes", []):
        out.print(f"[yellow]note:[/yellow] {note}")
    if json_out is not None:
        atomic_write_json(json_out, json_safe(record))
        out.print(f"[dim]wrote {json_out}[/dim]")


def _progress(items: Sequence[Any], label: str) -> Iterable[Any]:
    from harness.cli.console import progress_bar

    with progress_bar() as bar:
        yield from bar.track(items, description=label, total=len(items))


def _number(value: Any) -> str:
    return "nan" if value is None or value != value else f"{value:.4f}"


def _metrics_table(record: dict[str, Any], dataset: str | None):
    from rich.markup import escape
    from rich.table import Table

    settings = record["settings"]
    where = f" on {dataset}" if dataset else ""
    convention = settings.get("dialect")
    title = f"{record['task']}{where}" + (f" ({convention})" if convention else "")
    table = Table(title=escape(title))  # names from files: literal text, not markup
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in record["metrics"].items():
        table.add_row(escape(str(name)), _number(value))
    return table


def _per_class_table(per_class: dict[str, dict[str, float]]):
    from rich.markup import escape
    from rich.table import Table

    if not per_class:
        return None
    names: list[str] = []
    for values in per_class.values():
        names.extend(name for name in values if name not in names)
    if len(names) > MAX_TABLE_ROWS:
        return None
    table = Table(title="per class")
    table.add_column("class")
    for metric in per_class:
        table.add_column(metric, justify="right")
    for name in names:
        cells = (_number(values[name]) if name in values else "" for values in per_class.values())
        table.add_row(escape(str(name)), *cells)
    return table
