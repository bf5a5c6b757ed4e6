"""A DETR-style set-prediction detector (Carion et al., "End-to-End Object Detection with Transformers", ECCV 2020)
in miniature, with the published fixes for DETR's slow convergence.

As in DETR: a CNN backbone's feature map is projected to d channels, flattened into tokens with 2-D sine positional
encodings, and read by a transformer encoder-decoder whose decoder holds a fixed, small set of object queries.
Each query predicts class scores and one normalised (cx, cy, w, h) box; training matches queries to ground-truth
objects one-to-one with the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``), the matched queries
learn their object's class and box, every other query learns "no object"; the same loss is applied after every
decoder layer (auxiliary decoding losses).  No anchors in the dense sense and no NMS: each query gives its
detections directly.

What plain DETR needs 500 epochs of COCO for, a CPU budget of minutes cannot give (the committed plain-DETR
weights scored AP 0.000: every query predicted the mean box).  So, in miniature, the fixes later papers made:

- **anchor queries with iterative box refinement** (DAB-DETR, Liu et al. 2022; Deformable DETR, Zhu et al. 2021):
  each query owns a learned 4-D anchor box (spread over the canvas at initialisation); every decoder layer
  predicts a correction of the previous layer's box in logit space (the previous box detached, as in Deformable
  DETR), and the query's positional embedding is re-made from its current box (a sine code through an MLP);
- **deformable cross-attention** (Deformable DETR): a query reads a few bilinear samples of the memory around its
  current box (``DeformableCrossAttention``) instead of attending to every token, so it looks where its box is
  from the first step; self-attention among the queries stays DETR's (it is what lets the set avoid duplicates);
- **sigmoid focal classification** (Deformable DETR): C sigmoid scores per query instead of a softmax with a
  "no object" class (every unmatched query is a negative of every class, down-weighted by the focal term rather
  than by a fixed no-object weight), and the focal matching cost; loss weights 2 (class), 5 (L1), 2 (GIoU) and
  cost weights 2, 5, 2 as published;
- **a finer memory**: the stride-16 map upsampled onto the stride-8 map (a two-level FPN), so a 12 px object is
  more than a fraction of a token; the encoder's token positions and the queries' boxes are sine codes of
  fractions of the canvas with periods from the canvas down to a sixteenth of it (DETR's own code has none
  shorter than the image, too coarse to tell 12 px objects apart);
- a higher learning rate and many more epochs than the other classic detectors (``classics.MODELS``).

Inference: the 100 best (query, class) scores, as Deformable DETR does (a query may name two classes; no NMS).
d = 64, 4 heads, 2 encoder layers (full self-attention on the stride-16 tokens), 4 decoder layers (4 sampling
points per head), 16 queries (the embedded images hold at most 7 objects), no dropout.  Boxes are fractions of
the (zero-padded) canvas, which the adapter pads every image to.
"""
from __future__ import annotations

import math
from typing import cast

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from adapters.inrepo.detection.backbone import Backbone
from adapters.inrepo.detection.postprocess import MAX_DETECTIONS, Detections
from adapters.inrepo.detection.retinanet import ALPHA, GAMMA, PRIOR, sigmoid_focal_loss
from adapters.inrepo.detection.targets_classic import ImageTargets

QUERIES = 16
COST_CLASS, COST_L1, COST_GIOU = 2.0, 5.0, 2.0
LOSS_CLASS, LOSS_L1, LOSS_GIOU = 2.0, 5.0, 2.0
#: the anchors' initial width and height (fractions of the canvas): the median embedded object is ~27 px of 192
ANCHOR_SIZE = 0.15
#: the highest positional frequency: this many periods across the canvas (the lowest is one)
MAX_PERIODS = 16.0
MIN_SCORE = 1e-4
EPS = 1e-6


def sine_code(values: torch.Tensor, channels: int) -> torch.Tensor:
    """(..., k) fractions in [0, 1] -> (..., k * channels): sin and cos of each value at ``channels // 2``
    geometric frequencies from one period to ``MAX_PERIODS`` periods over [0, 1]."""
    count = channels // 2
    periods = MAX_PERIODS ** (torch.arange(count, dtype=values.dtype, device=values.device) / max(count - 1, 1))
    angles = values[..., None] * (2 * math.pi) * periods
    return torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(-2)


def grid_positions(height: int, width: int, channels: int) -> torch.Tensor:
    """(height * width, channels) positional code of the cell centres, (y, x) as fractions of the map."""
    ys = (torch.arange(height, dtype=torch.float32) + 0.5) / height
    xs = (torch.arange(width, dtype=torch.float32) + 0.5) / width
    centres = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).reshape(-1, 2)
    return sine_code(centres, channels // 2)


def mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, outputs))


class EncoderLayer(nn.Module):
    def __init__(self, d: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ffn = mlp(d, hidden, d)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        query = x + position
        x = self.norm1(x + self.attention(query, query, x, need_weights=False)[0])
        return self.norm2(x + self.ffn(x))


class DeformableCrossAttention(nn.Module):
    """Deformable DETR's cross-attention on one feature level: each head of a query reads ``points`` bilinear
    samples of the memory placed around its reference box (offsets predicted from the query, scaled by the box's
    half width and height) and mixes them with predicted softmax weights.  A query thus attends where its box is
    from the first step, instead of to all tokens alike, which is what makes plain DETR so slow to train."""

    def __init__(self, d: int, heads: int, points: int = 4) -> None:
        super().__init__()
        self.heads, self.points = heads, points
        self.offsets = nn.Linear(d, heads * points * 2)
        self.weights = nn.Linear(d, heads * points)
        self.value = nn.Linear(d, d)
        self.output = nn.Linear(d, d)
        # Deformable DETR's initialisation: head h samples along its own direction, point k at (k + 1) / points of
        # the way to the box's edge; uniform mixing weights
        nn.init.zeros_(self.offsets.weight)
        angles = torch.arange(heads, dtype=torch.float32) * (2 * math.pi / heads)
        directions = torch.stack([angles.cos(), angles.sin()], dim=-1)
        directions = directions / directions.abs().max(dim=-1, keepdim=True).values
        steps = torch.arange(1, points + 1, dtype=torch.float32)[None, :, None]
        with torch.no_grad():
            self.offsets.bias.copy_((directions[:, None, :] * steps).reshape(-1))
        nn.init.zeros_(self.weights.weight)
        nn.init.zeros_(self.weights.bias)

    def forward(self, query: torch.Tensor, boxes: torch.Tensor, memory: torch.Tensor, height: int,
                width: int) -> torch.Tensor:
        """``query`` (B, Q, d), reference ``boxes`` (B, Q, 4) cx, cy, w, h in [0, 1], ``memory`` (B, H*W, d)."""
        batch, queries, d = query.shape
        heads, points = self.heads, self.points
        offsets = self.offsets(query).reshape(batch, queries, heads, points, 2)
        locations = boxes[:, :, None, None, :2] + offsets / points * boxes[:, :, None, None, 2:] * 0.5
        weights = self.weights(query).reshape(batch, queries, heads, points).softmax(dim=-1)
        value = self.value(memory).transpose(1, 2).reshape(batch * heads, d // heads, height, width)
        grid = (2 * locations - 1).permute(0, 2, 1, 3, 4).reshape(batch * heads, queries, points, 2)
        sampled = F.grid_sample(value, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        # (B * heads, d / heads, Q, points) -> weighted sum over the points -> (B, Q, d)
        mixed = (sampled * weights.permute(0, 2, 1, 3).reshape(batch * heads, 1, queries, points)).sum(dim=-1)
        return self.output(mixed.reshape(batch, d, queries).transpose(1, 2))


class DecoderLayer(nn.Module):
    def __init__(self, d: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.self_attention = nn.MultiheadAttention(d, heads, batch_first=True)
        self.cross_attention = DeformableCrossAttention(d, heads)
        self.ffn = mlp(d, hidden, d)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, target: torch.Tensor, memory: torch.Tensor, size: tuple[int, int], boxes: torch.Tensor,
                query_position: torch.Tensor) -> torch.Tensor:
        query = target + query_position
        target = self.norm1(target + self.self_attention(query, query, target, need_weights=False)[0])
        target = self.norm2(target + self.cross_attention(target + query_position, boxes, memory, *size))
        return self.norm3(target + self.ffn(target))


def anchor_grid(queries: int, size: float = ANCHOR_SIZE) -> torch.Tensor:
    """(queries, 4) logits of anchors (cx, cy, w, h): centres on a square grid over the canvas, one size."""
    side = math.ceil(queries**0.5)
    index = torch.arange(queries, dtype=torch.float32)
    centres = torch.stack([(index % side + 0.5) / side, (index // side + 0.5) / side], dim=1)
    return torch.logit(torch.cat([centres, torch.full((queries, 2), size)], dim=1))


class DETR(nn.Module):
    def __init__(self, num_classes: int, d: int = 64, heads: int = 4, hidden: int = 128, encoders: int = 2,
                 decoders: int = 4, queries: int = QUERIES) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.d = d
        self.backbone = Backbone()
        self.lateral8 = nn.Conv2d(self.backbone.widths[1], d, 1)
        self.lateral16 = nn.Conv2d(self.backbone.widths[2], d, 1)
        self.encoder = nn.ModuleList(EncoderLayer(d, heads, hidden) for _ in range(encoders))
        self.decoder = nn.ModuleList(DecoderLayer(d, heads, hidden) for _ in range(decoders))
        self.content = nn.Embedding(queries, d)
        self.anchors = nn.Parameter(anchor_grid(queries))
        #: the query's positional embedding from the sine code of its current box (DAB-DETR)
        self.query_position = mlp(2 * d, d, d)
        self.classifiers = nn.ModuleList(nn.Linear(d, num_classes) for _ in range(decoders))
        self.box_heads = nn.ModuleList(mlp(d, d, 4) for _ in range(decoders))
        for classifier in self.classifiers:
            nn.init.constant_(cast(nn.Linear, classifier).bias, -math.log((1 - PRIOR) / PRIOR))
        for head in self.box_heads:  # a layer starts by keeping the box it was given
            last = cast(nn.Linear, cast(nn.Sequential, head)[-1])
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def memory(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Decoder memory (B, HW, d) at stride 8 and its (H, W): the transformer encoder runs
        on the stride-16 tokens (a quarter as many, self-attention costs their square), whose output is
        upsampled onto the stride-8 map's projection (a two-level FPN)."""
        _, c3, c4, _ = self.backbone(images)
        coarse = self.lateral16(c4)
        batch, _, height, width = coarse.shape
        tokens = coarse.flatten(2).transpose(1, 2)
        position = grid_positions(height, width, self.d).to(tokens.device)[None]
        for layer in self.encoder:
            tokens = layer(tokens, position)
        encoded = tokens.transpose(1, 2).reshape(batch, self.d, height, width)
        fine = self.lateral8(c3) + F.interpolate(encoded, size=c3.shape[-2:], mode="nearest")
        return fine.flatten(2).transpose(1, 2), (fine.shape[-2], fine.shape[-1])

    def forward(self, images: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(class logits (B, Q, C), boxes (B, Q, 4) cx, cy, w, h as fractions of the input) after every decoder
        layer; the last is the prediction."""
        tokens, size = self.memory(images)
        batch = tokens.shape[0]
        target = self.content.weight[None].expand(batch, -1, -1)
        box_logits = self.anchors[None].expand(batch, -1, -1)
        outputs = []
        for layer, classifier, box_head in zip(self.decoder, self.classifiers, self.box_heads):
            boxes = box_logits.sigmoid()
            query_position = self.query_position(sine_code(boxes, self.d // 2))
            target = layer(target, tokens, size, boxes, query_position)
            refined = box_logits + box_head(target)
            outputs.append((classifier(target), refined.sigmoid()))
            box_logits = refined.detach()
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
        probabilities = logits[0].sigmoid()
        count = min(MAX_DETECTIONS, probabilities.numel())
        # ties (equal scores) keep the lower (query, class) index first, so the order is reproducible
        order = torch.argsort(probabilities.flatten(), descending=True, stable=True)[:count]
        scores = probabilities.flatten()[order]
        queries, classes = order // self.num_classes, order % self.num_classes
        canvas = boxes.new_tensor([images.shape[-1], images.shape[-2]] * 2)
        xyxy = cxcywh_to_xyxy(boxes[0, queries]) * canvas
        xyxy = torch.minimum(xyxy.clamp(min=0.0), xyxy.new_tensor([width, height, width, height]))
        sides = xyxy[:, 2:] - xyxy[:, :2]
        keep = (sides >= 0.5).all(dim=1) & (scores > MIN_SCORE)
        return Detections(xyxy[keep], scores[keep], classes[keep])


def xyxy_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    return torch.cat([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], dim=1)


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    return torch.cat([boxes[..., :2] - boxes[..., 2:] / 2, boxes[..., :2] + boxes[..., 2:] / 2], dim=-1)


def focal_class_cost(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(Q, N) Deformable DETR's classification cost: the focal loss of calling query q object n's class minus
    that of calling it background (low when the query is confident of the class)."""
    probability = logits.sigmoid()[:, labels]
    positive = ALPHA * (1 - probability) ** GAMMA * -(probability + EPS).log()
    negative = (1 - ALPHA) * probability**GAMMA * -(1 - probability + EPS).log()
    return positive - negative


def matching_cost(logits: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor,
                  goal_boxes: torch.Tensor) -> torch.Tensor:
    """(Q, N) cost of assigning each query to each object: 2 focal class cost + 5 L1 + 2 (-GIoU)."""
    from torchvision.ops import generalized_box_iou

    l1 = torch.cdist(boxes, goal_boxes, p=1)
    giou = generalized_box_iou(cxcywh_to_xyxy(boxes), cxcywh_to_xyxy(goal_boxes))
    return COST_CLASS * focal_class_cost(logits, labels) + COST_L1 * l1 - COST_GIOU * giou


def hungarian_match(cost: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Query indices and object indices of the minimum-cost one-to-one assignment (every object gets a query)."""
    from scipy.optimize import linear_sum_assignment

    queries, objects = linear_sum_assignment(cost.detach().cpu().double().numpy())
    return queries, objects


def set_loss(logits: torch.Tensor, boxes: torch.Tensor, goals: list[tuple[torch.Tensor, torch.Tensor]]
             ) -> torch.Tensor:
    """One decoder layer's loss for the batch: sigmoid focal loss over every (query, class) (a matched query's
    own class is its positive), L1 and GIoU over the matched queries, each summed and divided by the number of
    objects in the batch, weighted 2, 5, 2."""
    from torchvision.ops import generalized_box_iou_loss

    class_targets = torch.zeros_like(logits)
    matched_boxes, goal_boxes = [], []
    for image, (labels, targets) in enumerate(goals):
        if len(labels) == 0:
            continue
        with torch.no_grad():
            cost = matching_cost(logits[image], boxes[image], labels, targets)
        chosen, objects = hungarian_match(cost)
        chosen_index, object_index = torch.from_numpy(chosen).long(), torch.from_numpy(objects).long()
        class_targets[image, chosen_index, labels[object_index]] = 1.0
        matched_boxes.append(boxes[image, chosen_index])
        goal_boxes.append(targets[object_index])
    count = max(sum(len(labels) for labels, _ in goals), 1)
    classification = LOSS_CLASS * sigmoid_focal_loss(logits, class_targets).sum() / count
    if not matched_boxes:
        return classification + boxes.sum() * 0.0
    predicted, wanted = torch.cat(matched_boxes), torch.cat(goal_boxes)
    l1 = F.l1_loss(predicted, wanted, reduction="sum") / count
    giou = generalized_box_iou_loss(cxcywh_to_xyxy(predicted), cxcywh_to_xyxy(wanted), reduction="sum") / count
    return classification + LOSS_L1 * l1 + LOSS_GIOU * giou
