"""Concurrent leaderboard updates keep every row (issue 11, finding 2: 6 processes lost rows in 20/20 rounds).

8 processes with distinct models wait at a file barrier, then update one leaderboard; ``BENCH_LOCK_TEST_DELAY``
holds each update open between its read and its write, so without the lock every process reads the same old
table.  The same test with ``harness.publish.leaderboard.locked`` swapped for a no-op must lose rows: that proves the
race is really forced and that the lock is what prevents it.
"""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 8

WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import harness.publish.leaderboard as leaderboard
    if sys.argv[4] == "nolock":
        from contextlib import nullcontext
        leaderboard.locked = lambda path: nullcontext()
    from tests.core.test_gate_and_leaderboard import record
    directory, barrier, model = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    (barrier / f"ready-{model}").touch()
    while len(list(barrier.glob("ready-*"))) < int(sys.argv[5]):
        time.sleep(0.01)
    leaderboard.update_leaderboard(directory, "keypoints", record(model, 0.5, "1"), ("AP",), "AP", True)
""")


def race(tmp_path: Path, mode: str) -> pd.DataFrame:
    directory, barrier = tmp_path / f"lb-{mode}", tmp_path / f"barrier-{mode}"
    barrier.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_LOCK_TEST_DELAY": "0.5", "OMP_NUM_THREADS": "1"}
    processes = [subprocess.Popen([sys.executable, "-c", WORKER, str(directory), str(barrier), f"model{i}", mode,
                                   str(WORKERS)], env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
                 for i in range(WORKERS)]
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    return pd.read_csv(directory / "keypoints.csv")


def test_eight_concurrent_updates_keep_every_row_and_files_are_0644(tmp_path):
    table = race(tmp_path, "lock")
    assert sorted(table["model"]) == [f"model{i}" for i in range(WORKERS)]
    for name in ("keypoints.csv", "keypoints.html"):
        assert stat.S_IMODE(os.stat(tmp_path / "lb-lock" / name).st_mode) == 0o644


def test_without_the_lock_the_forced_race_loses_rows(tmp_path):
    """The control: proves the barrier + delay really race (every process exits 0, rows are lost)."""
    table = race(tmp_path, "nolock")
    assert len(table) < WORKERS


def test_gate_update_waits_for_the_baselines_lock_and_names_it(tmp_path, monkeypatch):
    """``bench gate --update`` is a read-modify-write of baselines.yaml: it takes the same lock, and a holder
    that never lets go gives a one-line error naming the lock, not a hang or a lost update."""
    import yaml
    from filelock import FileLock

    from harness.core.errors import BenchError
    from harness.publish.gate import update_baselines
    from harness.io import locks
    from harness.io.locks import lock_path

    path = tmp_path / "baselines.yaml"
    path.write_text(yaml.safe_dump({"baselines": []}))
    monkeypatch.setattr(locks, "LOCK_TIMEOUT", 0.3)
    with FileLock(str(lock_path(path))):
        with pytest.raises(BenchError, match=r"another bench process holds the lock \.baselines\.yaml\.lock"):
            update_baselines(path, tmp_path / "reports")
    assert update_baselines(path, tmp_path / "reports") == []
