"""``mean-pose``: the floor every real model must beat, the average training pose stretched into each prompt box.

"Training" averages each joint's position in box-normalised coordinates ((x - x0) / w, (y - y0) / h) over the
labelled training joints; prediction scales that mean pose into the prompt box.  No pixel is looked at.  A
joint's confidence is how often it is labelled in training (often-truncated ankles score lower than hips), so
all instances get the same score.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from adapters.inrepo.keypoints.networks import KeypointNet


class MeanPoseNet(KeypointNet):
    input_hw = None
    uses_image = False
    trainable = False

    def __init__(self, num_joints: int = 17) -> None:
        super().__init__()
        # parameters (fitted, not trained by gradient): they are what the model learned, and count as its size
        self.mean = nn.Parameter(torch.zeros(num_joints, 2, dtype=torch.float64), requires_grad=False)
        self.labelled_rate = nn.Parameter(torch.zeros(num_joints, dtype=torch.float64), requires_grad=False)

    def fit(self, boxes: np.ndarray, keypoints: np.ndarray) -> None:
        """Per-joint mean of labelled (N, K, 3) keypoints, normalised by their (N, 4) xywh boxes."""
        boxes = np.asarray(boxes, dtype=np.float64)
        size = np.maximum(boxes[:, None, 2:], 1.0)
        normalised = (keypoints[..., :2] - boxes[:, None, :2]) / size
        weight = (keypoints[..., 2] > 0).astype(np.float64)
        counts = weight.sum(axis=0)
        mean = (normalised * weight[..., None]).sum(axis=0) / np.maximum(counts, 1.0)[:, None]
        self.mean.copy_(torch.from_numpy(mean))
        self.labelled_rate.copy_(torch.from_numpy(counts / max(len(boxes), 1)))

    def place(self, boxes: np.ndarray) -> np.ndarray:
        """(M, K, 3) keypoints: the mean pose in each (M, 4) box, with the labelled rate as confidence."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        mean = self.mean.numpy()
        xy = boxes[:, None, :2] + mean[None] * np.maximum(boxes[:, None, 2:], 1.0)
        confidence = np.broadcast_to(self.labelled_rate.numpy(), xy.shape[:2])
        return np.concatenate([xy, confidence[..., None]], axis=-1)
