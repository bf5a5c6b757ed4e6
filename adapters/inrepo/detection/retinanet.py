"""A RetinaNet-style detector (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017) in miniature.

As in RetinaNet: a feature pyramid (here P3-P5, strides 8-32: the embedded objects are at most ~70 px, P6-P7
would see none), A = 9 anchors per location (3 scales 2^0, 2^1/3, 2^2/3 x 3 aspect ratios), a classification
subnet and a box subnet shared by all levels, per-class sigmoid outputs initialised to the prior pi = 0.01, and
the focal loss FL(p_t) = -alpha_t (1 - p_t)^gamma log(p_t) (alpha 0.25, gamma 2) over every anchor that is not
ignored, summed and divided by the number of positive anchors: no sampling and no hard negative mining, the
loss itself down-weights the easy negatives.  Anchors with IoU >= 0.5 are positives, < 0.4 negatives, the rest
ignored (plus each object's best anchor, as Detectron's low-quality matches).  In miniature: subnets of two
convolutions of width 64 instead of four of 256; anchor sizes 16-64 px at P3-P5 instead of 32-128.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from adapters.inrepo.detection import anchors as anchor_ops
from adapters.inrepo.detection.backbone import Backbone, FeaturePyramid
from adapters.inrepo.detection.postprocess import Detections
from adapters.inrepo.detection.ssd import top_detections
from adapters.inrepo.detection.targets_classic import ImageTargets

STRIDES = (8, 16, 32)
SIZES = (16.0, 32.0, 64.0)
SCALES = (1.0, 2 ** (1 / 3), 2 ** (2 / 3))
RATIOS = (0.5, 1.0, 2.0)
ALPHA, GAMMA = 0.25, 2.0
PRIOR = 0.01
POSITIVE_IOU, NEGATIVE_IOU = 0.5, 0.4
SCORE_THRESHOLD = 0.05
NMS_IOU = 0.5
CANDIDATES = 1000


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float | None = ALPHA,
                       gamma: float = GAMMA) -> torch.Tensor:
    """Element-wise focal loss of sigmoid ``logits`` against ``targets`` in [0, 1] (no reduction).

    -alpha_t (1 - p_t)^gamma log(p_t), with p_t = p for a target 1 and 1 - p for a target 0, and the log term
    computed as the binary cross-entropy with logits (stable for large logits); ``alpha=None`` leaves it out.
    """
    probability = torch.sigmoid(logits)
    cross_entropy = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = probability * targets + (1 - probability) * (1 - targets)
    loss = cross_entropy * (1 - p_t) ** gamma
    if alpha is not None:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss


def subnet(width: int, outputs: int, depth: int = 2) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True)]
    layers.append(nn.Conv2d(width, outputs, 3, padding=1))
    return nn.Sequential(*layers)


class RetinaNet(nn.Module):
    def __init__(self, num_classes: int, width: int = 64) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.backbone = Backbone()
        self.pyramid = FeaturePyramid(self.backbone.widths, width, levels=(1, 2, 3))
        self.shapes = [anchor_ops.anchor_shapes([size * scale for scale in SCALES], RATIOS) for size in SIZES]
        anchors = len(self.shapes[0])
        self.classifier = subnet(width, anchors * num_classes)
        self.regressor = subnet(width, anchors * 4)
        # the output layers as in the paper (std 0.01, class bias at the prior); the hidden layers keep torch's
        # default initialisation: at width 64 the paper's std 0.01 shrinks the signal ~4x per layer, and after 300
        # steps every class scored the same (AP 0.03)
        classifier, regressor = self.classifier[-1], self.regressor[-1]
        assert isinstance(classifier, nn.Conv2d) and isinstance(regressor, nn.Conv2d)  # subnet's output layers
        for conv in (classifier, regressor):
            assert conv.bias is not None
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)
        assert classifier.bias is not None
        nn.init.constant_(classifier.bias, -math.log((1 - PRIOR) / PRIOR))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> class logits (B, A, C), box deltas (B, A, 4), anchors (A, 4) xyxy over all levels."""
        logits, deltas, anchors = [], [], []
        for x, shapes, stride in zip(self.pyramid(self.backbone(images)), self.shapes, STRIDES):
            batch, _, height, width = x.shape
            logits.append(self.classifier(x).permute(0, 2, 3, 1).reshape(batch, -1, self.num_classes))
            deltas.append(self.regressor(x).permute(0, 2, 3, 1).reshape(batch, -1, 4))
            anchors.append(anchor_ops.grid_anchors(height, width, stride, shapes).to(x.device))
        return torch.cat(logits, 1), torch.cat(deltas, 1), torch.cat(anchors)

    def loss(self, images: torch.Tensor, targets: list[ImageTargets]) -> torch.Tensor:
        logits, deltas, anchors = self(images)
        class_targets = torch.zeros_like(logits)
        counted = torch.ones(logits.shape[:2], dtype=torch.bool)
        positive = torch.zeros(logits.shape[:2], dtype=torch.bool)
        box_targets = torch.zeros_like(deltas)
        for image, target in enumerate(targets):
            assigned = anchor_ops.match(anchors, target.boxes, POSITIVE_IOU, NEGATIVE_IOU)
            assigned = anchor_ops.ignore_crowds(assigned, anchors, target.ignored)
            chosen = assigned >= 0
            positive[image] = chosen
            counted[image] = assigned != -2
            class_targets[image, chosen, target.labels[assigned[chosen]]] = 1.0
            box_targets[image, chosen] = anchor_ops.encode(target.boxes[assigned[chosen]], anchors[chosen])
        count = positive.sum().clamp(min=1)
        classification = sigmoid_focal_loss(logits[counted], class_targets[counted]).sum()
        regression = F.smooth_l1_loss(deltas[positive], box_targets[positive], reduction="sum")
        return (classification + regression) / count

    def detect(self, images: torch.Tensor, height: int, width: int) -> Detections:
        logits, deltas, anchors = self(images)
        inside = anchor_ops.centres_inside(anchors, height, width)
        scores = logits[0, inside].sigmoid()
        boxes = anchor_ops.decode(deltas[0, inside], anchors[inside])
        return top_detections(scores, boxes, height, width, SCORE_THRESHOLD, NMS_IOU, CANDIDATES)
