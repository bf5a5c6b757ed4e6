"""A dataset's official evaluation protocol, as data: which metrics with which settings, the headline, the
leaderboard columns and the submission format its predictions are written in.

Why data and not code: ``bench run`` (a model's predictions) and ``bench eval`` (someone's prediction files) must
score a dataset the same way, and a leaderboard must know which numbers it may put side by side.  The task gives
the defaults (COCO AP for detection, ...); a dataset adds to or overrides them (VOC: VOC mAP from the devkit files;
MPII: PCKh with head boxes; Cityscapes: iIoU and the instance-level evaluator).  Every result records
``Protocol.version_key`` so results computed under different protocols or metric code are never compared.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Mapping

from harness.core.errors import BenchError

if TYPE_CHECKING:
    from harness.core.dataset import DatasetInfo
    from harness.core.metric import Metric


@dataclass(frozen=True)
class MetricSpec:
    """One metric of a protocol: its registry name and the options the protocol fixes for it."""

    metric: str
    options: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ProtocolOverride:
    """What a dataset changes in its task's default protocol (``None`` keeps the task's choice)."""

    name: str
    #: replaces the task's metrics
    metrics: tuple[MetricSpec, ...] | None = None
    #: added after the (possibly replaced) metrics
    extra_metrics: tuple[MetricSpec, ...] = ()
    headline: str | None = None
    columns: tuple[str, ...] | None = None
    submission: str | None = None
    #: bump when the dataset's protocol changes in a way that moves numbers
    version: int = 1
    reference: str | None = None


@dataclass(frozen=True)
class Protocol:
    """The resolved protocol of one (task, dataset)."""

    name: str
    version: int
    metrics: tuple[MetricSpec, ...]
    headline: str
    columns: tuple[str, ...]
    submission: str
    #: the official tool whose numbers the default mode reproduces
    reference: str = ""

    def apply(self, override: ProtocolOverride | None) -> "Protocol":
        if override is None:
            return self
        metrics = self.metrics if override.metrics is None else override.metrics
        return replace(
            self,
            name=override.name,
            version=override.version,
            metrics=tuple(metrics) + tuple(override.extra_metrics),
            headline=override.headline or self.headline,
            columns=override.columns or self.columns,
            submission=override.submission or self.submission,
            reference=override.reference or self.reference,
        )

    # ------------------------------------------------------------------------------------------ metrics
    def metric_classes(self) -> list[type[Metric]]:
        from harness.core.catalog import METRICS

        return [METRICS.get(spec.metric) for spec in self.metrics]

    def dialects(self) -> tuple[str, ...]:
        """Every dialect a metric of this protocol accepts (``bench run/eval --dialect``)."""
        names: list[str] = []
        for cls in self.metric_classes():
            names.extend(d for d in getattr(cls, "dialects", ()) if d not in names)
        return tuple(names)

    def build_metrics(self, info: DatasetInfo, dialect: str | None = None) -> list[Metric]:
        """Fresh metric objects for one evaluation of ``info``; ``dialect`` goes to the metrics that know it."""
        if dialect is not None and dialect not in self.dialects():
            known = ", ".join(self.dialects()) or "none"
            raise BenchError(f"protocol {self.name!r} has no dialect {dialect!r} (known: {known})")
        metrics = []
        for spec, cls in zip(self.metrics, self.metric_classes()):
            options = dict(spec.options)
            if dialect is not None and dialect in getattr(cls, "dialects", ()):
                options["dialect"] = dialect
            metrics.append(cls.from_dataset(info, **options))
        return metrics

    def higher_is_better(self, reported: str) -> bool:
        """Direction of a reported value, as declared by the metric classes of this protocol."""
        return all(cls.is_higher_better(reported) for cls in self.metric_classes())

    # ------------------------------------------------------------------------------------------ version
    @property
    def version_key(self) -> str:
        """``name@version`` plus each metric's ``name:version``: results compare only under equal keys."""
        parts = [f"{cls.name}:{getattr(cls, 'version', 1)}" for cls in self.metric_classes()]
        return f"{self.name}@{self.version}[{','.join(parts)}]"

    def describe(self, dialect: str | None = None) -> dict[str, object]:
        """What ``metrics.json`` records about the protocol a result was computed under."""
        return {
            "name": self.name, "version": self.version, "key": self.version_key, "headline": self.headline,
            "columns": list(self.columns),
            "submission": self.submission, "reference": self.reference,
            "metrics": [{"metric": spec.metric, "options": dict(spec.options)} for spec in self.metrics],
            "dialect": dialect,
        }
