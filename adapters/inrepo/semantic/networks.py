"""Three small segmentation architectures, sized to train on two CPU cores in minutes.

Each maps a normalised ``(B, 3, H, W)`` image to ``(B, C, H, W)`` class logits for any H, W that are multiples
of ``stride`` (the adapter pads).  They differ where the classic papers differ: FCN classifies a stride-8 feature
map and upsamples bilinearly; U-Net recovers detail through skip connections; the ASPP head (DeepLabv3) mixes
dilated convolutions at several rates with a global image-pooling branch for context without losing resolution.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def conv_bn(in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1, kernel: int = 3) -> nn.Sequential:
    padding = dilation * (kernel // 2)
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def stride8_backbone(widths: tuple[int, int, int], last_dilation: int = 1) -> nn.Sequential:
    """Three stride-2 stages; the last stage may dilate to see further without going below stride 8."""
    a, b, c = widths
    return nn.Sequential(
        conv_bn(3, a, stride=2), conv_bn(a, a),
        conv_bn(a, b, stride=2), conv_bn(b, b),
        conv_bn(b, c, stride=2), conv_bn(c, c), conv_bn(c, c, dilation=last_dilation),
    )


class FCN(nn.Module):
    """Stride-8 conv backbone, a 1x1 classifier, bilinear upsampling to the input size (FCN-8 without skips)."""

    stride = 8

    def __init__(self, num_classes: int, widths: tuple[int, int, int] = (24, 48, 64)) -> None:
        super().__init__()
        self.backbone = stride8_backbone(widths)
        self.context = conv_bn(widths[2], widths[2], dilation=2)
        self.classifier = nn.Conv2d(widths[2], num_classes, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(self.context(self.backbone(image)))
        return F.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=False)


class UNet(nn.Module):
    """Encoder of four scales, decoder that upsamples and concatenates the encoder map of the same scale.

    The first scale is at stride 2 (a strided stem) and the logits are upsampled bilinearly from there: full-
    resolution layers cost five times the rest of the network on a CPU and the void band along every object
    boundary makes the last pixel of precision worth little.
    """

    stride = 16

    def __init__(self, num_classes: int, widths: tuple[int, ...] = (16, 32, 48, 64)) -> None:
        super().__init__()
        self.encoders = nn.ModuleList()
        previous = 3
        for index, width in enumerate(widths):
            first = conv_bn(previous, width, stride=2) if index == 0 else conv_bn(previous, width)
            self.encoders.append(nn.Sequential(first, conv_bn(width, width)))
            previous = width
        self.decoders = nn.ModuleList()
        for skip in reversed(widths[:-1]):
            self.decoders.append(nn.Sequential(conv_bn(previous + skip, skip), conv_bn(skip, skip)))
            previous = skip
        self.classifier = nn.Conv2d(previous, num_classes, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        skips = []
        x = image
        for index, encoder in enumerate(self.encoders):
            if index:
                x = F.max_pool2d(x, 2)
            x = encoder(x)
            skips.append(x)
        for decoder, skip in zip(self.decoders, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = decoder(torch.cat([x, skip], dim=1))
        return F.interpolate(self.classifier(x), size=image.shape[-2:], mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: parallel 1x1, dilated 3x3 convolutions and an image-pooling branch."""

    def __init__(self, in_channels: int, out_channels: int, rates: tuple[int, ...]) -> None:
        super().__init__()
        self.branches = nn.ModuleList([conv_bn(in_channels, out_channels, kernel=1)])
        self.branches.extend(conv_bn(in_channels, out_channels, dilation=rate) for rate in rates)
        # no BatchNorm after pooling: a 1x1 map per image would make batch statistics of one value
        self.pooling = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1),
                                     nn.ReLU(inplace=True))
        self.project = conv_bn(out_channels * (len(rates) + 2), out_channels, kernel=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [branch(x) for branch in self.branches]
        pooled = self.pooling(x).expand(-1, -1, *x.shape[-2:])
        return self.project(torch.cat([*outputs, pooled], dim=1))


class DeepLabASPP(nn.Module):
    """Dilated stride-8 backbone, ASPP head at rates 2/4/6 (the stride-8 maps here are 16-24 cells wide), a
    1x1 classifier and bilinear upsampling."""

    stride = 8

    def __init__(self, num_classes: int, widths: tuple[int, int, int] = (24, 48, 64), head: int = 48,
                 rates: tuple[int, ...] = (2, 4, 6)) -> None:
        super().__init__()
        self.backbone = stride8_backbone(widths, last_dilation=2)
        self.aspp = ASPP(widths[2], head, rates)
        self.classifier = nn.Conv2d(head, num_classes, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(self.aspp(self.backbone(image)))
        return F.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=False)


ARCHITECTURES: dict[str, type[nn.Module]] = {"fcn": FCN, "unet": UNet, "aspp": DeepLabASPP}


def build_network(name: str, num_classes: int) -> nn.Module:
    if name == "pspnet":  # its own module, which builds on conv_bn above (so imported here, not at the top)
        from adapters.inrepo.semantic.pspnet import PSPNet

        return PSPNet(num_classes)
    return ARCHITECTURES[name](num_classes)
