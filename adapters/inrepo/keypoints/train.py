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
from typing import Any

import numpy as np

from adapters.inrepo.keypoints.skeletons import COCO17, MPII16, Skeleton, skeleton_weights, skeleton_of
from adapters.inrepo.train_loop import Schedule, optimise
from harness.core.dataset import Dataset, DatasetInfo
from harness.core.errors import BenchError
from harness.run.trainers import TRAINERS, StepCallback, Trainer, TrainOutcome, torch_threads


#: crops are small: keypoint models train in batches of 32
BATCH_SIZE = 32
SCHEDULES: dict[str, Schedule] = {
    "mean-pose": Schedule(epochs=1, batch_size=BATCH_SIZE),
    # no decoder: an epoch costs about a third of the others'
    "regression": Schedule(epochs=60, batch_size=BATCH_SIZE),
    "heatmap": Schedule(epochs=30, batch_size=BATCH_SIZE),
    "soft-argmax": Schedule(epochs=35, batch_size=BATCH_SIZE),
    # two stacks at stride 2: an epoch costs about three of the heatmap's
    "hourglass": Schedule(epochs=20, batch_size=BATCH_SIZE),
}
#: other skeletons' schedules where they differ
SKELETON_SCHEDULES: dict[Skeleton, dict[str, Schedule]] = {
    MPII16: {
        "regression": Schedule(epochs=80, batch_size=BATCH_SIZE),
        "heatmap": Schedule(epochs=40, batch_size=BATCH_SIZE),
        "soft-argmax": Schedule(epochs=45, batch_size=BATCH_SIZE),
    },
}


def schedule_of(model_name: str, skeleton: Skeleton = COCO17) -> Schedule:
    return SKELETON_SCHEDULES.get(skeleton, {}).get(model_name, SCHEDULES[model_name])


def weights_for(model_name: str, info: DatasetInfo) -> Path:
    """The committed weights file that training ``model_name`` on a dataset like ``info`` reproduces."""
    return skeleton_weights(model_name, skeleton_of(info.keypoint_names, f"dataset {info.name!r}"))


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
    """Train model ``name`` on ``train_set`` and save its state dict to ``out`` (``harness.run.trainers.TrainFunction``).

    A bottom-up model trains on whole images with its own batches (``bottom_up_train``), through the same loop.
    """
    from harness.core.catalog import ADAPTERS

    options: dict[str, Any] = dict(epochs=epochs, steps=steps, max_steps=max_steps, batch_size=batch_size,
                                   seed=seed, threads=threads, on_step=on_step)
    out = Path(out) if out is not None else weights_for(name, train_set.info)
    if getattr(ADAPTERS.get(name), "bottom_up", False):  # whole images, not person crops: its own batches
        from adapters.inrepo.keypoints import bottom_up_train

        return bottom_up_train.train(name, train_set, out=out, **options)
    with torch_threads(threads):
        return _train(name, train_set, out, epochs, steps, max_steps, batch_size, seed, on_step)


def _train(name: str, train_set: Dataset, out: Path, epochs: float | None, steps: int | None,
           max_steps: int | None, batch_size: int | None, seed: int, on_step: StepCallback | None) -> TrainOutcome:
    import torch

    from harness.core.catalog import ADAPTERS
    from adapters.inrepo.keypoints.adapter import TopDownAdapter
    from adapters.inrepo.keypoints.data import Augmentation, PersonCrops

    adapter_class = ADAPTERS.get(name)
    if not (isinstance(adapter_class, type) and issubclass(adapter_class, TopDownAdapter)):
        trainable = ", ".join(sorted(SCHEDULES))
        raise BenchError(f"model {name!r} is not an in-repo keypoint model (trainable: {trainable})")
    skeleton = skeleton_of(train_set.info.keypoint_names, f"dataset {train_set.info.name!r}")
    schedule = schedule_of(adapter_class.model_name, skeleton).overridden(epochs, steps, batch_size)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    began = time.perf_counter()
    people = PersonCrops.from_dataset(train_set)
    network = adapter_class.build_network(skeleton.num_joints)
    out.parent.mkdir(parents=True, exist_ok=True)

    if not network.trainable:
        network.fit(people.boxes, people.keypoints)
        if on_step is not None:
            on_step(1, 1, float("nan"))
        torch.save(compact_state_dict(network), out)
        return TrainOutcome(name, out, 1, 1, time.perf_counter() - began)

    schedule = schedule.in_steps(len(people), max_steps)
    order = schedule.batch_order(rng, len(people))
    augmentation = Augmentation()
    input_hw = tuple(network.input_hw)

    def loss_of_step(step: int) -> Any:
        batch = people.batch(order.take(schedule.batch_size), input_hw, rng, augmentation)
        images = torch.from_numpy(batch.images).permute(0, 3, 1, 2).float()
        return network.loss(
            network(images),
            torch.from_numpy(batch.keypoints),
            torch.from_numpy(batch.labelled),
            torch.from_numpy(batch.inside),
        )

    losses = optimise(network, schedule, loss_of_step, on_step)
    torch.save(compact_state_dict(network), out)
    return TrainOutcome(name, out, schedule.epochs_run(len(people)), len(losses), time.perf_counter() - began, losses)


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
    Trainer(task="keypoints", train=train, default_weights=skeleton_weights, weights_for=weights_for)
)
