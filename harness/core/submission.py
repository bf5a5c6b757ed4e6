"""The SubmissionFormat contract: predictions out to a dataset's official results files, and back in again.

Why both directions in one class: a run must write exactly what the official tool (and ``bench eval``) reads, and
the only proof is reading it back.  ``bench run`` writes every sample's prediction while it runs (dense formats
write a file per sample at once, on whichever rank predicted it; box formats return small records that rank 0
gathers and writes in ``finish``).  ``bench eval`` opens the same files with ``reader`` and feeds the predictions
through the same runner and metrics as ``bench run``, so the two cannot disagree by construction.

Predictions handed to ``add`` and returned by ``PredictionSource.predict`` are the task's prediction types
(``harness.core.structures``) in the dataset's evaluation space (category ids, trainIds, ...); the format owns the
translation to and from the file encoding.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from harness.core.structures import Sample


class PredictionSource(ABC):
    """Predictions read from submission files, handed out per sample (the predictions-file adapter's backend)."""

    @abstractmethod
    def predict(self, sample: Sample) -> Any:
        """The prediction for ``sample``; raises ``PredictionError`` naming the file when it is missing or bad.

        Formats where "no entry" has a meaning (COCO results: no detections) return an empty prediction instead.
        """

    def unmatched(self, sample_ids: set[Any]) -> list[str]:
        """Descriptions of predictions that belong to no sample in ``sample_ids`` (wrong folder or split).

        The caller refuses to score when this is not empty: scoring only the overlap publishes a number for a
        different dataset.  Default: nothing to report.
        """
        return []


class SubmissionFormat(ABC):
    """One official results format.  ``out_dir`` is the run's report folder; ``entry`` (relative to it) is what
    ``bench eval --pred`` is given to read the submission back."""

    #: registry name
    name: ClassVar[str] = ""
    #: the path, relative to the report folder, of the file or folder that holds the submission
    entry: ClassVar[str] = "predictions"
    #: keyword options its ``reader`` accepts beyond ``info`` and ``path`` (``bench eval`` flags such as
    #: ``allow_missing``); a flag given for a format that lacks it is refused rather than ignored
    reader_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, info: Any, out_dir: Path) -> None:
        self.info = info
        self.out_dir = Path(out_dir)

    @property
    def path(self) -> Path:
        return self.out_dir / self.entry

    @abstractmethod
    def add(self, sample: Sample, prediction: Any) -> list[dict[str, Any]]:
        """Write the sample's own files now (dense formats, atomically) and return the JSON-able records that
        rank 0 gathers for ``finish`` (box formats), in sample order."""

    def finish(self, records: list[dict[str, Any]]) -> None:
        """Rank 0, once, after every sample: write the files that hold all samples (a results json, per-class
        txt).  Default: nothing (dense formats wrote everything in ``add``)."""

    @classmethod
    @abstractmethod
    def reader(cls, info: Any, path: Path) -> PredictionSource:
        """Open a submission at ``path`` (``entry`` of a run folder, or the user's own files) for ``info``."""
