"""The ``bench`` command line.  Each subcommand lives in its own module in this package and attaches itself
to ``main``; importing stays lazy so ``bench --help`` does not load torch."""
from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from harness.core.errors import BenchError


class BenchGroup(click.Group):
    """Turns user errors into one line on stderr and a non-zero exit, instead of a traceback."""

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


for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):  # __main__ runs the CLI; importing it here would too
        importlib.import_module(f"{__name__}.{_module.name}")
