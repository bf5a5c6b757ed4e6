"""Click callbacks that check command-line values up front, with one-line errors (exit 2), before any model,
dataset or file is touched: a ``--device cuda`` on a machine without CUDA used to fail deep inside torch with a
traceback, after minutes of dataset preparation."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness.core.errors import BenchError

_DEVICE = re.compile(r"^(cpu|cuda|mps|xpu)(:(\d+))?$")
SEED_LIMIT = 2**32  # numpy's legacy seeding takes [0, 2**32)


def device(ctx: Any, param: Any, value: str | None) -> str | None:
    """``cpu``, ``cuda``, ``cuda:N`` (N below the number of visible GPUs), ``mps``, ``xpu``; checked against
    what this machine has."""
    if value is None:
        return value
    match = _DEVICE.match(value.strip())
    if not match:
        raise BenchError(f"--device {value!r} is not a device (expected cpu, cuda, cuda:N, mps or xpu)")
    kind, index = match.group(1), match.group(3)
    if kind == "cpu":
        if index not in (None, "0"):
            raise BenchError(f"--device {value!r}: the CPU device has no index")
        return value.strip()
    import torch

    backend = getattr(torch, kind, None) if kind != "mps" else getattr(torch.backends, "mps", None)
    if backend is None or not backend.is_available():
        raise BenchError(f"--device {value}: no {kind.upper()} device is available on this machine (use --device cpu)")
    if index is not None and kind in ("cuda", "xpu") and int(index) >= backend.device_count():
        raise BenchError(f"--device {value}: this machine has {backend.device_count()} {kind.upper()} device(s)")
    return value.strip()


def seed(ctx: Any, param: Any, value: int | None) -> int | None:
    if value is not None and not 0 <= value < SEED_LIMIT:
        raise BenchError(f"--{param.name.replace('_', '-')} must be in [0, 2**32), got {value}")
    return value


def directory(ctx: Any, param: Any, value: Path | None) -> Path | None:
    """An output folder: refused when it, or a parent of it, exists as something other than a folder."""
    if value is None:
        return value
    option = "/".join(param.opts) if getattr(param, "opts", None) else param.name
    for path in (Path(value), *Path(value).parents):
        if path.exists() and not path.is_dir():
            where = "" if path == Path(value) else f" ({path} is a file)"
            raise BenchError(f"{option} {value} must be a folder, not a file{where}")
    return value


def output_file(ctx: Any, param: Any, value: Path | None) -> Path | None:
    """A file to write: refused when it is a folder, or when a parent of it exists as a file."""
    if value is None:
        return value
    option = "/".join(param.opts) if getattr(param, "opts", None) else param.name
    if Path(value).is_dir():
        raise BenchError(f"{option} {value} is a folder; give a file name")
    for path in Path(value).parents:
        if path.exists() and not path.is_dir():
            raise BenchError(f"{option} {value}: {path} is a file, not a folder")
    return value


#: multi-scale test factors: below this an embedded image is a few pixels, above it the input is 16x the pixels
SCALE_RANGE = (0.125, 4.0)


def scales(ctx: Any, param: Any, value: str | None) -> tuple[float, ...]:
    """``0.5,1.0,1.5``: comma-separated distinct positive factors in ``SCALE_RANGE``, kept in the order given
    (the order is part of the recorded model name)."""
    if value is None:
        return ()
    option = "/".join(param.opts) if getattr(param, "opts", None) else param.name
    try:
        factors = tuple(float(part) for part in value.split(","))
    except ValueError:
        raise BenchError(f"{option} {value!r}: expected comma-separated numbers, e.g. 0.5,1.0,1.5") from None
    low, high = SCALE_RANGE
    bad = [factor for factor in factors if not low <= factor <= high]  # NaN fails both comparisons
    if bad:
        raise BenchError(f"{option} {value!r}: every scale must be in [{low:g}, {high:g}], got {bad[0]:g}")
    if len(set(factors)) != len(factors):
        raise BenchError(f"{option} {value!r}: a scale is repeated")
    return factors
