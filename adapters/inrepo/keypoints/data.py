"""Training people for the top-down models: every annotated person of a split, held in memory, cropped on demand.

The embedded train split is small (700 images of 256x192), so decoding it once and warping crops per batch is
far cheaper than any data loader; augmentation is a random crop matrix, so image and keypoints move together
by construction.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adapters.inrepo.keypoints.crop import CropJitter, crop_matrix, flip_joints, transform_points, warp
from adapters.inrepo.keypoints.skeletons import COCO17, skeleton_of
from harness.core.dataset import Dataset
from harness.core.errors import DataError


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random crop: box jitter (centre shift, scale), small rotation, mirror with joint swap."""

    scale_range: tuple[float, float] = (0.8, 1.25)
    shift_fraction: float = 0.06
    rotation_deg: float = 20.0
    rotation_probability: float = 0.5
    flip_probability: float = 0.5

    def sample(self, rng: np.random.Generator) -> CropJitter:
        rotation = 0.0
        if rng.random() < self.rotation_probability:
            rotation = float(np.clip(rng.normal(0.0, self.rotation_deg / 2), -self.rotation_deg, self.rotation_deg))
        return CropJitter(
            scale=float(rng.uniform(*self.scale_range)),
            rotation_deg=rotation,
            shift=tuple(rng.uniform(-self.shift_fraction, self.shift_fraction, size=2)),
            flip=bool(rng.random() < self.flip_probability),
        )


@dataclass
class CropBatch:
    """Network inputs and targets in input-pixel coordinates."""

    images: np.ndarray  # (B, H, W, 3) uint8
    keypoints: np.ndarray  # (B, K, 2) float32, input pixels
    labelled: np.ndarray  # (B, K) bool: the joint has a position (COCO v > 0)
    inside: np.ndarray  # (B, K) bool: ... and it lies inside the crop


class PersonCrops:
    """People to crop: decoded images, and per person its image, box and keypoints (K, 3) with COCO's v flags;
    ``flip_pairs`` are the skeleton's left/right pairs, swapped when a crop is mirrored."""

    def __init__(
        self, images: list[np.ndarray], image_of_person: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray,
        flip_pairs: tuple[tuple[int, int], ...] = COCO17.flip_pairs,
    ) -> None:
        self.images = images
        self.image_of_person = np.asarray(image_of_person, dtype=np.int64)
        self.boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        self.keypoints = np.asarray(keypoints, dtype=np.float64)
        self.flip_pairs = list(flip_pairs)

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> "PersonCrops":
        """The prompted people of a keypoints dataset (non-crowd, at least one labelled joint), as evaluation
        prompts them."""
        images: list[np.ndarray] = []
        image_of_person, boxes, keypoints = [], [], []
        for index in range(len(dataset)):
            sample = dataset[index]
            images.append(sample.load_image())
            target = sample.target
            keep = ~target.iscrowd & (target.num_keypoints > 0)
            image_of_person += [index] * int(keep.sum())
            boxes.append(target.boxes[keep])
            keypoints.append(target.keypoints[keep])
        if not image_of_person:
            raise DataError(f"dataset {dataset.info.name!r} split {dataset.info.split!r} has no annotated people")
        skeleton = skeleton_of(dataset.info.keypoint_names, f"dataset {dataset.info.name!r}")
        return cls(images, np.asarray(image_of_person), np.concatenate(boxes), np.concatenate(keypoints),
                   skeleton.flip_pairs)

    def __len__(self) -> int:
        return len(self.boxes)

    def batch(
        self,
        people: np.ndarray,
        input_hw: tuple[int, int],
        rng: np.random.Generator | None = None,
        augmentation: Augmentation | None = None,
    ) -> CropBatch:
        """Crops of ``people``; augmented when both ``rng`` and ``augmentation`` are given."""
        height, width = input_hw
        images = np.empty((len(people), height, width, 3), np.uint8)
        points = np.empty((len(people), self.keypoints.shape[1], 2), np.float32)
        labelled = np.empty((len(people), self.keypoints.shape[1]), bool)
        for row, person in enumerate(people):
            jitter = augmentation.sample(rng) if augmentation is not None and rng is not None else CropJitter()
            matrix = crop_matrix(self.boxes[person], input_hw, jitter=jitter)
            images[row] = warp(self.images[self.image_of_person[person]], matrix, input_hw)
            keypoints = self.keypoints[person]
            if jitter.flip:
                keypoints = flip_joints(keypoints, self.flip_pairs)
            points[row] = transform_points(keypoints[:, :2], matrix)
            labelled[row] = keypoints[:, 2] > 0
        inside = (
            labelled
            & (points[..., 0] >= -0.5) & (points[..., 0] <= width - 0.5)
            & (points[..., 1] >= -0.5) & (points[..., 1] <= height - 0.5)
        )
        return CropBatch(images=images, keypoints=points, labelled=labelled, inside=inside)
