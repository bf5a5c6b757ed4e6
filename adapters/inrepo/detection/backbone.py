"""The small convolutional encoder the classic detectors share, and a feature pyramid on top of it.

Five stride-2 stages (strides 2 to 32) of 3x3 conv + BatchNorm + ReLU, the widths kept small enough that a
192 x 192 batch of 16 trains in well under a second on one CPU thread.  What differs between the classic
detectors is what they put on top: YOLO one grid, SSD heads on the raw multi-scale maps, RetinaNet and the
two-stage detector a top-down feature pyramid (FPN), DETR a transformer on the stride-16 map.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from adapters.inrepo.detection.network import conv_bn, normalise

WIDTHS = (16, 32, 64, 96, 128)


class Backbone(nn.Module):
    """Image (B, 3, H, W) in 0..255 -> feature maps at strides 4, 8, 16, 32 (``c2``..``c5``)."""

    strides = (4, 8, 16, 32)

    def __init__(self, widths: Sequence[int] = WIDTHS) -> None:
        super().__init__()
        w1, w2, w3, w4, w5 = widths
        self.widths = tuple(widths[1:])
        self.stage1 = conv_bn(3, w1, 2)
        self.stage2 = nn.Sequential(conv_bn(w1, w2, 2), conv_bn(w2, w2))
        self.stage3 = nn.Sequential(conv_bn(w2, w3, 2), conv_bn(w3, w3))
        self.stage4 = nn.Sequential(conv_bn(w3, w4, 2), conv_bn(w4, w4))
        self.stage5 = nn.Sequential(conv_bn(w4, w5, 2), conv_bn(w5, w5))

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        c2 = self.stage2(self.stage1(normalise(images)))
        c3 = self.stage3(c2)
        c4 = self.stage4(c3)
        c5 = self.stage5(c4)
        return [c2, c3, c4, c5]


class FeaturePyramid(nn.Module):
    """FPN (Lin et al. 2017): 1x1 laterals, nearest-neighbour top-down additions, a 3x3 conv per output level.

    ``levels`` picks the outputs by index into the backbone's maps (0 = stride 4, ..., 3 = stride 32)."""

    def __init__(self, in_widths: Sequence[int], width: int, levels: Sequence[int]) -> None:
        super().__init__()
        self.levels = tuple(levels)
        self.lowest = min(levels)
        self.laterals = nn.ModuleList(nn.Conv2d(w, width, 1) for w in in_widths[self.lowest:])
        self.outputs = nn.ModuleList(conv_bn(width, width) for _ in self.levels)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        maps = features[self.lowest:]
        merged = [lateral(x) for lateral, x in zip(self.laterals, maps)]
        for index in range(len(merged) - 2, -1, -1):
            merged[index] = merged[index] + F.interpolate(merged[index + 1], size=merged[index].shape[-2:],
                                                          mode="nearest")
        return [output(merged[level - self.lowest]) for output, level in zip(self.outputs, self.levels)]
