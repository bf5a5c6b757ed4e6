"""``regression``: DeepPose-style direct regression of joint coordinates from the whole crop.

A small CNN, then fully connected layers that output each joint's (x, y) as a fraction of the input size, trained
with an L1 loss.  A third output per joint predicts whether the joint is annotated at all (visible or occluded
inside the image), which serves as its confidence; instance scores are their mean.
"""
from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from adapters.inrepo.keypoints.networks import Encoder, KeypointNet

CONFIDENCE_LOSS_WEIGHT = 1.0


class RegressionNet(KeypointNet):
    input_hw = (64, 48)

    def __init__(
        self,
        num_joints: int = 17,
        widths: tuple[int, ...] = (24, 32, 64, 96),
        blocks: tuple[int, ...] = (0, 1, 2, 1),
        hidden: int = 256,
        input_hw: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        if input_hw is not None:
            self.input_hw = input_hw
        self.num_joints = num_joints
        self.encoder = Encoder(widths, blocks)
        cells = (self.input_hw[0] // 16) * (self.input_hw[1] // 16)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(widths[-1] * cells, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_joints * 3),
        )
        with torch.no_grad():  # start from the crop centre, confident: the loss then only has to move joints
            last = cast(nn.Linear, self.head[-1])
            last.weight.mul_(0.1)
            last.bias.zero_()
            last.bias.view(num_joints, 3)[:, :2] = 0.5

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(images)[-1]).view(-1, self.num_joints, 3)

    def _size(self, output: torch.Tensor) -> torch.Tensor:
        height, width = self.input_hw
        return output.new_tensor([width, height])

    def loss(self, output, keypoints, labelled, inside):
        weight = labelled.float()
        error = ((output[..., :2] - keypoints / self._size(output)).abs().sum(dim=-1) * weight).sum()
        coordinate_loss = error / weight.sum().clamp(min=1.0)
        confidence_loss = F.binary_cross_entropy_with_logits(output[..., 2], weight)
        return coordinate_loss * 100.0 + CONFIDENCE_LOSS_WEIGHT * confidence_loss

    def decode(self, output):
        return output[..., :2] * self._size(output), torch.sigmoid(output[..., 2])
