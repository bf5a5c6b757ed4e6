"""kill -9 in the middle of a run, then resume: nothing lost, nothing partial left visible (issue 11, finding 8).

The child runs the toy task with a model that sleeps in every call; the parent waits until some prediction
chunks are cached, kills the child with SIGKILL, and runs again in-process.  Checked: the killed run's folder
is moved out of ``reports/`` (to ``reports/.partial/``), no ``.tmp`` file is left in the reports, the cache or
the leaderboards, every cached chunk decodes, the resumed run predicts only what was missing, and its numbers
equal those of an uninterrupted run.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from harness.io import safecodec
from harness.run.bench_run import RunConfig, run_models

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "scale"))  # the toy task (tests/scale/toyplugin.py) registers itself
import toyplugin  # noqa: E402,F401

CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[2])
    import toyplugin
    from pathlib import Path
    from harness.run.bench_run import RunConfig, run_models
    original = toyplugin.ToyLinear.predict
    def slow(self, samples):
        time.sleep(0.05)
        return original(self, samples)
    toyplugin.ToyLinear.predict = slow
    tmp = Path(sys.argv[1])
    run_models(RunConfig(task="toy", models=("toy-linear",), batch_size=4, reports_dir=tmp / "reports",
                         leaderboards_dir=tmp / "lb", cache_dir=tmp / "cache", bootstrap=20))
""")


def config(tmp: Path) -> RunConfig:
    return RunConfig(task="toy", models=("toy-linear",), batch_size=4, reports_dir=tmp / "reports",
                     leaderboards_dir=tmp / "lb", cache_dir=tmp / "cache", bootstrap=20)


def test_kill_9_then_resume_loses_nothing_and_leaves_nothing_partial(tmp_path):
    reference = run_models(replace(config(tmp_path / "reference")))[0]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(ROOT / "tests" / "scale")], env=env,
                             cwd=ROOT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((tmp_path / "cache").rglob("chunk-*.pred"))) < 3:
        assert child.poll() is None, "the child finished before it could be killed"
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    killed = [d for d in (tmp_path / "reports").iterdir() if d.is_dir()]
    assert killed and not any((d / "metrics.json").exists() for d in killed)  # it really died mid-run

    resumed = run_models(config(tmp_path))[0]
    assert resumed["throughput"]["cached_samples"] >= 3 * 4
    assert resumed["throughput"]["predicted_samples"] == resumed["samples"] - resumed["throughput"]["cached_samples"]
    assert resumed["metrics"] == reference["metrics"]
    visible = [d for d in (tmp_path / "reports").iterdir() if not d.name.startswith(".")]
    assert [d.name for d in visible] == [Path(resumed["run_dir"]).name]
    assert all((d / "metrics.json").is_file() for d in visible)
    assert sorted(p.name for p in (tmp_path / "reports" / ".partial").iterdir()) == sorted(d.name for d in killed)
    for folder in ("reports", "cache", "lb"):
        leftovers = [p for p in (tmp_path / folder).rglob("*.tmp*") if ".partial" not in p.parts]
        leftovers += [p for p in (tmp_path / folder).rglob(".tmp-*") if ".partial" not in p.parts]
        assert not leftovers, leftovers
    for chunk in (tmp_path / "cache").rglob("chunk-*.pred"):
        safecodec.loads(chunk)  # whole chunks or nothing
    table = pd.read_csv(tmp_path / "lb" / "toy.csv")
    assert list(table["model"]) == ["toy-linear"]
