"""Where in-repo models keep their committed weights, and how they are written and read back.

One model has one weights file per label space it was trained for: ``<task>_<model>.pt`` for the task's default
embedded dataset (``voc-mini`` for semantic, ``coco-mini`` for detection and instance) and
``<task>_<model>_<family>.pt`` for any other dataset family (``cityscapes``, ``ade20k``, ...), the family being the
``--dataset`` name (``cityscapes`` for both ``cityscapes-mini`` and a Cityscapes download: same label space).  An
adapter is built before the dataset is known, so it binds its file in ``check_compatible`` through
``weights_for``.  A dataset of a family without a file gets another family's file if it has that file's label
space (the ``voc-mini`` boxes are the ``coco-mini`` shapes); otherwise it is refused in one line naming the
datasets the model has weights for.

Weights are stored as plain state dicts of float16 tensors: half the bytes of float32, which keeps every file in
the repository small, and a format ``torch.load(weights_only=True)`` reads without unpickling any object.  The
network computes in float32; the committed numbers are measured with the float16-rounded weights, so what is
reported is what is shipped.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from harness.core.adapter import load_state_dict
from harness.core.dataset import DatasetInfo
from harness.core.errors import BenchError

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
#: the embedded datasets are named ``<family>-mini`` (harness/datasets/*: ``voc-mini``, ``cityscapes-mini``, ...)
EMBEDDED_SUFFIX = "-mini"


def default_weights(task: str, model: str) -> Path:
    """``adapters/weights/<task>_<model>.pt``: the weights for the task's default embedded dataset."""
    return WEIGHTS_DIR / f"{task}_{model}.pt"


def default_family(task: str) -> str:
    """The dataset family ``default_weights`` were trained on: the task's default dataset (``voc``, ``coco``)."""
    from harness.tasks import TASKS

    return TASKS.get(task).default_dataset


def dataset_family(info: DatasetInfo) -> str:
    """The ``--dataset`` name ``info`` was opened as: an embedded ``<family>-mini`` and a download share it."""
    return info.name.removesuffix(EMBEDDED_SUFFIX)


def family_weights(task: str, model: str, family: str) -> Path:
    """Where the weights of ``model`` for ``family`` live (whether or not they exist): what a trainer writes."""
    if family == default_family(task):
        return default_weights(task, model)
    if not family or "_" in family or "/" in family:
        raise BenchError(f"cannot name a weights file after dataset family {family!r}")
    return WEIGHTS_DIR / f"{task}_{model}_{family}.pt"


def weights_family(task: str, model: str, path: Path) -> str:
    """The dataset family a committed weights file of ``model`` is for (the inverse of ``family_weights``)."""
    if Path(path).name == default_weights(task, model).name:
        return default_family(task)
    prefix = f"{task}_{model}_"
    name = Path(path).name
    if not (name.startswith(prefix) and name.endswith(".pt")):
        raise BenchError(f"not a weights file of {task} model {model!r}", path)
    return name[len(prefix):-len(".pt")]


def committed_families(task: str, model: str) -> list[str]:
    """The dataset families ``model`` has committed weights for, the default one first."""
    families = [default_family(task)] if default_weights(task, model).is_file() else []
    prefix = f"{task}_{model}_"  # model names hold '-', never '_': 'prior-boxes_' does not match 'prior-boxes-mask_'
    families += sorted(path.stem[len(prefix):] for path in WEIGHTS_DIR.glob(f"{prefix}*.pt"))
    return families


def weights_for(task: str, model: str, info: DatasetInfo,
                same_label_space: Callable[[str, Path], bool] | None = None) -> Path:
    """The committed weights of ``model`` for the dataset described by ``info``; a one-line error if none.

    The dataset's own family's file first (its label space is then checked by the adapter as usual).  A dataset
    of a family without a file may still share another family's label space (the embedded ``voc-mini`` boxes are
    the ``coco-mini`` shapes): ``same_label_space(family, path)`` says whether that family's file predicts the
    dataset's classes, and the first that does is used.  ``task`` is the prefix of the weights files
    (``detection`` for the instance models too, which share the detection family's files and trainer).
    """
    family = dataset_family(info)
    nameable = bool(family) and "_" not in family and "/" not in family
    path = family_weights(task, model, family) if nameable else None
    if path is not None and path.is_file():
        return path
    known = committed_families(task, model)
    if same_label_space is not None:
        for other in known:
            candidate = family_weights(task, model, other)
            if same_label_space(other, candidate):
                return candidate
    raise BenchError(
        f"model {model!r} has no weights for dataset {info.name!r} (it has weights for "
        f"{', '.join(known) if known else 'no dataset'}); train them with `bench train --task {info.task} "
        f"--model {model} --dataset {family}` or pass --checkpoint")


def save_compact(state: dict, path: Path) -> Path:
    """Save a state dict with floating tensors as float16 (integer buffers such as BatchNorm counters as they are)."""
    import torch

    compact = {key: value.detach().to("cpu", torch.float16) if value.is_floating_point() else value.detach().cpu()
               for key, value in state.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(compact, path)
    return path


def load_into(module, path: Path, trust_checkpoint: bool = False) -> None:
    """Load ``path`` into ``module`` (as float32), refusing a file made for another architecture in one line."""
    import torch

    state = load_state_dict(path, trust_checkpoint)
    reference = module.state_dict()
    missing = sorted(set(reference) - set(state))
    unexpected = sorted(set(state) - set(reference))
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise BenchError(f"checkpoint does not fit {type(module).__name__} ({detail})", path)
    for key, value in state.items():
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(reference[key].shape):
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise BenchError(f"checkpoint entry {key!r} is {shape}, {type(module).__name__} expects "
                             f"{tuple(reference[key].shape)}", path)
    module.load_state_dict({key: value.to(reference[key].dtype) for key, value in state.items()})
