"""Train an in-repo detection or instance model by name on a COCO-layout train split (default: embedded shapes).

Everything that changes the result is fixed by the seed: initialisation, epoch order and every augmentation
draw come from seeded generators, and the thread count is pinned (one thread by default: on a shared machine a
second OpenMP thread waiting for a busy core makes a step several times slower), so
``bench train --task detection|instance --model NAME`` reproduces the committed weights.
"""
from __future__ import annotations

import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np

from adapters.inrepo.detection.detector_weights import PREFIX, family_weights
from adapters.inrepo.weights import dataset_family, default_weights
from adapters.inrepo.train_loop import Schedule, optimise
from harness.core.dataset import Dataset
from harness.core.errors import BenchError
from harness.run.trainers import TRAINERS, StepCallback, Trainer, TrainOutcome, torch_threads

#: square training canvas (pixels): the embedded images are 128-192 px a side
CANVAS = 192
#: log-uniform rescaling range of the scale augmentation
SCALE_RANGE = (0.6, 1.5)
#: mask RoIs are jittered ground-truth boxes: centre shift and log-size noise, as fractions of the box
ROI_SHIFT, ROI_LOG_SCALE = 0.06, 0.08


SCHEDULES: dict[str, Schedule] = {
    "centernet": Schedule(epochs=24),
    "centernet-mask": Schedule(epochs=20),
    "prior-boxes": Schedule(epochs=1),
    "prior-boxes-mask": Schedule(epochs=1),
}
#: epochs per (model, dataset family) where they differ from the schedule's
FAMILY_EPOCHS: dict[tuple[str, str], int] = {("centernet-mask", "cityscapes"): 12}
#: families whose scenes have an up (streets: people stand, cars drive on the road): no vertical flips
UPRIGHT_FAMILIES = frozenset({"cityscapes"})


def train(
    name: str,
    train_set: Dataset,
    /,
    *,
    out: Path | None = None,
    epochs: float | None = None,
    steps: int | None = None,
    max_steps: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    threads: int | None = 1,
    on_step: StepCallback | None = None,
) -> TrainOutcome:
    """Train model ``name`` on ``train_set`` and save its checkpoint to ``out`` (``harness.run.trainers.TrainFunction``).

    The classic families (YOLO, SSD, RetinaNet, DETR, Mask R-CNN) have their own models and losses in
    ``classics``, on the same data pipeline and loop (``fit_scenes``).
    """
    from adapters.inrepo.detection import classics

    if name in classics.MODELS:
        return classics.train(name, train_set, out=out, epochs=epochs, steps=steps, max_steps=max_steps,
                              batch_size=batch_size, seed=seed, threads=threads, on_step=on_step)
    if name not in SCHEDULES:
        raise BenchError(f"model {name!r} is not an in-repo detection model "
                         f"(trainable: {', '.join(sorted([*SCHEDULES, *classics.MODELS]))})")
    family = dataset_family(train_set.info)
    schedule = SCHEDULES[name]
    if (name, family) in FAMILY_EPOCHS:
        schedule = replace(schedule, epochs=FAMILY_EPOCHS[name, family])
    schedule = schedule.overridden(epochs, steps, batch_size)
    out = Path(out) if out is not None else family_weights(name, train_set.info)
    with torch_threads(threads):
        return _train(name, schedule, train_set, out=out, seed=seed, max_steps=max_steps, on_step=on_step,
                      vertical_flips=family not in UPRIGHT_FAMILIES)


def _train(name: str, schedule: Schedule, train_set: Dataset, *, out: Path, seed: int, max_steps: int | None,
           on_step: StepCallback | None, vertical_flips: bool = True) -> TrainOutcome:
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
    num_classes = len(scenes.classes)
    schedule = schedule.in_steps(len(scenes), max_steps)
    losses = fit_scenes(network, scenes, schedule, rng, vertical_flips,
                        lambda batch: batch_loss(network, batch, num_classes, rng), on_step)
    save(name, network.state_dict())
    return TrainOutcome(name, out, schedule.epochs_run(len(scenes)), len(losses), time.perf_counter() - began, losses)


def fit_scenes(network: Any, scenes: Any, schedule: Schedule, rng: np.random.Generator, vertical_flips: bool,
               loss_of_batch: Callable[[Any], Any], on_step: StepCallback | None) -> list[float]:
    """Run ``schedule`` (in steps) on augmented canvases of ``scenes`` (``data.TrainingScenes``): every
    detection and instance model, centernet's and the classic families', trains through this one loop."""
    order = schedule.batch_order(rng, len(scenes))

    def loss_of_step(step: int) -> Any:
        batch = scenes.batch(order.take(schedule.batch_size), CANVAS, rng, SCALE_RANGE, vertical_flips)
        return loss_of_batch(batch)

    return optimise(network, schedule, loss_of_step, on_step)


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
