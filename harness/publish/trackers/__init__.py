"""``bench run --log wandb|mlflow|tensorboard``: a finished run's metrics, per-class tables and gallery, sent to an
experiment tracker.

One module per tracker in this package, found by name (``wandb.py`` serves ``--log wandb``): adding a tracker
is adding one file with ``PACKAGE`` (the module it imports), ``INSTALL`` (what to pip install),
``log(export) -> str`` (where it wrote) and optionally ``check()`` (raises when the tracker cannot be written to).  The tracker's package is imported only when asked for, and checked
before any model runs (``check_trackers``): a missing one is a one-line error, never a traceback after an hour
of evaluation.  Trackers write what ``Export`` holds; ``metrics.json`` stays the record of truth.
"""
from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable

import pandas as pd

from harness.core.errors import BenchError


def names() -> list[str]:
    """Every tracker this install knows (the modules of this package)."""
    return sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_"))


def tracker(name: str) -> ModuleType:
    """The module of tracker ``name``; BenchError when it is unknown or its package is not installed."""
    if name not in names():
        raise BenchError(f"--log {name!r}: unknown tracker (known: {', '.join(names())})")
    module = importlib.import_module(f"{__name__}.{name}")
    if importlib.util.find_spec(module.PACKAGE) is None:
        raise BenchError(f"--log {name}: the {module.PACKAGE!r} package is not installed "
                         f"(pip install {module.INSTALL}, or pip install 'bench[trackers]')")
    return module


def check_trackers(requested: Iterable[str]) -> list[ModuleType]:
    """The trackers' modules, each package present and (where a module has ``check()``) its store reachable."""
    modules = [tracker(name) for name in dict.fromkeys(requested)]
    for module in modules:
        if hasattr(module, "check"):
            try:
                module.check()
            except Exception as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise BenchError(f"--log {module.__name__.rsplit('.', 1)[-1]}: {first[:300]}") from exc
    return modules


@dataclass
class Export:
    """What a tracker receives about one run."""

    record: dict[str, Any]
    run_dir: Path

    @property
    def run_name(self) -> str:
        return str(self.record["run_id"])

    def metrics(self) -> dict[str, float]:
        """Reported numbers (None and NaN left out: trackers take floats), plus throughput."""
        out = {name: float(value) for name, value in (self.record.get("metrics") or {}).items()
               if isinstance(value, (int, float)) and value == value}
        for name in ("images_per_s", "latency_p50_ms"):
            value = (self.record.get("throughput") or {}).get(name)
            if isinstance(value, (int, float)) and value == value:
                out[f"throughput/{name}"] = float(value)
        return out

    def params(self) -> dict[str, str]:
        """The run's identity as flat strings: model, dataset, checkpoint, protocol, conditions."""
        from harness.publish.identity import identity_of

        record, identity = self.record, identity_of(self.record)
        return {"task": str(record["task"]), "model": str(record["model"]["name"]),
                "dataset": str(record["dataset"]["name"]), "protocol": str((record.get("protocol") or {}).get("key", "")),
                "checkpoint": identity.checkpoint, "data": identity.data, "conditions": identity.conditions,
                "samples": str(record.get("samples")), "limit": str(record.get("limit")),
                "name": str(record.get("name") or ""), "tags": ",".join(record.get("tags") or [])}

    def tables(self) -> dict[str, pd.DataFrame]:
        """Per-class (per-joint) tables, one per group of metrics sharing their rows: ``{"AP": frame}`` with a
        ``class`` column and one column per metric."""
        groups: dict[tuple, list[str]] = {}
        per_class = self.record.get("per_class") or {}
        for metric, table in per_class.items():
            if isinstance(table, dict) and table:
                groups.setdefault(tuple(table), []).append(metric)
        out = {}
        for rows, metrics in groups.items():
            frame = pd.DataFrame({"class": [str(row) for row in rows],
                                  **{m: [_number(per_class[m].get(row)) for row in rows] for m in metrics}})
            out["per_class_" + "_".join(metrics)[:60]] = frame
        return out

    def gallery(self) -> list[Path]:
        """The gallery's pictures (ground truth | prediction), in file-name order."""
        folder = self.run_dir / "pictures" / "gallery"
        return sorted(p for p in folder.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def log_run(modules: list[ModuleType], record: dict[str, Any], run_dir: Path) -> list[str]:
    """Send one run to every tracker; returns where each wrote."""
    export = Export(record, Path(run_dir))
    out = []
    for module in modules:
        name = module.__name__.rsplit(".", 1)[-1]
        try:
            out.append(f"{name}: {module.log(export)}")
        except Exception as exc:  # the tracker's own refusal (configuration, store): one line, the report stays
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise BenchError(f"--log {name}: {type(exc).__name__}: {first[:300]} (the run's report is written: "
                             f"{run_dir})") from exc
    return out
