"""Running `bench datasets check` in-process and reading its verdict."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from harness.cli import main


@dataclass
class CheckResult:
    exit_code: int
    output: str
    problems: list[str]


def run_check(dataset: str, data_root: Path | None = None, split: str | None = None,
              task: str | None = None) -> CheckResult:
    args = ["datasets", "check", "--dataset", dataset]
    if data_root is not None:
        args += ["--data-root", str(data_root)]
    if split is not None:
        args += ["--split", split]
    if task is not None:
        args += ["--task", task]
    result = CliRunner().invoke(main, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    problems = [line[len("problem: "):] for line in result.output.splitlines() if line.startswith("problem: ")]
    return CheckResult(result.exit_code, result.output, problems)


def assert_clean(result: CheckResult) -> None:
    assert result.exit_code == 0, result.output
    assert result.problems == [] and "has no problems" in result.output


def assert_problems(result: CheckResult, *expected: str) -> None:
    """Each expected fragment is in its own problem line; nothing else is reported; exit code 1."""
    assert result.exit_code == 1, result.output
    assert len(result.problems) == len(expected), result.output
    for fragment in expected:
        assert sum(fragment in p for p in result.problems) == 1, (fragment, result.output)
    assert f"{len(expected)} problem" in result.output


def copy_tree(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target
