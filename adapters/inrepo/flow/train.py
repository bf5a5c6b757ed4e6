"""Train the in-repo FlowNetS on the embedded Sintel-layout train split (clean and final passes).

``bench train --task flow --model flownet-s`` (or ``python -m adapters.inrepo.flow.train flownet-s``) rewrites
``adapters/weights/flow_flownet-s.pt``; the defaults (seed 0, the schedule below, one thread) reproduce the
committed weights.  The classical methods and the zero-flow baseline have nothing to train.

Like Sintel fine-tuning in the literature, training uses both render passes: given one pass of a Sintel root
(``bench train`` opens ``train``, the clean pass of the embedded data), the trainer adds the other pass of the same
root when it is there.
"""
from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from adapters.inrepo.weights import default_weights, save_compact
from adapters.inrepo.train_loop import Schedule, optimise
from harness.core.dataset import Dataset
from harness.core.errors import BenchError
from harness.run.trainers import TRAINERS, StepCallback, Trainer, TrainOutcome, torch_threads

TASK = "flow"
CROP = (64, 128)
#: loss weights of the flows at strides 16, 8, 4, 2; the full-resolution EPE is added with weight 1
SCALE_WEIGHTS = (0.08, 0.16, 0.32, 0.5)
SCHEDULES: dict[str, Schedule] = {
    "flownet-s": Schedule(steps=1400, batch_size=8, learning_rate=1.5e-3, warmup_steps=30, drop_last=False),
}
MODELS = tuple(SCHEDULES)


def open_train_splits(data_root: Path | None = None, splits: tuple[str, ...] | None = None) -> list[Dataset]:
    """The embedded ``train-clean`` and ``train-final`` splits unless a Sintel root (and its passes) is given."""
    from harness.datasets import DATASETS

    if splits is None:
        splits = ("train-clean", "train-final") if data_root is None else ("clean", "final")
    return [DATASETS.get("sintel")(data_root, split, TASK) for split in splits]


def with_other_pass(dataset: Dataset) -> list[Dataset]:
    """``dataset`` and, for a Sintel pass whose root also has the other pass, that pass (clean first)."""
    from harness.datasets.sintel import PASSES, Sintel

    if not isinstance(dataset, Sintel):
        return [dataset]
    render_pass = dataset.info.extra.get("pass")
    other = next((p for p in PASSES if p != render_pass), None)
    if other is None or not (dataset.training / other).is_dir():
        return [dataset]
    subset = dataset.info.split.rsplit("-", 1)[0] if "-" in dataset.info.split else None
    sibling = Sintel(dataset.training, other, name=dataset.info.name,
                     split_name=f"{subset}-{other}" if subset else other)
    return [dataset, sibling] if render_pass == PASSES[0] else [sibling, dataset]


def train(
    name: str,
    train_set: Dataset | Sequence[Dataset],
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
    """Fit ``name`` on the pairs of ``train_set`` and save its weights to ``out``
    (``harness.run.trainers.TrainFunction``).

    A single dataset is taken with its other render pass (``with_other_pass``); a list is used as it is.
    """
    import torch

    from adapters.inrepo.flow.data import FlowPairs
    from adapters.inrepo.flow.networks import FlowNetS, full_resolution, multiscale_epe

    if name not in SCHEDULES:
        raise BenchError(f"no trainer for flow model {name!r} (trainable: {', '.join(MODELS)}; the classical "
                         "methods and zero-flow have no weights)")
    began = time.perf_counter()
    train_sets = with_other_pass(train_set) if isinstance(train_set, Dataset) else list(train_set)
    data = FlowPairs.load(*train_sets)
    if not len(data):
        raise BenchError("the training split has no frame pairs")
    schedule = SCHEDULES[name].overridden(epochs, steps, batch_size).in_steps(len(data), max_steps)
    with torch_threads(threads):
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        network = FlowNetS()
        order = schedule.batch_order(rng, len(data))

        def loss_of_step(step: int) -> Any:
            indices = order.take(schedule.batch_size)
            first, second, target = data.batch(indices, rng, CROP)
            flows = network(first, second)
            finest = full_resolution(flows[-1], (target.shape[-2], target.shape[-1]))
            epe = torch.linalg.vector_norm(finest - target, dim=1).mean()
            return epe + multiscale_epe(flows, target, SCALE_WEIGHTS)

        losses = optimise(network, schedule, loss_of_step, on_step)
    out = Path(out) if out is not None else default_weights(TASK, name)
    save_compact(network.state_dict(), out)
    return TrainOutcome(name, out, schedule.epochs_run(len(data)), len(losses), time.perf_counter() - began, losses)


TRAINERS.register(TASK)(Trainer(task=TASK, train=train, default_weights=partial(default_weights, TASK)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m adapters.inrepo.flow.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=MODELS)
    parser.add_argument("--out", type=Path, default=None, help="weights file (default: the committed one)")
    parser.add_argument("--steps", type=int, default=None, help="override the schedule's number of steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-root", type=Path, default=None, help="an MPI-Sintel root (default: the embedded pairs)")
    parser.add_argument("--split", action="append", default=None,
                        help="split to train on, repeatable (default: both passes of the embedded 'train')")
    args = parser.parse_args(argv)

    def report(step: int, total: int, loss: float) -> None:
        if step == 1 or step % 50 == 0 or step == total:
            print(f"step {step}/{total} loss {loss:.4f}", flush=True)

    splits = tuple(args.split) if args.split else None
    outcome = train(args.model, open_train_splits(args.data_root, splits), out=args.out, steps=args.steps,
                    seed=args.seed, threads=args.threads, on_step=report)
    print(f"saved {outcome.weights} ({outcome.steps} steps, {outcome.epochs} epochs, {outcome.seconds:.0f} s)")


if __name__ == "__main__":
    main()
