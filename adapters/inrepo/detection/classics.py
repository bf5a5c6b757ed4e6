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

from adapters.inrepo.detection.detector_weights import family_weights
from adapters.inrepo.weights import dataset_family
from adapters.inrepo.train_loop import Schedule
from harness.core.dataset import Dataset
from harness.core.errors import BenchError
from harness.run.trainers import StepCallback, TrainOutcome, torch_threads


@dataclass(frozen=True)
class ClassicModel:
    task: str
    build: Callable[[int], Any]
    schedule: Schedule
    with_masks: bool = False


def _yolo(num_classes: int) -> Any:
    from adapters.inrepo.detection.yolo import YOLO

    return YOLO(num_classes)


def _ssd(num_classes: int) -> Any:
    from adapters.inrepo.detection.ssd import SSD

    return SSD(num_classes)


def _retinanet(num_classes: int) -> Any:
    from adapters.inrepo.detection.retinanet import RetinaNet

    return RetinaNet(num_classes)


def _detr(num_classes: int) -> Any:
    from adapters.inrepo.detection.detr import DETR

    return DETR(num_classes)


def _mask_rcnn(num_classes: int) -> Any:
    from adapters.inrepo.detection.two_stage import MaskRCNN

    return MaskRCNN(num_classes)


MODELS: dict[str, ClassicModel] = {
    "yolo": ClassicModel("detection", _yolo, Schedule(epochs=30)),
    "ssd": ClassicModel("detection", _ssd, Schedule(epochs=24)),
    "retinanet": ClassicModel("detection", _retinanet, Schedule(epochs=40)),
    # set prediction learns slowest: 2000 steps (about 20 min on one busy core) at a higher rate, Deformable DETR's
    # clipping; 16 epochs at 5e-4 left the earlier plain DETR at AP 0.000
    "detr": ClassicModel("detection", _detr, Schedule(epochs=80, learning_rate=1e-3, clip_norm=0.1)),
    "mask-rcnn": ClassicModel("instance", _mask_rcnn, Schedule(epochs=12), with_masks=True),
}


def build(name: str, num_classes: int) -> Any:
    return MODELS[name].build(num_classes)


def train(name: str, train_set: Dataset, /, *, out: Path | None = None, epochs: float | None = None,
          steps: int | None = None, max_steps: int | None = None, batch_size: int | None = None, seed: int = 0,
          threads: int | None = 1, on_step: StepCallback | None = None) -> TrainOutcome:
    """Train classic model ``name`` on ``train_set`` and save its checkpoint (``detector_weights.Checkpoint``) to
    ``out`` (``harness.run.trainers.TrainFunction``; ``train.train`` dispatches here)."""
    from adapters.inrepo.detection.train import UPRIGHT_FAMILIES

    spec = MODELS[name]
    schedule = spec.schedule.overridden(epochs, steps, batch_size)
    out = Path(out) if out is not None else family_weights(name, train_set.info)
    with torch_threads(threads):
        return _train(name, spec, schedule, train_set, out=out, seed=seed, max_steps=max_steps, on_step=on_step,
                      vertical_flips=dataset_family(train_set.info) not in UPRIGHT_FAMILIES)


def _train(name: str, spec: ClassicModel, schedule: Schedule, train_set: Dataset, *, out: Path, seed: int,
           max_steps: int | None, on_step: StepCallback | None, vertical_flips: bool) -> TrainOutcome:
    import torch

    from adapters.inrepo.detection.detector_weights import Checkpoint
    from adapters.inrepo.detection.data import TrainingScenes
    from adapters.inrepo.detection.targets_classic import batch_targets, images_tensor
    from adapters.inrepo.detection.train import fit_scenes

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    began = time.perf_counter()
    scenes = TrainingScenes.from_dataset(train_set, with_masks=spec.with_masks)
    if not len(scenes):
        raise BenchError(f"dataset {train_set.info.name!r} split {train_set.info.split!r} has no images to train on")
    network = spec.build(len(scenes.classes))
    schedule = schedule.in_steps(len(scenes), max_steps)
    losses = fit_scenes(network, scenes, schedule, rng, vertical_flips,
                        lambda batch: network.loss(images_tensor(batch), batch_targets(batch)), on_step)
    Checkpoint(name, network.state_dict(), scenes.classes, scenes.category_ids).save(out)
    return TrainOutcome(name, out, schedule.epochs_run(len(scenes)), len(losses), time.perf_counter() - began, losses)
