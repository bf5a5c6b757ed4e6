"""Checkpoint files of the in-repo detection models: tensors plus the label space they were trained on.

A checkpoint is a plain dict ``{"network": state_dict, "classes": [...], "category_ids": [...], "kind": str}``,
readable with ``torch.load(weights_only=True)``.  The class names and the dataset's category ids travel with the
weights, so the adapter maps class index k to ``category_ids[k]`` explicitly and refuses a dataset whose classes
or ids differ, instead of assuming the model was trained on whatever it is shown.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.adapter import load_state_dict
from adapters.inrepo import weights
from harness.core.dataset import DatasetInfo
from harness.core.errors import BenchError

#: the prefix of the weights files of the detection and instance models (they share one trainer)
PREFIX = "detection"


def weights_for(model_name: str, dataset: DatasetInfo, kind: str, trust_checkpoint: bool = False) -> Path:
    """The committed weights of ``model_name`` for ``dataset``'s family, or of a family whose checkpoint holds the
    dataset's classes and category ids (``voc-mini`` boxes are the ``coco-mini`` shapes); one-line error if none."""

    def same_label_space(family: str, path: Path) -> bool:
        checkpoint = Checkpoint.load(path, kind, trust_checkpoint)
        return checkpoint.classes == list(dataset.classes) and (
            not dataset.category_ids or checkpoint.category_ids == list(dataset.category_ids))

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
