"""Throughput gate (``bench gate --throughput``): images/s against per-machine baselines, never mixed with
the accuracy gate (``harness.publish.gate``, ``leaderboards/baselines.yaml``).

Speed is a property of the machine as much as of the model, so baselines live in their own file, grouped by
machine (``harness.publish.machine``: CPU model, cores, torch version, accelerator)::

    machines:
      cpu-3f2a0c9d41be:
        description: {cpu: Intel(R) Xeon(R) ..., cores: 2, torch: 2.14.1, device: cpu}
        baselines:
          - {task: semantic, model: tv-lraspp_mobilenet_v3_large, mode: module, device: cpu, precision: bf16,
             channels_last: true, compile: false, batch_size: 1, images_per_s: 16.1, tolerance: 0.2}

A check compares the latest ``bench throughput`` row of ``leaderboards/throughput.csv`` with the same settings
on this machine; it fails when images/s fell below ``images_per_s * (1 - tolerance)`` (default tolerance 0.2:
more than 20 % slower), or when there is no row.  Other machines' baselines are skipped with a note: a laptop
is not a regression of the CI runner.  ``bench gate --throughput --update`` records this machine's rows
(existing tolerances kept, new entries at the default).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator

from harness.core.errors import DataError
from harness.io.jsonio import atomic_write_text
from harness.io.locks import locked
from harness.io.yamlio import read_yaml

DEFAULT_THROUGHPUT_BASELINES = Path("leaderboards/throughput_baselines.yaml")
DEFAULT_TOLERANCE = 0.2
#: the settings that identify a measurement (``throughput.csv``'s key, less the machine)
SETTINGS = ("task", "model", "mode", "device", "precision", "channels_last", "compile", "batch_size")
HEADER = ("# Throughput baselines for `bench gate --throughput`, one group per machine (kept apart from the accuracy\n"
          "# baselines in baselines.yaml). Change them only with `bench gate --throughput --update` on that machine.\n")


class ThroughputBaselineEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: StrictStr
    model: StrictStr
    mode: StrictStr = "module"
    device: StrictStr = "cpu"
    precision: StrictStr = "fp32"
    channels_last: StrictBool = False
    compile: StrictBool = False
    batch_size: StrictInt = Field(ge=1)
    images_per_s: float = Field(gt=0)
    tolerance: float = Field(default=DEFAULT_TOLERANCE, ge=0, lt=1)

    @field_validator("images_per_s")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class MachineBaselines(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: dict[str, Any] = Field(default_factory=dict)
    baselines: list[ThroughputBaselineEntry] = Field(default_factory=list)


class ThroughputBaselinesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    machines: dict[StrictStr, MachineBaselines]


@dataclass
class ThroughputCheck:
    machine: str
    baseline: ThroughputBaselineEntry
    #: images/s of the latest matching row on this machine; None when there is none
    actual: float | None

    @property
    def floor(self) -> float:
        return self.baseline.images_per_s * (1.0 - self.baseline.tolerance)

    @property
    def change(self) -> float | None:
        """Relative change of images/s (-0.25: 25 % slower)."""
        return None if self.actual is None else self.actual / self.baseline.images_per_s - 1.0

    @property
    def passed(self) -> bool:
        return self.actual is not None and self.actual == self.actual and self.actual >= self.floor

    def label(self) -> str:
        b = self.baseline
        options = "".join(f" {flag}" for flag, on in (("channels_last", b.channels_last), ("compiled", b.compile)) if on)
        return f"{b.task}/{b.model} {b.mode} {b.device} {b.precision}{options} batch {b.batch_size}"

    def describe(self) -> str:
        if self.actual is None:
            return f"{self.label()}: no `bench throughput` row on this machine (run it first)"
        return (f"{self.label()}: {self.actual:.2f} img/s vs baseline {self.baseline.images_per_s:.2f} "
                f"({self.change:+.1%}, at most {self.baseline.tolerance:.0%} slower allowed)")


@dataclass
class ThroughputGate:
    machine: str
    checks: list[ThroughputCheck]
    #: notes about baselines of other machines, skipped
    skipped: list[str]


def load_throughput_baselines(path: Path) -> ThroughputBaselinesFile:
    from harness.io.validation.schemas import validate

    data = read_yaml(path, "throughput baselines file")
    if data is None:
        data = {"machines": {}}
    return validate(ThroughputBaselinesFile, data, path)


def _settings(entry: ThroughputBaselineEntry | dict[str, Any]) -> tuple[str, ...]:
    values = entry.model_dump() if isinstance(entry, BaseModel) else entry
    return tuple(str(_normal(values.get(key))) for key in SETTINGS)


def _normal(value: Any) -> Any:
    """CSV cells read back as numpy/str values: booleans and integers compared as Python values."""
    if isinstance(value, str) and value in ("True", "False"):
        return value == "True"
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value.item() if hasattr(value, "item") else value


def measured_rows(throughput_csv: Path, machine: str) -> dict[tuple[str, ...], dict[str, Any]]:
    """The latest row per settings on ``machine`` from ``throughput.csv``."""
    from harness.io.validation.tables import read_csv

    if not throughput_csv.is_file():
        return {}
    table = read_csv(throughput_csv, required=(*SETTINGS, "images_per_s"), numeric=("batch_size", "images_per_s"),
                     dtype={"machine": str, "git_sha": str, "cuda": str, "cudnn": str})
    if "machine" not in table:
        return {}
    rows: dict[tuple[str, ...], dict[str, Any]] = {}
    for row in table[table["machine"] == machine].to_dict("records"):
        key = _settings(row)
        if key not in rows or str(row.get("measured_utc", "")) >= str(rows[key].get("measured_utc", "")):
            rows[key] = row
    return rows


def run_throughput_gate(path: Path, throughput_csv: Path, machine: str) -> ThroughputGate:
    baselines = load_throughput_baselines(path)
    measured = measured_rows(throughput_csv, machine)
    checks, skipped = [], []
    for key, group in sorted(baselines.machines.items()):
        if key != machine:
            what = ", ".join(f"{k} {v}" for k, v in group.description.items()) or "no description"
            skipped.append(f"skipped {len(group.baselines)} baseline(s) of machine {key} ({what}): not this machine")
            continue
        for entry in group.baselines:
            row = measured.get(_settings(entry))
            value = None if row is None else row.get("images_per_s")
            actual = None if value is None or value != value else float(value)
            checks.append(ThroughputCheck(machine, entry, actual))
    return ThroughputGate(machine, checks, skipped)


def update_throughput_baselines(path: Path, throughput_csv: Path, machine: str,
                                description: dict[str, Any]) -> list[ThroughputBaselineEntry]:
    """Record this machine's latest rows (status ok) as its baselines; tolerances already set are kept."""
    with locked(path):
        current = load_throughput_baselines(path) if path.is_file() else ThroughputBaselinesFile(machines={})
        group = current.machines.get(machine) or MachineBaselines()
        tolerances = {_settings(entry): entry.tolerance for entry in group.baselines}
        entries = []
        for key, row in sorted(measured_rows(throughput_csv, machine).items()):
            value = row.get("images_per_s")
            if value is None or value != value or not float(value) > 0 or str(row.get("status")) != "ok":
                continue
            settings = {name: _normal(row[name]) for name in SETTINGS}
            entries.append(ThroughputBaselineEntry(**settings, images_per_s=round(float(value), 3),
                                                   tolerance=tolerances.get(key, DEFAULT_TOLERANCE)))
        if not entries:
            raise DataError(f"no successful `bench throughput` rows of machine {machine} to record", throughput_csv)
        current.machines[machine] = MachineBaselines(description=description, baselines=entries)
        body = yaml.safe_dump(current.model_dump(), sort_keys=False, default_flow_style=None, width=200)
        atomic_write_text(path, HEADER + body)
        return entries
