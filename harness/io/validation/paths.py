"""Paths named inside annotation files must stay inside the dataset's folder.

An annotation file is data, not configuration: a ``file_name`` of ``../../x.jpg``, an absolute path or a
symlink pointing out of the data root would make bench read (and a report show, a cache key hash) files the
dataset does not contain.  ``inside`` resolves the path with symlinks followed and refuses it with a one-line
``DataError`` naming the annotation file and the entry unless it lies under the resolved root.
"""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from harness.core.errors import DataError


def inside(root: str | Path, relative: Any, annotation_file: str | Path | None, where: str) -> Path:
    """``root / relative`` when it resolves (symlinks followed) inside ``root``; DataError otherwise."""
    if not isinstance(relative, str) or not relative or "\0" in relative:
        raise DataError(f"{where}: file name must be a non-empty string, got {relative!r}", annotation_file)
    if PurePosixPath(relative).is_absolute() or PureWindowsPath(relative).is_absolute() or relative.startswith("~"):
        raise DataError(f"{where}: file name {relative!r} is absolute; it must be relative to {root}",
                        annotation_file)
    base = os.path.realpath(os.fspath(root))
    target = os.path.realpath(os.path.join(base, relative))
    if os.path.commonpath([base, target]) != base:
        raise DataError(f"{where}: file name {relative!r} resolves outside the data folder {root}",
                        annotation_file)
    return Path(root) / relative
