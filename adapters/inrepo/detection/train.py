"""Train an in-repo detection or instance model by name on a COCO-layout train split (default: embedded shapes).

Everything that changes the result is fixed by the seed: initialisation, epoch order and every augmentation
draw come from seeded generators, and the thread count is pinned (one thread by default: on a shared machine a
second OpenMP thread waiting for a busy core makes a step several times slower), so
``bench train --task detection|instance --model NAME`` reproduces the committed weights.
"""
from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np

from adapters.inrepo.detection.detector_weights import PREFIX, family_weights
from adapters.inrepo.weights import dataset_family, default_weights
from adapters.inrepo.train_loop import EpochSchedule, cosine_with_warmup
from harness.core.dataset import Dataset
from harness.core.errors import BenchError
from harness.run.trainers import TRAINERS, Trainer, TrainOutcome, torch_threads

#: square training canvas (pixels): the embedded images are 128-192 px a side
CANVAS = 192
#: log-uniform rescaling range of the scale augmentation
SCALE_RANGE = (0.6, 1.5)
#: mask RoIs are jittered ground-truth boxes: centre shift and log-size noise, as fractions of the box
ROI_SHIFT, ROI_LOG_SCALE = 0.06, 0.08


SCHEDULES: dict[str, EpochSchedule] = {
    "centernet": EpochSchedule(epochs=24),
    "centernet-mask": EpochSchedule(epochs=20),
    "prior-boxes": EpochSchedule(epochs=1),
    "prior-boxes-mask": EpochSchedule(epochs=1),
}
#: epochs per (model, dataset family) where they differ from the schedule's
FAMILY_EPOCHS: dict[tuple[str, str], int] = {("centernet-mask", "cityscapes"): 12}
#: families whose scenes have an up (streets: people stand, cars drive on the road): no vertical flips
UPRIGHT_FAMILIES = frozenset({"cityscapes"})


def train(
    name: str,
    train_set: Dataset,
    *,
    out: Path,
    epochs: int | None = None,
    seed: int = 0,
    threads: int | None = 1,
    max_steps: int | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
) -> TrainOutcome:
    """Train model ``name`` on ``train_set`` and save its checkpoint to ``out``.

    ``on_step(step, total_steps, loss)`` reports progress; ``max_steps`` cuts the run short (tests, smoke runs).
    The classic families (YOLO, SSD, RetinaNet, DETR, Mask R-CNN) have their own loop in ``classics``.
    """
    from adapters.inrepo.detection import classics

    if name in classics.MODELS:
        return classics.train(name, train_set, out=out, epochs=epochs, seed=seed, threads=threads,
                              max_steps=max_steps, on_step=on_step)
    if name not in SCHEDULES:
        raise BenchError(f"model {name!r} is not an in-repo detection model "
                         f"(trainable: {', '.join(sorted([*SCHEDULES, *classics.MODELS]))})")
    schedule = SCHEDULES[name]
    family = dataset_family(train_set.info)
    epochs = FAMILY_EPOCHS.get((name, family), schedule.epochs) if epochs is None else epochs
    if epochs < 1:
        raise BenchError(f"epochs must be at least 1, got {epochs}")
    with torch_threads(threads):
        return _train(name, schedule, train_set, out=Path(out), epochs=epochs, seed=seed, max_steps=max_steps,
                      on_step=on_step, vertical_flips=family not in UPRIGHT_FAMILIES)


def _train(name: str, schedule: EpochSchedule, train_set: Dataset, *, out: Path, epochs: int, seed: int,
           max_steps: int | None, on_step: Callable[[int, int, float], None] | None,
           vertical_flips: bool = True) -> TrainOutcome:
    import torch

    from adapters.inrepo.detection.detector_weights import Checkpoint
    from adapters.inrepo.detection.data import TrainingScenes

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    began = time.perf_counter()
    with_masks = name == "centernet-mask"
    scenes = TrainingScenes.from_dataset(train_set, with_masks=with_masks)
    if not len(scenes):
        raise BenchError(f"dataset {train_set.info.name!r} split {train_set.info.split!r} has no images to train on")

    def save(kind: str, network: dict[str, Any]) -> None:
        Checkpoint(kind, network, scenes.classes, scenes.category_ids).save(out)

    if name.startswith("prior-boxes"):
        from adapters.inrepo.detection.prior_boxes import fit_prior_boxes

        objects = [(scene.boxes[~scene.crowd], scene.labels[~scene.crowd]) for scene in scenes.scenes]
        boxes = np.concatenate([b for b, _ in objects])
        labels = np.concatenate([lab for _, lab in objects])
        save("prior-boxes", fit_prior_boxes(boxes[:, 2:] - boxes[:, :2], labels, len(scenes.classes), seed))
        if on_step is not None:
            on_step(1, 1, 0.0)
        return TrainOutcome(name, out, 1, 1, time.perf_counter() - began)

    from adapters.inrepo.detection.network import CenterNet, CenterNetMask

    network = CenterNetMask(len(scenes.classes)) if with_masks else CenterNet(len(scenes.classes))
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
            batch = scenes.batch(order[batch_start : batch_start + schedule.batch_size], CANVAS, rng, SCALE_RANGE,
                                 vertical_flips)
            loss = batch_loss(network, batch, len(scenes.classes), rng)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            scheduler.step()
            step += 1
            epoch_losses.append(loss.item())
            if on_step is not None:
                on_step(step, total_steps, epoch_losses[-1])
        losses.append(float(np.mean(epoch_losses)))
    network.eval()
    save(name, network.state_dict())
    return TrainOutcome(name, out, len(losses), step, time.perf_counter() - began, losses)


def batch_loss(network: Any, batch: Any, num_classes: int, rng: np.random.Generator) -> Any:
    """Heatmap focal loss + weighted GIoU box loss (+ mask BCE on jittered ground-truth RoIs for mask models)."""
    import torch

    from adapters.inrepo.detection.network import STRIDE, CenterNetMask, distances_to_boxes
    from adapters.inrepo.detection.targets import BOX_LOSS_WEIGHT, build_targets, focal_loss, giou_loss

    images = torch.from_numpy(batch.images).permute(0, 3, 1, 2).float()
    cells = CANVAS // STRIDE
    targets = [build_targets(boxes, labels, crowd, num_classes, cells, cells)
               for boxes, labels, crowd in zip(batch.boxes, batch.labels, batch.crowd)]
    heatmap_target, ignore, box_target, box_weight = (torch.from_numpy(np.stack(parts)) for parts in zip(*targets))
    heatmap, distances, mask_features = network(images)
    loss = focal_loss(heatmap, heatmap_target, ignore)
    loss = loss + BOX_LOSS_WEIGHT * giou_loss(distances_to_boxes(distances), box_target, box_weight)
    if isinstance(network, CenterNetMask):
        loss = loss + mask_loss(network, mask_features, images, batch, rng)
    return loss


def mask_loss(network: Any, mask_features: Any, images: Any, batch: Any, rng: np.random.Generator) -> Any:
    """BCE between the mask head's logits and each object's mask resampled over the same (jittered) RoI."""
    import torch
    from torch.nn import functional as F
    from torchvision.ops import roi_align

    from adapters.inrepo.detection.network import expand_boxes

    rois, masks = [], []
    for slot, (boxes, crowd, object_masks) in enumerate(zip(batch.boxes, batch.crowd, batch.masks)):
        keep = ~crowd
        if not keep.any():
            continue
        boxes = boxes[keep].astype(np.float64)
        size = boxes[:, 2:] - boxes[:, :2]
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2 + rng.normal(0.0, ROI_SHIFT, size.shape) * size
        size = size * np.exp(rng.normal(0.0, ROI_LOG_SCALE, size.shape))
        jittered = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
        rois.append(np.concatenate([np.full((len(boxes), 1), slot), jittered], axis=1))
        masks.append(object_masks[keep])
    if not rois:
        return mask_features.sum() * 0.0
    rois_tensor = torch.from_numpy(np.concatenate(rois)).float()
    rois_tensor = torch.cat([rois_tensor[:, :1], expand_boxes(rois_tensor[:, 1:])], dim=1)
    mask_tensor = torch.from_numpy(np.concatenate(masks)[:, None].astype(np.float32))
    own = torch.cat([torch.arange(len(mask_tensor), dtype=torch.float32)[:, None], rois_tensor[:, 1:]], dim=1)
    size = network.mask_head.size
    targets = roi_align(mask_tensor, own, size, spatial_scale=1.0, sampling_ratio=2, aligned=True)
    logits = network.masks(mask_features, images, rois_tensor)
    return F.binary_cross_entropy_with_logits(logits, targets)


for _task in ("detection", "instance"):
    TRAINERS.register(_task)(Trainer(task=_task, train=train, default_weights=partial(default_weights, PREFIX),
                                     weights_for=family_weights))
