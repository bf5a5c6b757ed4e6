"""Training batches for the flow network: every pair of the split in memory, seeded crops, flips and photometrics.

A horizontal flip of both frames negates the flow's x component and a vertical flip its y component, so both keep
the ground truth exact; crops keep it exact too.  Brightness and contrast change both frames alike, since
brightness constancy is what the method relies on.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from adapters.inrepo.flow.networks import MEAN, STD
from harness.core.dataset import Dataset


def normalise(images: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 or float -> (B, 3, H, W) float32."""
    return torch.from_numpy((np.asarray(images, np.float32) - MEAN) / STD).permute(0, 3, 1, 2).contiguous()


@dataclass
class FlowPairs:
    first: np.ndarray  # (N, H, W, 3) uint8
    second: np.ndarray  # (N, H, W, 3) uint8
    flow: np.ndarray  # (N, H, W, 2) float32

    @classmethod
    def load(cls, *datasets: Dataset) -> FlowPairs:
        """All pairs of the datasets (e.g. the clean and final passes); their frames must share one size."""
        first, second, flow = [], [], []
        for dataset in datasets:
            for sample in dataset:
                first.append(sample.load_image())
                second.append(sample.load_image2())
                flow.append(np.asarray(sample.target.flow, np.float32))
        shapes = {f.shape for f in first}
        if len(shapes) > 1:
            raise ValueError(f"training pairs must share one size, found {sorted(shapes)}")
        return cls(np.stack(first), np.stack(second), np.stack(flow))

    def __len__(self) -> int:
        return len(self.first)

    def batch(self, indices: np.ndarray, rng: np.random.Generator, crop: tuple[int, int]
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Frames (B, 3, h, w) x 2 normalised, flow (B, 2, h, w), for ``crop`` = (h, w) windows."""
        height, width = self.flow.shape[1:3]
        crop_h, crop_w = min(crop[0], height), min(crop[1], width)
        first, second, flow = [], [], []
        for index in indices:
            top = int(rng.integers(0, height - crop_h + 1))
            left = int(rng.integers(0, width - crop_w + 1))
            window = np.s_[top : top + crop_h, left : left + crop_w]
            a = self.first[index][window].astype(np.float32)
            b = self.second[index][window].astype(np.float32)
            f = self.flow[index][window].copy()
            if rng.random() < 0.5:
                a, b, f = a[:, ::-1], b[:, ::-1], f[:, ::-1] * np.array([-1, 1], dtype=np.float32)
            if rng.random() < 0.5:
                a, b, f = a[::-1], b[::-1], f[::-1] * np.array([1, -1], dtype=np.float32)
            contrast, brightness = rng.uniform(0.8, 1.2), rng.uniform(-20, 20)
            first.append(np.clip(a * contrast + brightness, 0, 255))
            second.append(np.clip(b * contrast + brightness, 0, 255))
            flow.append(f)
        target = torch.from_numpy(np.ascontiguousarray(np.stack(flow))).permute(0, 3, 1, 2).contiguous()
        return normalise(np.stack(first)), normalise(np.stack(second)), target
