"""RunRecord: one run's ``metrics.json``, typed, and checked when it is read back.

``metrics.json`` is the record of truth: leaderboards, the site and the CI gate are rebuilt from it.  Those readers
used to index the dict by string (``record["dataset"]["name"]``), so a hand-edited or foreign file failed deep
inside a page with a ``KeyError``.  ``RunRecord.from_dict`` checks every field a reader relies on, and a problem is
one ``DataError`` naming the file and the field (``reports/x/metrics.json: field 'metrics.AP': expected a number,
got 'high'``).  Fields a reader does not rely on (per-class tables, curves, settings, ...) stay free-form JSON;
keys this version does not know are kept, so ``to_dict`` writes back what was read.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from harness.core.errors import DataError

_NUMBER = (int, float)


def _field(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str, path: Path | str | None,
           required: bool = True, default: Any = None) -> Any:
    if key not in data or data[key] is None:
        if required:
            raise DataError(f"field {where + key!r}: missing", path)
        return default
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,))):
        expected = {str: "a string", int: "an integer", dict: "an object", list: "a list"}.get(kind, "a number") \
            if not isinstance(kind, tuple) else "a number"
        raise DataError(f"field {where + key!r}: expected {expected}, got {value!r:.60}", path)
    return value


@dataclass
class DatasetRef:
    """What the run was scored on, and how to open it again (``bench eval --run``)."""

    name: str
    split: str | None = None
    root: str | None = None
    fingerprint: str | None = None
    size: int | None = None
    registry: str | None = None  # registry name as given (``--dataset``)
    data_root: str | None = None  # ``--data-root`` as given; None = the embedded copy
    requested_split: str | None = None
    ann_file: str | None = None  # ``--ann-file`` as given (a COCO-format file anywhere); None = a registry dataset
    img_dir: str | None = None  # ``--img-dir``: the folder every image path of ``ann_file`` must stay inside

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: Path | str | None) -> DatasetRef:
        w = "dataset."
        return cls(name=_field(data, "name", str, w, path),
                   split=_field(data, "split", str, w, path, False), root=_field(data, "root", str, w, path, False),
                   fingerprint=_field(data, "fingerprint", str, w, path, False),
                   size=_field(data, "size", int, w, path, False),
                   registry=_field(data, "registry", str, w, path, False),
                   data_root=_field(data, "data_root", str, w, path, False),
                   requested_split=_field(data, "requested_split", str, w, path, False),
                   ann_file=_field(data, "ann_file", str, w, path, False),
                   img_dir=_field(data, "img_dir", str, w, path, False))


@dataclass
class ModelRef:
    """Which model, with which weights."""

    name: str
    fingerprint: str | None = None
    checkpoint: str | None = None
    input_size: list[int] | None = None  # (height, width) the model sees
    parameters: int | None = None
    #: the model zoo's own numbers for the dataset run (OpenMMLab metafiles), shown beside the measured ones
    published: dict[str, float] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: Path | str | None) -> ModelRef:
        w = "model."
        size = _field(data, "input_size", (list, tuple), w, path, False)
        return cls(name=_field(data, "name", str, w, path),
                   fingerprint=_field(data, "fingerprint", str, w, path, False),
                   checkpoint=_field(data, "checkpoint", str, w, path, False),
                   input_size=list(size) if size is not None else None,
                   parameters=_field(data, "parameters", int, w, path, False),
                   published=_field(data, "published", dict, w, path, False))


#: DatasetRef fields of ``--ann-file`` runs, left out of metrics.json when unset
_FILE_DATASET = ("ann_file", "img_dir")

#: the keys RunRecord reads into typed fields; every other key of metrics.json is kept in ``extra``
_KNOWN = ("run_id", "task", "dataset", "model", "limit", "batch_size", "protocol", "predictions", "samples",
          "metrics", "confidence", "bootstrap", "higher_is_better", "per_class", "curves", "settings", "throughput",
          "provenance", "started_utc", "finished_utc")


@dataclass
class RunRecord:
    """One finished run, as ``metrics.json`` stores it (``to_dict`` / ``from_dict`` are exact inverses)."""

    run_id: str
    task: str
    dataset: DatasetRef
    model: ModelRef
    metrics: dict[str, float | None]
    finished_utc: str
    started_utc: str | None = None
    limit: int | None = None  # ``--limit``: such runs never reach leaderboards
    batch_size: int | None = None
    samples: int | None = None
    #: ``Protocol.describe``: name, version, key (results compare only under equal keys), headline, columns, ...
    protocol: dict[str, Any] = field(default_factory=dict)
    predictions: dict[str, Any] = field(default_factory=dict)  # the submission format and its path in the run
    confidence: dict[str, list[float]] = field(default_factory=dict)  # metric -> [low, high]
    bootstrap: dict[str, Any] = field(default_factory=dict)
    higher_is_better: dict[str, bool] = field(default_factory=dict)
    per_class: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    throughput: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # keys written by other versions, kept as they were

    # ----------------------------------------------------------------------------------------- reading
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: Path | str | None = None) -> RunRecord:
        """Check and type a parsed metrics.json; ``path`` names the file in the error."""
        if not isinstance(data, Mapping):
            raise DataError(f"expected a JSON object, got {type(data).__name__}", path)
        metrics = _field(data, "metrics", dict, "", path)
        for name, value in metrics.items():
            if value is not None and (not isinstance(value, _NUMBER) or isinstance(value, bool)):
                raise DataError(f"field {'metrics.' + name!r}: expected a number, got {value!r:.60}", path)
        confidence = _field(data, "confidence", dict, "", path, False, {})
        for name, interval in confidence.items():
            if not (isinstance(interval, (list, tuple)) and len(interval) == 2
                    and all(isinstance(v, _NUMBER) and not isinstance(v, bool) for v in interval)):
                raise DataError(f"field {'confidence.' + name!r}: expected [low, high], got {interval!r:.60}", path)
        directions = _field(data, "higher_is_better", dict, "", path, False, {})
        for name, direction in directions.items():
            if not isinstance(direction, bool):
                raise DataError(f"field {'higher_is_better.' + name!r}: expected true or false, got {direction!r:.60}",
                                path)
        return cls(
            run_id=_field(data, "run_id", str, "", path), task=_field(data, "task", str, "", path),
            dataset=DatasetRef.from_dict(_field(data, "dataset", dict, "", path), path),
            model=ModelRef.from_dict(_field(data, "model", dict, "", path), path),
            metrics=dict(metrics), finished_utc=_field(data, "finished_utc", str, "", path),
            started_utc=_field(data, "started_utc", str, "", path, False),
            limit=_field(data, "limit", int, "", path, False), batch_size=_field(data, "batch_size", int, "", path, False),
            samples=_field(data, "samples", int, "", path, False),
            protocol=_field(data, "protocol", dict, "", path, False, {}),
            predictions=_field(data, "predictions", dict, "", path, False, {}),
            confidence={k: list(v) for k, v in confidence.items()}, bootstrap=_field(data, "bootstrap", dict, "", path, False, {}),
            higher_is_better=dict(directions), per_class=_field(data, "per_class", dict, "", path, False, {}),
            curves=_field(data, "curves", dict, "", path, False, {}),
            settings=_field(data, "settings", dict, "", path, False, {}),
            throughput=_field(data, "throughput", dict, "", path, False, {}),
            provenance=_field(data, "provenance", dict, "", path, False, {}),
            extra={k: v for k, v in data.items() if k not in _KNOWN},
        )

    @classmethod
    def load(cls, path: Path) -> RunRecord:
        """Read and check ``metrics.json``; any problem is one DataError naming the file (and the field)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise DataError(f"cannot read ({exc.strerror or exc})", path) from None
        except json.JSONDecodeError as exc:
            raise DataError(f"not JSON (line {exc.lineno}: {exc.msg})", path) from None
        return cls.from_dict(data, path)

    # ----------------------------------------------------------------------------------------- writing
    def to_dict(self) -> dict[str, Any]:
        """The metrics.json object, in the key order bench has always written."""
        out: dict[str, Any] = {
            "run_id": self.run_id, "task": self.task,
            # a file dataset's paths only when there are some: registry runs keep the keys they always had
            "dataset": {k: v for k, v in vars(self.dataset).items() if v is not None or k not in _FILE_DATASET},
            "model": vars(self.model).copy(), "limit": self.limit, "batch_size": self.batch_size,
            "protocol": self.protocol, "predictions": self.predictions, "samples": self.samples,
            "metrics": self.metrics, "confidence": self.confidence, "bootstrap": self.bootstrap,
            "higher_is_better": self.higher_is_better, "per_class": self.per_class, "curves": self.curves,
            "settings": self.settings, "throughput": self.throughput, "provenance": self.provenance,
            "started_utc": self.started_utc, "finished_utc": self.finished_utc,
        }
        out.update(self.extra)
        return out

    def dump(self, path: Path) -> None:
        """Write metrics.json atomically (a reader never sees half a file)."""
        from harness.io.jsonio import atomic_write_json

        atomic_write_json(path, self.to_dict())

    # ----------------------------------------------------------------------------------------- queries
    @property
    def run_name(self) -> str | None:
        """The run's ``--name`` label (kept in ``extra``), or None."""
        value = self.extra.get("name")
        return None if value is None else str(value)

    @property
    def run_dir(self) -> Path | None:
        """The report folder the record was read from or written to (``run_dir``, added by the readers)."""
        value = self.extra.get("run_dir")
        return None if value is None else Path(str(value))

    @property
    def skipped(self) -> bool:
        """True when ``bench run`` kept this existing report instead of running again (``--suite``)."""
        return bool(self.extra.get("skipped"))

    @property
    def protocol_key(self) -> str:
        """The protocol and metric-code version the numbers were scored under ('' for records from before)."""
        return str(self.protocol.get("key") or "")

    def metric(self, name: str) -> float | None:
        """A reported number, or None when the run did not report it (NaN stays NaN: a real, undefined result)."""
        value = self.metrics.get(name)
        return None if value is None else float(value)

    def interval(self, name: str) -> tuple[float, float] | None:
        low_high = self.confidence.get(name)
        return None if low_high is None else (float(low_high[0]), float(low_high[1]))
