"""One ``bench run``: resolve names, evaluate each model, write its report, update the leaderboard.

Kept apart from the CLI so suites, tests and torchrun workers run exactly the same code path.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from adapters import ADAPTERS
from adapters.base import Adapter
from harness.datasets import DATASETS
from harness.datasets.base import Dataset
from harness.errors import BenchError
from harness.leaderboard import update_leaderboard
from harness.provenance import provenance, utc_now
from harness.reports import make_run_id, write_report
from harness.runner import evaluate, sample_indices
from harness.tasks import TASKS
from harness.tasks.base import Task


@dataclass
class RunConfig:
    task: str
    dataset: str | None = None
    data_root: Path | None = None
    split: str | None = None
    models: tuple[str, ...] = ()
    checkpoint: Path | None = None
    trust_checkpoint: bool = False
    limit: int | None = None
    batch_size: int = 16
    device: str = "cpu"
    seed: int = 0
    reports_dir: Path = Path("reports")
    leaderboards_dir: Path = Path("leaderboards")


def default_models(task: str) -> list[str]:
    """In-repo models that run with no download: every adapter of the task marked ``runs_by_default``."""
    return [name for name, cls in ADAPTERS.items() if getattr(cls, "task", None) == task and getattr(cls, "runs_by_default", False)]


def open_dataset(task: Task, name: str | None, data_root: Path | None, split: str | None) -> Dataset:
    dataset = DATASETS.get(name or task.default_dataset)(data_root, split, task.name)
    if dataset.info.task != task.name:
        raise BenchError(f"dataset {dataset.info.name!r} is a {dataset.info.task} dataset, not {task.name}")
    return dataset


def build_adapter(name: str, task: Task, config: RunConfig) -> Adapter:
    cls = ADAPTERS.get(name)
    if getattr(cls, "task", None) != task.name:
        raise BenchError(f"model {name!r} is a {getattr(cls, 'task', '?')} model, not {task.name}")
    prefix, _, argument = name.partition(":")
    options = {"config": argument} if argument else {}
    return cls(name, checkpoint=config.checkpoint, device=config.device, trust_checkpoint=config.trust_checkpoint, options=options)


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_models(config: RunConfig, progress: Callable[[str, int], Callable[[int], None]] | None = None) -> list[dict[str, Any]]:
    """Evaluate every requested model; returns the written records (metrics.json contents)."""
    task: Task = TASKS.get(config.task)
    models = list(config.models) or default_models(task.name)
    if not models:
        raise BenchError(f"no models registered for task {task.name!r}")
    adapters = [build_adapter(name, task, config) for name in models]  # fail on a bad name before any work
    dataset = open_dataset(task, config.dataset, config.data_root, config.split)
    fingerprint = dataset.fingerprint()
    indices = sample_indices(dataset, config.limit)
    records = []
    for adapter in adapters:
        adapter.check_compatible(dataset.info)
        seed_everything(config.seed)
        started = utc_now()
        on_batch = progress(adapter.name, len(indices)) if progress else None
        evaluation = evaluate(task, dataset, adapter, indices=indices, batch_size=config.batch_size, on_batch=on_batch)
        info = adapter.info()
        run_id = make_run_id(task.name, dataset.info.name, adapter.name)
        record = {
            "run_id": run_id,
            "task": task.name,
            "dataset": {"name": dataset.info.name, "split": dataset.info.split, "root": str(dataset.info.root),
                        "fingerprint": fingerprint, "size": len(dataset)},
            "model": {"name": adapter.name, "fingerprint": adapter.fingerprint(),
                      "checkpoint": str(adapter.weights_file()) if adapter.weights_file() else None,
                      "input_size": info.input_size, "parameters": info.parameters},
            "limit": config.limit,
            "samples": evaluation.samples,
            "metrics": evaluation.result.metrics,
            "higher_is_better": {name: task.higher_is_better(name) for name in evaluation.result.metrics},
            "per_class": evaluation.result.per_class,
            "curves": evaluation.result.curves,
            "settings": evaluation.result.settings,
            "throughput": evaluation.throughput,
            "provenance": provenance(config.device, config.seed),
            "started_utc": started,
            "finished_utc": utc_now(),
        }
        write_report(config.reports_dir / run_id, record, evaluation.records)
        if config.limit is None:
            update_leaderboard(config.leaderboards_dir, task.name, record, task.leaderboard_columns, task.headline,
                               task.higher_is_better(task.headline))
        record["run_dir"] = str(config.reports_dir / run_id)
        records.append(record)
    return records
