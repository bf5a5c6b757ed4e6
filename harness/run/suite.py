"""``bench run --suite FILE.yaml``: a matrix of tasks x datasets x models, one report per entry, resumable.

::

    defaults:              # optional; any entry key, applied to every entry that does not set it
      batch_size: 16
    runs:
      - task: keypoints
        datasets: [coco]   # or ``dataset: coco``; default: the task's default dataset
        models: [heatmap, regression]   # or ``model:``; default: the task's in-repo models
        limit: 48
      - {task: keypoints, dataset: coco, data_root: /data/coco, split: val2017, model: heatmap}

An entry whose report already exists for the same model fingerprint (weights included), dataset fingerprint
and limit is skipped, so an interrupted suite picks up where it stopped; ``--force`` runs everything again.
The whole file is checked before anything runs, and every problem is a one-line error naming the file and entry.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from harness.core.errors import BenchError, DataError
from harness.core.run_record import RunRecord
from harness.io.yamlio import read_yaml

ENTRY_KEYS = {
    "task": str, "dataset": str, "datasets": list, "model": str, "models": list, "data_root": str, "split": str,
    "limit": int, "batch_size": int, "device": str, "seed": int, "checkpoint": str, "bootstrap": int,
}
TOP_KEYS = ("defaults", "runs")


@dataclass(frozen=True)
class SuiteEntry:
    where: str  # "runs[2]" (plus the model/dataset when an entry expands to several)
    task: str
    dataset: str | None
    model: str | None
    options: tuple[tuple[str, Any], ...]


def load_suite(path: Path) -> list[SuiteEntry]:
    path = Path(path)
    data = read_yaml(path, "suite file")
    if not isinstance(data, dict):
        raise DataError("expected a mapping with a 'runs' list", path)
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise DataError(f"unknown top-level key {unknown[0]!r} (allowed: {', '.join(TOP_KEYS)})", path)
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise DataError("'defaults' must be a mapping", path)
    _check_keys(defaults, "defaults", path)
    runs = data.get("runs")
    if not isinstance(runs, list) or not runs:
        raise DataError("expected a non-empty 'runs' list", path)
    entries: list[SuiteEntry] = []
    for index, raw in enumerate(runs):
        where = f"runs[{index}]"
        if not isinstance(raw, dict):
            raise DataError(f"{where}: expected a mapping, got {type(raw).__name__}", path)
        _check_keys(raw, where, path)
        entry = {**defaults, **raw}
        if "task" not in entry:
            raise DataError(f"{where}: missing task", path)
        datasets = _names(entry, "dataset", "datasets", where, path)
        models = _names(entry, "model", "models", where, path)
        options = tuple(sorted((k, v) for k, v in entry.items() if k not in ("task", "dataset", "datasets", "model", "models")))
        for dataset in datasets:
            for model in models:
                entries.append(SuiteEntry(where, entry["task"], dataset, model, options))
    _check_names(entries, path)
    return entries


def _check_keys(mapping: dict, where: str, path: Path) -> None:
    for key, value in mapping.items():
        if key not in ENTRY_KEYS:
            raise DataError(f"{where}: unknown key {key!r} (allowed: {', '.join(sorted(ENTRY_KEYS))})", path)
        expected = ENTRY_KEYS[key]
        if value is None and key in ("limit", "dataset", "model", "data_root", "split", "checkpoint"):
            continue
        if not isinstance(value, expected) or isinstance(value, bool):
            raise DataError(f"{where}: {key} must be {'a list' if expected is list else 'an integer' if expected is int else 'a string'}, got {value!r}", path)
        if isinstance(value, list) and (not value or not all(isinstance(item, str) for item in value)):
            raise DataError(f"{where}: {key} must be a non-empty list of names", path)
        if isinstance(value, int) and key != "seed" and value < (0 if key == "bootstrap" else 1):
            raise DataError(f"{where}: {key} must be positive, got {value}", path)


def _names(entry: dict, single: str, plural: str, where: str, path: Path) -> list[str | None]:
    if single in entry and plural in entry:
        raise DataError(f"{where}: give either {single} or {plural}, not both", path)
    if plural in entry:
        return list(entry[plural])
    return [entry.get(single)]


def _check_names(entries: list[SuiteEntry], path: Path) -> None:
    """Unknown task, dataset or model names fail before the first run, not an hour into the suite."""
    from harness.core.catalog import ADAPTERS
    from harness.datasets import DATASETS
    from harness.tasks import TASKS

    for entry in entries:
        try:
            TASKS.get(entry.task)
            if entry.dataset is not None:
                DATASETS.get(entry.dataset)
            if entry.model is not None:
                cls = ADAPTERS.get(entry.model)
                if getattr(cls, "task", None) != entry.task:
                    raise BenchError(f"model {entry.model!r} is a {getattr(cls, 'task', '?')} model, not {entry.task}")
        except BenchError as exc:
            raise DataError(f"{entry.where}: {exc}", path) from None


def entry_config(entry: SuiteEntry, base: Any) -> Any:
    """The ``RunConfig`` for one entry: the command line's settings, overridden by the entry's."""
    options = dict(entry.options)
    changes: dict[str, Any] = {"task": entry.task, "dataset": entry.dataset,
                               "models": (entry.model,) if entry.model else ()}
    for key in ("limit", "batch_size", "device", "seed", "split", "bootstrap"):
        if key in options:
            changes[key] = options[key]
    for key in ("data_root", "checkpoint"):
        if key in options:
            changes[key] = None if options[key] is None else Path(options[key])
    return replace(base, **changes)


def run_suite(path: Path, base: Any, force: bool = False,
              progress: Callable[[str, int], Callable[[int], None]] | None = None,
              announce: Callable[[SuiteEntry, int, int], None] | None = None) -> list[RunRecord]:
    """Run every entry (``base`` is a ``RunConfig`` carrying directories and CLI defaults); the records of the
    runs, typed (an entry whose report was kept has ``skipped`` set)."""
    from harness.run.bench_run import run_models

    entries = load_suite(path)
    records: list[RunRecord] = []
    for number, entry in enumerate(entries, start=1):
        if announce is not None:
            announce(entry, number, len(entries))
        config = replace(entry_config(entry, base), skip_existing=not force)
        records.extend(RunRecord.from_dict(record) for record in run_models(config, progress=progress))
    return records
