"""The ``bench`` command line.  Each subcommand lives in its own module in this package and attaches itself
to ``main`` when imported; ``main`` imports a module only when its command is run (or listed by ``--help``), so
``bench eval`` pays for its own imports alone (its start-up is part of every score's wall time) and
``bench --help`` does not load torch."""
from __future__ import annotations

import gc
import importlib
import sys

from harness.cli.early import prefetch_eval_files, run_fast_eval

# first of all: `bench eval` on COCO files starts reading and parsing them on other threads, while the imports
# below run (harness.cli.early says why); the plain `bench eval --task T --gt G --pred P [--json J]` is then
# scored without click, and the process exits here; every other command line goes on to click
prefetch_eval_files(sys.argv)
run_fast_eval(sys.argv)

# click's import builds thousands of objects and no garbage: the cyclic collector would walk them again and
# again (measurable in `bench eval`'s start-up); paused for this import only
_collecting = gc.isenabled()
gc.disable()
try:
    import click  # noqa: E402
finally:
    if _collecting:
        gc.enable()

from harness.core.errors import BenchError  # noqa: E402

#: subcommand -> the module that defines it (``@main.command(name)`` / ``@main.group(name)``);
#: ``tests/cli/test_lazy_commands.py`` checks this table against what the modules register
COMMANDS = {
    "compare": "harness.cli.compare",
    "datasets": "harness.cli.datasets",
    "eval": "harness.cli.eval",
    "gate": "harness.cli.gate",
    "metrics": "harness.cli.discover",
    "models": "harness.cli.discover",
    "report": "harness.cli.report",
    "run": "harness.cli.run",
    "site": "harness.cli.site",
    "tasks": "harness.cli.discover",
    "throughput": "harness.cli.throughput",
    "train": "harness.cli.train",
}


class BenchGroup(click.Group):
    """Loads a subcommand's module on first use (click's lazy-group pattern), and turns user errors into one
    line on stderr and a non-zero exit, instead of a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(COMMANDS[cmd_name])  # registers the command on ``main``
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except BenchError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except click.UsageError as exc:  # a bad option value: one line too, like every other user error
            where = f"{exc.ctx.command_path}: " if exc.ctx is not None else ""
            click.echo(f"error: {where}{' '.join(exc.format_message().split())}", err=True)
            sys.exit(2)


@click.group(cls=BenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bench")
def main() -> None:
    """bench: how good and how fast is this model on this dataset, next to the others?"""
