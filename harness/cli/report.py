"""``bench report RUN_DIR``: rebuild a finished run's report.html with its pictures and per-image table."""
from __future__ import annotations

from pathlib import Path

import click

from harness.cli import main


@main.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--gallery", type=click.IntRange(min=1), default=12, show_default=True, help="Images in the gallery.")
@click.option("--seed", type=int, default=None, help="Seed of the gallery's random sample (default: the run's).")
def report_command(run_dir, gallery, seed) -> None:
    """Draw the run's pictures again (charts, error analysis, gallery, per_image.csv) from its written predictions."""
    from harness.run.rebuild_pictures import rebuild_report

    pictures = rebuild_report(run_dir, gallery=gallery, seed=seed)
    click.echo(f"{run_dir / 'report.html'}: {len(pictures.figures)} charts, {len(pictures.gallery)} gallery images"
               + (f"; {'; '.join(pictures.problems)}" if pictures.problems else ""))
