"""``--dataset coco-multi``: COCO person keypoints scored where people stand together.

Without ``--data-root`` it is the embedded multi-person scenes (``harness.embedded.group_figures``: 2-6 people
per image, overlapping groups, crowd regions), read by the same COCO keypoints reader as ``--dataset coco``;
with a root it reads a COCO download exactly as ``coco`` does.  It exists beside ``coco`` (whose embedded
single-person-ish figures and baselines stay as they are) because the detector-driven and bottom-up keypoint
protocols (``bench run --task keypoints --protocol detector|bottom-up``) need crowded images to mean anything.
"""
from __future__ import annotations

from pathlib import Path

from harness.datasets import DATASETS
from harness.core.dataset import Dataset, supports
from harness.core.errors import BenchError


@DATASETS.register("coco-multi")
@supports("keypoints")
def open_coco_multi(data_root: Path | None, split: str | None, task: str) -> Dataset:
    if task != "keypoints":
        raise BenchError(f"dataset 'coco-multi' serves the keypoints task, not {task!r}")
    from harness.datasets.coco_keypoints import open_coco_keypoints

    if data_root is None:
        from harness.embedded import group_figures, materialise_split

        root = materialise_split("coco-multi-keypoints", group_figures, split or "val")
        return open_coco_keypoints(root, split or "val", name="coco-multi-mini")
    return open_coco_keypoints(Path(data_root), split or "val2017", name="coco-multi")
