"""Where generated embedded datasets live, and how they get there without races.

Generation writes into a temporary sibling folder and renames it into place, so parallel test workers or an
interrupted generation never leave a half-written dataset that later runs would trust.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable


def cache_root() -> Path:
    """``$BENCH_CACHE``, else ``$XDG_CACHE_HOME/bench``, else ``~/.cache/bench``."""
    if os.environ.get("BENCH_CACHE"):
        return Path(os.environ["BENCH_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "bench"


def materialise(name: str, build: Callable[[Path], None]) -> Path:
    """Return ``cache_root()/name``, calling ``build(tmp_dir)`` first if it does not exist yet."""
    final = cache_root() / name
    if (final / ".complete").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        build(tmp)
        (tmp / ".complete").write_text("ok\n")
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / ".complete").is_file():  # a stale partial folder from a killed run: replace it
                shutil.rmtree(final, ignore_errors=True)
                os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
