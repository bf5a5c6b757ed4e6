"""``hourglass``: a 2-stack hourglass (Newell et al. 2016) in miniature, with intermediate supervision.

Each stack is a symmetric encoder-decoder (residual blocks, max-pool down, nearest up, a skip branch at every
scale) that ends in per-joint heatmaps.  The heatmaps of stack 1 are mapped back to features (1x1 conv) and
added to stack 1's features as stack 2's input, so stack 2 refines a full first guess: the repeated
bottom-up/top-down inference of the paper.  The loss is applied to EVERY stack's heatmaps (intermediate
supervision: stack 1 must already predict poses, not just features), with the same Gaussian target and per-pixel
binary cross-entropy the ``heatmap`` model uses; inference decodes the last stack.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from adapters.inrepo.keypoints.heatmap import BACKGROUND_LOGIT, decode_heatmaps
from adapters.inrepo.keypoints.networks import KeypointNet, Residual, conv_bn, gaussian_heatmaps


class Hourglass(nn.Module):
    """One hourglass of ``depth`` scales: skip = residual at this scale; low = pool, residual, recurse, residual."""

    def __init__(self, channels: int, depth: int) -> None:
        super().__init__()
        self.skip = Residual(channels)
        self.down = Residual(channels)
        self.inner = Hourglass(channels, depth - 1) if depth > 1 else Residual(channels)
        self.up = Residual(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.up(self.inner(self.down(F.max_pool2d(x, 2, ceil_mode=True))))
        return self.skip(x) + F.interpolate(low, size=x.shape[-2:], mode="nearest")


class StackedHourglassNet(KeypointNet):
    """Output: (B, stacks, K, h, w) heatmap logits at stride 2 (h, w = 32, 24 for 64x48 crops)."""

    input_hw = (64, 48)

    def __init__(self, num_joints: int = 17, channels: int = 32, stacks: int = 2, depth: int = 3,
                 sigma_cells: float = 1.0, input_hw: tuple[int, int] | None = None) -> None:
        super().__init__()
        if input_hw is not None:
            self.input_hw = input_hw
        self.stride = 2
        self.sigma_px = sigma_cells * self.stride
        self.stem = nn.Sequential(conv_bn(3, channels, stride=2), Residual(channels))
        self.hourglasses = nn.ModuleList(Hourglass(channels, depth) for _ in range(stacks))
        self.features = nn.ModuleList(nn.Sequential(Residual(channels), conv_bn(channels, channels)) for _ in range(stacks))
        self.heads = nn.ModuleList(nn.Conv2d(channels, num_joints, 1) for _ in range(stacks))
        for head in self.heads:
            assert isinstance(head, nn.Conv2d) and head.bias is not None
            nn.init.constant_(head.bias, BACKGROUND_LOGIT)
        # back from stack s's features and heatmaps into stack s+1's input
        self.remap_features = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in range(stacks - 1))
        self.remap_heatmaps = nn.ModuleList(nn.Conv2d(num_joints, channels, 1) for _ in range(stacks - 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.stem((images - 128.0) / 64.0)
        outputs = []
        for stack, hourglass in enumerate(self.hourglasses):
            features = self.features[stack](hourglass(x))
            heatmaps = self.heads[stack](features)
            outputs.append(heatmaps)
            if stack < len(self.hourglasses) - 1:
                x = x + self.remap_features[stack](features) + self.remap_heatmaps[stack](heatmaps)
        return torch.stack(outputs, dim=1)

    def stage_losses(self, output, keypoints, labelled, inside) -> torch.Tensor:
        """(stacks,) loss of each stack's heatmaps against the same Gaussian targets."""
        target = gaussian_heatmaps(keypoints, tuple(output.shape[-2:]), self.stride, self.sigma_px)
        weight = inside.float()
        losses = []
        for stack in range(output.shape[1]):
            per_joint = F.binary_cross_entropy_with_logits(output[:, stack], target, reduction="none").mean(dim=(-2, -1))
            losses.append((per_joint * weight).sum() / weight.sum().clamp(min=1.0) * 100.0)
        return torch.stack(losses)

    def loss(self, output, keypoints, labelled, inside):
        """Intermediate supervision: the sum of every stack's loss."""
        return self.stage_losses(output, keypoints, labelled, inside).sum()

    def decode(self, output):
        return decode_heatmaps(torch.sigmoid(output[:, -1]), self.stride)

    @staticmethod
    def num_joints_of(output: torch.Tensor) -> int:
        return output.shape[2]

    @staticmethod
    def flip_output(output: torch.Tensor, order: list[int]) -> torch.Tensor:
        """Every stack's logit maps of a mirrored crop, mirrored back with left/right joints swapped."""
        return output.flip(-1)[:, :, order]
