"""Installed plugins through `bench run`: the example package (examples/bench-plugin-example, installed by
`make test-env`), and a half-written plugin whose broken module breaks only its own name."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def bench(args: list[str], tmp_path: Path, extra_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", BENCH_CACHE=str(tmp_path / "cache"))
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (REPO, extra_path) if p is not None)
    return subprocess.run([sys.executable, "-m", "harness.cli", *args, "--reports-dir", str(tmp_path / "reports")],
                          capture_output=True, text=True, env=env, timeout=600)


def test_the_example_plugin_is_installed_and_declares_every_registry() -> None:
    try:
        dist = metadata.distribution("bench-plugin-example")
    except metadata.PackageNotFoundError:
        pytest.fail("bench-plugin-example is not installed: run `make test-env` "
                    "(pip install -e examples/bench-plugin-example)")
    groups = {ep.group for ep in dist.entry_points}
    assert groups == {"bench.tasks", "bench.datasets", "bench.metrics", "bench.submissions", "bench.adapters"}


def test_bench_run_uses_the_installed_plugin(tmp_path: Path) -> None:
    done = bench(["run", "--task", "toy", "--limit", "12"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "toy-linear" in done.stdout and "accuracy" in done.stdout
    (report,) = (tmp_path / "reports").glob("*_toy_toy-set_toy-linear")
    assert (report / "metrics.json").is_file() and (report / "predictions.json").is_file()  # the plugin's format


@pytest.fixture
def half_written_plugin(tmp_path: Path) -> Path:
    """A distribution ``halfplugin`` with one working model and one module that does not import."""
    site = tmp_path / "site"
    package = site / "halfplugin"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "fine.py").write_text(textwrap.dedent("""
        from bench_plugin_example.toy import ToyLinear

        class Fine(ToyLinear):
            runs_by_default = False
    """))
    (package / "unfinished.py").write_text(textwrap.dedent("""
        from bench_plugin_example.toy import ToyLinear
        from bench_plugin_example.toy import NotWrittenYet  # the half-written part

        class Unfinished(ToyLinear):
            pass
    """))
    dist = site / "halfplugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: halfplugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[bench.adapters]\nhalf-fine = halfplugin.fine:Fine\nhalf-unfinished = halfplugin.unfinished:Unfinished\n")
    return site


def test_a_half_written_plugin_module_breaks_only_its_own_name(tmp_path: Path, half_written_plugin: Path) -> None:
    fine = bench(["run", "--task", "toy", "--model", "half-fine", "--model", "toy-linear", "--limit", "6"],
                 tmp_path, half_written_plugin)
    assert fine.returncode == 0, fine.stderr
    assert "half-fine" in fine.stdout and "toy-linear" in fine.stdout

    broken = bench(["run", "--task", "toy", "--model", "half-unfinished", "--limit", "6"], tmp_path, half_written_plugin)
    assert broken.returncode == 2
    lines = broken.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in broken.stderr
    assert lines[0].startswith("error: model 'half-unfinished' from plugin halfplugin")
    assert "ImportError: cannot import name 'NotWrittenYet'" in lines[0] and "unfinished.py:3" in lines[0]

    # the default model list loads every model of the task: the broken one is skipped with a warning, not fatal
    default = bench(["run", "--task", "toy", "--limit", "6"], tmp_path, half_written_plugin)
    assert default.returncode == 0, default.stderr
    assert "toy-linear" in default.stdout and "half-unfinished" in default.stderr


def test_a_model_from_a_file(tmp_path: Path) -> None:
    file = tmp_path / "my_model.py"
    file.write_text("from bench_plugin_example.toy import ToyLinear\n\nclass Mine(ToyLinear):\n    pass\n")
    done = bench(["run", "--task", "toy", "--model", f"{file}:Mine", "--limit", "6"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "my_model.py:Mine" in done.stdout
