"""``bench run --ann-file PATH --img-dir PATH``: any COCO-format annotation file, wherever it lives.

No folder layout is assumed (``--dataset coco`` wants ``annotations/instances_<split>.json`` under a root):
the file and the image folder are named directly, as mmdetection's ``ann_file``/``data_prefix`` and
Ultralytics' dataset YAML do.  The dataset gets the task's COCO protocol (detection, instance, keypoints) and is
named ``file:<annotation file stem>``, so it never shares a leaderboard table with ``coco``.  ``--img-dir`` is the
root every ``file_name`` must resolve inside (symlinks followed); all of them are checked before any model
runs, and the first escape is refused in one line naming the annotation file and the image entry.
"""
from __future__ import annotations

from pathlib import Path

from harness.core.dataset import Dataset
from harness.core.errors import BenchError, DataError
from harness.io.validation.paths import inside

TASKS = ("detection", "instance", "keypoints")


def file_dataset_name(ann_file: Path) -> str:
    """The dataset name of a run on ``ann_file`` (its stem: ``instances_val2017`` -> ``file:instances_val2017``)."""
    return f"file:{Path(ann_file).stem}"


def open_coco_file(ann_file: Path, img_dir: Path, task: str) -> Dataset:
    """The COCO-format dataset of ``ann_file`` with images under ``img_dir``, every image path checked."""
    ann_file, img_dir = Path(ann_file), Path(img_dir)
    if task not in TASKS:
        raise BenchError(f"--ann-file reads COCO-format files, which serve tasks {', '.join(TASKS)}, not {task!r}")
    if not ann_file.is_file():
        raise DataError("--ann-file: annotation file not found", ann_file)
    if not img_dir.is_dir():
        raise DataError("--img-dir: image folder not found", img_dir)
    name = file_dataset_name(ann_file)
    dataset: Dataset
    if task == "keypoints":
        from harness.datasets.coco_keypoints import CocoKeypoints

        dataset = CocoKeypoints(ann_file, img_dir, name=name, split=ann_file.stem)
    else:
        from harness.datasets.coco_detection import CocoDetection

        dataset = CocoDetection(ann_file, img_dir, task=task, name=name, split=ann_file.stem)
    for image in dataset.index.images:  # type: ignore[attr-defined]  # both readers keep their CocoIndex here
        inside(img_dir, image["file_name"], ann_file, f"images id {image['id']!r}")
    dataset.info.extra["ann_file"] = str(ann_file)
    return dataset
