"""Read a run's predictions back from its official submission files, paired with the dataset's samples."""
from __future__ import annotations

from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from harness.core.dataset import Dataset
from harness.core.structures import Sample
from harness.submissions import SUBMISSIONS


@dataclass
class Pair:
    """One evaluated image: its sample (target + lazy image) and the prediction the run wrote for it."""

    sample: Sample
    prediction: Any


class LazyPairs(SequenceABC):
    """Pairs read when indexed and not kept: dense predictions (label maps, flow fields) of a whole split do not
    fit in memory at once, and each analysis pass reads them in order anyway."""

    def __init__(self, dataset: Dataset, indices: Sequence[int], source: Any) -> None:
        self.dataset, self.indices, self.source = dataset, list(indices), source

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> Pair:  # type: ignore[override]
        sample = self.dataset[self.indices[position]]
        return Pair(sample, self.source.predict(sample))

    def __iter__(self) -> Iterator[Pair]:
        return (self[position] for position in range(len(self)))


#: tasks whose predictions are dense arrays (read lazily); the others are held in memory
DENSE_TASKS = ("semantic", "flow")


def read_pairs(dataset: Dataset, indices: Sequence[int], run_dir: Path, submission: str) -> Sequence[Pair]:
    """The run's predictions in sample order, as ``bench eval --run`` would read them (same reader)."""
    source = SUBMISSIONS.get(submission).reader(dataset.info, Path(run_dir) / SUBMISSIONS.get(submission).entry)
    pairs = LazyPairs(dataset, indices, source)
    return pairs if dataset.info.task in DENSE_TASKS else list(pairs)


def safe_name(sample_id: Any) -> str:
    """A file-name-safe form of a sample id (Sintel ids hold slashes)."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(sample_id))
