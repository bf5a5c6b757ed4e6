"""Trainers for the in-repo models, one per task, found by `bench train`.

A task's trainer module registers ``Trainer(...)`` in ``TRAINERS`` (discovered from ``adapters.inrepo``), so
adding a trainable task touches only its own package.  Validation goes through ``harness.run.runner.evaluate``: the
numbers a training run prints are the numbers ``bench run`` reports.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence

from harness.core.dataset import Dataset
from harness.core.registry import Registry

#: ``on_step(step, total_steps, loss)``: progress of a training run, after every optimiser step
StepCallback = Callable[[int, int, float], None]


@dataclass
class TrainOutcome:
    """What every trainer returns and `bench train` prints."""

    model: str
    weights: Path
    epochs: float  # passes over the training split (fractional for a run cut short or counted in steps)
    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)  # one per optimiser step (none for a fit without steps)


class TrainFunction(Protocol):
    """The one entry point of every in-repo trainer (``train`` in each trainer module).

    Train model ``name`` on ``train_set`` and save its weights to ``out`` (None: the committed file for that
    dataset).  ``epochs`` or ``steps`` replace the length of the model's schedule (steps win), ``batch_size`` its
    batch size; ``max_steps`` cuts the run short (tests, smoke runs: the learning rate then decays over the
    shortened run).  ``seed`` fixes initialisation, batch order and augmentation; ``threads`` pins torch's thread
    count for the run (the committed weights were trained with one).
    """

    def __call__(self, name: str, train_set: Dataset, /, *, out: Path | None = None, epochs: float | None = None,
                 steps: int | None = None, max_steps: int | None = None, batch_size: int | None = None,
                 seed: int = 0, threads: int | None = 1, on_step: StepCallback | None = None) -> TrainOutcome: ...


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Pin torch's thread count for a training run and restore it after; ``None``/0 leaves it alone.

    The committed weights were trained with one thread, and results depend on the count in the last bits.
    """
    import torch

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True)
class Trainer:
    """``train`` (a ``TrainFunction``) returns an outcome with ``weights``, ``steps``, ``epochs`` and ``seconds``;
    ``default_weights(name)`` is the committed file a model loads.

    Models that ship weights per dataset label space (the keypoint models: COCO-17 and MPII-16) give
    ``weights_for(name, dataset_info)``, the committed file a training run on that dataset reproduces."""

    task: str
    train: TrainFunction
    default_weights: Callable[[str], Path]
    train_split: str = "train"
    val_split: str = "val"
    weights_for: Callable[[str, Any], Path] | None = None

    def weights_file(self, name: str, dataset_info: Any) -> Path:
        """Where ``bench train`` saves by default: the file the model loads on a dataset like this one."""
        if self.weights_for is not None:
            return self.weights_for(name, dataset_info)
        return self.default_weights(name)


TRAINERS: Registry = Registry("trainer", ("adapters.inrepo",), symbol="TRAINERS", group="bench.trainers",
                              base="harness.run.trainers:Trainer")


def validate(adapter: Any, dataset: Any, indices: Sequence[int] | None = None, batch_size: int = 16) -> dict[str, float]:
    """Every metric of the dataset's task for ``adapter``, plus ``images_per_s``."""
    from harness.tasks import get_task
    from harness.run.runner import evaluate

    task = get_task(dataset.info.task)
    if getattr(adapter, "bottom_up", False):  # no boxes, COCO OKS only: the keypoints bottom-up protocol
        from harness.run.keypoint_protocols import KeypointCondition, condition_run

        dataset, (adapter,) = condition_run(task, dataset, [adapter], KeypointCondition("bottom-up"), True)
    adapter.check_compatible(dataset.info)
    chosen = list(range(len(dataset))) if indices is None else list(indices)
    evaluation = evaluate(task, dataset, adapter, indices=chosen, batch_size=batch_size)
    numbers = {key: float(value) for key, value in evaluation.result.metrics.items()}
    rate = evaluation.throughput.get("images_per_s")  # None when no batch was timed after the warm-up
    numbers["images_per_s"] = float(rate) if rate is not None else float("nan")
    return numbers
