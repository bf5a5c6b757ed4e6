"""The train split in memory, and augmented training canvases made from it.

Every image, box and instance mask is decoded once (the embedded train split is ~45 MB decoded), so a training
step only pays for augmentation: a log-uniform rescale, horizontal and vertical flips (the COCO shapes are drawn
at random angles, so both flips keep the data distribution; street scenes get horizontal flips only) and a random
placement on a fixed-size canvas.
Crowd regions travel with the objects: the trainer ignores detections there, as the COCO evaluator does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import cv2
import numpy as np
from pycocotools import mask as mask_codec

from harness.core.dataset import Dataset
from harness.core.errors import DataError
from harness.core.structures import DetectionTarget

#: an object cut by the canvas edge stays an object when at least this fraction of its box stays visible
MIN_VISIBLE_FRACTION = 0.3
#: and when what stays is at least this many pixels wide and high
MIN_SIDE = 2.0


def decode_segmentation(segmentation: Any, height: int, width: int) -> np.ndarray:
    """A COCO segmentation (polygons, compressed or uncompressed RLE) as an (H, W) bool mask."""
    if isinstance(segmentation, list):
        rle = mask_codec.merge(mask_codec.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), list):
        rle = mask_codec.frPyObjects(segmentation, height, width)
    elif isinstance(segmentation, dict):
        counts = segmentation["counts"]
        rle = {"size": list(segmentation["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    else:
        raise DataError(f"unsupported segmentation of type {type(segmentation).__name__}")
    return mask_codec.decode(rle).astype(bool)


@dataclass
class Scene:
    """One training image with its objects; ``labels`` are class indices (0..C-1), not category ids."""

    image: np.ndarray  # (H, W, 3) uint8
    boxes: np.ndarray  # (N, 4) xyxy float32
    labels: np.ndarray  # (N,) int64
    crowd: np.ndarray  # (N,) bool: ignored regions (crowds; after augmentation also objects mostly cut away)
    masks: np.ndarray | None  # (N, H, W) bool


@dataclass
class Batch:
    """Augmented canvases (B, H, W, 3) uint8 and, per image, the objects that survived the augmentation."""

    images: np.ndarray
    boxes: list[np.ndarray]
    labels: list[np.ndarray]
    crowd: list[np.ndarray]
    masks: list[np.ndarray] | None


class TrainingScenes:
    """The decoded scenes of a detection dataset and its class list (the label space the model learns)."""

    def __init__(self, scenes: list[Scene], classes: list[str], category_ids: list[int]) -> None:
        self.scenes = scenes
        self.classes = classes
        self.category_ids = category_ids

    @classmethod
    def from_dataset(cls, dataset: Dataset, with_masks: bool, limit: int | None = None) -> "TrainingScenes":
        info = dataset.info
        index_of = {category_id: index for index, category_id in enumerate(info.category_ids)}
        scenes = []
        for position in range(len(dataset) if limit is None else min(limit, len(dataset))):
            sample = dataset[position]
            target: DetectionTarget = sample.target
            if with_masks and target.masks is None:
                raise DataError(f"image {target.image_id}: training a mask model needs segmentations", sample.image_path)
            image = sample.load_image()
            height, width = image.shape[:2]
            boxes = np.asarray(target.boxes, np.float64).reshape(-1, 4)
            xyxy = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1).astype(np.float32)
            unknown = set(np.asarray(target.labels).tolist()) - set(index_of)
            if unknown:
                raise DataError(f"image {target.image_id}: category ids {sorted(unknown)} are not in the category list")
            masks = None
            if with_masks:
                masks = np.stack([decode_segmentation(s, height, width) for s in cast("list[Any]", target.masks)]) if len(boxes) else \
                    np.zeros((0, height, width), bool)
            scenes.append(Scene(
                image=image,
                boxes=xyxy,
                labels=np.array([index_of[int(label)] for label in target.labels], np.int64),
                crowd=np.asarray(target.iscrowd, bool).reshape(-1),
                masks=masks,
            ))
        return cls(scenes, list(info.classes), list(info.category_ids))

    def __len__(self) -> int:
        return len(self.scenes)

    def batch(self, indices: np.ndarray, canvas: int, rng: np.random.Generator, scale_range: tuple[float, float],
              vertical_flips: bool = True) -> Batch:
        images = np.zeros((len(indices), canvas, canvas, 3), np.uint8)
        masks: list[Any]  # per image: an (n, H, W) array, or None for a dataset without masks
        boxes, labels, crowd, masks = [], [], [], []
        with_masks = self.scenes[0].masks is not None
        for slot, index in enumerate(indices):
            scene = augment(self.scenes[int(index)], canvas, rng, scale_range, vertical_flips)
            images[slot] = scene.image
            boxes.append(scene.boxes)
            labels.append(scene.labels)
            crowd.append(scene.crowd)
            if with_masks:
                masks.append(scene.masks)
        return Batch(images, boxes, labels, crowd, masks if with_masks else None)


def augment(scene: Scene, canvas: int, rng: np.random.Generator, scale_range: tuple[float, float],
            vertical_flips: bool = True) -> Scene:
    """Rescale (log-uniform in ``scale_range``), flip both ways at random, place at random on a zero canvas.

    ``vertical_flips=False`` keeps scenes that have an up (streets) upright; the coin is tossed either way, so
    the random stream does not depend on it."""
    low, high = np.log(scale_range[0]), np.log(scale_range[1])
    scale = float(np.exp(rng.uniform(low, high)))
    height, width = scene.image.shape[:2]
    new_h, new_w = max(int(round(height * scale)), 1), max(int(round(width * scale)), 1)
    sy, sx = new_h / height, new_w / width
    image = cv2.resize(scene.image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    boxes = scene.boxes * np.array([sx, sy, sx, sy], np.float32)
    masks = None
    if scene.masks is not None and len(scene.masks):
        stacked = np.ascontiguousarray(scene.masks.transpose(1, 2, 0)).astype(np.uint8) * 255
        resized = cv2.resize(stacked, (new_w, new_h), interpolation=cv2.INTER_LINEAR).reshape(new_h, new_w, -1)
        masks = resized.transpose(2, 0, 1) >= 128
    elif scene.masks is not None:
        masks = np.zeros((0, new_h, new_w), bool)
    if rng.random() < 0.5:
        image = image[:, ::-1]
        boxes = np.stack([new_w - boxes[:, 2], boxes[:, 1], new_w - boxes[:, 0], boxes[:, 3]], axis=1)
        masks = masks[:, :, ::-1] if masks is not None else None
    if rng.random() < 0.5 and vertical_flips:
        image = image[::-1]
        boxes = np.stack([boxes[:, 0], new_h - boxes[:, 3], boxes[:, 2], new_h - boxes[:, 1]], axis=1)
        masks = masks[:, ::-1] if masks is not None else None
    # placement: offset of the image's top-left corner on the canvas (negative = cropped)
    off_x = int(rng.integers(min(0, canvas - new_w), max(0, canvas - new_w) + 1))
    off_y = int(rng.integers(min(0, canvas - new_h), max(0, canvas - new_h) + 1))
    out = np.zeros((canvas, canvas, 3), np.uint8)
    src_x0, src_y0 = max(0, -off_x), max(0, -off_y)
    dst_x0, dst_y0 = max(0, off_x), max(0, off_y)
    w = min(new_w - src_x0, canvas - dst_x0)
    h = min(new_h - src_y0, canvas - dst_y0)
    out[dst_y0 : dst_y0 + h, dst_x0 : dst_x0 + w] = image[src_y0 : src_y0 + h, src_x0 : src_x0 + w]
    shifted = boxes + np.array([off_x, off_y, off_x, off_y], np.float32)
    clipped = np.concatenate([np.maximum(shifted[:, :2], [dst_x0, dst_y0]),
                              np.minimum(shifted[:, 2:], [dst_x0 + w, dst_y0 + h])], axis=1)
    sides = clipped[:, 2:] - clipped[:, :2]
    full = np.maximum(shifted[:, 2:] - shifted[:, :2], 1e-6)
    visible = (sides >= MIN_SIDE).all(axis=1) & (sides.prod(axis=1) >= MIN_VISIBLE_FRACTION * full.prod(axis=1))
    # an object mostly cut away is neither a positive nor a negative: it joins the ignored (crowd) regions
    keep = (sides > 0).all(axis=1)
    ignored = scene.crowd | ~visible
    out_masks = None
    if masks is not None:
        out_masks = np.zeros((int(keep.sum()), canvas, canvas), bool)
        out_masks[:, dst_y0 : dst_y0 + h, dst_x0 : dst_x0 + w] = masks[keep][:, src_y0 : src_y0 + h, src_x0 : src_x0 + w]
    return Scene(out, clipped[keep].astype(np.float32), scene.labels[keep], ignored[keep], out_masks)
