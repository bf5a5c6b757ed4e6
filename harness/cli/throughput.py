"""``bench throughput``: latency percentiles, images/s, peak memory, parameters and FLOPs per batch size."""
from __future__ import annotations

from pathlib import Path

import click

from harness.cli import main, options
from harness.cli.console import console
from harness.io.validation import cli as checks


def _batch_sizes(ctx, param, value: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not sizes or min(sizes) < 1:
        raise click.BadParameter("batch sizes must be positive")
    return sizes


@main.command("throughput")
@options.TASK
@click.option("--model", required=True, help="Model name.")
@click.option("--batch-sizes", default="1,8,32", show_default=True, callback=_batch_sizes,
              help="Comma-separated batch sizes; one that runs out of memory is halved until it fits.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16"]), default="fp32", show_default=True,
              help="fp16/bf16 run the module (or, in predict mode, the adapter) under torch.autocast.")
@click.option("--channels-last", is_flag=True, help="Module and 4-D inputs in channels_last memory format.")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the module (warm-up includes compilation).")
@click.option("--compile-backend", default="inductor", show_default=True, hidden=True)
@options.DEVICE
@click.option("--repeats", type=click.IntRange(min=1), default=20, show_default=True, help="Timed calls per batch size.")
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True, help="Untimed calls first.")
@click.option("--mode", type=click.Choice(["auto", "module", "predict"]), default="auto", show_default=True,
              help="module: the network's forward pass; predict: the adapter end to end on dataset samples.")
@options.DATASET
@options.DATA_ROOT
@options.SPLIT
@options.CHECKPOINT
@options.TRUST
@click.option("--leaderboards-dir", type=click.Path(path_type=Path), default=Path("leaderboards"), show_default=True,
              callback=checks.directory)
def throughput_command(task_name, model, batch_sizes, precision, channels_last, compile_, compile_backend, device,
                       repeats, warmup, mode, dataset_name, data_root, split, checkpoint, trust_checkpoint,
                       leaderboards_dir) -> None:
    """Time a model per batch size and record it in leaderboards/throughput.csv."""
    from rich.markup import escape
    from rich.table import Table

    from harness.run.throughput_benchmark import ThroughputConfig, measure_throughput

    config = ThroughputConfig(task=task_name, model=model, batch_sizes=batch_sizes, precision=precision,
                              channels_last=channels_last, compile=compile_, compile_backend=compile_backend,
                              device=device, repeats=repeats, warmup=warmup, mode=mode, dataset=dataset_name,
                              data_root=data_root, split=split, checkpoint=checkpoint,
                              trust_checkpoint=trust_checkpoint, leaderboards_dir=leaderboards_dir)
    rows = measure_throughput(config, on_row=lambda row: console().print(f"[dim]batch {row['batch_size']}: {row['status']}[/dim]"),
                              on_note=lambda note: console().print(f"[yellow]note:[/yellow] {escape(note)}"))
    first = rows[0]
    compiled = all(row["compile"] for row in rows)
    table = Table(title=escape(f"{model} · {first['mode']} · {first['device_name']} · {precision}"
                               f"{' · channels_last' if channels_last else ''}{' · compiled' if compiled else ''}"))
    for column in ("batch", "ran at", "img/s", "p50 ms", "p90 ms", "p99 ms", "peak MiB", "params", "GFLOPs/img"):
        table.add_column(column, justify="right")
    fmt = lambda value, spec: "" if value is None or value != value else format(value, spec)  # noqa: E731
    for row in rows:
        table.add_row(str(row["batch_size"]), str(row["effective_batch_size"]), fmt(row.get("images_per_s"), ".1f"),
                      fmt(row.get("latency_p50_ms"), ".3f"), fmt(row.get("latency_p90_ms"), ".3f"),
                      fmt(row.get("latency_p99_ms"), ".3f"), fmt(row.get("peak_memory_mb"), ".0f"),
                      fmt(row.get("parameters"), ","), fmt(row.get("gflops_per_image"), ".4g"))
    console().print(table)
    console().print(f"[dim]peak memory: {escape(str(first.get('memory_measure', '')))}; rows in "
                    f"{escape(str(leaderboards_dir / 'throughput.csv'))}[/dim]")
