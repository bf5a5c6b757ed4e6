"""A tiny but complete task added to bench from outside: task, dataset, metrics, submission format, model.

Samples are 4-number feature vectors of three classes (no images), so runs take milliseconds, yet everything bench
handles is there: a torch module with weights from a checkpoint, per-class breakdowns, a precision/recall curve,
a lower-is-better metric, a 'cat' (resamplable) and a 'sum' (not resamplable) metric, an official-style
submission file.  Nothing here registers itself: ``pyproject.toml`` names each object under an entry-point group
(``bench.tasks``, ``bench.datasets``, ``bench.metrics``, ``bench.submissions``, ``bench.adapters``) and bench
imports this module the first time one of those names is used.  bench's own tests run it (``tests/scale``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.core.adapter import Adapter, AdapterInfo, load_state_dict
from harness.io.cache_dir import materialise
from harness.core.dataset import Dataset, DatasetInfo
from harness.core.errors import DataError
from harness.core.metric import Metric, MetricResult
from harness.io.safecodec import register_prediction_type
from harness.core.structures import Sample
from harness.io.jsonio import atomic_write_json
from harness.core.protocol import MetricSpec, Protocol
from harness.core.submission import PredictionSource, SubmissionFormat
from harness.core.task import Task

CLASSES = ["cat", "dog", "bird"]
CENTERS = np.array([[2.0, 0.0, 0.0, 1.0], [0.0, 2.0, 0.0, 1.0], [0.0, 0.0, 2.0, 1.0]])


@dataclass
class ToyTarget:
    label: int


@register_prediction_type
@dataclass
class ToyPrediction:
    scores: np.ndarray  # (3,) class probabilities


def write_toy_data(root: Path, count: int = 60, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=count)
    features = CENTERS[labels] + rng.normal(0.0, 1.1, size=(count, 4))
    items = [{"id": 1000 + i, "label": int(l), "x": [round(float(v), 6) for v in f]} for i, (l, f) in enumerate(zip(labels, features))]
    Path(root).mkdir(parents=True, exist_ok=True)
    (Path(root) / "toy.json").write_text(json.dumps({"items": items}))


class ToyDataset(Dataset):
    def __init__(self, root: Path) -> None:
        self.file = Path(root) / "toy.json"
        if not self.file.is_file():
            raise DataError("no toy.json", root)
        self.items = json.loads(self.file.read_text())["items"]
        self.info = DatasetInfo(name="toy-set", task="toy", split="val", root=Path(root), classes=list(CLASSES),
                                category_ids=[1, 2, 3])

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Sample:
        item = self.items[index]
        return Sample(sample_id=item["id"], image_path=None, target=ToyTarget(item["label"]),
                      prompts=np.asarray(item["x"], dtype=np.float32))

    def source_files(self):
        return [self.file]


def open_toy(data_root, split, task) -> Dataset:
    root = Path(data_root) if data_root is not None else materialise("toy-v1", write_toy_data)
    return ToyDataset(root)


class ToyAccuracy(Metric):
    """Per-sample 'cat' states: accuracy, per-class recall, Brier score and a PR curve for 'cat'."""

    name = "toy_accuracy"
    lower_is_better = frozenset({"brier"})

    def __init__(self) -> None:
        super().__init__()
        self.add_state("labels", [], reduce="cat")
        self.add_state("scores", [], reduce="cat")

    def update(self, samples: Sequence[Sample], predictions: Sequence[ToyPrediction]) -> None:
        for sample, prediction in zip(samples, predictions):
            self.labels.append(int(sample.target.label))
            self.scores.append(np.asarray(prediction.scores, dtype=np.float64))

    def compute(self) -> MetricResult:
        labels = np.asarray(self.labels, dtype=np.int64)
        scores = np.asarray(self.scores, dtype=np.float64).reshape(-1, 3)
        hits = scores.argmax(axis=1) == labels
        onehot = np.eye(3)[labels]
        per_class = {name: float(hits[labels == c].mean()) if (labels == c).any() else float("nan")
                     for c, name in enumerate(CLASSES)}
        order = np.argsort(-scores[:, 0], kind="mergesort")
        positives = (labels[order] == 0).astype(np.float64)
        tp = np.cumsum(positives)
        precision = tp / np.arange(1, len(tp) + 1)
        recall = tp / max(positives.sum(), 1.0)
        return MetricResult(
            metrics={"accuracy": float(hits.mean()) if len(hits) else float("nan"),
                     "brier": float(((scores - onehot) ** 2).sum(axis=1).mean()) if len(hits) else float("nan")},
            per_class={"accuracy": per_class},
            curves={"pr/cat": {"recall": recall.round(4).tolist(), "precision": precision.round(4).tolist()}},
            settings={"classes": len(CLASSES)},
        )


class ToyConfusion(Metric):
    """A 'sum' state (confusion matrix): merges across ranks, cannot be bootstrapped."""

    name = "toy_confusion"

    def __init__(self) -> None:
        super().__init__()
        self.add_state("confusion", np.zeros((3, 3), dtype=np.int64), reduce="sum")

    def update(self, samples, predictions) -> None:
        for sample, prediction in zip(samples, predictions):
            self.confusion[sample.target.label, int(np.argmax(prediction.scores))] += 1

    def compute(self) -> MetricResult:
        rows = self.confusion.sum(axis=1)
        recall = np.diag(self.confusion)[rows > 0] / rows[rows > 0]
        return MetricResult(metrics={"balanced_accuracy": float(recall.mean()) if recall.size else float("nan")})


class ToyJson(SubmissionFormat):
    """All predictions in one json list (what ``bench eval`` would read back)."""

    name = "toy-json"
    entry = "predictions.json"

    def add(self, sample: Sample, prediction: ToyPrediction) -> list[dict[str, Any]]:
        return [{"image_id": sample.sample_id, "label": int(np.argmax(prediction.scores)),
                 "scores": [float(s) for s in prediction.scores]}]

    def finish(self, records: list[dict[str, Any]]) -> None:
        atomic_write_json(self.path, records, indent=None)

    @classmethod
    def reader(cls, info: Any, path: Path) -> PredictionSource:
        raise NotImplementedError("the toy plugin only writes")


class ToyTask(Task):
    name = "toy"
    default_dataset = "toy-set"
    default_protocol = Protocol(
        name="toy", version=1, metrics=(MetricSpec("toy_accuracy"), MetricSpec("toy_confusion")),
        headline="accuracy", columns=("accuracy", "balanced_accuracy", "brier"), submission="toy-json",
    )


def save_weights(path: Path, noise: float = 0.0, seed: int = 0) -> Path:
    """A checkpoint for ``toy-linear``: the class centres, optionally perturbed (a 'regressed' model)."""
    import torch  # here, not at the top: listing bench's models imports this module, and must not cost torch

    weight = CENTERS + np.random.default_rng(seed).normal(0.0, noise, CENTERS.shape) if noise else CENTERS
    torch.save({"weight": torch.tensor(weight, dtype=torch.float32)}, path)
    return path


class ToyLinear(Adapter):
    """Softmax of a linear layer; ``calls`` records every batch size it was asked to predict (for tests)."""

    task = "toy"
    runs_by_default = True
    batch_invariant = True  # row by row: test_distributed checks one and two processes predict the same bits
    #: batch sizes of every ``predict`` call, and a call count after which ``predict`` raises KeyboardInterrupt:
    #: hooks bench's own tests use to check batching, caching and resuming (a real plugin has no need of them)
    calls: list[int] = []
    fail_after: int | None = None

    def __init__(self, *args, **kwargs) -> None:
        import torch

        super().__init__(*args, **kwargs)
        self.module = torch.nn.Linear(4, 3, bias=False)
        weight = torch.tensor(CENTERS, dtype=torch.float32)
        if self.checkpoint is not None:
            weight = load_state_dict(self.checkpoint)["weight"]
        with torch.no_grad():
            self.module.weight.copy_(weight)
        self.module.to(self.device).eval()

    def info(self) -> AdapterInfo:
        return AdapterInfo(name=self.name, task="toy", classes=list(CLASSES), parameters=12)

    def predict(self, samples: Sequence[Sample]) -> list[ToyPrediction]:
        if type(self).fail_after is not None and len(type(self).calls) >= type(self).fail_after:
            raise KeyboardInterrupt("simulated interruption")
        type(self).calls.append(len(samples))
        import torch

        x = torch.as_tensor(np.stack([s.prompts for s in samples]), device=self.device)
        with torch.no_grad():
            probabilities = torch.softmax(self.module(x).double(), dim=1).cpu().numpy()
        return [ToyPrediction(scores=row) for row in probabilities]

    def torch_module(self):
        return self.module

    def example_input(self, batch_size: int):
        import torch

        return torch.randn(batch_size, 4, generator=torch.Generator().manual_seed(0))
