"""PSPNet in miniature (Zhao et al., CVPR 2017): a dilated stride-8 backbone and a pyramid pooling module.

The defining mechanism is the pyramid pooling module: the final feature map is average-pooled into 1x1, 2x2, 3x3
and 6x6 bins (the paper's bins), each pooled map is reduced by a 1x1 convolution to a quarter of the feature
width, upsampled bilinearly back to the feature map's size and concatenated with it, so every pixel is classified
with global and sub-region context.  As in the paper, a second classifier on the backbone's middle stage gives an
auxiliary loss (weight 0.4) during training only; it has no part in prediction.

No BatchNorm in the pooled branches: a 1x1 bin per image would give batch statistics of one value per image
(the ASPP head's image pooling does the same for the same reason).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from adapters.inrepo.semantic.networks import conv_bn

#: the paper's pyramid: global, 2x2, 3x3 and 6x6 sub-regions
BINS = (1, 2, 3, 6)
#: weight of the auxiliary (deep supervision) loss, as in the paper
AUX_WEIGHT = 0.4


class PyramidPooling(nn.Module):
    """Concatenation of the input with its average pools over ``bins`` (each reduced to ``in/len(bins)`` channels
    by a 1x1 convolution and upsampled bilinearly to the input's size)."""

    def __init__(self, in_channels: int, bins: tuple[int, ...] = BINS) -> None:
        super().__init__()
        self.bins = bins
        reduced = in_channels // len(bins)
        self.reduce = nn.ModuleList(nn.Sequential(nn.Conv2d(in_channels, reduced, 1), nn.ReLU(inplace=True))
                                    for _ in bins)
        self.out_channels = in_channels + reduced * len(bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [F.interpolate(reduce(F.adaptive_avg_pool2d(x, bin_size)), size=size, mode="bilinear",
                                align_corners=False)
                  for bin_size, reduce in zip(self.bins, self.reduce)]
        return torch.cat([x, *pooled], dim=1)


class PSPNet(nn.Module):
    """Dilated stride-8 backbone (dilation 2 then 4 in the last stage, the paper's dilated ResNet in miniature),
    pyramid pooling, a 3x3 fusion convolution, a 1x1 classifier and bilinear upsampling to the input size.

    In training mode ``forward`` returns ``(logits, aux_logits)``; in eval mode the logits only.
    """

    stride = 8

    def __init__(self, num_classes: int, widths: tuple[int, int, int] = (24, 48, 64), head: int = 48) -> None:
        super().__init__()
        a, b, c = widths
        self.stem = nn.Sequential(conv_bn(3, a, stride=2), conv_bn(a, a), conv_bn(a, b, stride=2), conv_bn(b, b))
        self.middle = nn.Sequential(conv_bn(b, c, stride=2), conv_bn(c, c))
        self.last = nn.Sequential(conv_bn(c, c, dilation=2), conv_bn(c, c, dilation=4))
        self.pyramid = PyramidPooling(c)
        self.fuse = conv_bn(self.pyramid.out_channels, head)
        self.classifier = nn.Conv2d(head, num_classes, 1)
        self.aux = nn.Sequential(conv_bn(c, c // 2), nn.Conv2d(c // 2, num_classes, 1))

    def forward(self, image: torch.Tensor):
        middle = self.middle(self.stem(image))
        logits = self.classifier(self.fuse(self.pyramid(self.last(middle))))
        logits = F.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=False)
        if not self.training:
            return logits
        aux = F.interpolate(self.aux(middle), size=image.shape[-2:], mode="bilinear", align_corners=False)
        return logits, aux
