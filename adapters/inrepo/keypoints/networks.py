"""Small convolutional building blocks shared by the in-repo keypoint networks, sized for CPU training.

All networks take crops as float tensors in [0, 255] (B, 3, H, W) and normalise inside, so the adapter and the
trainer cannot disagree about preprocessing.  ``KeypointNet`` fixes the contract the adapter and the trainer
rely on: ``loss`` for training and ``decode`` for inference, both in input-pixel coordinates.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class Residual(nn.Module):
    """A basic residual block (two 3x3 convolutions)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.first = conv_bn(channels, channels)
        self.second = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.second(self.first(x)))


class Encoder(nn.Module):
    """Feature maps at strides 2, 4, 8, 16: a stride-2 stem, then one downsampling stage per width."""

    def __init__(self, widths: Sequence[int], blocks: Sequence[int]) -> None:
        super().__init__()
        self.widths = list(widths)
        self.stem = conv_bn(3, widths[0], stride=2)
        stages = []
        for level, (width, count) in enumerate(zip(widths, blocks)):
            layers: list[nn.Module] = [] if level == 0 else [conv_bn(widths[level - 1], width, stride=2)]
            layers += [Residual(width) for _ in range(count)]
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem((images - 128.0) / 64.0)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class Decoder(nn.Module):
    """Upsamples the deepest features back to ``out_level`` with additive skips (a light U-Net), so the output
    map has both fine localisation and the context that tells a left wrist from a right one."""

    def __init__(self, widths: Sequence[int], out_level: int) -> None:
        super().__init__()
        self.out_level = out_level
        levels = range(out_level, len(widths) - 1)
        self.lateral = nn.ModuleList(nn.Conv2d(widths[level + 1], widths[level], 1) for level in levels)
        self.refine = nn.ModuleList(conv_bn(widths[level], widths[level]) for level in levels)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        for level in range(len(features) - 2, self.out_level - 1, -1):
            index = level - self.out_level
            skip = features[level]
            x = skip + F.interpolate(self.lateral[index](x), size=skip.shape[-2:], mode="nearest")
            x = self.refine[index](x)
        return x


class KeypointNet(nn.Module):
    """What the adapter and the trainer need from a network."""

    #: crop size (height, width); None when ``forward`` ignores the pixels (no crop to size)
    input_hw: tuple[int, int] | None = (64, 48)
    #: False when ``forward`` ignores the pixels (the mean pose), so the adapter can skip cropping
    uses_image: bool = True
    #: False for models fitted by statistics rather than gradient steps (they implement ``fit``)
    trainable: bool = True

    def loss(
        self, output: torch.Tensor, keypoints: torch.Tensor, labelled: torch.Tensor, inside: torch.Tensor
    ) -> torch.Tensor:
        """Scalar training loss for (B, K, 2) input-pixel ``keypoints``; ``labelled`` (B, K) marks joints with a
        position, ``inside`` those that also lie inside the crop (a heatmap cannot point outside its map)."""
        raise NotImplementedError

    def decode(self, output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, K, 2) coordinates in input pixels and (B, K) confidences in [0, 1]."""
        raise NotImplementedError


def grid_centres(size: int, stride: int, device: torch.device | None = None) -> torch.Tensor:
    """Input-pixel coordinate of each output cell's centre (cell ``i`` covers pixels i*s .. i*s + s - 1)."""
    return torch.arange(size, dtype=torch.float32, device=device) * stride + (stride - 1) / 2.0


def gaussian_heatmaps(
    keypoints: torch.Tensor, map_hw: tuple[int, int], stride: int, sigma_px: float
) -> torch.Tensor:
    """(B, K, h, w) unnormalised Gaussians (peak 1 at the keypoint itself) centred on input-pixel keypoints."""
    ys = grid_centres(map_hw[0], stride, keypoints.device)
    xs = grid_centres(map_hw[1], stride, keypoints.device)
    dx = (xs[None, None, :] - keypoints[..., 0:1]) ** 2  # (B, K, w)
    dy = (ys[None, None, :] - keypoints[..., 1:2]) ** 2  # (B, K, h)
    return torch.exp(-(dy[..., :, None] + dx[..., None, :]) / (2.0 * sigma_px**2))
