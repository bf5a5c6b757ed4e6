"""The optimisation loop the in-repo segmentation and flow networks share: AdamW, linear warm-up, cosine decay.

It is deliberately plain and seeded end to end (initialisation, batch order, augmentation), with a fixed number
of torch threads, so re-running a trainer with its defaults reproduces the committed weights on the same build.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

import numpy as np

from harness.core.dataset import Dataset
from harness.core.structures import Sample
from harness.run.trainers import StepCallback

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Schedule:
    steps: int
    batch_size: int
    learning_rate: float
    weight_decay: float = 1e-4
    warmup_steps: int = 30

    def overridden(self, items: int, epochs: float | None, steps: int | None, batch_size: int | None) -> "Schedule":
        """This schedule with `bench train`'s overrides: ``epochs`` (passes over ``items``) or ``steps``, and
        ``batch_size``."""
        if epochs is not None and steps is None:
            steps = max(1, math.ceil(epochs * items / (batch_size or self.batch_size)))
        return replace(self, steps=steps or self.steps, batch_size=batch_size or self.batch_size)


@dataclass(frozen=True)
class EpochSchedule:
    """Optimiser settings of a model trained in epochs (detection, keypoints): epochs are what fits in a few CPU
    minutes on the embedded data."""

    epochs: int
    learning_rate: float = 3e-3
    batch_size: int = 16
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    #: global gradient-norm clipping (DETR's recipe); None: none
    clip_norm: float | None = None


class EpochOrder:
    """Batches of item indices drawn from consecutive seeded permutations: every epoch is a fresh shuffle."""

    def __init__(self, rng: np.random.Generator, count: int) -> None:
        self.rng, self.count = rng, count
        self.pending: list[int] = []

    def take(self, size: int) -> np.ndarray:
        while len(self.pending) < size:
            self.pending.extend(self.rng.permutation(self.count).tolist())
        batch = np.array(self.pending[:size])
        del self.pending[:size]
        return batch


def cosine_with_warmup(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    warmup = max(min(warmup_steps, total_steps // 10), 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(total_steps - warmup, 1)
        return 0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def optimise(network, schedule: Schedule, loss_of_step: Callable[[int], torch.Tensor],
             on_step: StepCallback | None = None) -> list[float]:
    """Run ``schedule.steps`` steps; ``loss_of_step(step)`` draws a batch and returns the scalar loss tensor."""
    import torch

    optimiser = torch.optim.AdamW(network.parameters(), lr=schedule.learning_rate, weight_decay=schedule.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, cosine_with_warmup(schedule.steps, schedule.warmup_steps))
    network.train()
    losses = []
    for step in range(schedule.steps):
        loss = loss_of_step(step)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        scheduler.step()
        losses.append(float(loss.item()))
        if on_step is not None:
            on_step(step + 1, schedule.steps, losses[-1])
    network.eval()
    return losses


class FirstSamples(Dataset):
    """The first ``count`` samples of a dataset, for smoke runs and tests."""

    def __init__(self, dataset: Dataset, count: int) -> None:
        self.dataset, self.count, self.info = dataset, min(count, len(dataset)), dataset.info

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < self.count:
            raise IndexError(index)
        return self.dataset[index]

    def source_files(self) -> Iterable[Path]:
        return []
