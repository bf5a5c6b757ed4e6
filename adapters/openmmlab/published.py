"""Published scores of the configs OpenMMLab ships, read from the metafiles in the package's ``.mim`` folder.

Each config folder holds the metafile(s) that the package's ``model-index.yml`` imports (mmdet
``metafile.yml``, mmseg ``metafile.yaml``, mmpose one ``<family>_<dataset>.yml`` per model family), listing
``Models: [{Name, Config, Results: [{Task, Dataset, Metrics: {name: value}}], Weights}]``.  The adapter shows
the entry of its config as ``AdapterInfo.extra["published"]``::

    {"dataset": "coco", "metrics": {"AP": 0.409}, "source_dataset": "COCO",
     "metafile": "configs/rtmdet/metafile.yml", "weights": "https://download.openmmlab.com/..."}

so a leaderboard can set the number a user's run reproduces beside the number the model zoo promises.  Only
what bench can compare is kept: datasets bench reads (named as its dataset registry names them), metrics its
task reports (named as its metrics name them), as ratios in [0, 1].  The metafiles disagree on units: mmdet
and mmseg write percentages (``box AP: 40.9``, ``mIoU: 37.41``), mmpose writes ratios for COCO's AP/AR
(``AP: 0.685``) but percentages for some PCK and MPII numbers, so each kept metric states its unit below.
A config outside the package (a user's file, even one whose ``_base_`` is a shipped config) has no entry.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

#: metafile ``Dataset`` -> bench dataset name (VOC "2012 + Aug" models are scored on the VOC 2012 val set)
DATASET_NAMES = {"COCO": "coco", "ADE20K": "ade20k", "Cityscapes": "cityscapes", "Pascal VOC 2012 + Aug": "voc"}

#: (package, bench task) -> {metafile metric: (bench metric, value that means 1.0)}
METRIC_NAMES: dict[tuple[str, str], dict[str, tuple[str, float]]] = {
    ("mmdet", "detection"): {"box AP": ("AP", 100.0)},
    ("mmdet", "instance"): {"mask AP": ("AP", 100.0), "box AP": ("bbox/AP", 100.0)},
    ("mmseg", "semantic"): {"mIoU": ("mIoU", 100.0), "mDice": ("mDice", 100.0)},
    ("mmpose", "keypoints"): {"AP": ("AP", 1.0), "AP@0.5": ("AP50", 1.0), "AP@0.75": ("AP75", 1.0),
                              "AR": ("AR", 1.0), "AR@0.5": ("AR50", 1.0)},
}


def mim_root(config_path: Path) -> Path | None:
    """The ``.mim`` folder a shipped config lives in, else None."""
    for parent in Path(config_path).resolve().parents:
        if parent.name == ".mim":
            return parent
    return None


@lru_cache(maxsize=None)
def models_in_folder(folder: Path, root: Path) -> dict[str, tuple[dict[str, Any], str]]:
    """Config path (relative to ``.mim``, posix) -> (its metafile entry, the metafile's relative path)."""
    import yaml

    found: dict[str, tuple[dict[str, Any], str]] = {}
    for path in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]):
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue  # a broken metafile only costs the published score
        models = document.get("Models") if isinstance(document, dict) else None
        for model in models if isinstance(models, list) else []:
            if isinstance(model, dict) and isinstance(model.get("Config"), str):
                found.setdefault(model["Config"].replace("\\", "/"), (model, path.relative_to(root).as_posix()))
    return found


def published_scores(package: str, task: str, config_path: Path) -> dict[str, Any] | None:
    """The model zoo's scores for this shipped config on the first dataset bench reads, or None."""
    root = mim_root(config_path)
    wanted = METRIC_NAMES.get((package, task))
    if root is None or wanted is None:
        return None
    relative = Path(config_path).resolve().relative_to(root).as_posix()
    entry = models_in_folder(Path(config_path).resolve().parent, root).get(relative)
    if entry is None:
        return None
    model, metafile = entry
    results = model.get("Results") or []
    by_dataset: dict[str, dict[str, float]] = {}
    for result in [results] if isinstance(results, dict) else results:
        dataset = DATASET_NAMES.get(str(result.get("Dataset"))) if isinstance(result, dict) else None
        metrics = result.get("Metrics") if dataset else None
        for name, value in (metrics or {}).items():
            if name in wanted and isinstance(value, (int, float)) and not isinstance(value, bool):
                bench_name, scale = wanted[name]
                ratio = round(float(value) / scale, 10)
                if 0.0 <= ratio <= 1.0:
                    by_dataset.setdefault(str(result["Dataset"]), {}).setdefault(bench_name, ratio)
    if not by_dataset:
        return None
    source, metrics = next(iter(by_dataset.items()))
    published: dict[str, Any] = {"dataset": DATASET_NAMES[source], "metrics": metrics, "source_dataset": source,
                                 "metafile": metafile}
    if isinstance(model.get("Weights"), str):
        published["weights"] = model["Weights"]
    return published
