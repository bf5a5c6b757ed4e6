"""Read a run's predictions back from its official submission files, paired with the dataset's samples."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from harness.datasets.base import Dataset
from harness.structures import Sample
from harness.submissions import SUBMISSIONS


@dataclass
class Pair:
    """One evaluated image: its sample (target + lazy image) and the prediction the run wrote for it."""

    sample: Sample
    prediction: Any


def read_pairs(dataset: Dataset, indices: Sequence[int], run_dir: Path, submission: str) -> list[Pair]:
    """The run's predictions in sample order, as ``bench eval --run`` would read them (same reader)."""
    source = SUBMISSIONS.get(submission).reader(dataset.info, Path(run_dir) / SUBMISSIONS.get(submission).entry)
    pairs = []
    for index in indices:
        sample = dataset[index]
        pairs.append(Pair(sample, source.predict(sample)))
    return pairs


def safe_name(sample_id: Any) -> str:
    """A file-name-safe form of a sample id (Sintel ids hold slashes)."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(sample_id))
