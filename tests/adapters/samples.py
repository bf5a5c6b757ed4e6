"""Small real samples and scoring helpers for adapter tests: the four COCO val images of tests/data/coco-keypoints at a quarter of
their size (with every annotation scaled alike), so CPU inference stays fast while the ground truth stays real."""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from harness.core.dataset import DatasetInfo
from harness.datasets.coco_keypoints import CocoKeypoints
from harness.core.structures import DetectionTarget, Sample, SemanticTarget
from tests.conftest import DATA

SCALE = 0.25
CATEGORIES = json.loads((DATA / "adapters" / "coco_categories.json").read_text())["categories"]
IGNORE = 255


@dataclass
class TinyCoco:
    annotation_file: Path
    image_dir: Path

    def gt(self) -> dict:
        return json.loads(self.annotation_file.read_text())

    def keypoint_dataset(self) -> CocoKeypoints:
        return CocoKeypoints(self.annotation_file, self.image_dir)

    def detection_samples(self) -> list[Sample]:
        gt = self.gt()
        samples = []
        for image in gt["images"]:
            anns = [a for a in gt["annotations"] if a["image_id"] == image["id"]]
            target = DetectionTarget(
                image_id=image["id"], width=image["width"], height=image["height"],
                boxes=np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4),
                labels=np.array([a["category_id"] for a in anns], dtype=np.int64),
                areas=np.array([a["area"] for a in anns], dtype=np.float64),
                iscrowd=np.array([a["iscrowd"] for a in anns], dtype=bool),
                masks=[a["segmentation"] for a in anns],
            )
            samples.append(Sample(image["id"], self.image_dir / image["file_name"], target))
        return samples

    def person_label_maps(self, person_index: int, background_index: int | None) -> list[Sample]:
        """Semantic samples: person pixels -> ``person_index``, the rest -> ``background_index`` (or ignored)."""
        from pycocotools import mask as mask_utils

        samples = []
        for sample in self.detection_samples():
            target = sample.target
            label_map = np.full((target.height, target.width), IGNORE if background_index is None else background_index, np.int64)
            for polygons in target.masks:
                rles = mask_utils.frPyObjects(polygons, target.height, target.width)
                label_map[mask_utils.decode(mask_utils.merge(rles)).astype(bool)] = person_index
            samples.append(Sample(sample.sample_id, sample.image_path, SemanticTarget(label_map=label_map)))
        return samples


def scaled_annotations(raw: dict, scale: float, sizes: dict[int, tuple[int, int]]) -> dict:
    out = copy.deepcopy(raw)
    for image in out["images"]:
        image["width"], image["height"] = sizes[image["id"]]
    for ann in out["annotations"]:
        ann["bbox"] = [round(v * scale, 2) for v in ann["bbox"]]
        ann["area"] = ann["area"] * scale * scale
        points = np.array(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        points[:, :2] *= scale
        ann["keypoints"] = [round(v, 2) for v in points.reshape(-1).tolist()]
        if isinstance(ann["segmentation"], list):
            ann["segmentation"] = [[round(v * scale, 2) for v in polygon] for polygon in ann["segmentation"]]
    return out


def make_tiny_coco(root: Path) -> TinyCoco:
    source = DATA / "coco-keypoints"
    raw = json.loads((source / "test_coco.json").read_text())
    sizes = {}
    for image in raw["images"]:
        with Image.open(source / image["file_name"]) as full:
            size = (round(full.width * SCALE), round(full.height * SCALE))
            full.convert("RGB").resize(size, Image.BILINEAR).save(root / image["file_name"], quality=95)
        sizes[image["id"]] = size
    annotation_file = root / "annotations.json"
    annotation_file.write_text(json.dumps(scaled_annotations(raw, SCALE, sizes)))
    return TinyCoco(annotation_file, root)


def coco80_info(task: str) -> DatasetInfo:
    """COCO's 80 detection classes and their category ids, as the COCO annotation file lists them."""
    return DatasetInfo(name="coco", task=task, split="val", root=Path("."),
                       classes=[c["name"] for c in CATEGORIES], category_ids=[c["id"] for c in CATEGORIES])


def coco_eval(gt: dict, results: list[dict], iou_type: str) -> np.ndarray:
    """pycocotools' 12 (or 10 for keypoints) summary numbers for ``results`` against ``gt``."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    coco_gt = COCO()
    coco_gt.dataset = copy.deepcopy(gt)
    coco_gt.createIndex()
    coco_dt = coco_gt.loadRes(copy.deepcopy(results)) if results else COCO()
    evaluator = COCOeval(coco_gt, coco_dt, iou_type)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return np.asarray(evaluator.stats)


def detection_results(samples: list[Sample], predictions: list) -> list[dict]:
    """Predictions in the COCO results format (what the harness writes to predictions.json)."""
    results = []
    for sample, prediction in zip(samples, predictions):
        for index in range(len(prediction.scores)):
            entry = {"image_id": sample.sample_id, "category_id": int(prediction.labels[index]),
                     "bbox": [float(v) for v in prediction.boxes[index]], "score": float(prediction.scores[index])}
            if prediction.masks is not None:
                entry["segmentation"] = prediction.masks[index]
            results.append(entry)
    return results


def keypoint_results(samples: list[Sample], predictions: list) -> list[dict]:
    return [
        {"image_id": sample.sample_id, "category_id": 1, "keypoints": [float(v) for v in points.reshape(-1)],
         "score": float(score)}
        for sample, prediction in zip(samples, predictions)
        for points, score in zip(prediction.keypoints, prediction.scores)
    ]


def mean_iou(samples: list[Sample], predictions: list, num_classes: int) -> float:
    """mIoU over the classes present in the ground truth (ignore label skipped)."""
    confusion = np.zeros((num_classes, num_classes), np.int64)
    for sample, prediction in zip(samples, predictions):
        truth = sample.target.label_map.reshape(-1)
        guess = prediction.label_map.reshape(-1)
        valid = truth != IGNORE
        np.add.at(confusion, (truth[valid], guess[valid]), 1)
    present = confusion.sum(axis=1) > 0
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - np.diag(confusion)
    return float((np.diag(confusion)[present] / union[present]).mean())
