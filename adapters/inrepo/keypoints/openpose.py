"""``openpose``: bottom-up multi-person pose in miniature (Cao et al., OpenPose / "Realtime Multi-Person 2D Pose
Estimation using Part Affinity Fields").

The whole image goes through the network once (no person boxes): a light encoder-decoder gives stride-4
features, stage 1 predicts part confidence maps (one per joint, all people at once) and Part Affinity Fields
(one 2-D unit-vector field per limb of a skeleton tree, ``paf_grouping.COCO_LIMBS``), and stage 2 refines both
from the features plus stage 1's maps; the loss is applied to both stages (intermediate supervision).  Crowd
regions (``iscrowd``) and people without labelled joints are masked out of the loss, as OpenPose masks COCO's
unannotated people.  Decoding finds the maps' peaks and groups them into people by PAF line integrals and
bipartite matching per limb (``paf_grouping``).  A person's score is the mean of its 17 joint scores (0 for a
missing joint), its box the extent of its joints; missing joints sit at the person's centre with score 0.

The adapter is in ``openpose_adapter.py`` (torch-free, so listing the models imports no torch).
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from adapters.inrepo.keypoints.heatmap import BACKGROUND_LOGIT
from adapters.inrepo.keypoints.networks import Decoder, Encoder, conv_bn, grid_centres
from adapters.inrepo.keypoints.paf_grouping import COCO_LIMBS, find_peaks, group_people
from adapters.inrepo.keypoints.openpose_adapter import INPUT_WH  # the adapter reports it: defined torch-free there

STRIDE = 4
SIGMA_CELLS = 1.0
PAF_HALF_WIDTH_CELLS = 1.5
PAF_LOSS_WEIGHT = 200.0
PEAK_THRESHOLD = 0.1


class OpenPoseNet(nn.Module):
    """Output (B, 2 stages, K + 2L, h, w): K confidence-map logits then L (x, y) PAF pairs, at stride 4."""

    def __init__(self, num_joints: int = 17, limbs: Sequence[tuple[int, int]] = COCO_LIMBS,
                 widths: tuple[int, ...] = (16, 32, 48, 64), blocks: tuple[int, ...] = (0, 1, 1, 1)) -> None:
        super().__init__()
        self.num_joints, self.limbs = num_joints, tuple(limbs)
        channels = num_joints + 2 * len(self.limbs)
        self.encoder = Encoder(widths, blocks)
        self.decoder = Decoder(widths, out_level=1)
        width = widths[1]
        self.stage1 = nn.Sequential(conv_bn(width, width), nn.Conv2d(width, channels, 1))
        self.stage2 = nn.Sequential(conv_bn(width + channels, width), conv_bn(width, width), nn.Conv2d(width, channels, 1))
        for head in (self.stage1[-1], self.stage2[-1]):
            assert isinstance(head, nn.Conv2d) and head.bias is not None  # each stage ends in a biased 1x1 conv
            nn.init.constant_(head.bias[:num_joints], BACKGROUND_LOGIT)
            nn.init.zeros_(head.bias[num_joints:])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.decoder(self.encoder(images))
        first = self.stage1(features)
        second = self.stage2(torch.cat([features, first], dim=1))
        return torch.stack([first, second], dim=1)

    def stage_losses(self, output: torch.Tensor, heatmaps: torch.Tensor, pafs: torch.Tensor, mask: torch.Tensor
                     ) -> torch.Tensor:
        """(stages,) losses: per-pixel BCE on the confidence maps + weighted squared error on the PAFs, both
        masked (``mask`` (B, h, w) is 0 on crowds and unlabelled people)."""
        k = self.num_joints
        weight = mask[:, None]
        denominator = weight.sum().clamp(min=1.0)
        losses = []
        for stage in range(output.shape[1]):
            logits, fields = output[:, stage, :k], output[:, stage, k:]
            heat = (F.binary_cross_entropy_with_logits(logits, heatmaps, reduction="none") * weight).sum() / denominator
            paf = (((fields - pafs) ** 2) * weight).sum() / denominator
            losses.append(heat * 100.0 / k + paf * PAF_LOSS_WEIGHT / max(len(self.limbs), 1))
        return torch.stack(losses)

    def loss(self, output, heatmaps, pafs, mask) -> torch.Tensor:
        return self.stage_losses(output, heatmaps, pafs, mask).sum()


# ------------------------------------------------------------------------------------------------- targets
def confidence_maps(people: np.ndarray, map_hw: tuple[int, int], stride: int = STRIDE,
                    sigma_cells: float = SIGMA_CELLS) -> np.ndarray:
    """(K, h, w): per joint the maximum over people of a Gaussian (peak 1) at each labelled joint (v > 0).
    ``people`` is (P, K, 3) in input pixels."""
    height, width = map_hw
    joints = people.shape[1] if people.ndim == 3 else 17
    maps = np.zeros((joints, height, width), np.float32)
    ys, xs = grid_centres(height, stride).numpy(), grid_centres(width, stride).numpy()
    sigma = sigma_cells * stride
    for person in people:
        for joint, (x, y, v) in enumerate(person):
            if v > 0:
                g = np.exp(-((ys[:, None] - y) ** 2 + (xs[None, :] - x) ** 2) / (2 * sigma**2))
                np.maximum(maps[joint], g, out=maps[joint])
    return maps


def part_affinity_fields(people: np.ndarray, map_hw: tuple[int, int], limbs=COCO_LIMBS, stride: int = STRIDE,
                         half_width_cells: float = PAF_HALF_WIDTH_CELLS) -> np.ndarray:
    """(2L, h, w): per limb the unit vector a -> b on cells within ``half_width`` of the segment, averaged where
    several people's limbs overlap (OpenPose's target)."""
    height, width = map_hw
    fields = np.zeros((2 * len(limbs), height, width), np.float32)
    ys, xs = np.meshgrid(grid_centres(height, stride).numpy(), grid_centres(width, stride).numpy(), indexing="ij")
    half_width = half_width_cells * stride
    for limb, (a, b) in enumerate(limbs):
        counts = np.zeros((height, width), np.float32)
        for person in people:
            if person[a, 2] <= 0 or person[b, 2] <= 0:
                continue
            vector = person[b, :2] - person[a, :2]
            length = float(np.hypot(*vector))
            if length < 1e-3:
                continue
            unit = vector / length
            dx, dy = xs - person[a, 0], ys - person[a, 1]
            along = dx * unit[0] + dy * unit[1]
            across = np.abs(dx * unit[1] - dy * unit[0])
            on = (along >= -half_width) & (along <= length + half_width) & (across <= half_width)
            fields[2 * limb][on] += unit[0]
            fields[2 * limb + 1][on] += unit[1]
            counts[on] += 1
        nonzero = counts > 0
        fields[2 * limb][nonzero] /= counts[nonzero]
        fields[2 * limb + 1][nonzero] /= counts[nonzero]
    return fields


# ------------------------------------------------------------------------------------------------- decoding
def fit_image(image: np.ndarray) -> tuple[np.ndarray, float]:
    """The image scaled to fit INPUT_WH (aspect kept) and padded with black to it, and the scale used."""
    height, width = image.shape[:2]
    scale = min(INPUT_WH[0] / width, INPUT_WH[1] / height)
    if scale != 1.0:
        image = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                           interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    canvas = np.zeros((INPUT_WH[1], INPUT_WH[0], 3), np.uint8)
    canvas[: image.shape[0], : image.shape[1]] = image[: INPUT_WH[1], : INPUT_WH[0]]
    return canvas, scale


def decode_people(output: np.ndarray, num_joints: int, limbs=COCO_LIMBS, stride: int = STRIDE
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P, K, 3) input-pixel keypoints with scores, (P,) person scores, (P, 4) xywh boxes from one image's
    final-stage output (K + 2L, h, w)."""
    heatmaps = 1.0 / (1.0 + np.exp(-output[:num_joints].astype(np.float64)))
    peaks = find_peaks(heatmaps, PEAK_THRESHOLD)
    people = group_people(peaks, output[num_joints:].astype(np.float64), limbs)
    keypoints = np.zeros((len(people), num_joints, 3))
    scores = np.zeros(len(people))
    boxes = np.zeros((len(people), 4))
    for index, (cells, joint_scores, _) in enumerate(people):
        pixels = cells * stride + (stride - 1) / 2.0
        found = ~np.isnan(pixels[:, 0])
        centre = pixels[found].mean(axis=0)
        pixels[~found] = centre
        keypoints[index, :, :2] = pixels
        keypoints[index, :, 2] = joint_scores
        scores[index] = joint_scores.mean()
        low, high = pixels[found].min(axis=0), pixels[found].max(axis=0)
        boxes[index] = [low[0], low[1], high[0] - low[0], high[1] - low[1]]
    return keypoints, scores, boxes
