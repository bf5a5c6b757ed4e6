"""A DETR-style set-prediction detector (Carion et al., "End-to-End Object Detection with Transformers", ECCV 2020)
in miniature.

As in DETR: a CNN backbone's feature map (here stride 16) is projected to d channels, flattened into tokens with 2-D
sine positional encodings, and read by a transformer encoder-decoder whose decoder holds a fixed set of learned
object queries.  Each query predicts C + 1 class scores (the last is "no object") and a normalised (cx, cy, w, h)
box.  Training matches queries to ground-truth objects one-to-one with the Hungarian algorithm
(``scipy.optimize.linear_sum_assignment``) on the cost -p(class) + 5 L1 + 2 (-GIoU); the matched queries learn
their object's class and box (L1 x 5 + GIoU x 2), every other query learns "no object" (its cross-entropy weighted
0.1).  The same loss is applied after every decoder layer (auxiliary decoding losses).  No anchors, no NMS: each
query gives one detection, scored by its best class probability.

In miniature: d = 64, 4 heads, 2 encoder and 3 decoder layers, 16 queries (the embedded images hold at most 7
objects), no dropout.  Boxes are fractions of the (zero-padded) input canvas, which the adapter pads every image to.
One departure, for a CPU budget of minutes: each query also has a learned reference point (spread over the canvas
at initialisation) that its box centre is predicted relative to (as in Deformable / Anchor DETR); with plain
DETR the loss sat on the "every query predicts the mean box" plateau for the whole 1000-step budget.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from adapters.inrepo.detection.backbone import Backbone
from adapters.inrepo.detection.postprocess import Detections
from adapters.inrepo.detection.targets_classic import ImageTargets

QUERIES = 16
COST_CLASS, COST_L1, COST_GIOU = 1.0, 5.0, 2.0
LOSS_L1, LOSS_GIOU = 5.0, 2.0
NO_OBJECT_WEIGHT = 0.1
MIN_SCORE = 1e-4


def sine_positions(height: int, width: int, channels: int, temperature: float = 10000.0) -> torch.Tensor:
    """(height * width, channels) DETR's sine encoding: half the channels for y, half for x, of normalised
    positions (0..2 pi) at geometric frequencies."""
    quarter = channels // 4
    ys = (torch.arange(height, dtype=torch.float32) + 0.5) / height * 2 * math.pi
    xs = (torch.arange(width, dtype=torch.float32) + 0.5) / width * 2 * math.pi
    frequencies = temperature ** (torch.arange(quarter, dtype=torch.float32) / quarter)
    y = ys[:, None] / frequencies
    x = xs[:, None] / frequencies
    y_code = torch.cat([y.sin(), y.cos()], dim=1)[:, None, :].expand(height, width, -1)
    x_code = torch.cat([x.sin(), x.cos()], dim=1)[None, :, :].expand(height, width, -1)
    return torch.cat([y_code, x_code], dim=-1).reshape(height * width, channels)


class EncoderLayer(nn.Module):
    def __init__(self, d: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, d))
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        query = x + position
        x = self.norm1(x + self.attention(query, query, x, need_weights=False)[0])
        return self.norm2(x + self.ffn(x))


class DecoderLayer(nn.Module):
    def __init__(self, d: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.self_attention = nn.MultiheadAttention(d, heads, batch_first=True)
        self.cross_attention = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, d))
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, target: torch.Tensor, memory: torch.Tensor, position: torch.Tensor,
                query_position: torch.Tensor) -> torch.Tensor:
        query = target + query_position
        target = self.norm1(target + self.self_attention(query, query, target, need_weights=False)[0])
        target = self.norm2(target + self.cross_attention(target + query_position, memory + position, memory,
                                                          need_weights=False)[0])
        return self.norm3(target + self.ffn(target))


class DETR(nn.Module):
    def __init__(self, num_classes: int, d: int = 64, heads: int = 4, hidden: int = 128, encoders: int = 2,
                 decoders: int = 3, queries: int = QUERIES) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.d = d
        self.backbone = Backbone()
        self.project = nn.Conv2d(self.backbone.widths[2], d, 1)  # the stride-16 map
        self.encoder = nn.ModuleList(EncoderLayer(d, heads, hidden) for _ in range(encoders))
        self.decoder = nn.ModuleList(DecoderLayer(d, heads, hidden) for _ in range(decoders))
        self.queries = nn.Embedding(queries, d)
        #: reference points (logits of cx, cy), a 4 x 4 grid over the canvas at initialisation
        side = math.ceil(queries**0.5)
        grid = (torch.arange(queries, dtype=torch.float32) + 0.0)
        centres = torch.stack([(grid % side + 0.5) / side, (grid // side + 0.5) / side], dim=1)
        self.references = nn.Parameter(torch.logit(centres))
        self.classifier = nn.Linear(d, num_classes + 1)
        self.box = nn.Sequential(nn.Linear(d, d), nn.ReLU(inplace=True), nn.Linear(d, d), nn.ReLU(inplace=True),
                                 nn.Linear(d, 4))

    def forward(self, images: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(class logits (B, Q, C + 1), boxes (B, Q, 4) cx, cy, w, h as fractions of the input) after every
        decoder layer; the last is the prediction."""
        features = self.project(self.backbone(images)[2])
        batch, _, height, width = features.shape
        tokens = features.flatten(2).transpose(1, 2)
        position = sine_positions(height, width, self.d).to(tokens.device)[None]
        for layer in self.encoder:
            tokens = layer(tokens, position)
        query_position = self.queries.weight[None].expand(batch, -1, -1)
        target = torch.zeros_like(query_position)
        outputs = []
        for layer in self.decoder:
            target = layer(target, tokens, position, query_position)
            raw = self.box(target)
            centres = (raw[..., :2] + self.references[None]).sigmoid()
            outputs.append((self.classifier(target), torch.cat([centres, raw[..., 2:].sigmoid()], dim=-1)))
        return outputs

    def loss(self, images: torch.Tensor, targets: list[ImageTargets]) -> torch.Tensor:
        height, width = images.shape[-2:]
        scale = torch.tensor([width, height, width, height], dtype=torch.float32)
        goals = [(t.labels, xyxy_to_cxcywh(t.boxes / scale)) for t in targets]
        layer_losses = [set_loss(logits, boxes, goals) for logits, boxes in self(images)]
        total = layer_losses[0]
        for loss in layer_losses[1:]:  # summed in decoder order
            total = total + loss
        return total

    def detect(self, images: torch.Tensor, height: int, width: int) -> Detections:
        logits, boxes = self(images)[-1]
        probabilities = logits[0].softmax(dim=-1)[:, :-1]
        scores, classes = probabilities.max(dim=-1)
        canvas = boxes.new_tensor([images.shape[-1], images.shape[-2]] * 2)
        xyxy = cxcywh_to_xyxy(boxes[0]) * canvas
        xyxy = torch.minimum(xyxy.clamp(min=0.0), xyxy.new_tensor([width, height, width, height]))
        sides = xyxy[:, 2:] - xyxy[:, :2]
        keep = (sides >= 0.5).all(dim=1) & (scores > MIN_SCORE)
        order = torch.argsort(scores[keep], descending=True, stable=True)
        return Detections(xyxy[keep][order], scores[keep][order], classes[keep][order])


def xyxy_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    return torch.cat([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], dim=1)


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    return torch.cat([boxes[..., :2] - boxes[..., 2:] / 2, boxes[..., :2] + boxes[..., 2:] / 2], dim=-1)


def matching_cost(logits: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor,
                  goal_boxes: torch.Tensor) -> torch.Tensor:
    """(Q, N) cost of assigning each query to each object: -p(object's class) + 5 L1 + 2 (-GIoU)."""
    from torchvision.ops import generalized_box_iou

    probability = logits.softmax(dim=-1)[:, labels]
    l1 = torch.cdist(boxes, goal_boxes, p=1)
    giou = generalized_box_iou(cxcywh_to_xyxy(boxes), cxcywh_to_xyxy(goal_boxes))
    return -COST_CLASS * probability + COST_L1 * l1 - COST_GIOU * giou


def hungarian_match(cost: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Query indices and object indices of the minimum-cost one-to-one assignment (every object gets a query)."""
    from scipy.optimize import linear_sum_assignment

    queries, objects = linear_sum_assignment(cost.detach().cpu().double().numpy())
    return queries, objects


def set_loss(logits: torch.Tensor, boxes: torch.Tensor, goals: list[tuple[torch.Tensor, torch.Tensor]]
             ) -> torch.Tensor:
    """DETR's loss of one decoder layer's outputs for the batch: CE over all queries (no-object weighted 0.1), L1 and
    GIoU over the matched queries, divided by the number of objects."""
    from torchvision.ops import generalized_box_iou_loss

    batch, queries, classes = logits.shape
    class_targets = torch.full((batch, queries), classes - 1, dtype=torch.long)
    matched_boxes, goal_boxes = [], []
    for image, (labels, targets) in enumerate(goals):
        if len(labels) == 0:
            continue
        with torch.no_grad():
            cost = matching_cost(logits[image], boxes[image], labels, targets)
        chosen, objects = (torch.from_numpy(index).long() for index in hungarian_match(cost))
        class_targets[image, chosen] = labels[objects]
        matched_boxes.append(boxes[image, chosen])
        goal_boxes.append(targets[objects])
    weights = torch.ones(classes)
    weights[-1] = NO_OBJECT_WEIGHT
    classification = F.cross_entropy(logits.reshape(-1, classes), class_targets.reshape(-1), weight=weights)
    if not matched_boxes:
        return classification + boxes.sum() * 0.0
    predicted, wanted = torch.cat(matched_boxes), torch.cat(goal_boxes)
    count = max(len(wanted), 1)
    l1 = F.l1_loss(predicted, wanted, reduction="sum") / count
    giou = generalized_box_iou_loss(cxcywh_to_xyxy(predicted), cxcywh_to_xyxy(wanted), reduction="sum") / count
    return classification + LOSS_L1 * l1 + LOSS_GIOU * giou
