"""A small FlowNetS: both frames stacked as input channels, a strided encoder, a decoder that refines flow per scale.

As in FlowNetS (Dosovitskiy et al. 2015), every decoder level concatenates the upsampled features, the encoder
features of its scale (skip) and the upsampled flow of the level below, and predicts flow at its own scale; the
training loss is the end-point error at every scale, coarse ones weighted less.  The finest prediction is at 1/2
resolution and is upsampled bilinearly.  Flow is predicted in pixels of the full-resolution image at every scale,
so upsampling never rescales it.

Two departures from the paper make it learn in a few CPU minutes instead of days: BatchNorm after every
convolution (FlowNetS-BN), and the frame difference ``image2 - image1`` stacked as three more input channels.
The difference is a linear function of the six frame channels, so it adds no information; but it hands the first
layer the temporal derivative of brightness constancy directly, and without it the network sits on the
"predict zero flow" plateau for the whole short schedule (measured: no loss decrease in 800 steps).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

#: image normalisation of both frames
MEAN, STD = 127.5, 64.0


def conv(in_channels: int, out_channels: int, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    """Convolution, BatchNorm, leaky ReLU: FlowNetS's BatchNorm variant, which leaves the zero-flow plateau
    within a few hundred steps where the plain network needs thousands."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(out_channels), nn.LeakyReLU(0.1, inplace=True))


class FlowNetS(nn.Module):
    """Encoder at strides 2..16, decoder predicting flow at strides 16, 8, 4 and 2."""

    stride = 16

    def __init__(self, widths: tuple[int, ...] = (24, 32, 48, 64)) -> None:
        super().__init__()
        a, b, c, d = widths
        self.encoder = nn.ModuleList([
            nn.Sequential(conv(9, a, stride=2, kernel=5), conv(a, a)),  # 1/2
            nn.Sequential(conv(a, b, stride=2, kernel=5), conv(b, b)),  # 1/4
            nn.Sequential(conv(b, c, stride=2), conv(c, c)),  # 1/8
            nn.Sequential(conv(c, d, stride=2), conv(d, d)),  # 1/16
        ])
        self.predict = nn.ModuleList([nn.Conv2d(d, 2, 3, padding=1)])
        self.decoder = nn.ModuleList()
        previous = d
        for skip in (c, b, a):  # 1/8, 1/4, 1/2
            self.decoder.append(nn.Sequential(conv(previous + skip + 2, skip), conv(skip, skip)))
            self.predict.append(nn.Conv2d(skip, 2, 3, padding=1))
            previous = skip

    def forward(self, image1: torch.Tensor, image2: torch.Tensor) -> list[torch.Tensor]:
        """Normalised frames (B, 3, H, W) each, H and W multiples of 16 -> flows at strides 16, 8, 4, 2."""
        x = torch.cat([image1, image2, image2 - image1], dim=1)
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        flows = [self.predict[0](x)]
        for decoder, predict, skip in zip(self.decoder, self.predict[1:], reversed(skips[:-1])):
            size = skip.shape[-2:]
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            flow = F.interpolate(flows[-1], size=size, mode="bilinear", align_corners=False)
            x = decoder(torch.cat([x, skip, flow], dim=1))
            flows.append(flow + predict(x))  # each level predicts a correction of the coarser flow
        return flows


def full_resolution(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(flow, size=size, mode="bilinear", align_corners=False)


def multiscale_epe(flows: list[torch.Tensor], target: torch.Tensor, weights: tuple[float, ...]) -> torch.Tensor:
    """Weighted mean end-point error of each scale's flow against the area-averaged ground truth of that scale."""
    total = target.new_zeros(())
    for flow, weight in zip(flows, weights):
        scaled_target = F.adaptive_avg_pool2d(target, (flow.shape[-2], flow.shape[-1]))
        total = total + weight * torch.linalg.vector_norm(flow - scaled_target, dim=1).mean()
    return total


def endpoint_error(flow: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean EPE of a full-resolution prediction (the quantity the benchmark reports)."""
    return torch.linalg.vector_norm(full_resolution(flow, (target.shape[-2], target.shape[-1])) - target, dim=1).mean()
