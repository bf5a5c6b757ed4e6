"""Schemas (pydantic) of the YAML files bench reads back: gate baselines (run records are checked by their
own contract, ``harness.core.run_record.RunRecord``).

Validation turns the first problem into one line naming the file and the field (``baselines[3].tolerence:
unknown key``), instead of a ``KeyError`` or a string compared with a float later.  Strict types: ``"0.5"`` is
not a number and ``true`` is not 1.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, ValidationError, field_validator

from harness.core.errors import DataError

Number = StrictFloat  # strict: ints accepted, bools and numeric strings refused
Model = TypeVar("Model", bound=BaseModel)


class BaselineEntry(BaseModel):
    """One gate check: a metric of a (task, dataset, model[, limit]) run, or of one class with ``class``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    task: StrictStr
    dataset: StrictStr
    model: StrictStr
    metric: StrictStr
    expected: Number
    tolerance: Number
    direction: StrictStr
    limit: Optional[StrictInt] = Field(default=None, ge=1)
    protocol: Optional[StrictStr] = None
    class_name: Optional[StrictStr] = Field(default=None, alias="class")
    #: the run the expected value came from (``bench gate --paired`` re-scores it); set by ``--update``
    run: Optional[StrictStr] = None

    @field_validator("expected")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @field_validator("direction")
    @classmethod
    def _direction(cls, value: str) -> str:
        if value not in ("higher", "lower"):
            raise ValueError(f"direction must be 'higher' or 'lower', got {value!r}")
        return value

    @field_validator("tolerance")
    @classmethod
    def _tolerance(cls, value: float) -> float:
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"must be a finite number >= 0, got {value}")
        return value


class BaselinesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    baselines: list[BaselineEntry]


def validate(model: type[Model], data: Any, path: str | Path, prefix: str = "") -> Model:
    """``model`` built from ``data``, or a DataError naming the file and the first bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise DataError(describe(exc, prefix), path) from None


def describe(exc: ValidationError, prefix: str = "") -> str:
    """The first error as ``field.path: problem`` (one line; unknown keys named as such)."""
    error = exc.errors()[0]
    loc = list(error["loc"])
    missing = error["type"] == "missing" and loc and isinstance(loc[-1], str)
    where = prefix
    for part in loc[:-1] if missing else loc:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    if error["type"] == "extra_forbidden":
        problem = "unknown key (misspelt?)"
    elif missing:
        problem = f"missing {loc[-1]}"
        if not where:
            return problem
    else:
        problem = error["msg"].removeprefix("Value error, ")
        if "input" in error and error["type"] not in ("value_error",):
            shown = repr(error["input"])
            problem += f", got {shown if len(shown) <= 60 else shown[:57] + '...'}"
    return f"{where or 'file'}: {problem}"
