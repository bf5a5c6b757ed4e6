"""COCO person keypoints in the native layout: ``annotations/person_keypoints_<split>.json`` + ``<split>/`` images.

One sample per image; its target holds every annotated person, and its prompts hold the person boxes a
top-down model is given (the "GT boxes" protocol: non-crowd people with at least one labelled keypoint).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from harness.core.dataset import Dataset, DatasetInfo
from harness.datasets.coco_format import CocoIndex, locate_coco
from harness.core.errors import DataError
from harness.labels.keypoints import COCO_KEYPOINT_NAMES, COCO_SIGMAS
from harness.core.structures import KeypointsTarget, PersonBoxes, Sample
from harness.io.validation.paths import inside


class CocoKeypoints(Dataset):
    def __init__(self, annotation_file: Path, image_dir: Path, *, name: str = "coco", split: str = "") -> None:
        self.annotation_file = Path(annotation_file)
        self.image_dir = Path(image_dir)
        if not self.image_dir.is_dir():
            raise DataError("image folder is missing", self.image_dir)
        self.index = CocoIndex.load(self.annotation_file, require_keypoints=True)
        person = self._person_category()
        names = list(person.get("keypoints", []))
        sigmas = person.get("sigmas") or (COCO_SIGMAS if names == COCO_KEYPOINT_NAMES else None)
        if sigmas is None or len(sigmas) != len(names):
            raise DataError(
                f"category {person['name']!r} has {len(names)} keypoints but no matching OKS sigmas "
                "(add a 'sigmas' list to the category)",
                self.annotation_file,
            )
        skeleton = [(int(a) - 1, int(b) - 1) for a, b in person.get("skeleton", [])]
        self.category_id = int(person["id"])
        self.info = DatasetInfo(
            name=name,
            task="keypoints",
            split=split,
            root=self.image_dir.parent,
            classes=[person["name"]],
            category_ids=[self.category_id],
            keypoint_names=names,
            sigmas=list(map(float, sigmas)),
            skeleton=skeleton,
        )

    def _person_category(self) -> dict:
        with_keypoints = [c for c in self.index.categories if c.get("keypoints")]
        if len(with_keypoints) != 1:
            raise DataError(
                f"expected exactly one category with keypoints, found {len(with_keypoints)}", self.annotation_file
            )
        return with_keypoints[0]

    def __len__(self) -> int:
        return len(self.index.images)

    def __getitem__(self, index: int) -> Sample:
        image = self.index.images[index]
        anns = [a for a in self.index.annotations_by_image.get(image["id"], []) if a["category_id"] == self.category_id]
        k = len(self.info.keypoint_names)
        target = KeypointsTarget(
            image_id=image["id"],
            width=int(image["width"]),
            height=int(image["height"]),
            boxes=np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4),
            keypoints=np.array([a["keypoints"] for a in anns], dtype=np.float64).reshape(-1, k, 3),
            areas=np.array([a["area"] for a in anns], dtype=np.float64),
            iscrowd=np.array([bool(a["iscrowd"]) for a in anns], dtype=bool),
            num_keypoints=np.array([a["num_keypoints"] for a in anns], dtype=np.int64),
            ann_ids=np.array([a["id"] for a in anns], dtype=np.int64),
        )
        prompt = ~target.iscrowd & (target.num_keypoints > 0)
        prompts = PersonBoxes(boxes=target.boxes[prompt], scores=np.ones(int(prompt.sum())))
        return Sample(
            sample_id=image["id"],
            image_path=inside(self.image_dir, image["file_name"], self.annotation_file, f"images id {image['id']!r}"),
            target=target,
            prompts=prompts,
            meta={"file_name": image["file_name"]},
        )

    def source_files(self) -> Iterable[Path]:
        return [self.annotation_file]

    def coco_ground_truth(self) -> dict:
        """The annotation file's content, for metrics that want the exact COCO dict."""
        return self.index.data

    def counts(self) -> dict[str, int]:
        anns = [a for anns in self.index.annotations_by_image.values() for a in anns]
        return {
            "images": len(self),
            "people": sum(1 for a in anns if not a["iscrowd"]),
            "crowd regions": sum(1 for a in anns if a["iscrowd"]),
            "labelled keypoints": sum(int(a["num_keypoints"]) for a in anns),
        }


def open_coco_keypoints(root: Path, split: str, name: str = "coco") -> CocoKeypoints:
    """Find the annotation file and image folder in a COCO download (``val2017/`` or ``images/val2017/``)."""
    annotation_file, image_dir = locate_coco(root, split, f"person_keypoints_{split}.json")
    return CocoKeypoints(annotation_file, image_dir, name=name, split=split)
