"""``bench site``: a static, offline leaderboard site from every report."""
from __future__ import annotations

from pathlib import Path

import click

from harness.cli import main
from harness.io.validation import cli as checks


@main.command("site")
@click.option("--reports-dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True,
              callback=checks.directory)
@click.option("--leaderboards-dir", type=click.Path(path_type=Path), default=Path("leaderboards"), show_default=True,
              help="Where throughput.csv is read from (optional).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("site"), show_default=True,
              callback=checks.directory)
def site_command(reports_dir: Path, leaderboards_dir: Path, out_dir: Path) -> None:
    """Write index.html, a page and a CSV per task, and a copy of each run's report."""
    from harness.cli.console import console
    from harness.publish.site import build_site
    from rich.markup import escape

    summary = build_site(reports_dir, out_dir, leaderboards_dir)
    for task, rows in summary.items():
        console().print(f"{escape(str(task))}: {rows} rows")
    console().print(f"[green]site written to {escape(str(out_dir / 'index.html'))}[/green]")
