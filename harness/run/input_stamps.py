"""Per-sample stamps of the files a prediction was computed from, so the prediction cache serves a sample only
while the files it read are still the same bytes.

The cache directory is keyed by the ground truth (annotation files) and the data root, but images are not
ground truth: a mirrored image, a black image or a truncated file under the same annotations must be
predicted again.  Each stamp records ``[path, size, mtime_ns, ctime_ns, inode, sha256]`` of one input file.  Checking a
stamp costs one ``stat`` while those match (the ctime cannot be set back by ``cp -p`` or ``touch``); when they differ the bytes are hashed, so a touched but
identical file is still a hit and a changed file is a miss for that sample alone.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from harness.core.fingerprint import file_digest

#: a missing file is stamped so: it can never match an existing file, and a cached prediction made while it
#: was missing is not served once it appears
ABSENT = -1


def stamp_file(path: Path) -> list[Any]:
    path = Path(path)
    try:
        status = os.stat(path)
    except OSError:
        return [str(path), ABSENT, ABSENT, ABSENT, ABSENT, ""]
    return [str(path), *_status(status), file_digest(path)]


def _status(status: os.stat_result) -> list[int]:
    return [int(status.st_size), int(status.st_mtime_ns), int(status.st_ctime_ns), int(status.st_ino)]


def sample_files(sample: Any) -> list[Path]:
    """The files an adapter reads for ``sample``: its image(s)."""
    return [Path(p) for p in (getattr(sample, "image_path", None), getattr(sample, "image_path2", None))
            if p is not None]


def stamp_sample(sample: Any) -> list[list[Any]]:
    return [stamp_file(path) for path in sample_files(sample)]


def stamp_matches(stamp: Sequence[Any], path: Path) -> bool:
    """True when ``path`` still holds the bytes ``stamp`` recorded (stat first, hash only when stat moved)."""
    if len(stamp) != 6 or str(path) != stamp[0]:
        return False
    size, digest = stamp[1], stamp[5]
    try:
        status = os.stat(path)
    except OSError:
        return size == ABSENT
    if size == ABSENT or int(status.st_size) != size:
        return False
    if _status(status) == list(stamp[1:5]):
        return True
    try:
        return file_digest(path) == digest
    except OSError:
        return False


def sample_matches(stamps: Sequence[Sequence[Any]] | None, sample: Any) -> bool:
    files = sample_files(sample)
    if stamps is None:
        return not files  # a chunk written without stamps is trusted only for samples that read no file
    return len(stamps) == len(files) and all(stamp_matches(s, p) for s, p in zip(stamps, files))
