"""``bench gate``: fail (exit 1) when a metric regressed beyond its baseline tolerance (or its CI half-width).

``bench gate --update`` is the only way baselines change: it rewrites the expected values from the latest results.
``bench gate --throughput`` is a separate gate on images/s against this machine's throughput baselines
(``harness.publish.throughput_gate``); it never reads the accuracy baselines, and they never read it.
"""
from __future__ import annotations

from pathlib import Path

import click

from harness.cli import main, options
from harness.cli.console import console
from harness.io.validation import cli as checks


@main.command("gate")
@click.option("--baselines", type=click.Path(path_type=Path), default=Path("leaderboards/baselines.yaml"), show_default=True)
@click.option("--reports-dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True,
              callback=checks.directory)
@click.option("--task", "tasks", multiple=True, help="Gate only this task's baselines (repeatable; default: all).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Gate the baselines of smoke runs made with --limit N (default: the full-run baselines).")
@click.option("--update", is_flag=True, help="Rewrite the expected values from the latest results (tolerances kept).")
@click.option("--paired", is_flag=True,
              help="Fail only on a significant drop: paired bootstrap of the latest run against the baseline's run.")
@click.option("--resamples", type=click.IntRange(min=20), default=200, show_default=True,
              help="--paired: bootstrap resamples (the same images for both runs).")
@click.option("--throughput", is_flag=True,
              help="Gate images/s (leaderboards/throughput.csv) against this machine's throughput baselines instead.")
@click.option("--throughput-baselines", type=click.Path(path_type=Path),
              default=Path("leaderboards/throughput_baselines.yaml"), show_default=True,
              help="--throughput: the per-machine baselines file.")
@click.option("--throughput-csv", type=click.Path(path_type=Path), default=Path("leaderboards/throughput.csv"),
              show_default=True, help="--throughput: the `bench throughput` results.")
@options.DEVICE
def gate_command(baselines: Path, reports_dir: Path, tasks: tuple[str, ...], limit: int | None, update: bool,
                 paired: bool, resamples: int, throughput: bool, throughput_baselines: Path, throughput_csv: Path,
                 device: str) -> None:
    """Compare the latest results with the baselines and name every regression."""
    from rich.markup import escape
    from rich.table import Table

    from harness.core.errors import BenchError, GateFailure
    from harness.publish.gate import load_baselines, run_gate

    if throughput:
        if paired or limit is not None:
            raise BenchError("--throughput gates images/s only; --paired and --limit are accuracy-gate options")
        _throughput_gate(throughput_baselines, throughput_csv, device, tasks, update)
        return
    if update:
        _update(baselines, reports_dir)
        return
    selected = [b for b in load_baselines(baselines) if b.limit == limit and (not tasks or b.task in tasks)]
    if not selected:
        which = "full runs" if limit is None else f"runs with --limit {limit}"
        of_tasks = f" of task {', '.join(tasks)}" if tasks else ""
        raise BenchError(f"no baselines{of_tasks} for {which}", baselines)
    checks = run_gate(selected, reports_dir)
    if paired:
        _paired(checks, reports_dir, resamples)
        return
    table = Table(title=escape(f"gate: {baselines}"))
    for column in ("task", "dataset", "model", "limit", "metric", "expected", "actual", "delta", "CI", "tolerance",
                   "allowed", "result"):
        table.add_column(column)
    for check in checks:
        b = check.baseline
        ci = "" if check.confidence is None else escape(f"[{check.confidence[0]:.4f}, {check.confidence[1]:.4f}]")
        table.add_row(escape(b.task), escape(b.dataset), escape(b.model), str(b.limit or ""),
                      escape(b.metric + ("" if b.class_name is None else f"[{b.class_name}]")), f"{b.expected:.4f}",
                      "" if check.actual is None else f"{check.actual:.4f}",
                      "" if check.delta is None else f"{check.delta:+.4f}", ci, f"{b.tolerance}", f"{check.allowed:.4f}",
                      "[green]pass[/green]" if check.passed else "[red]FAIL[/red]")
    console().print(table)
    failures = [check for check in checks if not check.passed]
    for check in failures:
        click.echo(f"regression: {check.describe()}", err=True)
    if failures:
        raise GateFailure(f"{len(failures)} of {len(checks)} checks failed")
    console().print(f"[green]all {len(checks)} checks passed[/green]")


def _update(baselines: Path, reports_dir: Path) -> None:
    from rich.table import Table

    from harness.publish.gate import update_baselines

    updates = update_baselines(baselines, reports_dir)
    from rich.markup import escape

    table = Table(title=escape(f"updated: {baselines}"))
    for column in ("task", "dataset", "model", "limit", "metric", "old", "new"):
        table.add_column(column)
    for item in updates:
        b = item.baseline
        table.add_row(escape(b.task), escape(b.dataset), escape(b.model), str(b.limit or ""), escape(b.metric),
                      f"{b.expected:.4f}", "[yellow]no result: kept[/yellow]" if item.new is None else f"{item.new:.4f}")
    console().print(table)


def _paired(checks: list, reports_dir: Path, resamples: int) -> None:
    """``--paired``: each check's latest run against its baseline run, on the same resampled images."""
    from harness.core.errors import GateFailure
    from harness.run.paired_gate import paired_check, run_folder
    from harness.publish.reports import iter_records

    folders = {record["run_id"]: Path(record["run_dir"]) for record in iter_records(reports_dir)}
    failures = 0
    for check in checks:
        b = check.baseline
        if check.actual is None or not check.comparable or check.run_id not in folders:
            click.echo(f"regression: {check.describe()}", err=True)
            failures += 1
            continue
        result = paired_check(run_folder(reports_dir, b.run), folders[check.run_id], b.metric,
                              b.direction == "higher", b.tolerance, resamples=resamples)
        verdict = "pass" if result.passed else "FAIL"
        click.echo(f"{verdict}: {b.task}/{b.dataset}/{b.model} {b.metric}: {result.describe()}")
        failures += 0 if result.passed else 1
    if failures:
        raise GateFailure(f"{failures} of {len(checks)} paired checks failed")


def _throughput_gate(path: Path, throughput_csv: Path, device: str, tasks: tuple[str, ...], update: bool) -> None:
    """``--throughput``: this machine's images/s baselines; other machines' are skipped with a note."""
    from rich.markup import escape
    from rich.table import Table

    from harness.core.errors import BenchError, GateFailure
    from harness.publish.machine import machine_fingerprint, machine_key
    from harness.publish.throughput_gate import run_throughput_gate, update_throughput_baselines

    fingerprint = machine_fingerprint(device)
    machine = machine_key(fingerprint)
    described = ", ".join(f"{key} {value}" for key, value in fingerprint.items())
    if update:
        entries = update_throughput_baselines(path, throughput_csv, machine, fingerprint)
        console().print(f"recorded {len(entries)} throughput baseline(s) of machine {machine} ({escape(described)}) "
                        f"in {escape(str(path))}")
        return
    if not path.is_file():
        raise BenchError("throughput baselines file not found (record one with `bench gate --throughput --update`)",
                         path)
    gate = run_throughput_gate(path, throughput_csv, machine)
    for note in gate.skipped:
        console().print(f"[dim]note: {escape(note)}[/dim]")
    checks = [check for check in gate.checks if not tasks or check.baseline.task in tasks]
    if not checks:
        console().print(f"[yellow]no throughput baselines for this machine[/yellow] ({machine}: {escape(described)}); "
                        "nothing gated (record them with `bench gate --throughput --update`)")
        return
    table = Table(title=escape(f"throughput gate: {path} · machine {machine}"))
    for column in ("task", "model", "settings", "batch", "baseline img/s", "img/s", "change", "tolerance", "result"):
        table.add_column(column)
    for check in checks:
        b = check.baseline
        settings = " ".join([b.mode, b.device, b.precision] + [f for f, on in (("channels_last", b.channels_last),
                                                                                ("compiled", b.compile)) if on])
        table.add_row(escape(b.task), escape(b.model), escape(settings), str(b.batch_size), f"{b.images_per_s:.2f}",
                      "" if check.actual is None else f"{check.actual:.2f}",
                      "" if check.change is None else f"{check.change:+.1%}", f"{b.tolerance:.0%}",
                      "[green]pass[/green]" if check.passed else "[red]FAIL[/red]")
    console().print(table)
    failures = [check for check in checks if not check.passed]
    for check in failures:
        click.echo(f"slower: {check.describe()}", err=True)
    if failures:
        raise GateFailure(f"{len(failures)} of {len(checks)} throughput checks failed")
    console().print(f"[green]all {len(checks)} throughput checks passed[/green]")
