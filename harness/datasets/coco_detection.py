"""COCO objects in the native layout: ``annotations/instances_<split>.json`` + ``<split>/`` or ``images/<split>/``.

One sample per image (sorted by image id, the order pycocotools uses); its target holds every annotation of the
image, crowds included, because the COCO evaluator needs the crowd regions to ignore detections on them.
Category ids stay COCO's own (1..90 with gaps), in ``DatasetInfo.category_ids`` sorted by id.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np

from harness.core.dataset import Dataset, DatasetInfo
from harness.datasets.coco_format import CocoIndex, locate_coco
from harness.core.errors import DataError
from harness.core.structures import DetectionTarget, Sample
from harness.io.validation.paths import inside

TASKS = ("detection", "instance")


class CocoDetection(Dataset):
    """Boxes (task ``detection``) or boxes plus segmentations (task ``instance``) from a COCO instances file.

    The instance task requires a ``segmentation`` on every annotation and validates it (polygons, or RLE whose
    size matches the image); the detection task passes segmentations through when the file has them.
    """

    def __init__(
        self, annotation_file: Path, image_dir: Path, *, task: str = "detection", name: str = "coco", split: str = ""
    ) -> None:
        if task not in TASKS:
            raise DataError(f"COCO instances files serve tasks {', '.join(TASKS)}, not {task!r}")
        self.annotation_file = Path(annotation_file)
        self.image_dir = Path(image_dir)
        if not self.image_dir.is_dir():
            raise DataError("image folder is missing", self.image_dir)
        self.index = CocoIndex.load(self.annotation_file, require_segmentation=task == "instance")
        categories = sorted(self.index.categories, key=lambda c: c["id"])
        self.info = DatasetInfo(
            name=name,
            task=task,
            split=split,
            root=self.image_dir.parent,
            classes=[c["name"] for c in categories],
            category_ids=[int(c["id"]) for c in categories],
        )

    def __len__(self) -> int:
        return len(self.index.images)

    def __getitem__(self, index: int) -> Sample:
        image = self.index.images[index]
        anns = self.index.annotations_by_image.get(image["id"], [])
        with_masks = all("segmentation" in a for a in anns)  # always true for the instance task (validated)
        target = DetectionTarget(
            image_id=image["id"],
            width=int(image["width"]),
            height=int(image["height"]),
            boxes=np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4),
            labels=np.array([a["category_id"] for a in anns], dtype=np.int64),
            areas=np.array([a["area"] for a in anns], dtype=np.float64),
            iscrowd=np.array([bool(a["iscrowd"]) for a in anns], dtype=bool),
            ignore=np.array([bool(a.get("ignore", False)) for a in anns], dtype=bool),
            masks=[a["segmentation"] for a in anns] if with_masks else None,
            ann_ids=np.array([a["id"] for a in anns], dtype=np.int64),
        )
        return Sample(
            sample_id=image["id"],
            image_path=inside(self.image_dir, image["file_name"], self.annotation_file, f"images id {image['id']!r}"),
            target=target,
            meta={"file_name": image["file_name"]},
        )

    def source_files(self) -> Iterable[Path]:
        return [self.annotation_file]

    def coco_ground_truth(self) -> dict[str, Any]:
        """The annotation file's content, for metrics that want the exact COCO dict."""
        return self.index.data

    def counts(self) -> dict[str, int]:
        anns = [a for anns in self.index.annotations_by_image.values() for a in anns]
        crowd = sum(1 for a in anns if a["iscrowd"])
        return {
            "images": len(self),
            "instances": len(anns) - crowd,
            "crowd regions": crowd,
            "classes": len(self.info.classes),
            "classes present": len({a["category_id"] for a in anns if not a["iscrowd"]}),
        }


def open_coco_instances(root: Path, split: str, task: str, name: str = "coco") -> CocoDetection:
    annotation_file, image_dir = locate_coco(root, split, f"instances_{split}.json")
    return CocoDetection(annotation_file, image_dir, task=task, name=name, split=split)
