"""``--label-map FILE``: run a model on a dataset with other classes, through an explicit mapping.

Without it a model whose classes differ from the dataset's is refused (``Adapter.check_compatible``): mapping
silently by position or by a guessed name would score the wrong classes.  The file (YAML or JSON) maps model
classes, by name or by the model's category id, to dataset classes, by name or by category id::

    person: person          # COCO-trained detector on VOC
    car: car
    motorcycle: motorbike
    couch: sofa
    giraffe: null           # dropped (also: any model class the file does not name)

The wrapped model is made compatible with a stand-in of the dataset that has the model's own classes (so it
labels detections with its own ids), and each prediction's labels are then translated; detections of a class
the map drops are removed.  Detection and instance segmentation only (their predictions carry category ids).
The file's sha256 is part of the model's fingerprint (prediction cache) and of the run's identity.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.core.errors import BenchError, DataError
from harness.core.fingerprint import file_digest

TASKS = ("detection", "instance")


def read_label_map(path: Path) -> dict[Any, Any]:
    """The file's mapping (keys and values: names or integer ids; values may be null)."""
    path = Path(path)
    if not path.is_file():
        raise DataError("--label-map: file not found", path)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"--label-map: not JSON ({exc})", path) from None
    else:
        from harness.io.yamlio import read_yaml

        data = read_yaml(path, "--label-map file")
    if not isinstance(data, dict) or not data:
        raise DataError("--label-map: expected a non-empty mapping of model class -> dataset class", path)
    for key, value in data.items():
        if not isinstance(key, (str, int)) or isinstance(key, bool):
            raise DataError(f"--label-map: key {key!r} must be a class name or id", path)
        if value is not None and (not isinstance(value, (str, int)) or isinstance(value, bool)):
            raise DataError(f"--label-map: {key!r}: {value!r} must be a class name, id or null", path)
    return data


def _lookup(item: Any, names: list[str], ids: list[int], side: str, path: Path) -> int:
    """The category id ``item`` (a name, or an id) stands for in a label space.  A string of digits that is not a
    class name is an id (JSON object keys are always strings)."""
    if isinstance(item, str) and item not in names and item.strip().lstrip("-").isdigit():
        item = int(item)
    if isinstance(item, str) and item in names:
        return ids[names.index(item)]
    if isinstance(item, int) and item in ids:
        return item
    raise DataError(f"--label-map: {item!r} is not a {side} class (the {side} has {len(names)}: "
                    f"{', '.join(names[:8])}{', ...' if len(names) > 8 else ''})", path)


def translation(data: dict[Any, Any], model_names: list[str], model_ids: list[int], dataset_names: list[str],
                dataset_ids: list[int], path: Path) -> dict[int, int]:
    """model category id -> dataset category id, for the classes the file maps (dropped ones left out)."""
    table: dict[int, int] = {}
    seen: dict[int, Any] = {}
    for key, value in data.items():
        source = _lookup(key, model_names, model_ids, "model", path)
        if source in seen:
            raise DataError(f"--label-map: {key!r} and {seen[source]!r} name the same model class", path)
        seen[source] = key
        if value is not None:
            table[source] = _lookup(value, dataset_names, dataset_ids, "dataset", path)
    return table


def with_label_map(adapter: Any, path: Path) -> Any:
    """``adapter`` wrapped so its classes are translated onto the dataset's through the file at ``path``."""
    from harness.core.adapter import Adapter

    path = Path(path)
    if adapter.task not in TASKS:
        raise BenchError(f"--label-map applies to {' and '.join(TASKS)} models; {adapter.name!r} is a "
                         f"{adapter.task} model")
    data = read_label_map(path)
    digest = file_digest(path)

    class LabelMapped(Adapter):
        """The wrapped model, its category ids translated by the label map."""

        task = adapter.task
        needs_images = getattr(adapter, "needs_images", True)
        batch_invariant = getattr(adapter, "batch_invariant", False)
        accepted_options = getattr(type(adapter), "accepted_options", {})

        def __init__(self) -> None:
            super().__init__(adapter.name, checkpoint=adapter.checkpoint, device=adapter.device,
                             trust_checkpoint=adapter.trust_checkpoint, options=adapter.options)
            self.inner = adapter
            self.table: dict[int, int] | None = None

        def info(self) -> Any:
            return self.inner.info()

        def weights_file(self) -> Any:
            return self.inner.weights_file()

        def has_weights_for(self, dataset: Any) -> bool:
            return bool(self.inner.has_weights_for(dataset))

        def torch_module(self) -> Any:
            return self.inner.torch_module()

        def check_compatible(self, dataset: Any) -> None:
            info = self.inner.info()
            if not info.classes:
                raise BenchError(f"--label-map: model {self.name!r} declares no classes to map")
            model_ids = [int(i) for i in info.extra.get("category_ids") or range(len(info.classes))]
            # the model sees a dataset with its own classes, so it labels with its own ids; translated below
            self.inner.check_compatible(dataclasses.replace(dataset, classes=list(info.classes),
                                                            category_ids=model_ids))
            self.table = translation(data, list(info.classes), model_ids, list(dataset.classes),
                                     [int(i) for i in dataset.category_ids], path)

        def fingerprint(self) -> str:
            return hashlib.sha256(f"{self.inner.fingerprint()}|label-map:{digest}".encode()).hexdigest()[:16]

        def predict(self, samples: Sequence[Any]) -> list[Any]:
            if self.table is None:
                raise BenchError(f"model {self.name!r}: predict before check_compatible")
            return [self._translate(prediction) for prediction in self.inner.predict(samples)]

        def _translate(self, prediction: Any) -> Any:
            assert self.table is not None
            labels = np.asarray(prediction.labels, np.int64)
            keep = np.array([int(label) in self.table for label in labels], dtype=bool).reshape(-1)
            mapped = np.array([self.table[int(label)] for label in labels[keep]], dtype=np.int64)
            masks = prediction.masks
            return dataclasses.replace(
                prediction, boxes=np.asarray(prediction.boxes).reshape(-1, 4)[keep],
                scores=np.asarray(prediction.scores)[keep], labels=mapped,
                masks=[mask for mask, kept in zip(masks, keep) if kept] if masks is not None else None)

    # the prediction cache hashes the code of the adapter's package: the wrapped model's, not the harness's
    LabelMapped.__module__ = type(adapter).__module__
    wrapped = LabelMapped()
    wrapped.label_map = {"file": str(path), "sha256": digest}  # type: ignore[attr-defined]  # read by the run record
    return wrapped
