"""``heatmap``: per-joint Gaussian heatmaps at half the input resolution (SimpleBaseline/Hourglass style).

The maps regress Gaussian targets (sigma one cell) with a per-pixel binary cross-entropy on logits whose bias
starts at the background prior.  The classic mean-squared error learns the same maps, but first sits for many
epochs on the all-zero plateau, which a few-minute CPU schedule cannot afford.

Decoding takes the arg-max cell and refines it below the cell size with a second-order Taylor step on the log
heatmap (the "distribution-aware" refinement), which falls back to the classic quarter-cell shift towards the
higher neighbour wherever the local fit is not a proper maximum.  The heatmap's peak value is the joint's
confidence.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from adapters.inrepo.keypoints.networks import Decoder, Encoder, KeypointNet, gaussian_heatmaps


#: initial head bias: sigmoid(-4.6) = 1 %, about the share of a map a joint's Gaussian covers
BACKGROUND_LOGIT = -4.6


class HeatmapNet(KeypointNet):
    input_hw = (64, 48)

    def __init__(
        self,
        num_joints: int = 17,
        widths: tuple[int, ...] = (24, 32, 64, 96),
        blocks: tuple[int, ...] = (0, 1, 2, 1),
        out_level: int = 0,
        sigma_cells: float = 1.0,
        input_hw: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        if input_hw is not None:
            self.input_hw = input_hw
        self.stride = 2 ** (out_level + 1)
        self.sigma_px = sigma_cells * self.stride
        self.encoder = Encoder(widths, blocks)
        self.decoder = Decoder(widths, out_level)
        self.head = nn.Conv2d(widths[out_level], num_joints, 1)
        assert self.head.bias is not None  # nn.Conv2d has a bias by default
        nn.init.constant_(self.head.bias, BACKGROUND_LOGIT)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(self.encoder(images)))

    def loss(self, output, keypoints, labelled, inside):
        target = gaussian_heatmaps(keypoints, tuple(output.shape[-2:]), self.stride, self.sigma_px)
        per_joint = F.binary_cross_entropy_with_logits(output, target, reduction="none").mean(dim=(-2, -1))
        weight = inside.float()
        return (per_joint * weight).sum() / weight.sum().clamp(min=1.0) * 100.0

    def decode(self, output):
        return decode_heatmaps(torch.sigmoid(output), self.stride)

    @staticmethod
    def num_joints_of(output: torch.Tensor) -> int:
        return output.shape[1]

    @staticmethod
    def flip_output(output: torch.Tensor, order: list[int]) -> torch.Tensor:
        """Logit maps of a mirrored crop, mirrored back with left/right joints swapped (flip test)."""
        return output.flip(-1)[:, order]


def decode_heatmaps(heatmaps: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Arg-max plus sub-cell refinement; returns input-pixel coordinates and peak values clipped to [0, 1]."""
    batch, joints, height, width = heatmaps.shape
    flat = heatmaps.reshape(batch, joints, -1)
    peak, index = flat.max(dim=-1)
    y = torch.div(index, width, rounding_mode="floor")
    x = index - y * width
    offset = _taylor_offset(heatmaps, x, y)
    xs = x.float() + offset[..., 0]
    ys = y.float() + offset[..., 1]
    coords = torch.stack([xs * stride + (stride - 1) / 2.0, ys * stride + (stride - 1) / 2.0], dim=-1)
    return coords, peak.clamp(0.0, 1.0)


def _taylor_offset(heatmaps: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sub-cell offset from the Newton step on the smoothed log heatmap at (x, y); (B, K, 2)."""
    batch, joints, height, width = heatmaps.shape
    smooth = F.avg_pool2d(
        F.pad(heatmaps.reshape(-1, 1, height, width), (1, 1, 1, 1), mode="replicate"), 3, stride=1
    ).reshape(batch, joints, height, width)
    log = torch.log(smooth.clamp(min=1e-10))
    padded = F.pad(log, (1, 1, 1, 1), mode="replicate").reshape(batch, joints, -1)
    row = width + 2

    def at(dx: int, dy: int) -> torch.Tensor:
        return padded.gather(-1, ((y + 1 + dy) * row + (x + 1 + dx)).unsqueeze(-1)).squeeze(-1)

    centre = at(0, 0)
    gx = 0.5 * (at(1, 0) - at(-1, 0))
    gy = 0.5 * (at(0, 1) - at(0, -1))
    hxx = at(1, 0) - 2 * centre + at(-1, 0)
    hyy = at(0, 1) - 2 * centre + at(0, -1)
    hxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
    det = hxx * hyy - hxy**2
    proper = (hxx < 0) & (det > 1e-12)
    safe_det = torch.where(proper, det, torch.ones_like(det))
    ox = -(hyy * gx - hxy * gy) / safe_det
    oy = -(hxx * gy - hxy * gx) / safe_det
    quarter_x = 0.25 * torch.sign(at(1, 0) - at(-1, 0))
    quarter_y = 0.25 * torch.sign(at(0, 1) - at(0, -1))
    ox = torch.where(proper, ox.clamp(-0.5, 0.5), quarter_x)
    oy = torch.where(proper, oy.clamp(-0.5, 0.5), quarter_y)
    return torch.stack([ox, oy], dim=-1)
