"""``--dataset coco``: a COCO download at ``--data-root``, or the embedded stick-figure set when none is given."""
from __future__ import annotations

from pathlib import Path

from harness.cache import materialise
from harness.datasets import DATASETS
from harness.datasets.base import Dataset
from harness.errors import BenchError


@DATASETS.register("coco")
def open_coco(data_root: Path | None, split: str | None, task: str) -> Dataset:
    from harness.datasets.coco_keypoints import open_coco_keypoints

    if task != "keypoints":
        raise BenchError(f"dataset 'coco' does not support task {task!r} yet")
    if data_root is None:
        from harness.embedded import stick_figures

        root = materialise(f"embedded/coco-keypoints-v{stick_figures.VERSION}", stick_figures.build)
        return open_coco_keypoints(root, split or "val", name="coco-mini")
    return open_coco_keypoints(Path(data_root), split or "val2017")
