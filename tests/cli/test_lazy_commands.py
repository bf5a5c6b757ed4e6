"""The CLI imports a subcommand's module only when that command runs, so its table of commands must name every
command the modules register, each with the module that registers it."""
from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import harness.cli
from harness.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[2]


def test_command_table_matches_what_the_modules_register() -> None:
    for module in pkgutil.iter_modules(harness.cli.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"harness.cli.{module.name}")
    registered = {name: getattr(command.callback, "__module__", None) for name, command in main.commands.items()}
    assert registered == COMMANDS


def test_running_one_command_imports_no_other_command_module() -> None:
    probe = """
import json, runpy, sys
sys.argv = ["bench", "tasks", "list"]
try:
    runpy.run_module("harness.cli", run_name="__main__")
except SystemExit as exc:
    assert not exc.code, exc.code
print(json.dumps(sorted(m for m in sys.modules if m.startswith("harness.cli."))))
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, check=True)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert loaded & set(COMMANDS.values()) == {"harness.cli.discover"}


def test_help_lists_every_command() -> None:
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == set(COMMANDS)
