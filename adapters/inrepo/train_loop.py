"""The one schedule and optimisation loop of every in-repo trainer: AdamW, linear warm-up, cosine decay.

It is deliberately plain and seeded end to end (initialisation, batch order, augmentation), with a fixed number
of torch threads, so re-running a trainer with its defaults reproduces the committed weights on the same build.
Every trainer module exposes ``train`` with the signature of ``harness.run.trainers.TrainFunction`` and runs its
steps through ``optimise``; what differs between tasks is only how a step draws its batch and scores it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np

from harness.core.dataset import Dataset
from harness.core.errors import BenchError
from harness.core.structures import Sample
from harness.run.trainers import StepCallback

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Schedule:
    """How long and how fast a model trains: a length in ``epochs`` or in ``steps`` (exactly one), the batch
    size and AdamW's settings.

    ``drop_last`` says how epochs are cut into batches, which is what lets the two lengths convert exactly
    (``total_steps``).  True (detection, top-down keypoints): every epoch is a fresh permutation cut into
    ``items // batch_size`` whole batches (at least one; the rest of the epoch is dropped), so an epoch is a whole
    number of steps.  False (segmentation, flow, bottom-up keypoints): permutations are chained and a batch may
    straddle two epochs, so every item is drawn equally often and an epoch is ``items / batch_size`` steps.
    The committed weights were trained with these orders: changing a model's ``drop_last`` retrains it.
    """

    epochs: float | None = None
    steps: int | None = None
    batch_size: int = 16
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    #: linear warm-up length, capped at a tenth of the run (``cosine_with_warmup``)
    warmup_steps: int = 50
    #: global gradient-norm clipping (DETR's recipe); None: none
    clip_norm: float | None = None
    drop_last: bool = True

    def __post_init__(self) -> None:
        if (self.epochs is None) == (self.steps is None):
            raise ValueError(f"a schedule has a length in epochs or in steps, not both or neither: {self}")
        if self.epochs is not None and not self.epochs > 0:
            raise BenchError(f"epochs must be positive, got {self.epochs}")
        if self.steps is not None and self.steps < 1:
            raise BenchError(f"steps must be at least 1, got {self.steps}")
        if self.batch_size < 1:
            raise BenchError(f"batch size must be at least 1, got {self.batch_size}")

    def overridden(self, epochs: float | None = None, steps: int | None = None,
                   batch_size: int | None = None) -> Schedule:
        """This schedule with `bench train`'s overrides: a length in ``epochs`` or ``steps`` (steps win when both
        are given) and ``batch_size``; None keeps the schedule's own."""
        if steps is not None:
            length: dict[str, Any] = {"epochs": None, "steps": steps}
        elif epochs is not None:
            length = {"epochs": epochs, "steps": None}
        else:
            length = {}
        return replace(self, **length, batch_size=self.batch_size if batch_size is None else batch_size)

    def steps_per_epoch(self, items: int) -> float:
        """Optimiser steps in one pass over ``items`` training items (see ``drop_last``)."""
        if self.drop_last:
            return max(items // self.batch_size, 1)
        return items / self.batch_size

    def total_steps(self, items: int) -> int:
        """The length in steps on ``items`` training items: ``steps``, or ``epochs`` converted exactly
        (a fractional epoch count rounds up to a whole step)."""
        if self.steps is not None:
            return self.steps
        assert self.epochs is not None
        if self.drop_last:
            return max(1, math.ceil(self.epochs * max(items // self.batch_size, 1)))
        return max(1, math.ceil(self.epochs * items / self.batch_size))

    def in_steps(self, items: int, max_steps: int | None = None) -> Schedule:
        """This schedule resolved to a number of steps on ``items`` items, at most ``max_steps`` (a run cut short
        decays its learning rate over the steps it runs)."""
        steps = self.total_steps(items)
        return replace(self, epochs=None, steps=steps if max_steps is None else min(steps, max_steps))

    def epochs_run(self, items: int) -> float:
        """Passes over ``items`` items that ``total_steps(items)`` steps make (one decimal)."""
        return round(self.total_steps(items) / self.steps_per_epoch(items), 1)

    def batch_order(self, rng: np.random.Generator, items: int) -> EpochOrder:
        """The seeded order that cuts epochs into batches as ``drop_last`` says."""
        return EpochOrder(rng, items, drop_last=self.drop_last)


class EpochOrder:
    """Batches of item indices drawn from consecutive seeded permutations: every epoch is a fresh shuffle.

    A permutation is drawn when a batch needs it (so the draws interleave with the augmentation draws of the same
    generator exactly as a loop over epochs would).  ``drop_last``: an epoch's tail shorter than a batch is
    dropped (an epoch shorter than a batch is one batch); otherwise the next epoch tops the batch up.
    """

    def __init__(self, rng: np.random.Generator, count: int, drop_last: bool = False) -> None:
        self.rng, self.count, self.drop_last = rng, count, drop_last
        self.pending: list[int] = []

    def take(self, size: int) -> np.ndarray:
        if self.drop_last:
            if len(self.pending) < size:
                self.pending = self.rng.permutation(self.count).tolist()
        else:
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


def optimise(network: Any, schedule: Schedule, loss_of_step: Callable[[int], torch.Tensor],
             on_step: StepCallback | None = None) -> list[float]:
    """Run a schedule resolved to steps (``Schedule.in_steps``); ``loss_of_step(step)`` draws a batch and
    returns the scalar loss tensor.  Returns every step's loss; leaves the network in eval mode."""
    import torch

    if schedule.steps is None:
        raise ValueError("optimise needs a schedule in steps: call Schedule.in_steps(items) first")
    optimiser = torch.optim.AdamW(network.parameters(), lr=schedule.learning_rate, weight_decay=schedule.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, cosine_with_warmup(schedule.steps, schedule.warmup_steps))
    network.train()
    losses = []
    for step in range(schedule.steps):
        loss = loss_of_step(step)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        if schedule.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(network.parameters(), schedule.clip_norm)
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
