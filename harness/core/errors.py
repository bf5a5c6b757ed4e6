"""User-facing errors.

Every problem a user can cause (bad paths, malformed files, unknown names, bad predictions) is raised as a
``BenchError``; the CLI prints its message on one line and exits non-zero.  Anything else escaping is a bug in
the harness, so it keeps its traceback.
"""
from __future__ import annotations

from pathlib import Path


class BenchError(Exception):
    """A problem with the user's input, described in one line that names the file and the item."""

    exit_code = 2

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = str(path) if path is not None else None
        super().__init__(f"{self.path}: {message}" if self.path else message)


class DataError(BenchError):
    """A dataset or annotation file that cannot be read as its layout promises."""


class PredictionError(BenchError):
    """A prediction that cannot be scored honestly (unknown image, NaN score, bad geometry)."""


class UnknownNameError(BenchError):
    """A task, dataset, model or metric name that is not registered."""


class GateFailure(BenchError):
    """One or more metrics regressed beyond their tolerance."""

    exit_code = 1
