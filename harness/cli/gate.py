"""``bench gate``: fail (exit 1) when a metric regressed beyond its baseline tolerance."""
from __future__ import annotations

from pathlib import Path

import click

from harness.cli import main


@main.command("gate")
@click.option("--baselines", type=click.Path(path_type=Path), default=Path("leaderboards/baselines.yaml"), show_default=True)
@click.option("--reports-dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True)
def gate_command(baselines: Path, reports_dir: Path) -> None:
    """Compare the latest results with the baselines and name every regression."""
    from rich.table import Table

    from harness.console import console
    from harness.errors import GateFailure
    from harness.gate import load_baselines, run_gate

    checks = run_gate(load_baselines(baselines), reports_dir)
    table = Table(title=f"gate: {baselines}")
    for column in ("task", "dataset", "model", "limit", "metric", "expected", "actual", "delta", "tolerance", "result"):
        table.add_column(column)
    for check in checks:
        b = check.baseline
        table.add_row(b.task, b.dataset, b.model, str(b.limit or ""), b.metric, f"{b.expected:.4f}",
                      "" if check.actual is None else f"{check.actual:.4f}",
                      "" if check.delta is None else f"{check.delta:+.4f}", f"{b.tolerance}",
                      "[green]pass[/green]" if check.passed else "[red]FAIL[/red]")
    console().print(table)
    failures = [check for check in checks if not check.passed]
    for check in failures:
        click.echo(f"regression: {check.describe()}", err=True)
    if failures:
        raise GateFailure(f"{len(failures)} of {len(checks)} checks failed")
    console().print(f"[green]all {len(checks)} checks passed[/green]")
