"""Run folders that a killed process left behind: marked while a run is in flight, moved out of sight after.

A run writes its submission files first and ``metrics.json`` last, so a folder without ``metrics.json`` is an
interrupted run.  Left in ``reports/`` it stays forever, with ``.tmp`` files from atomic writes that never got
renamed.  Each run folder gets a ``.incomplete`` marker (process id and host) when it is created and loses it
once ``metrics.json`` is in place; the next ``bench run`` on the same reports folder moves every folder whose
marker names a process that is no longer running on this host (or that has no ``metrics.json`` and no marker)
to ``<reports>/.partial/``, and deletes stray ``.tmp`` files of finished runs.  Nothing is deleted from a
folder a live process is writing.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

MARKER = ".incomplete"
PARTIAL = ".partial"
METRICS = "metrics.json"


def mark_started(run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / MARKER).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                              "started": time.time()}))


def mark_finished(run_dir: Path) -> None:
    (run_dir / MARKER).unlink(missing_ok=True)


def _alive(marker: Path) -> bool:
    try:
        owner = json.loads(marker.read_text())
        pid, host = int(owner["pid"]), str(owner["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if host != socket.gethostname():
        return True  # another machine's run: not ours to judge
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_runs(reports_dir: Path) -> list[Path]:
    """Run folders without ``metrics.json`` whose writer is gone."""
    if not Path(reports_dir).is_dir():
        return []
    stale = []
    for folder in sorted(Path(reports_dir).iterdir()):
        if not folder.is_dir() or folder.name.startswith(".") or (folder / METRICS).is_file():
            continue
        marker = folder / MARKER
        if not marker.is_file() or not _alive(marker):
            stale.append(folder)
    return stale


def clean_stale_runs(reports_dir: Path) -> list[Path]:
    """Move stale run folders to ``<reports>/.partial/`` and delete leftover ``.tmp`` files of finished runs;
    returns the new places of the moved folders."""
    reports_dir = Path(reports_dir)
    moved = []
    for folder in stale_runs(reports_dir):
        target = reports_dir / PARTIAL / folder.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        os.replace(folder, target)
        moved.append(target)
    if reports_dir.is_dir():
        for finished in reports_dir.glob(f"*/{METRICS}"):
            if (finished.parent / MARKER).is_file() and _alive(finished.parent / MARKER):
                continue
            for leftover in finished.parent.rglob(".*.tmp"):
                leftover.unlink(missing_ok=True)
    return moved
