"""``bench report RUN_DIR``: draw a finished run's pictures again (a run from before pictures existed, another
gallery size), from its metrics.json and written predictions; the metrics themselves are not recomputed."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.core.errors import DataError
from harness.io.jsonio import read_json


def open_run_dataset(record: dict[str, Any]) -> Any:
    """The dataset a run was scored on, opened as the run opened it (registry name, --data-root, --split; or
    --ann-file and --img-dir)."""
    from harness.run.bench_run import get_task, open_dataset

    info = record["dataset"]
    data_root = info.get("data_root")
    if info.get("ann_file"):
        return open_dataset(get_task(record["task"]), None, None, None, Path(info["ann_file"]), Path(info["img_dir"]))
    dataset = open_dataset(get_task(record["task"]), info.get("registry"), Path(data_root) if data_root else None,
                           info.get("requested_split"))
    return dataset


def rebuild_report(run_dir: Path, gallery: int = 12, seed: int | None = None) -> Any:
    from harness.publish.pictures.build import build_pictures
    from harness.publish.reports import write_report

    run_dir = Path(run_dir)
    path = run_dir / "metrics.json"
    if not path.is_file():
        raise DataError("no metrics.json: not a finished run folder", path)
    record = read_json(path)
    try:
        dataset = open_run_dataset(record)
        fingerprint = dataset.fingerprint()
    except KeyError as exc:
        raise DataError(f"not a report of this bench version (missing {exc})", path) from None
    if fingerprint != record["dataset"].get("fingerprint"):
        raise DataError("the dataset at the run's data root has changed since the run (fingerprint differs): "
                        "pictures would not show what was scored", path)
    seed = (record.get("provenance") or {}).get("seed", 0) if seed is None else seed
    pictures = build_pictures(run_dir, record, dataset, range(int(record["samples"])), gallery_size=gallery,
                              seed=int(seed or 0))
    record["analysis"] = pictures.summary()
    write_report(run_dir, record, pictures)
    return pictures
