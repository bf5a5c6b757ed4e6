"""``bench eval`` on a dataset: someone's submission files scored by exactly the pipeline ``bench run`` uses.

The ground truth is read by the dataset's own reader, the predictions by the protocol's submission format (the
files a run writes, or the user's files in the same official format), and both go through ``runner.evaluate``
with the protocol's metrics.  So a run's numbers and the numbers of its written files cannot disagree unless
the files do, which the end-to-end tests check against the official tools.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from harness.core.adapter import Adapter, AdapterInfo
from harness.run.bench_run import open_dataset
from harness.tasks import get_task
from harness.core.errors import BenchError, DataError, PredictionError
from harness.io.jsonio import read_json
from harness.core.protocol import Protocol
from harness.run.runner import Evaluation, evaluate, sample_indices
from harness.core.structures import Sample
from harness.submissions import SUBMISSIONS
from harness.core.submission import PredictionSource


class SubmissionAdapter(Adapter):
    """A 'model' whose predictions are read from submission files; it never decodes an image."""

    needs_images = False

    def __init__(self, task: str, source: PredictionSource, path: Path) -> None:
        super().__init__(f"file:{path}")
        self.task = task
        self.source = source

    def info(self) -> AdapterInfo:
        return AdapterInfo(name=self.name, task=self.task)

    def predict(self, samples: Sequence[Sample]) -> list[Any]:
        return [self.source.predict(sample) for sample in samples]


@dataclass
class SubmissionScore:
    evaluation: Evaluation
    protocol: Protocol
    dataset: Any
    submission: str
    path: Path


def score_submission(task_name: str, dataset_name: str | None, data_root: Path | None, split: str | None,
                     pred: Path, *, submission: str | None = None, dialect: str | None = None,
                     limit: int | None = None, batch_size: int = 16,
                     reader_options: dict[str, Any] | None = None,
                     keypoint_condition: Any = None, ann_file: Path | None = None,
                     img_dir: Path | None = None) -> SubmissionScore:
    """Score the files at ``pred`` on the dataset; refuses predictions of items the dataset does not have.
    ``keypoint_condition`` (``harness.run.keypoint_protocols``) scores a keypoints run's files under its protocol."""
    task = get_task(task_name)
    dataset = open_dataset(task, dataset_name, data_root, split, ann_file, img_dir)
    if keypoint_condition is not None:
        from harness.run.keypoint_protocols import conditioned_for_files

        dataset = conditioned_for_files(task, dataset, keypoint_condition)
    protocol = task.protocol(dataset.info)
    protocol.build_metrics(dataset.info, dialect)  # an unknown dialect is refused before any file is read
    name = submission or protocol.submission
    fmt = SUBMISSIONS.get(name)
    options = dict(reader_options or {})
    unknown = sorted(set(options) - set(fmt.reader_options))
    if unknown:
        flags = ", ".join("--" + option.replace("_", "-") for option in unknown)
        raise BenchError(f"{flags} does not apply to {name} files")
    source = fmt.reader(dataset.info, Path(pred), **options)
    indices = sample_indices(dataset, limit)
    ids = {dataset[i].sample_id for i in indices}
    stray = source.unmatched(ids)
    if stray:
        more = f" (and more: {len(stray)} shown at most)" if len(stray) > 1 else ""
        raise PredictionError(f"{stray[0]}{more}; is --pred for this dataset and split?")
    adapter = SubmissionAdapter(task.name, source, Path(pred))
    evaluation = evaluate(task, dataset, adapter, indices=indices, batch_size=batch_size, dialect=dialect)
    return SubmissionScore(evaluation, protocol, dataset, name, Path(pred))


def _recorded_condition(record: dict) -> Any:
    from harness.run.keypoint_protocols import condition_from_record

    return condition_from_record((record.get("protocol") or {}).get("condition"))


def score_run_folder(run_dir: Path, *, dialect: str | None = None) -> SubmissionScore:
    """Re-score a report folder's written predictions on the dataset the run named (``bench eval --run``).

    The run's own dialect applies unless ``dialect`` names another one.
    """
    record = read_json(Path(run_dir) / "metrics.json")
    try:
        dataset = record["dataset"]
        predictions = record["predictions"]
        data_root = dataset.get("data_root")
        if dataset.get("ann_file"):  # a ``--ann-file`` run: the same file and image folder, no registry dataset
            return score_submission(
                record["task"], None, None, None, Path(run_dir) / predictions["path"], submission=predictions["format"],
                dialect=dialect if dialect is not None else (record.get("protocol") or {}).get("dialect"),
                limit=record.get("limit"), keypoint_condition=_recorded_condition(record),
                ann_file=Path(dataset["ann_file"]), img_dir=Path(dataset["img_dir"]))
        return score_submission(
            record["task"], dataset["registry"], Path(data_root) if data_root else None, dataset.get("requested_split"),
            Path(run_dir) / predictions["path"], submission=predictions["format"],
            dialect=dialect if dialect is not None else (record.get("protocol") or {}).get("dialect"),
            limit=record.get("limit"), keypoint_condition=_recorded_condition(record))
    except (KeyError, TypeError) as exc:
        raise DataError(f"not a report of this bench version (missing {exc})", Path(run_dir) / "metrics.json") from None

