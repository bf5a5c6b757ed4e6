"""Deterministic generators of small datasets in the native layouts of the real benchmarks.

Each generator module has a ``VERSION`` (bump it when the output changes), a ``SPLITS`` table and
``build_split(root, split)``; ``materialise_split`` generates one split on first use into the cache, so reading
the 100-image ``val`` split never pays for the ``train`` split the model trainers use.
"""
from __future__ import annotations

from pathlib import Path
from types import ModuleType

from harness.core.errors import UnknownNameError


def materialise_split(name: str, generator: ModuleType, split: str) -> Path:
    """Root of the generated ``split`` of ``generator`` (``cache/embedded/<name>-v<VERSION>/<split>``)."""
    from harness.io.cache_dir import materialise

    if split not in generator.SPLITS:
        known = ", ".join(generator.SPLITS)
        raise UnknownNameError(f"the embedded {name} dataset has splits {known}, not {split!r}")
    return materialise(f"embedded/{name}-v{generator.VERSION}/{split}", lambda root: generator.build_split(root, split))
