"""bench from Python (a notebook, a script): run models, score prediction files, compare runs, as typed results
with a pandas view.

    from harness import api
    [result] = api.run("semantic", models=["fcn"], limit=8)
    result.headline, result.interval("mIoU")     # ('mIoU', 0.76...), (0.70..., 0.81...)
    result.to_pandas()                            # one row per metric: value, ci_low, ci_high
    result.per_image()                            # one row per image (per_image.csv)
    api.compare(run_a.run_dir, run_b.run_dir)     # paired bootstrap, as `bench compare`

Every call goes through the same code as the CLI (``bench run``, ``bench eval --gt``, ``bench compare``), so a
number from here is the number the command prints; user errors raise ``harness.core.errors.BenchError``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

__all__ = ["RunResult", "EvalResult", "run", "evaluate", "load", "compare"]


def _metrics_frame(metrics: dict[str, Any], confidence: dict[str, Any], higher: dict[str, bool]) -> pd.DataFrame:
    rows = []
    for name, value in metrics.items():
        interval = confidence.get(name) or (None, None)
        rows.append({"metric": name, "value": value, "ci_low": interval[0], "ci_high": interval[1],
                     "higher_is_better": higher.get(name, True)})
    frame = pd.DataFrame(rows, columns=["metric", "value", "ci_low", "ci_high", "higher_is_better"])
    # COCO writes -1 where a range has no ground truth: not a score
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").where(frame["value"] != -1)
    return frame.set_index("metric")


@dataclass(frozen=True)
class RunResult:
    """One model's run, as written to ``reports/<run-id>/metrics.json``."""

    run_id: str
    task: str
    model: str
    dataset: str
    samples: int
    headline: str | None
    metrics: dict[str, float | None]
    confidence: dict[str, list[float]]
    per_class: dict[str, dict[str, float]]
    run_dir: Path
    record: dict[str, Any] = field(repr=False)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "RunResult":
        """From a metrics.json object and its ``run_dir``, checked by ``RunRecord`` (a malformed field is one
        DataError naming it); ``record`` keeps the object as it was."""
        from harness.core.errors import DataError
        from harness.core.run_record import RunRecord

        where = Path(str(record.get("run_dir", "."))) / "metrics.json" if isinstance(record, dict) else None
        run = RunRecord.from_dict(record, where)
        if run.samples is None or run.run_dir is None:
            raise DataError(f"field {'samples' if run.samples is None else 'run_dir'!r}: missing", where)
        return cls(run_id=run.run_id, task=run.task, model=run.model.name, dataset=run.dataset.name,
                   samples=run.samples, headline=run.protocol.get("headline"), metrics=dict(run.metrics),
                   confidence=dict(run.confidence), per_class=dict(run.per_class), run_dir=run.run_dir,
                   record=record)

    @property
    def value(self) -> float | None:
        """The headline metric (AP, mIoU, EPE, ...)."""
        return self.metrics.get(self.headline) if self.headline else None

    def interval(self, metric: str) -> tuple[float, float] | None:
        found = self.confidence.get(metric)
        return None if found is None else (float(found[0]), float(found[1]))

    @property
    def report(self) -> Path:
        return self.run_dir / "report.html"

    def to_pandas(self) -> pd.DataFrame:
        """One row per metric: value (NaN for COCO's -1), ci_low, ci_high, higher_is_better."""
        return _metrics_frame(self.metrics, self.confidence, self.record.get("higher_is_better") or {})

    def per_class_frame(self) -> pd.DataFrame:
        """Classes (or joints) as rows, per-class metrics as columns."""
        return pd.DataFrame(self.per_class)

    def per_image(self) -> pd.DataFrame:
        """The per-image table (``per_image.parquet`` or ``.csv``); empty when the run drew no pictures."""
        parquet, csv = self.run_dir / "per_image.parquet", self.run_dir / "per_image.csv"
        if parquet.is_file():
            try:
                return pd.read_parquet(parquet)
            except ImportError:
                pass
        return pd.read_csv(csv, dtype={"image_id": str}) if csv.is_file() else pd.DataFrame()


@dataclass(frozen=True)
class EvalResult:
    """Prediction files scored against ground-truth files (``bench eval --gt``)."""

    task: str
    metrics: dict[str, float]
    per_class: dict[str, dict[str, float]]
    settings: dict[str, Any]
    higher_is_better: dict[str, bool]

    def to_pandas(self) -> pd.DataFrame:
        return _metrics_frame(self.metrics, {}, self.higher_is_better).drop(columns=["ci_low", "ci_high"])

    def per_class_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.per_class)


def run(task: str, models: Sequence[str] = (), *, dataset: str | None = None, data_root: str | Path | None = None,
        split: str | None = None, limit: int | None = None, reports_dir: str | Path = "reports",
        leaderboards_dir: str | Path = "leaderboards", **options: Any) -> list[RunResult]:
    """``bench run``: each model on the dataset (default: the task's in-repo models on its embedded dataset).

    ``options`` are the other ``RunConfig`` fields (``batch_size``, ``device``, ``seed``, ``bootstrap``,
    ``checkpoint``, ``dialect``, ``gallery``, ``cache``, ...); an unknown one is refused.
    """
    from harness.run.bench_run import RunConfig, run_models
    from harness.core.errors import BenchError

    known = {f.name for f in fields(RunConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise BenchError(f"api.run: unknown option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    for key in ("checkpoint", "cache_dir", "ann_file", "img_dir", "label_map"):
        if options.get(key) is not None:
            options[key] = Path(options[key])
    config = RunConfig(task=task, models=tuple(models), dataset=dataset,
                       data_root=Path(data_root) if data_root is not None else None, split=split, limit=limit,
                       reports_dir=Path(reports_dir), leaderboards_dir=Path(leaderboards_dir), **options)
    return [RunResult.from_record(record) for record in run_models(config)]


def evaluate(task: str, gt: str | Path, pred: str | Path, *, dataset: str | None = None, dialect: str | None = None,
             **options: Any) -> EvalResult:
    """``bench eval --gt GT --pred PRED``: score prediction files without a model (COCO json, label-map folders,
    .flo folders, MPII arrays); ``options`` are the format flags (``iou_type``, ``max_dets``, ``num_classes``, ...)."""
    from harness.file_eval import FILE_EVALUATORS
    from harness.file_eval.base import EvalRequest

    evaluator = FILE_EVALUATORS.get(task)
    request = EvalRequest(task=task, gt=Path(gt), pred=Path(pred), dataset=dataset, dialect=dialect, options=options)
    evaluator.check(request)
    result = evaluator.run(request)
    return EvalResult(task=task, metrics=dict(result.metrics), per_class=dict(result.per_class),
                      settings=dict(result.settings), higher_is_better=dict(result.higher_is_better))


def load(run_dir: str | Path) -> RunResult:
    """A finished run folder (``reports/<run-id>``) as a ``RunResult``."""
    from harness.core.errors import DataError
    from harness.io.jsonio import read_json

    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        raise DataError("no metrics.json: not a finished run folder", path)
    record = read_json(path)
    record["run_dir"] = str(run_dir)
    return RunResult.from_record(record)


def compare(run_a: str | Path | RunResult, run_b: str | Path | RunResult, *, resamples: int = 200, seed: int = 0,
            top: int = 10) -> Any:
    """``bench compare``: ``harness.run.compare.Comparison`` (metrics B - A with paired-bootstrap intervals, per-class
    deltas, the images that differ most)."""
    from harness.run.compare import compare_runs

    a = run_a.run_dir if isinstance(run_a, RunResult) else Path(run_a)
    b = run_b.run_dir if isinstance(run_b, RunResult) else Path(run_b)
    return compare_runs(a, b, resamples=resamples, seed=seed, top=top)
