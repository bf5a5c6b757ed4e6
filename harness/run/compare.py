"""``bench compare RUN_A RUN_B``: is B better than A on the same images, by how much, and where do they differ?

Paired bootstrap: both runs' predictions are scored on the *same* image resamples (``resample_counts`` with one
seed, through each metric's ``resampled``, the engine behind the runs' own intervals), and the interval is taken
on the per-resample difference B - A.  Pairing removes the image-difficulty variance the two runs share, so the
difference's interval is much narrower than the two runs' intervals side by side suggest.

Runs are comparable only on the same ground truth (dataset fingerprint), the same samples and the same protocol;
anything else is refused rather than compared.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from harness.core.errors import BenchError, DataError
from harness.core.run_record import RunRecord


@dataclass
class Comparison:
    run_a: str
    run_b: str
    task: str
    samples: int
    #: metric -> {a, b, delta, low, high, share_b_better, higher_is_better}
    metrics: dict[str, dict[str, Any]]
    #: per-class metric -> DataFrame(class, a, b, delta), largest |delta| first
    per_class: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: per-image scores side by side, largest |delta| first
    images: pd.DataFrame | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"run_a": self.run_a, "run_b": self.run_b, "task": self.task, "samples": self.samples,
                "metrics": self.metrics, "settings": self.settings,
                "per_class": {k: v.to_dict("records") for k, v in self.per_class.items()},
                "images": None if self.images is None else self.images.to_dict("records")}


def _record(run_dir: Path) -> RunRecord:
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        raise DataError("no metrics.json: not a finished run folder", path)
    record = RunRecord.load(path)
    record.extra["run_dir"] = str(run_dir)
    return record


def check_comparable(a: RunRecord, b: RunRecord) -> None:
    checks: tuple[tuple[str, Callable[[RunRecord], Any]], ...] = (
        ("task", lambda r: r.task), ("dataset fingerprint", lambda r: r.dataset.fingerprint),
        ("sample count", lambda r: r.samples), ("protocol", lambda r: r.protocol.get("key")))
    for what, get in checks:
        if get(a) != get(b):
            raise BenchError(f"runs {a.run_id} and {b.run_id} differ in {what} "
                             f"({get(a)!r} vs {get(b)!r}): not the same images under the same rules")


def _metrics_for(record: RunRecord, dataset: Any, task: Any) -> list[Any]:
    from harness.publish.pictures.collect import read_pairs

    assert record.run_dir is not None  # _record sets it
    pairs = read_pairs(dataset, range(record.samples or 0), record.run_dir, record.predictions["format"])
    metrics = task.metrics(dataset.info, record.protocol.get("dialect"))
    batch = 16  # dense predictions are read lazily; metrics see them a batch at a time, as in a run
    for start in range(0, len(pairs), batch):
        chunk = [pairs[i] for i in range(start, min(start + batch, len(pairs)))]
        for metric in metrics:
            metric.update([p.sample for p in chunk], [p.prediction for p in chunk])
    return metrics


def paired_draws(record_a: RunRecord, record_b: RunRecord, resamples: int, seed: int
                 ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[str]]:
    """Both runs' metrics on the same ``resamples`` image multisets; metrics that cannot be resampled are listed."""
    from harness.run.bench_run import get_task
    from harness.run.rebuild_pictures import open_run_dataset
    from harness.core.metric import resample_counts

    task = get_task(record_a.task)
    dataset = open_run_dataset(record_a)  # as the run opened it (an --ann-file run included)
    counts = resample_counts(record_a.samples or 0, resamples, seed)
    draws_a: dict[str, np.ndarray] = {}
    draws_b: dict[str, np.ndarray] = {}
    unsupported = []
    for metric_a, metric_b in zip(_metrics_for(record_a, dataset, task), _metrics_for(record_b, dataset, task)):
        try:
            draws_a.update(metric_a.resampled(counts))
            draws_b.update(metric_b.resampled(counts))
        except NotImplementedError:
            unsupported.append(metric_a.name or type(metric_a).__name__)
    return draws_a, draws_b, unsupported


def _per_image(record: RunRecord) -> pd.DataFrame | None:
    assert record.run_dir is not None  # _record sets it
    path = record.run_dir / "per_image.csv"
    if not path.is_file():
        return None
    return pd.read_csv(path, dtype={"image_id": str})


def compare_runs(run_a: Path, run_b: Path, *, resamples: int = 200, seed: int = 0, level: float = 0.95,
                 top: int = 10) -> Comparison:
    a, b = _record(run_a), _record(run_b)
    check_comparable(a, b)
    draws_a, draws_b, unsupported = paired_draws(a, b, resamples, seed) if resamples > 0 else ({}, {}, [])
    higher = {**a.higher_is_better, **b.higher_is_better}
    metrics = {}
    for name, value_a in a.metrics.items():
        value_b = b.metrics.get(name)
        if not isinstance(value_a, (int, float)) or not isinstance(value_b, (int, float)):
            continue
        row: dict[str, Any] = {"a": value_a, "b": value_b, "higher_is_better": higher.get(name, True)}
        valid = value_a not in (-1,) and value_b not in (-1,) and np.isfinite(value_a) and np.isfinite(value_b)
        row["delta"] = float(value_b - value_a) if valid else None
        if valid and name in draws_a and name in draws_b:
            diff = np.asarray(draws_b[name], dtype=np.float64) - np.asarray(draws_a[name], dtype=np.float64)
            diff = diff[np.isfinite(diff)]
            if diff.size:
                low, high = np.percentile(diff, [50 * (1 - level), 50 * (1 + level)])
                better = diff > 0 if row["higher_is_better"] else diff < 0
                row.update(low=float(low), high=float(high), share_b_better=float(better.mean()))
        metrics[name] = row
    per_class = {}
    for metric, table_a in a.per_class.items():
        table_b = b.per_class.get(metric)
        if not isinstance(table_b, dict):
            continue
        frame = pd.DataFrame({"class": list(table_a), "a": [table_a[c] for c in table_a],
                              "b": [table_b.get(c, np.nan) for c in table_a]})
        frame[["a", "b"]] = frame[["a", "b"]].astype(float).replace(-1.0, np.nan)
        frame["delta"] = frame["b"] - frame["a"]
        per_class[metric] = frame.reindex(frame["delta"].abs().sort_values(ascending=False, na_position="last").index)
    images = None
    pa, pb = _per_image(a), _per_image(b)
    score = (a.extra.get("analysis") or {}).get("per_image_score")
    if pa is not None and pb is not None and score in pa and score in pb:
        joined = pa[["image_id", score]].merge(pb[["image_id", score]], on="image_id", suffixes=("_a", "_b"))
        joined["delta"] = joined[f"{score}_b"] - joined[f"{score}_a"]
        images = joined.reindex(joined["delta"].abs().sort_values(ascending=False, na_position="last").index).head(top)
        images = images.reset_index(drop=True)
    return Comparison(a.run_id, b.run_id, a.task, int(a.samples or 0), metrics, per_class, images,
                      {"method": "paired percentile bootstrap over images (same resamples for both runs)",
                       "n_resamples": resamples, "seed": seed, "level": level, "unsupported": unsupported,
                       "per_image_score": score, "headline": a.protocol.get("headline")})
