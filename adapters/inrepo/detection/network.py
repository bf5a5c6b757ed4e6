"""The networks: a small encoder-decoder with CenterNet-style heads at stride 4, and a RoIAlign mask head.

Why this shape: the embedded objects are 12-80 px, three quarters of them under 32x32, so the heads work at
stride 4 (a 12 px object still covers three cells) on features that a stride-16 encoder stage gives enough
context for 80 px objects.  Boxes are distances from a cell centre to the four edges (TTFNet), so the peak
cell's position needs no sub-cell offset head.  The mask head sees the RGB pixels themselves besides the
features, because a shape's edge is a colour edge and stride-2 features alone blur it.
"""
from __future__ import annotations

from typing import Sequence, cast

import torch
from torch import nn
from torch.nn import functional as F

STRIDE = 4
#: a heatmap prior of 0.1 at initialisation keeps the focal loss from exploding on the first steps
HEATMAP_PRIOR_BIAS = -2.19
#: the distance head's unit (pixels): softplus(raw) * BOX_SCALE
BOX_SCALE = 8.0
#: mask RoIs are the box grown by this factor around its centre, so a mask may cover what the box missed
MASK_ROI_EXPANSION = 1.3
MASK_SIZE = 24


def conv_bn(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8-range RGB -> roughly zero-mean unit-range input; done in the module so callers pass raw pixels."""
    return images / 127.5 - 1.0


class CenterNet(nn.Module):
    """Image (B, 3, H, W) in 0..255, H and W multiples of 16 -> (heatmap logits, edge distances, mask features).

    Heatmap logits are (B, C, H/4, W/4); edge distances (B, 4, H/4, W/4) are left, top, right, bottom in input
    pixels from each cell centre; mask features (B, M, H/2, W/2) exist when ``with_masks`` (else an empty tensor).
    """

    def __init__(self, num_classes: int, widths: Sequence[int] = (16, 32, 64, 96), head_width: int = 32,
                 mask_width: int = 16, with_masks: bool = False) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        self.num_classes = num_classes
        self.with_masks = with_masks
        self.stage1 = conv_bn(3, w1, 2)  # stride 2
        self.stage2 = nn.Sequential(conv_bn(w1, w2, 2), conv_bn(w2, w2))  # stride 4
        self.stage3 = nn.Sequential(conv_bn(w2, w3, 2), conv_bn(w3, w3))  # stride 8
        self.stage4 = nn.Sequential(conv_bn(w3, w4, 2), conv_bn(w4, w4), conv_bn(w4, w4))  # stride 16
        self.lateral4 = nn.Conv2d(w4, w3, 1)
        self.merge3 = conv_bn(w3, w3)
        self.lateral3 = nn.Conv2d(w3, head_width, 1)
        self.lateral2 = nn.Conv2d(w2, head_width, 1)
        self.merge2 = conv_bn(head_width, head_width)
        self.heatmap = nn.Sequential(conv_bn(head_width, head_width), nn.Conv2d(head_width, num_classes, 1))
        self.box = nn.Sequential(conv_bn(head_width, head_width), nn.Conv2d(head_width, 4, 1))
        nn.init.constant_(cast(torch.Tensor, cast(nn.Conv2d, self.heatmap[-1]).bias), HEATMAP_PRIOR_BIAS)
        if with_masks:
            self.mask_lateral1 = nn.Conv2d(w1, mask_width, 1)
            self.mask_lateral2 = nn.Conv2d(head_width, mask_width, 1)
            self.mask_merge = conv_bn(mask_width, mask_width)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = normalise(images)
        c1 = self.stage1(x)
        c2 = self.stage2(c1)
        c3 = self.stage3(c2)
        c4 = self.stage4(c3)
        p3 = self.merge3(c3 + F.interpolate(self.lateral4(c4), size=c3.shape[-2:], mode="nearest"))
        p2 = self.merge2(self.lateral2(c2) + F.interpolate(self.lateral3(p3), size=c2.shape[-2:], mode="nearest"))
        heatmap = self.heatmap(p2)
        distances = F.softplus(self.box(p2)) * BOX_SCALE
        if self.with_masks:
            up = F.interpolate(self.mask_lateral2(p2), size=c1.shape[-2:], mode="bilinear", align_corners=False)
            mask_features = self.mask_merge(self.mask_lateral1(c1) + up)
        else:
            mask_features = heatmap.new_zeros((0,))
        return heatmap, distances, mask_features


class MaskHead(nn.Module):
    """Class-agnostic mask logits (R, 1, S, S) over each expanded RoI, from RoIAligned features, pixels and position."""

    def __init__(self, feature_width: int = 16, width: int = 16, size: int = MASK_SIZE) -> None:
        super().__init__()
        self.size = size
        self.body = nn.Sequential(
            conv_bn(feature_width + 3 + 2, width), conv_bn(width, width), conv_bn(width, width),
            nn.Conv2d(width, 1, 1),
        )
        ramp = torch.linspace(-1.0, 1.0, size)
        self.coordinates: torch.Tensor  # a buffer: moves with the module, not a parameter
        self.register_buffer("coordinates", torch.stack(torch.meshgrid(ramp, ramp, indexing="ij"))[None], persistent=False)

    def forward(self, mask_features: torch.Tensor, images: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        """``rois`` (R, 5): batch index, x0, y0, x1, y1 in input pixels (already expanded)."""
        from torchvision.ops import roi_align

        if rois.shape[0] == 0:
            return mask_features.new_zeros((0, 1, self.size, self.size))
        features = roi_align(mask_features, rois, self.size, spatial_scale=0.5, sampling_ratio=2, aligned=True)
        pixels = roi_align(normalise(images), rois, self.size, spatial_scale=1.0, sampling_ratio=2, aligned=True)
        position = self.coordinates.expand(rois.shape[0], -1, -1, -1)
        return self.body(torch.cat([features, pixels, position], dim=1))


def expand_boxes(boxes: torch.Tensor, factor: float = MASK_ROI_EXPANSION) -> torch.Tensor:
    """xyxy boxes grown by ``factor`` about their centres."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) * (factor / 2)
    return torch.cat([centre - half, centre + half], dim=1)


class CenterNetMask(nn.Module):
    """The detector plus a mask head; ``forward`` is the dense part (what throughput times), ``masks`` the rest."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.detector = CenterNet(num_classes, with_masks=True)
        self.mask_head = MaskHead()

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.detector(images)

    def masks(self, mask_features: torch.Tensor, images: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return self.mask_head(mask_features, images, rois)


def cell_centres(height: int, width: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """x and y (in input pixels) of the centre of every stride-4 cell, each (height, width)."""
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) * STRIDE
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) * STRIDE
    return xs[None, :].expand(height, width), ys[:, None].expand(height, width)


def distances_to_boxes(distances: torch.Tensor) -> torch.Tensor:
    """(B, 4, h, w) left/top/right/bottom distances -> (B, 4, h, w) xyxy boxes in input pixels."""
    xs, ys = cell_centres(distances.shape[-2], distances.shape[-1], distances.device)
    return torch.stack([xs - distances[:, 0], ys - distances[:, 1], xs + distances[:, 2], ys + distances[:, 3]], dim=1)
