"""``bench report RUN_DIR``: draw a finished run's pictures again (a run from before pictures existed, another
gallery size), from its metrics.json and written predictions; the metrics themselves are not recomputed."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.core.errors import DataError
from harness.core.run_record import RunRecord
from harness.io.jsonio import read_json


def open_run_dataset(record: RunRecord) -> Any:
    """The dataset a run was scored on, opened as the run opened it (registry name, --data-root, --split; or
    --ann-file and --img-dir)."""
    from harness.run.bench_run import get_task, open_dataset

    info = record.dataset
    if info.ann_file:
        return open_dataset(get_task(record.task), None, None, None, Path(info.ann_file), Path(info.img_dir or ""))
    return open_dataset(get_task(record.task), info.registry, Path(info.data_root) if info.data_root else None,
                        info.requested_split)


def rebuild_report(run_dir: Path, gallery: int = 12, seed: int | None = None) -> Any:
    from harness.publish.pictures.build import build_pictures
    from harness.publish.reports import write_report

    run_dir = Path(run_dir)
    path = run_dir / "metrics.json"
    if not path.is_file():
        raise DataError("no metrics.json: not a finished run folder", path)
    record = read_json(path)  # written back as it was, plus the new analysis
    run = RunRecord.from_dict(record, path)
    try:
        dataset = open_run_dataset(run)
        fingerprint = dataset.fingerprint()
    except KeyError as exc:
        raise DataError(f"not a report of this bench version (missing {exc})", path) from None
    if fingerprint != run.dataset.fingerprint:
        raise DataError("the dataset at the run's data root has changed since the run (fingerprint differs): "
                        "pictures would not show what was scored", path)
    seed = run.provenance.get("seed", 0) if seed is None else seed
    pictures = build_pictures(run_dir, record, dataset, range(run.samples or 0), gallery_size=gallery,
                              seed=int(seed or 0))
    record["analysis"] = pictures.summary()
    write_report(run_dir, record, pictures)
    return pictures
