"""What every file evaluator shares: the request, the evaluator record, and file matching with one-line errors.

Matching is strict on purpose: a ground truth without a prediction, or a prediction that matches nothing,
usually means the wrong folder or split, and silently scoring the overlap would publish a number for a
different dataset.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

from harness.core.errors import BenchError, DataError, PredictionError
from harness.core.metric import MetricResult


T = TypeVar("T")
Tracker = Callable[[Sequence[Any], str], Iterable[Any]]


@dataclass(frozen=True)
class EvalRequest:
    """Everything ``bench eval`` was told; ``options`` holds the format-specific flags that were given.

    ``tracker`` wraps the per-file loop of streaming evaluators (the CLI passes a progress bar).
    """

    task: str
    gt: Path
    pred: Path
    dataset: str | None = None
    dialect: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    tracker: Tracker | None = None

    def option(self, name: str, default: Any = None) -> Any:
        value = self.options.get(name)
        return default if value is None else value

    def track(self, items: Sequence[T], label: str) -> Iterable[T]:
        return items if self.tracker is None else self.tracker(items, label)


@dataclass(frozen=True)
class FileEvaluator:
    """A scorer for one task: ``run`` turns a request into a ``MetricResult`` whose settings name the convention.

    ``options`` lists the format-specific flags it understands (the CLI refuses the others instead of ignoring
    them), ``datasets`` its presets and ``dialects`` the conventions it can reproduce.
    """

    run: Callable[[EvalRequest], MetricResult]
    options: frozenset[str] = frozenset()
    datasets: tuple[str, ...] = ()
    dialects: tuple[str, ...] = ()
    summary: str = ""

    def check(self, request: EvalRequest) -> None:
        given = (name for name, value in request.options.items() if value is not None)
        unused = sorted(name for name in given if name not in self.options)
        if unused:
            flags = ", ".join("--" + name.replace("_", "-") for name in unused)
            raise BenchError(f"task {request.task!r} does not use {flags}")
        if request.dataset is not None and request.dataset not in self.datasets:
            known = ", ".join(self.datasets) or "none"
            raise BenchError(f"task {request.task!r} has no dataset preset {request.dataset!r} (known: {known})")
        if request.dialect is not None and self.dialects and request.dialect not in self.dialects:
            known = ", ".join(self.dialects)
            raise BenchError(f"task {request.task!r} has no dialect {request.dialect!r} (known: {known})")


# -------------------------------------------------------------------------------------------- paths
def require_file(path: Path, role: str, error: type[BenchError] = DataError) -> Path:
    if not path.exists():
        raise error(f"{role} file not found", path)
    if not path.is_file():
        raise error(f"{role} must be a file, got a folder", path)
    return path


def require_dir(path: Path, role: str, error: type[BenchError] = DataError) -> Path:
    if not path.exists():
        raise error(f"{role} folder not found", path)
    if not path.is_dir():
        raise error(f"{role} must be a folder, got a file", path)
    return path


def index_files(
    files: Iterable[Path], key: Callable[[Path], str | None], role: str, error: type[BenchError]
) -> dict[str, Path]:
    """``{key(path): path}``; two files with one key are an error naming both.  ``key`` may return None to skip."""
    index: dict[str, Path] = {}
    for path in sorted(files):
        name = key(path)
        if name is None:
            continue
        if name in index:
            raise error(f"second {role} file for item {name!r} (the first is {index[name]})", path)
        index[name] = path
    return index


def pair_files(
    gt: dict[str, Path], pred: dict[str, Path], gt_root: Path, expected: Callable[[str], str]
) -> list[tuple[str, Path, Path]]:
    """(key, gt file, prediction file) for every key, or an error naming the first unmatched file.

    ``expected(key)`` says where the prediction of a ground truth should be, for the message.
    """
    if not gt:
        raise DataError("no ground-truth files found", gt_root)
    for key, path in pred.items():
        if key not in gt:
            raise PredictionError(f"prediction for item {key!r} has no ground truth in {gt_root}", path)
    for key, path in gt.items():
        if key not in pred:
            raise PredictionError(f"ground truth {key!r} has no prediction (expected {expected(key)})", path)
    return [(key, gt[key], pred[key]) for key in sorted(gt)]


# ------------------------------------------------------------------------------------------- output
def json_safe(value: Any) -> Any:
    """NaN and infinities become null so the written file is strict JSON (NaN marks an undefined score)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return json_safe(value.item())
    if hasattr(value, "tolist"):
        return json_safe(value.tolist())
    return value
