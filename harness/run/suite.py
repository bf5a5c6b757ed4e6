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

Suites survive their entries: each entry runs in its own process (``harness.run.suite_entry``), so a crash
or a hang costs that entry only.  ``timeout: SECONDS`` (or ``--entry-timeout`` for every entry) kills an entry
that runs longer, with its whole process group; an entry out of memory is retried in its process at half the
batch size, down to 1.  The suite ends with one ``EntryOutcome`` per entry (ok / skipped / failed / timeout /
crashed, with the reason and the batch size it ran at); any entry not ok or skipped fails the suite.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from harness.core.errors import BenchError, DataError
from harness.core.run_record import RunRecord
from harness.io.yamlio import read_yaml
from harness.run.precision import PRECISIONS

ENTRY_KEYS: dict[str, type | tuple[type, ...]] = {
    "task": str, "dataset": str, "datasets": list, "model": str, "models": list, "data_root": str, "split": str,
    "limit": int, "batch_size": int, "device": str, "seed": int, "checkpoint": str, "bootstrap": int,
    "precision": str, "timeout": (int, float),
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
        if value is None and key in ("limit", "dataset", "model", "data_root", "split", "checkpoint", "timeout"):
            continue
        if not isinstance(value, expected) or isinstance(value, bool):
            kind = ('a list' if expected is list else 'an integer' if expected is int else 'a string' if expected is str
                    else 'a number of seconds')
            raise DataError(f"{where}: {key} must be {kind}, got {value!r}", path)
        if isinstance(value, list) and (not value or not all(isinstance(item, str) for item in value)):
            raise DataError(f"{where}: {key} must be a non-empty list of names", path)
        if isinstance(value, (int, float)) and key != "seed" and value < (0 if key == "bootstrap" else 1):
            raise DataError(f"{where}: {key} must be positive, got {value}", path)
        if key == "precision" and value not in PRECISIONS:
            raise DataError(f"{where}: precision must be one of {', '.join(PRECISIONS)}, got {value!r}", path)


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
    for key in ("limit", "batch_size", "device", "seed", "split", "bootstrap", "precision"):
        if key in options:
            changes[key] = options[key]
    for key in ("data_root", "checkpoint"):
        if key in options:
            changes[key] = None if options[key] is None else Path(options[key])
    return replace(base, **changes)


class SuiteFailure(BenchError):
    """Some suite entries failed, timed out or crashed (the others ran; the summary says which and why)."""

    exit_code = 1


@dataclass
class EntryOutcome:
    entry: SuiteEntry
    #: ok | skipped (its report exists) | failed | timeout | crashed
    status: str
    reason: str = ""
    seconds: float = 0.0
    #: the batch size the entry finally ran at (smaller than asked after out-of-memory back-off)
    batch_size: int | None = None
    #: each try: {"batch_size": n, "error": first line or None}
    attempts: list[dict[str, Any]] = field(default_factory=list)
    log: Path | None = None
    #: the records the entry wrote or kept (metrics.json contents)
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def failed(self) -> bool:
        return self.status not in ("ok", "skipped")


@dataclass
class SuiteResult:
    records: list[RunRecord]
    outcomes: list[EntryOutcome]

    @property
    def failures(self) -> list[EntryOutcome]:
        return [outcome for outcome in self.outcomes if outcome.failed]


def run_suite(path: Path, base: Any, force: bool = False, entry_timeout: float | None = None,
              announce: Callable[[SuiteEntry, int, int], None] | None = None,
              finished: Callable[[EntryOutcome], None] | None = None,
              progress: Callable[[str, int], Callable[[int], None]] | None = None) -> SuiteResult:
    """Run every entry in its own process (``base`` is a ``RunConfig`` carrying directories and CLI defaults).

    ``entry_timeout`` applies to entries without their own ``timeout:``.  Never raises for a failing entry:
    the caller reads ``SuiteResult.failures``.  Under torchrun the ranks run each entry together in their own
    processes (a child per rank would need a process group of its own): an entry's error, which every rank
    raises together, still costs only that entry, but a hard crash or hang ends the suite and ``timeout`` is
    not applied.
    """
    from harness.run import distributed

    entries = load_suite(path)
    in_process = distributed.context().world_size > 1
    logs = None if in_process else Path(tempfile.mkdtemp(prefix="bench-suite-"))
    records: list[RunRecord] = []
    outcomes = []
    for number, entry in enumerate(entries, start=1):
        if announce is not None:
            announce(entry, number, len(entries))
        config = replace(entry_config(entry, base), skip_existing=not force)
        timeout = dict(entry.options).get("timeout", entry_timeout)
        if logs is None:
            outcome = run_entry_in_process(entry, config, progress)
        else:
            outcome = run_entry_process(entry, config, timeout, logs / f"{number:03d}")
        records.extend(RunRecord.from_dict(record) for record in outcome.records)
        outcomes.append(outcome)
        if finished is not None:
            finished(outcome)
    if logs is not None and not any(outcome.failed for outcome in outcomes):
        shutil.rmtree(logs, ignore_errors=True)  # the logs are kept only to explain a failure
    return SuiteResult(records, outcomes)


def _preload_modules(entry: SuiteEntry) -> list[str]:
    """The module that registered the entry's model, so the child finds models registered on import."""
    from harness.core.catalog import ADAPTERS

    if entry.model is None:
        return []
    module = getattr(ADAPTERS.get(entry.model), "__module__", "")
    return [module] if module and not module.startswith("harness.") else []


def run_entry_in_process(entry: SuiteEntry, config: Any,
                         progress: Callable[[str, int], Callable[[int], None]] | None) -> EntryOutcome:
    """Under torchrun: ``run_models`` here, on every rank; a failure (raised on every rank alike by the
    runner's collective error check) becomes this entry's outcome."""
    import traceback

    from harness.run.bench_run import run_models
    from harness.run.suite_entry import first_line

    started = time.monotonic()
    try:
        records = run_models(config, progress=progress)
    except BenchError as exc:
        return EntryOutcome(entry, "failed", str(exc).splitlines()[0], time.monotonic() - started, config.batch_size)
    except Exception as exc:  # a bug: keep its traceback in the output, and go on with the next entry
        traceback.print_exc()
        return EntryOutcome(entry, "failed", first_line(exc), time.monotonic() - started, config.batch_size)
    skipped = bool(records) and all(record.get("skipped") for record in records)
    return EntryOutcome(entry, "skipped" if skipped else "ok", "report exists (--force runs it again)" if skipped else "",
                        time.monotonic() - started, config.batch_size, records=records)


def run_entry_process(entry: SuiteEntry, config: Any, timeout: float | None, stem: Path) -> EntryOutcome:
    """``python -m harness.run.suite_entry`` for one entry; its output goes to ``<stem>.log``."""
    from harness.io.jsonio import atomic_write_json, read_json
    from harness.run.suite_entry import config_to_json

    spec, result_path, log = stem.with_suffix(".spec.json"), stem.with_suffix(".result.json"), stem.with_suffix(".log")
    atomic_write_json(spec, {"config": config_to_json(config), "preload": _preload_modules(entry)})
    # the child imports what this process imports (plugins and test models found through sys.path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    started = time.monotonic()
    with open(log, "wb") as output:
        child = subprocess.Popen([sys.executable, "-m", "harness.run.suite_entry", str(spec), str(result_path)],
                                 stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            code = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(child)
            return EntryOutcome(entry, "timeout", f"killed after {timeout:g} s (timeout)", time.monotonic() - started,
                                config.batch_size, log=log)
    seconds = time.monotonic() - started
    if not result_path.is_file():
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        return EntryOutcome(entry, "crashed", f"process ended without a result ({how}){_last_line(log)}", seconds,
                            config.batch_size, log=log)
    result = read_json(result_path)
    records = list(result.get("records") or [])
    attempts = list(result.get("attempts") or [])
    if result["status"] != "ok":
        return EntryOutcome(entry, "failed", str(result.get("error") or "failed"), seconds,
                            result.get("batch_size"), attempts, log)
    skipped = bool(records) and all(record.get("skipped") for record in records)
    halved = [a["batch_size"] for a in attempts if a.get("error")]
    reason = "report exists (--force runs it again)" if skipped else ""
    if halved:
        reason = f"out of memory at batch size {', '.join(map(str, halved))}; ran at {result.get('batch_size')}"
    return EntryOutcome(entry, "skipped" if skipped else "ok", reason, seconds, result.get("batch_size"), attempts,
                        log, records)


def _kill_group(child: subprocess.Popen) -> None:
    """SIGTERM the entry's process group (its DataLoader workers too), SIGKILL if it lingers."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return f": {lines[-1][:300]}" if lines else ""
