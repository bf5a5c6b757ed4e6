"""``--dataset coco``: a COCO download at ``--data-root``, or an embedded mini dataset when none is given.

Tasks: ``detection`` and ``instance`` read ``annotations/instances_<split>.json`` (embedded: shape scenes),
``keypoints`` reads ``annotations/person_keypoints_<split>.json`` (embedded: stick-figure people).
Default split: ``val2017`` for a download, ``val`` for the embedded sets (which also have ``train``).
"""
from __future__ import annotations

from pathlib import Path

from harness.datasets import DATASETS
from harness.core.dataset import Dataset, supports
from harness.core.errors import BenchError


@DATASETS.register("coco")
@supports("detection", "instance", "keypoints")
def open_coco(data_root: Path | None, split: str | None, task: str) -> Dataset:
    if task == "keypoints":
        from harness.datasets.coco_keypoints import open_coco_keypoints

        if data_root is None:
            from harness.embedded import materialise_split, stick_figures

            root = materialise_split("coco-keypoints", stick_figures, split or "val")
            return open_coco_keypoints(root, split or "val", name="coco-mini")
        return open_coco_keypoints(Path(data_root), split or "val2017")
    if task in ("detection", "instance"):
        from harness.datasets.coco_detection import open_coco_instances

        if data_root is None:
            from harness.embedded import materialise_split, shapes_coco

            root = materialise_split("coco-shapes", shapes_coco, split or "val")
            return open_coco_instances(root, split or "val", task, name="coco-mini")
        return open_coco_instances(Path(data_root), split or "val2017", task)
    raise BenchError(f"dataset 'coco' serves tasks detection, instance and keypoints, not {task!r}")
