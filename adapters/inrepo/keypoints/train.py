"""Train an in-repo keypoint model by name on a keypoints train split (by default the embedded stick figures).

The network gets as many joints as the dataset's skeleton has (COCO-17 or MPII-16, ``skeletons.py``), and the
weights go to that skeleton's file: ``bench train --task keypoints --model heatmap`` writes
``keypoints_heatmap.pt``, ``... --dataset mpii`` writes ``keypoints_heatmap_mpii.pt``.

Everything that changes the result is fixed by the seed: parameter initialisation, the epoch order and every
augmentation draw come from one seeded generator each, and the thread count is pinned, so the committed
weights can be reproduced with ``bench train --task keypoints --model NAME [--dataset mpii]``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from adapters.inrepo.keypoints.skeletons import COCO17, MPII16, Skeleton, skeleton_weights, skeleton_of
from adapters.inrepo.train_loop import EpochSchedule, cosine_with_warmup
from harness.core.dataset import Dataset, DatasetInfo
from harness.core.errors import BenchError
from harness.run.trainers import TRAINERS, Trainer, TrainOutcome, torch_threads


#: crops are small: keypoint models train in batches of 32
BATCH_SIZE = 32
SCHEDULES: dict[str, EpochSchedule] = {
    "mean-pose": EpochSchedule(epochs=1, batch_size=BATCH_SIZE),
    # no decoder: an epoch costs about a third of the others'
    "regression": EpochSchedule(epochs=60, batch_size=BATCH_SIZE),
    "heatmap": EpochSchedule(epochs=30, batch_size=BATCH_SIZE),
    "soft-argmax": EpochSchedule(epochs=35, batch_size=BATCH_SIZE),
    # two stacks at stride 2: an epoch costs about three of the heatmap's
    "hourglass": EpochSchedule(epochs=20, batch_size=BATCH_SIZE),
}
#: other skeletons' schedules where they differ
SKELETON_SCHEDULES: dict[Skeleton, dict[str, EpochSchedule]] = {
    MPII16: {
        "regression": EpochSchedule(epochs=80, batch_size=BATCH_SIZE),
        "heatmap": EpochSchedule(epochs=40, batch_size=BATCH_SIZE),
        "soft-argmax": EpochSchedule(epochs=45, batch_size=BATCH_SIZE),
    },
}


def schedule_of(model_name: str, skeleton: Skeleton = COCO17) -> EpochSchedule:
    return SKELETON_SCHEDULES.get(skeleton, {}).get(model_name, SCHEDULES[model_name])


def weights_for(model_name: str, info: DatasetInfo) -> Path:
    """The committed weights file that training ``model_name`` on a dataset like ``info`` reproduces."""
    return skeleton_weights(model_name, skeleton_of(info.keypoint_names, f"dataset {info.name!r}"))


def train_model(
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
    """Train model ``name`` on ``train_set`` and save its state dict to ``out``.

    ``on_step(step, total_steps, loss)`` reports progress; ``max_steps`` cuts the run short (tests, smoke runs).
    ``threads`` pins torch's thread count for the run (restored afterwards): the committed weights were trained
    with one, and results depend on it in the last bits.
    """
    from harness.core.catalog import ADAPTERS

    if getattr(ADAPTERS.get(name), "bottom_up", False):  # whole images, not person crops: its own loop
        from adapters.inrepo.keypoints.bottom_up_train import train_bottom_up

        return train_bottom_up(name, train_set, out=out, epochs=epochs, seed=seed, threads=threads,
                               max_steps=max_steps, on_step=on_step)
    with torch_threads(threads):
        return _train(name, train_set, out, epochs, seed, max_steps, on_step)


def _train(
    name: str,
    train_set: Dataset,
    out: Path,
    epochs: int | None,
    seed: int,
    max_steps: int | None,
    on_step: Callable[[int, int, float], None] | None,
) -> TrainOutcome:
    import torch

    from harness.core.catalog import ADAPTERS
    from adapters.inrepo.keypoints.adapter import TopDownAdapter
    from adapters.inrepo.keypoints.data import Augmentation, PersonCrops

    adapter_class = ADAPTERS.get(name)
    if not (isinstance(adapter_class, type) and issubclass(adapter_class, TopDownAdapter)):
        trainable = ", ".join(sorted(SCHEDULES))
        raise BenchError(f"model {name!r} is not an in-repo keypoint model (trainable: {trainable})")
    skeleton = skeleton_of(train_set.info.keypoint_names, f"dataset {train_set.info.name!r}")
    schedule = schedule_of(adapter_class.model_name, skeleton)
    epochs = schedule.epochs if epochs is None else epochs
    if epochs < 1:
        raise BenchError(f"epochs must be at least 1, got {epochs}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    began = time.perf_counter()
    people = PersonCrops.from_dataset(train_set)
    network = adapter_class.build_network(skeleton.num_joints)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)

    if not network.trainable:
        network.fit(people.boxes, people.keypoints)
        if on_step is not None:
            on_step(1, 1, float("nan"))
        torch.save(compact_state_dict(network), out)
        return TrainOutcome(name, out, 1, 1, time.perf_counter() - began)

    steps_per_epoch = max(len(people) // schedule.batch_size, 1)
    total_steps = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    optimiser = torch.optim.AdamW(network.parameters(), lr=schedule.learning_rate, weight_decay=schedule.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, cosine_with_warmup(total_steps, schedule.warmup_steps))
    augmentation = Augmentation()
    input_hw = tuple(network.input_hw)
    network.train()
    losses: list[float] = []
    step = 0
    while step < total_steps:
        order = rng.permutation(len(people))
        epoch_losses = []
        for batch_start in range(0, steps_per_epoch * schedule.batch_size, schedule.batch_size):
            if step >= total_steps:
                break
            batch = people.batch(order[batch_start : batch_start + schedule.batch_size], input_hw, rng, augmentation)
            images = torch.from_numpy(batch.images).permute(0, 3, 1, 2).float()
            loss = network.loss(
                network(images),
                torch.from_numpy(batch.keypoints),
                torch.from_numpy(batch.labelled),
                torch.from_numpy(batch.inside),
            )
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
    torch.save(compact_state_dict(network), out)
    return TrainOutcome(name, out, len(losses), step, time.perf_counter() - began, losses)


def compact_state_dict(network) -> dict:
    """The state dict with float32 weights stored as float16, to keep committed weights small.

    The network still computes in float32 (loading copies the values back into float32 parameters); running
    statistics stay float32 because a variance can underflow in half precision.
    """
    import torch

    parameters = {name for name, _ in network.named_parameters()}
    return {
        name: value.half() if name in parameters and value.dtype == torch.float32 else value
        for name, value in network.state_dict().items()
    }


TRAINERS.register("keypoints")(
    Trainer(task="keypoints", train=train_model, default_weights=skeleton_weights, weights_for=weights_for)
)
