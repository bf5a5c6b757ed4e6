"""Checkpoint files of the in-repo detection models: tensors plus the label space they were trained on.

A checkpoint is a plain dict ``{"network": state_dict, "classes": [...], "category_ids": [...], "kind": str}``,
readable with ``torch.load(weights_only=True)``.  The class names and the dataset's category ids travel with the
weights, so the adapter maps class index k to ``category_ids[k]`` explicitly and refuses a dataset whose classes
or ids differ, instead of assuming the model was trained on whatever it is shown.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from harness.core.adapter import load_state_dict
from adapters.inrepo import weights
from adapters.inrepo.parameter_count import count_key, remembered_facts
from harness.core.dataset import DatasetInfo
from harness.core.errors import BenchError

#: the prefix of the weights files of the detection and instance models (they share one trainer)
PREFIX = "detection"


def weights_for(model_name: str, dataset: DatasetInfo, kind: str, trust_checkpoint: bool = False) -> Path:
    """The committed weights of ``model_name`` for ``dataset``'s family, or of a family whose checkpoint holds the
    dataset's classes and category ids (``voc-mini`` boxes are the ``coco-mini`` shapes); one-line error if none."""

    def same_label_space(family: str, path: Path) -> bool:
        classes, category_ids = label_space(path, kind, trust_checkpoint)
        return classes == list(dataset.classes) and (
            not dataset.category_ids or category_ids == list(dataset.category_ids))

    return weights.weights_for(PREFIX, model_name, dataset, same_label_space)


def family_weights(model_name: str, dataset: DatasetInfo) -> Path:
    """Where a trainer writes the weights of ``model_name`` for ``dataset``'s family by default."""
    return weights.family_weights(PREFIX, model_name, weights.dataset_family(dataset))


@dataclass
class Checkpoint:
    kind: str
    network: dict[str, Any]
    classes: list[str]
    category_ids: list[int]

    def save(self, path: Path) -> None:
        import torch

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"kind": self.kind, "network": self.network, "classes": list(self.classes),
                    "category_ids": [int(v) for v in self.category_ids]}, path)

    @classmethod
    def load(cls, path: Path, kind: str, trust_checkpoint: bool = False) -> "Checkpoint":
        content = load_state_dict(path, trust_checkpoint)
        missing = [key for key in ("kind", "network", "classes", "category_ids") if key not in content]
        if missing:
            raise BenchError(f"not an in-repo detection checkpoint (missing {', '.join(missing)})", path)
        if content["kind"] != kind:
            raise BenchError(f"checkpoint holds a {content['kind']!r} model, expected {kind!r}", path)
        classes, ids = list(content["classes"]), [int(v) for v in content["category_ids"]]
        if len(classes) != len(ids) or not classes:
            raise BenchError(f"checkpoint lists {len(classes)} classes and {len(ids)} category ids", path)
        return cls(kind, content["network"], classes, ids)


#: what reads a file's label space, part of the key its facts are remembered under
READER = f"{__name__}:Checkpoint"


def label_space(path: Path, kind: str, trust_checkpoint: bool = False,
                load: Callable[[], Checkpoint] | None = None) -> tuple[list[str], list[int]]:
    """The classes and category ids of the ``kind`` checkpoint at ``path``: remembered per file (its bytes, the
    kind, whether it was trusted), else read by ``load()`` (default ``Checkpoint.load``, which imports torch and
    refuses a file that is not a ``kind`` checkpoint: nothing is remembered for it)."""
    path = Path(path)
    if not path.is_file():
        raise BenchError("checkpoint file not found", path)

    def read() -> dict[str, Any]:
        checkpoint = load() if load is not None else Checkpoint.load(path, kind, trust_checkpoint)
        return {"kind": kind, "classes": list(checkpoint.classes), "category_ids": list(checkpoint.category_ids)}

    def valid(facts: dict[str, Any]) -> bool:
        classes, ids = facts.get("classes"), facts.get("category_ids")
        return (facts.get("kind") == kind and isinstance(classes, list) and isinstance(ids, list)
                and len(classes) == len(ids) > 0 and all(isinstance(name, str) for name in classes)
                and all(isinstance(v, int) and not isinstance(v, bool) for v in ids))

    key = count_key(READER, f"kind={kind}|trusted={trust_checkpoint}", path)
    facts = remembered_facts(key, read, valid)
    return list(facts["classes"]), list(facts["category_ids"])
