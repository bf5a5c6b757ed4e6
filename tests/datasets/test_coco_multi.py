"""The embedded multi-person keypoint scenes (``--dataset coco-multi``): crowded enough for the detector and
bottom-up protocols, in a layout pycocotools reads, beside the unchanged single-person-ish ``coco`` figures."""
from __future__ import annotations

import contextlib
import io

import numpy as np
from pycocotools.coco import COCO

from harness.datasets import DATASETS
from harness.embedded import group_figures, stick_figures


def _iou_matrix(boxes: np.ndarray) -> np.ndarray:
    x1, y1 = boxes[:, 0], boxes[:, 1]
    x2, y2 = x1 + boxes[:, 2], y1 + boxes[:, 3]
    w = np.clip(np.minimum(x2[:, None], x2[None]) - np.maximum(x1[:, None], x1[None]), 0, None)
    h = np.clip(np.minimum(y2[:, None], y2[None]) - np.maximum(y1[:, None], y1[None]), 0, None)
    inter = w * h
    area = boxes[:, 2] * boxes[:, 3]
    return inter / (area[:, None] + area[None] - inter)


def test_embedded_multi_person_scenes_are_crowded_and_coco_shaped():
    dataset = DATASETS.get("coco-multi")(None, "val", "keypoints")
    assert dataset.info.name == "coco-multi-mini" and len(dataset) == group_figures.SPLITS["val"][0]
    people, overlapping_images, crowd_regions = [], 0, 0
    for index in range(len(dataset)):
        target = dataset[index].target
        person = ~target.iscrowd
        people.append(int(person.sum()))
        crowd_regions += int(target.iscrowd.sum())
        assert (target.num_keypoints[target.iscrowd] == 0).all()
        assert (target.num_keypoints[person] == (target.keypoints[person, :, 2] > 0).sum(axis=1)).all()
        if person.sum() > 1:
            iou = _iou_matrix(target.boxes[person])
            np.fill_diagonal(iou, 0)
            overlapping_images += bool((iou > 0.1).any())
    assert np.mean(people) > 3.0 and min(people) >= 1
    assert overlapping_images > 0.6 * len(dataset)
    assert crowd_regions > 0.2 * len(dataset)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(dataset.annotation_file))
    assert len(coco.getImgIds()) == len(dataset)
    crowd = coco.loadAnns(coco.getAnnIds(iscrowd=True))
    assert crowd and all(isinstance(a["segmentation"], dict) for a in crowd)  # RLE, as COCO's crowds


def test_single_person_embedded_dataset_is_untouched():
    """The README numbers and baselines are on ``coco-mini`` v1: the new scenes live in their own generator."""
    assert stick_figures.VERSION == 1 and stick_figures.SPLITS == {"train": (700, 1), "val": (160, 2)}
    assert DATASETS.get("coco")(None, "val", "keypoints").info.name == "coco-mini"
