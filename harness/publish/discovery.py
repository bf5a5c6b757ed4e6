"""What is installed: models, metrics and tasks, described without building any network (``bench models list``,
``bench metrics list``, ``bench tasks list``).

Why without building: a user asking "which models are there?" should get an answer in a second, not after
torchvision and OpenMMLab have constructed forty networks.  Parameter counts come from what is on disk instead:
the in-repo weights file (tensor shapes read from a memory-mapped state dict), torchvision's weights metadata
(``num_params``), nothing for a config-driven family (``mmdet:CONFIG``: it depends on the config).
"""
from __future__ import annotations

import collections
import inspect
import io
import json
import math
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

SOURCES = {"adapters.inrepo": "in-repo", "adapters.torchvision": "torchvision", "adapters.openmmlab": "OpenMMLab"}


def _source(cls: type) -> str:
    module = getattr(cls, "__module__", "")
    return next((label for prefix, label in SOURCES.items() if module.startswith(prefix)), module)


def _summary(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.split("\n\n")[0].replace("\n", " ").replace("``", "")[:120]


def _state_dict_parameters(path: Path) -> int | None:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # an unreadable file is reported as "unknown", the run itself names the problem
        return None
    def count(value: Any) -> int:
        if hasattr(value, "numel"):
            return int(value.numel())
        if isinstance(value, dict):
            return sum(count(v) for v in value.values())
        return 0

    return count(state)


def _hub_checkpoints() -> Path:
    """torch.hub's checkpoint folder, found as torch.hub.get_dir() finds it (without importing torch)."""
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "torch" / "hub" / "checkpoints"


def _torchvision_releases(builders: list[str]) -> dict[str, dict[str, Any]]:
    """{builder: {"num_params", "file"}} of each DEFAULT release.  Importing torchvision costs seconds, so the
    table is kept in the bench cache per torchvision version and read from there afterwards."""
    from importlib.metadata import PackageNotFoundError, version

    from harness.io.cache_dir import cache_root

    try:
        key = version("torchvision")
    except PackageNotFoundError:
        return {}
    path = cache_root() / "discovery" / f"torchvision-{key}.json"
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    missing = [b for b in builders if b not in known]
    if missing:
        from torchvision.models import get_model_weights

        for builder in missing:
            try:
                weights = get_model_weights(builder).DEFAULT
                known[builder] = {"num_params": weights.meta.get("num_params"), "file": Path(weights.url).name}
            except Exception:  # not a builder of this torchvision: listed without numbers
                known[builder] = {"num_params": None, "file": None}
        try:
            from harness.io.jsonio import atomic_write_json

            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(path, known)
        except OSError:
            pass  # a read-only cache only costs the import next time
    return known


def list_models(task: str | None = None) -> list[dict[str, Any]]:
    from harness.core.catalog import ADAPTERS

    releases = _torchvision_releases([n.removeprefix("tv-") for n, c in ADAPTERS.items()
                                      if _source(c) == "torchvision" and (task is None or c.task == task)])
    hub = _hub_checkpoints()
    rows = []
    for name, cls in ADAPTERS.items():
        cls_task = getattr(cls, "task", "")
        if task is not None and cls_task != task:
            continue
        source = _source(cls)
        parameters: int | None = None
        weights = ""
        if source == "in-repo":
            # <task>_<model>[_<family>].pt; instance models keep the detection prefix (detection_centernet-mask.pt)
            files = cls.shipped_weights(name)
            if files:
                parameters = _state_dict_parameters(files[0])
                weights = "yes: " + ", ".join(f.stem.split(f"_{name}", 1)[1].lstrip("_") or "default" for f in files)
            else:
                weights = "none needed" if getattr(cls, "runs_by_default", False) else "no"
                parameters = 0 if weights == "none needed" else None
        elif source == "torchvision":
            release = releases.get(name.removeprefix("tv-"), {})
            parameters = release.get("num_params")
            weights = ("yes (torch hub cache)" if release.get("file") and (hub / release["file"]).is_file()
                       else "no (not in the torch hub cache)")
        else:
            weights = "--checkpoint FILE"
        rows.append({"name": name + ("CONFIG" if name.endswith(":") else ""), "task": cls_task, "source": source,
                     "parameters": parameters, "weights": weights,
                     "default": bool(getattr(cls, "runs_by_default", False)),
                     # what `bench run --model-arg KEY=VALUE` accepts for it
                     "options": ", ".join(sorted(getattr(cls, "accepted_options", {}) or {})),
                     "summary": _summary(cls)})
    return rows


def list_metrics() -> list[dict[str, Any]]:
    from harness.metrics import METRICS

    rows = []
    for name, cls in METRICS.items():
        rows.append({"name": name, "version": getattr(cls, "version", 1),
                     "dialects": list(getattr(cls, "dialects", ()) or ()),
                     "lower_is_better": sorted(getattr(cls, "lower_is_better", ()) or ()),
                     "summary": _summary(cls)})
    return rows


def list_tasks() -> list[dict[str, Any]]:
    from harness.core.catalog import ADAPTERS, DATASETS, TASKS

    rows = []
    for name, cls in TASKS.items():
        protocol = getattr(cls, "default_protocol", None)
        datasets = [d for d, factory in DATASETS.items() if name in getattr(factory, "tasks", ())]
        rows.append({"name": name, "default_dataset": getattr(cls, "default_dataset", ""),
                     "datasets": datasets, "headline": getattr(protocol, "headline", ""),
                     "metrics": [spec.metric for spec in getattr(protocol, "metrics", ())],
                     "models": sum(1 for _, a in ADAPTERS.items() if getattr(a, "task", "") == name)})
    return rows
