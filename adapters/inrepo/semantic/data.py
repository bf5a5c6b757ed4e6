"""Training batches for the segmentation networks: the whole split in memory, seeded random crops and flips.

The embedded images are 128-192 px a side, so 128 px crops cover most of an image while letting one batch
stack images of different sizes.  Flips and quarter turns keep every label valid (the VOC shapes have no canonical
orientation); street and room scenes (Cityscapes, ADE20K) do have one (sky above road, ceiling above floor), so
they are trained ``upright``: horizontal flips only.  Colour is left alone because hue is one of the cues the
classes are drawn with.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from harness.core.dataset import Dataset

#: pixel normalisation shared by training and the adapter
MEAN, STD = 127.5, 64.0


def normalise(images: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float32, roughly zero mean and unit variance."""
    return torch.from_numpy((images.astype(np.float32) - MEAN) / STD).permute(0, 3, 1, 2).contiguous()


@dataclass
class SegmentationSet:
    images: list[np.ndarray]  # (H, W, 3) uint8
    labels: list[np.ndarray]  # (H, W) uint8, 255 ignored

    @classmethod
    def load(cls, dataset: Dataset) -> SegmentationSet:
        images, labels = [], []
        for sample in dataset:
            images.append(sample.load_image())
            labels.append(np.asarray(sample.target.label_map, np.uint8))
        return cls(images, labels)

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, indices: np.ndarray, rng: np.random.Generator, crop: int | tuple[int, int],
              upright: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Random ``crop`` windows (an int: square; or (height, width)), padded with ignored labels where an image
        is smaller; ``upright`` keeps the scene's up (horizontal flips only)."""
        crop_h, crop_w = (crop, crop) if isinstance(crop, int) else crop
        if crop_h != crop_w and not upright:
            raise ValueError("quarter turns need a square crop")
        images = np.zeros((len(indices), crop_h, crop_w, 3), np.uint8)
        labels = np.full((len(indices), crop_h, crop_w), 255, np.uint8)
        for slot, index in enumerate(indices):
            image, label = self.images[index], self.labels[index]
            height, width = label.shape
            top = int(rng.integers(0, max(height - crop_h, 0) + 1))
            left = int(rng.integers(0, max(width - crop_w, 0) + 1))
            window = image[top : top + crop_h, left : left + crop_w]
            window_labels = label[top : top + crop_h, left : left + crop_w]
            if rng.random() < 0.5:
                window, window_labels = window[:, ::-1], window_labels[:, ::-1]
            turns = 0 if upright else int(rng.integers(0, 4))
            window, window_labels = np.rot90(window, turns), np.rot90(window_labels, turns)
            h, w = window_labels.shape
            images[slot, :h, :w] = window
            labels[slot, :h, :w] = window_labels
        return normalise(images), torch.from_numpy(labels.astype(np.int64))

    def class_frequencies(self, num_classes: int) -> np.ndarray:
        """Share of each class among the labelled (not ignored) pixels."""
        counts = np.zeros(num_classes, np.int64)
        for label in self.labels:
            counts += np.bincount(label[label != 255].ravel(), minlength=num_classes)[:num_classes]
        return counts / max(int(counts.sum()), 1)
