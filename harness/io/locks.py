"""File locks around read-modify-write updates of shared files (leaderboards, gate baselines, cache chunks).

Writes are atomic (temp file + rename), but an update is read -> change -> write: two processes that read the
same old table each write it back with only their own row, and one row is lost while both exit 0.  A lock
file beside the target (``<file>.lock``, via ``filelock``) makes the whole update one step.

``BENCH_LOCK_TEST_DELAY`` (seconds, tests only) sleeps inside the locked section, after the read and before
the write, so a test can force the race: with the lock, concurrent updates serialise; without it (the test
swaps ``locked`` for a no-op), rows are lost.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from harness.core.errors import BenchError

#: seconds to wait for another process's update before giving up with a one-line error
LOCK_TIMEOUT = float(os.environ.get("BENCH_LOCK_TIMEOUT", "600"))


def lock_path(target: str | Path) -> Path:
    target = Path(target)
    return target.with_name(f".{target.name}.lock") if not target.name.endswith(".lock") else target


@contextmanager
def locked(target: str | Path, timeout: float | None = None) -> Iterator[None]:
    """Hold an exclusive lock for ``target`` (a file or a directory's lock file) for the block."""
    from filelock import FileLock, Timeout

    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path), timeout=LOCK_TIMEOUT if timeout is None else timeout, mode=0o644)
    try:
        lock.acquire()
    except Timeout:
        raise BenchError(f"another bench process holds the lock {path.name} (waited {lock.timeout:.0f} s); "
                         "remove it if no bench process is running", path.parent) from None
    try:
        yield
    finally:
        lock.release()


def race_window() -> None:
    """Sleep ``$BENCH_LOCK_TEST_DELAY`` seconds: called between the read and the write of an update."""
    delay = os.environ.get("BENCH_LOCK_TEST_DELAY")
    if delay:
        time.sleep(float(delay))
