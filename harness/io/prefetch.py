"""Files read and parsed on another thread while the process is still starting up.

Why: ``bench eval`` on COCO files spends its first ~0.1 s importing (click, numpy, our modules) on one core while
the second core idles, and a whole-process race counts that time.  The compiled COCO parsers need neither numpy
nor the GIL, so the command line starts them on the two input files first thing (``harness.cli.early``) and the
evaluator takes what they made instead of reading the file again.

A prefetched parse is a cache and never decides anything: ``take`` hands it out only for the same kind and path,
and only when the file still has the identity (device, inode, size, modification time) it had when it was read;
otherwise, or when reading or parsing failed, the caller gets ``MISSING`` and reads the file itself, as it would
have without the prefetch.  Standard library only: this runs before anything else is imported.
"""
from __future__ import annotations

import os
import stat
import threading
from typing import Any, Callable

#: what ``take`` returns when nothing usable was prefetched (a parse may itself return None: "not my format")
MISSING: Any = object()

_jobs: dict[tuple[str, str], "_Job"] = {}


def _identity(stat: os.stat_result) -> tuple[int, int, int, int]:
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def _key(kind: str, path: str | os.PathLike[str]) -> tuple[str, str]:
    """Paths compare absolute and normalised ("./a.json" on the command line is ``Path("a.json")`` to click);
    ``take`` then checks that the caller's path is the same file."""
    return kind, os.path.abspath(os.fspath(path))


class _Job:
    """One file read and parsed on a daemon thread (a process that exits early does not wait for it)."""

    def __init__(self, path: str, parse: Callable[[bytes], Any]) -> None:
        self.path = path
        self.value: Any = MISSING
        self.identity: tuple[int, int, int, int] | None = None
        self.thread = threading.Thread(target=self._run, args=(parse,), name=f"prefetch {path}", daemon=True)

    def _run(self, parse: Callable[[bytes], Any]) -> None:
        try:
            # regular files only: reading a pipe or a device (/dev/stdin) would take its bytes from the caller
            if not stat.S_ISREG(os.stat(self.path).st_mode):
                return
            with open(self.path, "rb") as handle:
                identity = _identity(os.fstat(handle.fileno()))
                if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                    return
                data = handle.read()
            value = parse(data)
        except Exception:  # noqa: BLE001 - the caller reads the file itself and reports any problem
            return
        self.value, self.identity = value, identity


def start(kind: str, path: str | os.PathLike[str], parse: Callable[[bytes], Any]) -> None:
    """Read ``path`` and run ``parse`` on its bytes on a new thread; ``take(kind, path)`` collects the result."""
    key = _key(kind, path)
    if key in _jobs:
        return
    job = _jobs[key] = _Job(os.fspath(path), parse)
    job.thread.start()


def started(kind: str, path: str | os.PathLike[str]) -> bool:
    """Whether a prefetch of this kind and path is under way or done and not yet taken (does not wait)."""
    return _key(kind, path) in _jobs


def take(kind: str, path: str | os.PathLike[str]) -> Any:
    """The prefetched parse of ``path`` (waiting for it), or ``MISSING``: none was started for this kind and path,
    reading or parsing failed, or the file has changed since it was read.  A parse is handed out once."""
    job = _jobs.pop(_key(kind, path), None)
    if job is None:
        return MISSING
    job.thread.join()
    if job.identity is None:
        return MISSING
    try:  # the caller's own spelling of the path: the very file it would open, as it is now
        if _identity(os.stat(path)) != job.identity:
            return MISSING
    except OSError:
        return MISSING
    return job.value
