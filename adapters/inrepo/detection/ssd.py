"""An SSD-style detector (Liu et al., "SSD: Single Shot MultiBox Detector", ECCV 2016) in miniature.

As in SSD: default boxes of several sizes and aspect ratios tile feature maps of several resolutions (here the
backbone's stride 8, 16 and 32 maps, each with its own 3x3 classification and box heads, no top-down pathway);
each default box predicts C + 1 softmax scores (background first) and box offsets.  Matching: every object takes
the default box that overlaps it most, then every default box with IoU >= 0.5 to an object takes it.  The
confidence loss uses all positives and only the hardest negatives, at most 3 per positive ("hard negative
mining": the background boxes with the highest background loss), so the ~3000 easy background boxes do not drown
the few positives; the localisation loss is smooth L1 on the positives; both are divided by the positive count.

Default-box sizes follow the paper's rule (sizes s_k per map, an extra sqrt(s_k s_{k+1}) box at ratio 1, ratios
1, 2, 1/2) with s_k = 16, 32, 64 px for the embedded 12-66 px objects.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from adapters.inrepo.detection import anchors as anchor_ops
from adapters.inrepo.detection.backbone import Backbone
from adapters.inrepo.detection.network import conv_bn
from adapters.inrepo.detection.postprocess import Detections, suppress
from adapters.inrepo.detection.targets_classic import ImageTargets

STRIDES = (8, 16, 32)
SIZES = (16.0, 32.0, 64.0)
NEXT_SIZE = 128.0
RATIOS = (1.0, 2.0, 0.5)
NEGATIVES_PER_POSITIVE = 3
MATCH_IOU = 0.5
SCORE_THRESHOLD = 0.01
NMS_IOU = 0.45
CANDIDATES = 400


def default_box_shapes(level: int) -> torch.Tensor:
    """(4, 2) widths and heights of the default boxes of map ``level``: s_k at ratios 1, 2, 1/2 and
    sqrt(s_k s_{k+1}) at ratio 1."""
    size = SIZES[level]
    following = SIZES[level + 1] if level + 1 < len(SIZES) else NEXT_SIZE
    return torch.cat([anchor_ops.anchor_shapes([size], RATIOS), anchor_ops.anchor_shapes([(size * following) ** 0.5],
                                                                                           [1.0])])


class SSD(nn.Module):
    def __init__(self, num_classes: int, width: int = 64) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.backbone = Backbone()
        self.shapes = [default_box_shapes(level) for level in range(len(STRIDES))]
        in_widths = self.backbone.widths[1:]  # strides 8, 16, 32
        self.extras = nn.ModuleList(conv_bn(w, width) for w in in_widths)
        self.classifiers = nn.ModuleList(nn.Conv2d(width, len(s) * (num_classes + 1), 3, padding=1)
                                         for s in self.shapes)
        self.regressors = nn.ModuleList(nn.Conv2d(width, len(s) * 4, 3, padding=1) for s in self.shapes)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> class logits (B, A, C + 1), box deltas (B, A, 4), default boxes (A, 4) xyxy, over all maps."""
        features = self.backbone(images)[1:]
        logits, deltas, defaults = [], [], []
        for x, extra, classify, regress, shapes, stride in zip(features, self.extras, self.classifiers,
                                                                self.regressors, self.shapes, STRIDES):
            x = extra(x)
            batch, _, height, width = x.shape
            logits.append(classify(x).permute(0, 2, 3, 1).reshape(batch, -1, self.num_classes + 1))
            deltas.append(regress(x).permute(0, 2, 3, 1).reshape(batch, -1, 4))
            defaults.append(anchor_ops.grid_anchors(height, width, stride, shapes).to(x.device))
        return torch.cat(logits, 1), torch.cat(deltas, 1), torch.cat(defaults)

    def loss(self, images: torch.Tensor, targets: list[ImageTargets]) -> torch.Tensor:
        logits, deltas, defaults = self(images)
        labels = torch.zeros(logits.shape[:2], dtype=torch.long)  # 0: background
        ignored = torch.zeros(logits.shape[:2], dtype=torch.bool)
        box_targets = torch.zeros_like(deltas)
        for image, target in enumerate(targets):
            assigned = anchor_ops.match(defaults, target.boxes, MATCH_IOU, MATCH_IOU)
            assigned = anchor_ops.ignore_crowds(assigned, defaults, target.ignored)
            positive = assigned >= 0
            labels[image, positive] = target.labels[assigned[positive]] + 1
            ignored[image] = assigned == -2
            box_targets[image, positive] = anchor_ops.encode(target.boxes[assigned[positive]], defaults[positive])
        positive = labels > 0
        confidence = F.cross_entropy(logits.reshape(-1, self.num_classes + 1), labels.reshape(-1),
                                     reduction="none").reshape(labels.shape)
        hard = hard_negatives(confidence.detach(), ~positive & ~ignored, positive.sum(dim=1))
        localisation = F.smooth_l1_loss(deltas[positive], box_targets[positive], reduction="sum")
        count = positive.sum().clamp(min=1)
        return (confidence[positive].sum() + confidence[hard].sum() + localisation) / count

    def detect(self, images: torch.Tensor, height: int, width: int) -> Detections:
        logits, deltas, defaults = self(images)
        inside = anchor_ops.centres_inside(defaults, height, width)
        scores = logits[0, inside].softmax(dim=-1)[:, 1:]
        boxes = anchor_ops.decode(deltas[0, inside], defaults[inside])
        return top_detections(scores, boxes, height, width, SCORE_THRESHOLD, NMS_IOU)


def hard_negatives(background_loss: torch.Tensor, negative: torch.Tensor, positives: torch.Tensor,
                   ratio: int = NEGATIVES_PER_POSITIVE) -> torch.Tensor:
    """(B, A) mask of the negatives kept: per image the ``ratio * positives`` negatives of highest
    ``background_loss`` (all of them if there are fewer); ties go to the lower index."""
    ranked = background_loss.masked_fill(~negative, float("-inf"))
    order = torch.sort(ranked, dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(order.shape[1]).expand_as(order))
    keep = torch.minimum(ratio * positives, negative.sum(dim=1))
    return (rank < keep[:, None]) & negative


def top_detections(scores: torch.Tensor, boxes: torch.Tensor, height: int, width: int, threshold: float,
                   nms_iou: float, candidates: int = CANDIDATES) -> Detections:
    """Per-class candidates above ``threshold`` from (A, C) scores and (A, 4) boxes, the best ``candidates``
    of them, clipped to the image, then class-wise NMS."""
    flat = scores.reshape(-1)
    top = torch.topk(flat, min(candidates, flat.numel()))
    chosen = top.values > threshold
    index = top.indices[chosen]
    picked = boxes[index // scores.shape[1]]
    limits = picked.new_tensor([width, height, width, height])
    picked = torch.minimum(picked.clamp(min=0.0), limits)
    return suppress(picked, top.values[chosen], index % scores.shape[1], nms_iou=nms_iou)
