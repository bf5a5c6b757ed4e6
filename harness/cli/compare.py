"""``bench compare RUN_A RUN_B``: metric deltas with a paired bootstrap, per-class deltas, most different images."""
from __future__ import annotations

import json
import math
from pathlib import Path

import click

from harness.cli import main


def _fmt(value, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and (math.isnan(value) or value == -1 and not signed)):
        return "n/a"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


@main.command("compare")
@click.argument("run_a", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.argument("run_b", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--bootstrap", type=click.IntRange(min=0), default=200, show_default=True,
              help="Paired bootstrap resamples over images (0: deltas only).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many classes and images with the largest differences to show.")
@click.option("--json", "as_json", is_flag=True, help="Everything as JSON on stdout.")
@click.option("--html", "html", type=click.Path(path_type=Path), default=None,
              help="Also write the comparison as a page, with the most different images drawn for A and B.")
def compare_command(run_a, run_b, bootstrap, seed, top, as_json, html) -> None:
    """Compare two runs' folders (reports/<run-id>) on the same images: B - A."""
    from rich.table import Table

    from harness.run.compare import compare_runs
    from harness.cli.console import console

    result = compare_runs(run_a, run_b, resamples=bootstrap, seed=seed, top=top)
    if html is not None:
        from harness.run.compare_page import write_compare_page

        write_compare_page(result, run_a, run_b, html)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=1, default=float))
        return
    out = console()
    table = Table(title=f"B - A on the same {result.samples} images ({result.task})\nA = {result.run_a}\nB = {result.run_b}")
    for column in ("metric", "A", "B", "B - A", f"{int(result.settings['level'] * 100)}% CI (paired)", "B better in"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name, row in result.metrics.items():
        ci = f"[{_fmt(row['low'], True)}, {_fmt(row['high'], True)}]" if "low" in row else ""
        share = f"{row['share_b_better']:.0%} of resamples" if "share_b_better" in row else ""
        table.add_row(name + ("" if row["higher_is_better"] else " ↓"), _fmt(row["a"]), _fmt(row["b"]),
                      _fmt(row["delta"], True), ci, share)
    out.print(table)
    headline = result.settings.get("headline")
    for metric, frame in result.per_class.items():
        if len(frame) < 2 or (headline and metric not in (headline, headline[1:])):
            continue  # the headline's table only (AP, or IoU for mIoU); --json has every table
        classes = Table(title=f"{metric} per class, largest differences")
        for column in ("class", "A", "B", "B - A"):
            classes.add_column(column, justify="left" if column == "class" else "right")
        for record in frame.head(top).to_dict("records"):
            classes.add_row(str(record["class"]), _fmt(record["a"]), _fmt(record["b"]), _fmt(record["delta"], True))
        out.print(classes)
    if result.images is not None:
        score = result.settings["per_image_score"]
        images = Table(title=f"images where the runs differ most (per-image {score})")
        for column in ("image", "A", "B", "B - A"):
            images.add_column(column, justify="left" if column == "image" else "right")
        for record in result.images.to_dict("records"):
            images.add_row(str(record["image_id"]), _fmt(record[f"{score}_a"]), _fmt(record[f"{score}_b"]),
                           _fmt(record["delta"], True))
        out.print(images)
    if html is not None:
        out.print(f"comparison page: {html}")
