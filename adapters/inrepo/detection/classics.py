"""The classic detector families (YOLO, SSD, RetinaNet, DETR, Mask R-CNN), their schedules and their trainer.

Every classic model is an ``nn.Module`` with ``loss(images, targets)`` (images (B, 3, H, W) in 0..255, one
``ImageTargets`` per image) and ``detect(image, height, width)`` (one zero-padded image -> ``Detections``); the
instance model adds ``detect_masks``.  They train on the same augmented canvases as ``centernet`` (the
``data.TrainingScenes`` pipeline: log-uniform rescale, flips, random placement on a 192 px canvas) with the same
seeded loop (AdamW, linear warm-up, cosine decay, one torch thread), so ``bench train --task detection --model
yolo`` reproduces the committed weights on the same build.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from adapters.inrepo.weights import dataset_family
from adapters.inrepo.train_loop import EpochSchedule
from harness.core.errors import BenchError
from harness.run.trainers import TrainOutcome, torch_threads


@dataclass(frozen=True)
class ClassicModel:
    task: str
    build: Callable[[int], Any]
    schedule: EpochSchedule
    with_masks: bool = False


def _yolo(num_classes: int):
    from adapters.inrepo.detection.yolo import YOLO

    return YOLO(num_classes)


def _ssd(num_classes: int):
    from adapters.inrepo.detection.ssd import SSD

    return SSD(num_classes)


def _retinanet(num_classes: int):
    from adapters.inrepo.detection.retinanet import RetinaNet

    return RetinaNet(num_classes)


def _detr(num_classes: int):
    from adapters.inrepo.detection.detr import DETR

    return DETR(num_classes)


def _mask_rcnn(num_classes: int):
    from adapters.inrepo.detection.two_stage import MaskRCNN

    return MaskRCNN(num_classes)


MODELS: dict[str, ClassicModel] = {
    "yolo": ClassicModel("detection", _yolo, EpochSchedule(epochs=30)),
    "ssd": ClassicModel("detection", _ssd, EpochSchedule(epochs=24)),
    "retinanet": ClassicModel("detection", _retinanet, EpochSchedule(epochs=40)),
    # set prediction learns slowest: 2000 steps (about 20 min on one busy core) at a higher rate, Deformable DETR's
    # clipping; 16 epochs at 5e-4 left the earlier plain DETR at AP 0.000
    "detr": ClassicModel("detection", _detr, EpochSchedule(epochs=80, learning_rate=1e-3, clip_norm=0.1)),
    "mask-rcnn": ClassicModel("instance", _mask_rcnn, EpochSchedule(epochs=12), with_masks=True),
}
#: the training canvas and scale augmentation of ``train.py`` (the same data pipeline as centernet's)
CANVAS = 192
SCALE_RANGE = (0.6, 1.5)
UPRIGHT_FAMILIES = frozenset({"cityscapes"})


def build(name: str, num_classes: int) -> Any:
    return MODELS[name].build(num_classes)


def train(name: str, train_set, *, out: Path, epochs: int | None = None, seed: int = 0, threads: int | None = 1,
          max_steps: int | None = None, on_step: Callable[[int, int, float], None] | None = None) -> TrainOutcome:
    """Train classic model ``name`` on ``train_set`` and save its checkpoint (``checkpoint.Checkpoint``) to
    ``out``; ``max_steps`` cuts the run short (tests)."""
    spec = MODELS[name]
    epochs = spec.schedule.epochs if epochs is None else epochs
    if epochs < 1:
        raise BenchError(f"epochs must be at least 1, got {epochs}")
    with torch_threads(threads):
        return _train(name, spec, train_set, out=Path(out), epochs=epochs, seed=seed, max_steps=max_steps,
                      on_step=on_step, vertical_flips=dataset_family(train_set.info) not in UPRIGHT_FAMILIES)


def _train(name: str, spec: ClassicModel, train_set, *, out: Path, epochs: int, seed: int, max_steps: int | None,
           on_step: Callable[[int, int, float], None] | None, vertical_flips: bool) -> TrainOutcome:
    import torch

    from adapters.inrepo.detection.detector_weights import Checkpoint
    from adapters.inrepo.detection.data import TrainingScenes
    from adapters.inrepo.detection.targets_classic import batch_targets, images_tensor
    from adapters.inrepo.train_loop import cosine_with_warmup

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    began = time.perf_counter()
    scenes = TrainingScenes.from_dataset(train_set, with_masks=spec.with_masks)
    if not len(scenes):
        raise BenchError(f"dataset {train_set.info.name!r} split {train_set.info.split!r} has no images to train on")
    schedule = spec.schedule
    network = spec.build(len(scenes.classes))
    steps_per_epoch = max(len(scenes) // schedule.batch_size, 1)
    total_steps = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    optimiser = torch.optim.AdamW(network.parameters(), lr=schedule.learning_rate, weight_decay=schedule.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, cosine_with_warmup(total_steps, schedule.warmup_steps))
    network.train()
    losses: list[float] = []
    step = 0
    while step < total_steps:
        order = rng.permutation(len(scenes))
        epoch_losses = []
        for batch_start in range(0, steps_per_epoch * schedule.batch_size, schedule.batch_size):
            if step >= total_steps:
                break
            batch = scenes.batch(order[batch_start: batch_start + schedule.batch_size], CANVAS, rng, SCALE_RANGE,
                                 vertical_flips)
            loss = network.loss(images_tensor(batch), batch_targets(batch))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            if schedule.clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(network.parameters(), schedule.clip_norm)
            optimiser.step()
            scheduler.step()
            step += 1
            epoch_losses.append(loss.item())
            if on_step is not None:
                on_step(step, total_steps, epoch_losses[-1])
        losses.append(float(np.mean(epoch_losses)))
    network.eval()
    Checkpoint(name, network.state_dict(), scenes.classes, scenes.category_ids).save(out)
    return TrainOutcome(name, out, len(losses), step, time.perf_counter() - began, losses)
