"""A two-stage region-based detector with a mask branch (Mask R-CNN: He et al., ICCV 2017) in miniature.

Stage one, the region proposal network (Faster R-CNN): a 3x3 conv on the stride-8 pyramid level and, per
location, objectness and box deltas for 9 anchors (16, 32, 64 px x ratios 1/2, 1, 2).  Its training samples 128
anchors per image, at most half positive (IoU >= 0.7, or an object's best anchor), negatives below 0.3.  Its
proposals are its best boxes after NMS at 0.7.

Stage two crops every proposal's features with RoIAlign (``roi_align.roi_align``, no quantisation) and runs two
heads: a box head (two fully connected layers, C + 1 softmax scores and class-specific box refinements) trained on
32 proposals per image (ground-truth boxes added, at most a quarter foreground at IoU >= 0.5), and the mask
head (convolutions, a 2x transposed convolution, one 28 x 28 mask per class, per-pixel sigmoid) trained only on
foreground proposals (at most 4 per image), with the binary cross-entropy of the ground-truth class's mask alone, so classes do
not compete for pixels (the paper's decoupling of masks from classification).  Test: proposals -> box head ->
per-class NMS -> the mask head on the final boxes.

In miniature: FPN P2 and P3 (strides 4 and 8) only.  FPN's rule k = floor(4 + log2(sqrt(wh) / 224)) sends every
embedded object (12-70 px) to the finest level, so the RoI heads crop P2 and the RPN runs on P3.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from adapters.inrepo.detection import anchors as anchor_ops
from adapters.inrepo.detection.backbone import Backbone, FeaturePyramid
from adapters.inrepo.detection.postprocess import Detections, suppress
from adapters.inrepo.detection.roi_align import roi_align
from adapters.inrepo.detection.targets_classic import ImageTargets

RPN_STRIDE = 8
ROI_STRIDE = 4
ANCHOR_SIZES = (16.0, 32.0, 64.0)
ANCHOR_RATIOS = (0.5, 1.0, 2.0)
RPN_POSITIVE_IOU, RPN_NEGATIVE_IOU = 0.7, 0.3
RPN_SAMPLES, RPN_POSITIVE_FRACTION = 128, 0.5
PRE_NMS, RPN_NMS_IOU = 600, 0.7
POST_NMS = {True: 150, False: 100}  # training, test
ROI_SAMPLES, ROI_POSITIVE_FRACTION, ROI_FOREGROUND_IOU = 32, 0.25, 0.5
#: foreground RoIs per image the mask head trains on (the first of the randomly sampled ones)
MASK_SAMPLES = 4
BOX_SIZE, MASK_SIZE = 7, 14
SCORE_THRESHOLD, NMS_IOU = 0.05, 0.5


class MaskRCNN(nn.Module):
    def __init__(self, num_classes: int, width: int = 64, fc_width: int = 128, mask_width: int = 32) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.backbone = Backbone()
        self.pyramid = FeaturePyramid(self.backbone.widths, width, levels=(0, 1))
        self.anchor_shapes = anchor_ops.anchor_shapes(ANCHOR_SIZES, ANCHOR_RATIOS)
        anchors = len(self.anchor_shapes)
        self.rpn_conv = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True))
        self.rpn_objectness = nn.Conv2d(width, anchors, 1)
        self.rpn_deltas = nn.Conv2d(width, anchors * 4, 1)
        self.box_head = nn.Sequential(nn.Flatten(), nn.Linear(width * BOX_SIZE**2, fc_width), nn.ReLU(inplace=True),
                                      nn.Linear(fc_width, fc_width), nn.ReLU(inplace=True))
        self.box_classes = nn.Linear(fc_width, num_classes + 1)
        self.box_deltas = nn.Linear(fc_width, num_classes * 4)
        mask_layers: list[nn.Module] = []
        for index in range(3):
            mask_layers += [nn.Conv2d(width if index == 0 else mask_width, mask_width, 3, padding=1),
                            nn.ReLU(inplace=True)]
        self.mask_head = nn.Sequential(*mask_layers, nn.ConvTranspose2d(mask_width, mask_width, 2, stride=2),
                                       nn.ReLU(inplace=True), nn.Conv2d(mask_width, num_classes, 1))
        nn.init.normal_(self.box_deltas.weight, std=0.001)
        nn.init.zeros_(self.box_deltas.bias)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The dense part (backbone, pyramid, RPN), what ``bench throughput`` times; RoI heads run per detection."""
        return self.features(images)

    # ---------------------------------------------------------------------------------------------- stage one
    def features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> RoI features (P2), RPN objectness logits (B, A), RPN deltas (B, A, 4), anchors (A, 4)."""
        p2, p3 = self.pyramid(self.backbone(images))
        hidden = self.rpn_conv(p3)
        batch, _, height, width = p3.shape
        objectness = self.rpn_objectness(hidden).permute(0, 2, 3, 1).reshape(batch, -1)
        deltas = self.rpn_deltas(hidden).permute(0, 2, 3, 1).reshape(batch, -1, 4)
        anchors = anchor_ops.grid_anchors(height, width, RPN_STRIDE, self.anchor_shapes).to(p3.device)
        return p2, objectness, deltas, anchors

    def proposals(self, objectness: torch.Tensor, deltas: torch.Tensor, anchors: torch.Tensor, height: int,
                  width: int, training: bool) -> list[torch.Tensor]:
        """Per image, the RPN's best boxes (xyxy, clipped to ``height`` x ``width``) after NMS, detached."""
        from torchvision.ops import nms

        inside = anchor_ops.centres_inside(anchors, height, width)
        found = []
        for image in range(objectness.shape[0]):
            scores = objectness[image, inside].detach()
            top = torch.topk(scores, min(PRE_NMS, scores.numel()))
            boxes = anchor_ops.decode(deltas[image, inside][top.indices].detach(), anchors[inside][top.indices])
            boxes = torch.minimum(boxes.clamp(min=0.0), boxes.new_tensor([width, height, width, height]))
            sides = boxes[:, 2:] - boxes[:, :2]
            usable = (sides >= 1.0).all(dim=1)
            boxes, scores = boxes[usable], top.values[usable]
            found.append(boxes[nms(boxes, scores, RPN_NMS_IOU)[: POST_NMS[training]]])
        return found

    # ---------------------------------------------------------------------------------------------- stage two
    def box_outputs(self, features: torch.Tensor, rois: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        crops = roi_align(features, rois, BOX_SIZE, 1.0 / ROI_STRIDE, sampling_ratio=2, aligned=True)
        hidden = self.box_head(crops)
        return self.box_classes(hidden), self.box_deltas(hidden).reshape(len(rois), self.num_classes, 4)

    def mask_logits(self, features: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        """(R, C, 2 * MASK_SIZE, 2 * MASK_SIZE) mask logits per class over each RoI."""
        crops = roi_align(features, rois, MASK_SIZE, 1.0 / ROI_STRIDE, sampling_ratio=2, aligned=True)
        return self.mask_head(crops)

    # ---------------------------------------------------------------------------------------------- training
    def loss(self, images: torch.Tensor, targets: list[ImageTargets]) -> torch.Tensor:
        features, objectness, deltas, anchors = self.features(images)
        height, width = images.shape[-2:]
        rpn = rpn_loss(objectness, deltas, anchors, targets)
        proposals = self.proposals(objectness, deltas, anchors, height, width, training=True)
        rois, labels, box_targets, mask_targets, fg_rois, fg_labels = sample_rois(proposals, targets)
        class_logits, box_deltas = self.box_outputs(features, rois)
        classification = F.cross_entropy(class_logits, labels)
        foreground = labels > 0
        regression = F.smooth_l1_loss(box_deltas[foreground, labels[foreground] - 1], box_targets,
                                      reduction="sum") / max(len(labels), 1)
        if len(fg_rois):
            logits = self.mask_logits(features, fg_rois)
            own = logits[torch.arange(len(fg_labels)), fg_labels - 1]
            mask = F.binary_cross_entropy_with_logits(own, mask_targets)
        else:
            mask = features.sum() * 0.0
        return rpn + classification + regression + mask

    # ---------------------------------------------------------------------------------------------- test
    def detect_boxes(self, images: torch.Tensor, height: int, width: int
                     ) -> tuple[Detections, torch.Tensor]:
        features, objectness, deltas, anchors = self.features(images)
        [proposals] = self.proposals(objectness, deltas, anchors, height, width, training=False)
        rois = torch.cat([proposals.new_zeros((len(proposals), 1)), proposals], dim=1)
        class_logits, box_deltas = self.box_outputs(features, rois)
        scores = class_logits.softmax(dim=-1)[:, 1:]  # (R, C)
        boxes = anchor_ops.decode(box_deltas.reshape(-1, 4),
                                  proposals.repeat_interleave(self.num_classes, dim=0))  # (R * C, 4)
        boxes = torch.minimum(boxes.clamp(min=0.0), boxes.new_tensor([width, height, width, height]))
        flat = scores.reshape(-1)
        chosen = flat > SCORE_THRESHOLD
        classes = torch.arange(self.num_classes).repeat(len(proposals))
        return suppress(boxes[chosen], flat[chosen], classes[chosen], nms_iou=NMS_IOU), features

    def detect(self, images: torch.Tensor, height: int, width: int) -> Detections:
        return self.detect_boxes(images, height, width)[0]

    def detect_masks(self, images: torch.Tensor, height: int, width: int, limit: int
                     ) -> tuple[Detections, torch.Tensor]:
        """The best ``limit`` detections and (R, 1, S, S) mask logits of each one's class over its box."""
        found, features = self.detect_boxes(images, height, width)
        found = Detections(found.boxes[:limit], found.scores[:limit], found.classes[:limit])
        rois = torch.cat([found.boxes.new_zeros((len(found.boxes), 1)), found.boxes], dim=1)
        if not len(rois):
            return found, features.new_zeros((0, 1, 2 * MASK_SIZE, 2 * MASK_SIZE))
        logits = self.mask_logits(features, rois)
        return found, logits[torch.arange(len(rois)), found.classes][:, None]


def rpn_loss(objectness: torch.Tensor, deltas: torch.Tensor, anchors: torch.Tensor,
             targets: list[ImageTargets]) -> torch.Tensor:
    """Binary cross-entropy over the sampled anchors + smooth L1 on the positive ones, per sampled anchor."""
    chosen_logits, chosen_labels, positive_deltas, positive_targets = [], [], [], []
    for image, target in enumerate(targets):
        assigned = anchor_ops.match(anchors, target.boxes, RPN_POSITIVE_IOU, RPN_NEGATIVE_IOU)
        assigned = anchor_ops.ignore_crowds(assigned, anchors, target.ignored)
        positive = torch.nonzero(assigned >= 0, as_tuple=True)[0]
        negative = torch.nonzero(assigned == -1, as_tuple=True)[0]
        positive = positive[torch.randperm(len(positive))[: int(RPN_SAMPLES * RPN_POSITIVE_FRACTION)]]
        negative = negative[torch.randperm(len(negative))[: RPN_SAMPLES - len(positive)]]
        chosen = torch.cat([positive, negative])
        chosen_logits.append(objectness[image, chosen])
        chosen_labels.append(torch.cat([torch.ones(len(positive)), torch.zeros(len(negative))]))
        positive_deltas.append(deltas[image, positive])
        positive_targets.append(anchor_ops.encode(target.boxes[assigned[positive]], anchors[positive]))
    logits, labels = torch.cat(chosen_logits), torch.cat(chosen_labels)
    classification = F.binary_cross_entropy_with_logits(logits, labels)
    regression = F.smooth_l1_loss(torch.cat(positive_deltas), torch.cat(positive_targets),
                                  reduction="sum") / max(len(labels), 1)
    return classification + regression


def sample_rois(proposals: list[torch.Tensor], targets: list[ImageTargets]):
    """Training RoIs of the second stage: per image the proposals plus the ground-truth boxes, ``ROI_SAMPLES``
    of them at most a quarter foreground (IoU >= 0.5; label = the object's class + 1), the rest background.

    Returns rois (R, 5), labels (R,), box targets of the foreground RoIs (F, 4), and for the mask head the
    foreground RoIs (F, 5), their (F, S, S) binary mask targets (each object's mask resampled over the RoI with
    RoIAlign, thresholded at 0.5) and labels."""
    from torchvision.ops import box_iou

    rois, labels, box_targets, masks, fg_rois, fg_labels = [], [], [], [], [], []
    size = 2 * MASK_SIZE
    for image, (found, target) in enumerate(zip(proposals, targets)):
        candidates = torch.cat([found, target.boxes])
        if len(target.boxes):
            iou = box_iou(candidates, target.boxes)
            best_iou, best = iou.max(dim=1)
        else:
            best_iou = torch.zeros(len(candidates))
            best = torch.zeros(len(candidates), dtype=torch.long)
        foreground = torch.nonzero(best_iou >= ROI_FOREGROUND_IOU, as_tuple=True)[0]
        background = torch.nonzero(best_iou < ROI_FOREGROUND_IOU, as_tuple=True)[0]
        foreground = foreground[torch.randperm(len(foreground))[: int(ROI_SAMPLES * ROI_POSITIVE_FRACTION)]]
        background = background[torch.randperm(len(background))[: ROI_SAMPLES - len(foreground)]]
        chosen = torch.cat([foreground, background])
        index = torch.full((len(chosen), 1), float(image))
        rois.append(torch.cat([index, candidates[chosen]], dim=1))
        image_labels = torch.zeros(len(chosen), dtype=torch.long)
        image_labels[: len(foreground)] = target.labels[best[foreground]] + 1
        labels.append(image_labels)
        objects = best[foreground]
        fg_boxes = candidates[foreground]
        box_targets.append(anchor_ops.encode(target.boxes[objects], fg_boxes))
        objects, fg_boxes = objects[:MASK_SAMPLES], fg_boxes[:MASK_SAMPLES]
        fg_rois.append(torch.cat([index[: len(objects)], fg_boxes], dim=1))
        fg_labels.append(target.labels[objects] + 1)
        if target.masks is not None and len(objects):
            own = torch.cat([torch.arange(len(objects), dtype=torch.float32)[:, None], fg_boxes], dim=1)
            resampled = roi_align(target.masks[objects][:, None], own, size, 1.0, sampling_ratio=2, aligned=True)
            masks.append((resampled[:, 0] >= 0.5).float())
    empty_masks = torch.zeros((0, size, size))
    return (torch.cat(rois), torch.cat(labels), torch.cat(box_targets), torch.cat(masks) if masks else empty_masks,
            torch.cat(fg_rois), torch.cat(fg_labels))
