"""Train the in-repo segmentation models on an embedded train split: VOC-layout shapes (default), Cityscapes, ADE20K.

``bench train --task semantic --model fcn [--dataset cityscapes]`` (or ``python -m adapters.inrepo.semantic.train
fcn [--dataset cityscapes]``) rewrites ``adapters/weights/semantic_fcn.pt`` (``semantic_fcn_cityscapes.pt``); the
defaults (seed 0, the schedule below, one thread) reproduce the committed weights.  ``majority-class`` "trains" by
counting the split's labelled pixels per class.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from adapters.inrepo.weights import dataset_family, default_weights, family_weights, save_compact
from adapters.inrepo.train_loop import Schedule, optimise
from harness.core.dataset import Dataset, DatasetInfo
from harness.core.errors import BenchError
from harness.run.trainers import TRAINERS, StepCallback, Trainer, TrainOutcome, torch_threads

TASK = "semantic"
IGNORE = 255
CROP = 128
#: steps x batch of 128 px crops: about 3-3.5 minutes each on one thread with another job on the second core.
#: Plain cross-entropy: weighting classes by frequency ** -0.5 raised FCN's mAcc (0.73 -> 0.82) but cut its mIoU
#: (0.65 -> 0.60), turning background pixels around objects into false positives.
#: Crops are drawn from chained epochs (``drop_last=False``), with a 30-step warm-up.
SCHEDULES: dict[str, Schedule] = {
    "fcn": Schedule(steps=1000, batch_size=16, learning_rate=4e-3, warmup_steps=30, drop_last=False),
    "unet": Schedule(steps=1000, batch_size=12, learning_rate=4e-3, warmup_steps=30, drop_last=False),
    "aspp": Schedule(steps=1000, batch_size=16, learning_rate=4e-3, warmup_steps=30, drop_last=False),
    "pspnet": Schedule(steps=600, batch_size=16, learning_rate=4e-3, warmup_steps=30, drop_last=False),
}
MODELS = (*SCHEDULES, "majority-class")


@dataclass(frozen=True)
class FamilyRecipe:
    """How a dataset family's scenes are cropped and augmented, and how many steps its schedule runs."""

    crop: int | tuple[int, int] = CROP
    upright: bool = False  # street and room scenes keep their up: horizontal flips only
    steps: int | None = None  # None: the model's schedule


#: Cityscapes' embedded frames are 96 x 192: whole frames (the rows say sky / building / sidewalk / road).
RECIPES: dict[str, FamilyRecipe] = {
    "cityscapes": FamilyRecipe(crop=(96, 192), upright=True, steps=300),
    "ade20k": FamilyRecipe(upright=True, steps=300),
}


def open_train_split(data_root: Path | None = None, split: str | None = None, dataset: str = "voc") -> Dataset:
    """The embedded ``train`` split unless a data root (and its split) is given."""
    from harness.datasets import DATASETS

    return DATASETS.get(dataset)(data_root, split or ("train" if data_root is None else None), TASK)


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
    """Fit ``name`` on ``train_set`` and save its weights to ``out`` (``harness.run.trainers.TrainFunction``)."""
    import torch

    from adapters.inrepo.semantic.adapter import label_space
    from adapters.inrepo.semantic.data import SegmentationSet
    from adapters.inrepo.semantic.networks import build_network

    if name not in MODELS:
        raise BenchError(f"no trainer for semantic model {name!r} (trainable: {', '.join(MODELS)})")
    began = time.perf_counter()
    family = dataset_family(train_set.info)
    classes = label_space(family)
    if classes is None:
        raise BenchError(f"the in-repo segmentation models know the label spaces of voc, cityscapes and ade20k, "
                         f"not of dataset {train_set.info.name!r}")
    if train_set.info.classes != classes:
        raise BenchError(f"the in-repo segmentation models trained for {family!r} predict {len(classes)} classes "
                         f"({', '.join(classes[:3])}, ...); dataset {train_set.info.name!r} has "
                         f"{len(train_set.info.classes)} other classes")
    recipe = RECIPES.get(family, FamilyRecipe())
    data = SegmentationSet.load(train_set)
    if not len(data):
        raise BenchError(f"dataset {train_set.info.name!r} split {train_set.info.split!r} has no images to train on")
    out = Path(out) if out is not None else family_weights(TASK, name, family)
    if name == "majority-class":
        frequencies = data.class_frequencies(len(classes))
        out.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"class_frequencies": torch.from_numpy(frequencies)}, out)
        if on_step is not None:
            on_step(1, 1, 0.0)
        return TrainOutcome(name, out, 1.0, 1, time.perf_counter() - began)

    schedule = SCHEDULES[name]
    if recipe.steps is not None:
        schedule = replace(schedule, steps=recipe.steps)
    schedule = schedule.overridden(epochs, steps, batch_size).in_steps(len(data), max_steps)
    with torch_threads(threads):
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        network = build_network(name, len(classes))
        order = schedule.batch_order(rng, len(data))

        def loss_of_step(step: int) -> Any:
            indices = order.take(schedule.batch_size)
            images, labels = data.batch(indices, rng, recipe.crop, recipe.upright)
            return segmentation_loss(network(images), labels)

        losses = optimise(network, schedule, loss_of_step, on_step)
    save_compact(network.state_dict(), out)
    return TrainOutcome(name, out, schedule.epochs_run(len(data)), len(losses), time.perf_counter() - began, losses)


def segmentation_loss(outputs, labels):
    """Cross-entropy of the logits; a network that also returns auxiliary logits in training (PSPNet's deep
    supervision) adds their cross-entropy weighted by its ``AUX_WEIGHT``."""
    from torch.nn.functional import cross_entropy

    if isinstance(outputs, tuple):
        from adapters.inrepo.semantic.pspnet import AUX_WEIGHT

        logits, aux = outputs
        return (cross_entropy(logits, labels, ignore_index=IGNORE)
                + AUX_WEIGHT * cross_entropy(aux, labels, ignore_index=IGNORE))
    return cross_entropy(outputs, labels, ignore_index=IGNORE)


def weights_of(model_name: str, dataset: DatasetInfo) -> Path:
    """The committed file a training run on ``dataset`` replaces by default."""
    return family_weights(TASK, model_name, dataset_family(dataset))


TRAINERS.register(TASK)(Trainer(task=TASK, train=train, default_weights=partial(default_weights, TASK),
                                weights_for=weights_of))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m adapters.inrepo.semantic.train",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=MODELS)
    parser.add_argument("--out", type=Path, default=None, help="weights file (default: the committed one)")
    parser.add_argument("--steps", type=int, default=None, help="override the schedule's number of steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dataset", default="voc", choices=("voc", "cityscapes", "ade20k"))
    parser.add_argument("--data-root", type=Path, default=None, help="the dataset's root (default: embedded)")
    parser.add_argument("--split", default=None, help="split to train on (default: the embedded 'train')")
    args = parser.parse_args(argv)

    def report(step: int, total: int, loss: float) -> None:
        if step == 1 or step % 50 == 0 or step == total:
            print(f"step {step}/{total} loss {loss:.4f}", flush=True)

    train_set = open_train_split(args.data_root, args.split, args.dataset)
    outcome = train(args.model, train_set, out=args.out, steps=args.steps,
                    seed=args.seed, threads=args.threads, on_step=report)
    print(f"saved {outcome.weights} ({outcome.steps} steps, {outcome.epochs} epochs, {outcome.seconds:.0f} s)")


if __name__ == "__main__":
    main()
