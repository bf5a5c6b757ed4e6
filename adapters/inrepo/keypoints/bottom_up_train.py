"""Training the bottom-up ``openpose`` model on a multi-person COCO-layout split (``--dataset coco-multi``).

Whole images are held in memory; each step draws random 128x128 windows (plus a mirror with left/right joints
swapped) and builds the confidence-map, PAF and mask targets for the window on the fly, so augmentation moves
image and targets together by construction.  Everything that changes the result comes from the seed (torch
initialisation, the epoch order and every window/flip draw), on one pinned thread, through the optimisation
loop the other in-repo trainers share (``adapters.inrepo.train_loop.optimise``).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from adapters.inrepo.keypoints.openpose import STRIDE, OpenPoseNet, confidence_maps, part_affinity_fields
from adapters.inrepo.keypoints.skeletons import COCO17, skeleton_of, skeleton_weights
from adapters.inrepo.train_loop import Schedule, optimise
from harness.core.dataset import Dataset
from harness.core.errors import BenchError
from harness.run.trainers import StepCallback, TrainOutcome, torch_threads

SCHEDULE = Schedule(steps=3000, batch_size=8, learning_rate=3e-3, warmup_steps=50, drop_last=False)
WINDOW = 128


class Scenes:
    """Decoded images, their people (P, K, 3) and their loss masks (1 = scored, 0 = crowd / unlabelled)."""

    def __init__(self, dataset: Dataset) -> None:
        from pycocotools import mask as mask_utils

        skeleton = skeleton_of(dataset.info.keypoint_names, f"dataset {dataset.info.name!r}")
        if skeleton != COCO17:
            raise BenchError("the bottom-up model trains on COCO-17 keypoints")
        self.flip_pairs = skeleton.flip_pairs
        ground_truth = _coco_dict(dataset)
        by_image: dict[int | str, list[dict]] = {}
        for ann in ground_truth["annotations"]:
            by_image.setdefault(ann["image_id"], []).append(ann)
        self.images, self.people, self.masks = [], [], []
        for index in range(len(dataset)):
            sample = dataset[index]
            image = sample.load_image()
            height, width = image.shape[:2]
            target = sample.target
            scored = ~target.iscrowd & (target.num_keypoints > 0)
            mask = np.ones((height, width), np.uint8)
            for ann in by_image.get(sample.sample_id, []):
                if ann["iscrowd"] or ann["num_keypoints"] == 0:
                    segmentation = ann["segmentation"]
                    rles = mask_utils.frPyObjects(segmentation, height, width) if isinstance(segmentation, list) \
                        else [segmentation]
                    mask &= 1 - np.any(mask_utils.decode(rles).reshape(height, width, -1), axis=2).astype(np.uint8)
            self.images.append(image)
            self.people.append(np.asarray(target.keypoints[scored], np.float64).reshape(-1, 17, 3))
            self.masks.append(mask)
        if not self.images:
            raise BenchError(f"dataset {dataset.info.name!r} has no images")

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, indices: np.ndarray, rng: np.random.Generator, window: int = WINDOW):
        cells = window // STRIDE
        images = np.zeros((len(indices), window, window, 3), np.uint8)
        heatmaps = np.zeros((len(indices), 17, cells, cells), np.float32)
        pafs = None
        masks = np.zeros((len(indices), cells, cells), np.float32)
        for row, index in enumerate(indices):
            image, people, mask = self.images[index], self.people[index].copy(), self.masks[index]
            height, width = image.shape[:2]
            x0 = int(rng.integers(0, max(width - window, 0) + 1))
            y0 = int(rng.integers(0, max(height - window, 0) + 1))
            crop = image[y0: y0 + window, x0: x0 + window]
            crop_mask = mask[y0: y0 + window, x0: x0 + window]
            people[..., 0] -= x0
            people[..., 1] -= y0
            if rng.random() < 0.5:
                crop, crop_mask = crop[:, ::-1], crop_mask[:, ::-1]
                people[..., 0] = crop.shape[1] - 1 - people[..., 0]
                order = np.arange(17)
                for left, right in self.flip_pairs:
                    order[left], order[right] = right, left
                people = people[:, order]
            images[row, : crop.shape[0], : crop.shape[1]] = crop
            padded_mask = np.zeros((window, window), np.uint8)
            padded_mask[: crop_mask.shape[0], : crop_mask.shape[1]] = crop_mask
            centre = STRIDE // 2
            masks[row] = padded_mask[centre::STRIDE, centre::STRIDE][:cells, :cells]
            heatmaps[row] = confidence_maps(people, (cells, cells))
            fields = part_affinity_fields(people, (cells, cells))
            if pafs is None:
                pafs = np.zeros((len(indices), *fields.shape), np.float32)
            pafs[row] = fields
        return images, heatmaps, pafs, masks


def _coco_dict(dataset: Dataset) -> dict:
    """The COCO annotation dict behind a dataset (through wrappers such as ``FirstSamples``): crowd and
    unlabelled people's segmentations are only there."""
    inner: object = dataset
    while not hasattr(inner, "coco_ground_truth") and hasattr(inner, "dataset"):
        inner = inner.dataset
    if not hasattr(inner, "coco_ground_truth"):
        raise BenchError(f"the bottom-up trainer needs a COCO-layout keypoints dataset, not {dataset.info.name!r}")
    return inner.coco_ground_truth()


def train(name: str, train_set: Dataset, /, *, out: Path | None = None, epochs: float | None = None,
          steps: int | None = None, max_steps: int | None = None, batch_size: int | None = None, seed: int = 0,
          threads: int | None = 1, on_step: StepCallback | None = None) -> TrainOutcome:
    """Train ``openpose`` on ``train_set`` and save float16 weights to ``out`` (``harness.run.trainers.TrainFunction``;
    ``keypoints.train.train`` dispatches here)."""
    import torch

    from adapters.inrepo.weights import save_compact

    out = Path(out) if out is not None else skeleton_weights(name, COCO17)
    schedule = SCHEDULE.overridden(epochs, steps, batch_size)
    with torch_threads(threads):
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        began = time.perf_counter()
        scenes = Scenes(train_set)
        schedule = schedule.in_steps(len(scenes), max_steps)
        network = OpenPoseNet(17)
        order = schedule.batch_order(rng, len(scenes))

        def loss_of_step(step: int) -> Any:
            images, heatmaps, pafs, masks = scenes.batch(order.take(schedule.batch_size), rng)
            output = network(torch.from_numpy(images).permute(0, 3, 1, 2).float())
            return network.loss(output, torch.from_numpy(heatmaps), torch.from_numpy(pafs), torch.from_numpy(masks))

        losses = optimise(network, schedule, loss_of_step, on_step)
        save_compact(network.state_dict(), out)
        seconds = time.perf_counter() - began
    return TrainOutcome(name, out, schedule.epochs_run(len(scenes)), len(losses), seconds, losses)
