"""What the classic detectors' losses receive per training image, converted once from an augmented batch."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class ImageTargets:
    """One canvas's objects: xyxy ``boxes`` (N, 4) and class indices ``labels`` (N,) of the objects to detect,
    ``ignored`` (M, 4) xyxy regions neither positive nor negative (crowds, objects mostly cut away by the canvas),
    and for mask models the objects' (N, H, W) float masks."""

    boxes: torch.Tensor
    labels: torch.Tensor
    ignored: torch.Tensor
    masks: torch.Tensor | None = None


def batch_targets(batch) -> list[ImageTargets]:
    """``ImageTargets`` per canvas of an ``adapters.inrepo.detection.data.Batch``."""
    targets = []
    for index, (boxes, labels, crowd) in enumerate(zip(batch.boxes, batch.labels, batch.crowd)):
        keep = ~np.asarray(crowd, bool)
        masks = None
        if batch.masks is not None:
            masks = torch.from_numpy(np.ascontiguousarray(batch.masks[index][keep])).float()
        targets.append(ImageTargets(
            boxes=torch.from_numpy(np.asarray(boxes[keep], np.float32)).reshape(-1, 4),
            labels=torch.from_numpy(np.asarray(labels[keep], np.int64)),
            ignored=torch.from_numpy(np.asarray(boxes[~keep], np.float32)).reshape(-1, 4),
            masks=masks,
        ))
    return targets


def images_tensor(batch) -> torch.Tensor:
    """(B, 3, H, W) float pixels in 0..255 of a batch's canvases."""
    return torch.from_numpy(batch.images).permute(0, 3, 1, 2).float()
