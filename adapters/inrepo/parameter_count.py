"""A network's parameter count, known without building it: so ``info()`` costs no torch import on a cached run.

``info()`` reports how many parameters a model has (metrics.json, ``check_compatible``).  Counting them means
building the network and reading its weights, which imports torch; a fully cached re-run of ``bench run`` needs
nothing else from torch.  The count is a fact of (network class, its shape arguments, the weights file's bytes),
so it is counted from the built network the first time and stored under
``cache_root()/parameter-counts/<key>.json``, the key hashing all three; later runs read it back.  With no stored
count (a fresh cache, a new weights file) the network is built and counted: the number is never guessed.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

from harness.core.errors import BenchError
from harness.io.cache_dir import cache_root
from harness.io.jsonio import atomic_write_json, read_json

FOLDER = "parameter-counts"


def count_key(network: str, shape: str, weights: Path) -> str:
    """What the count depends on: the network (``module:Class``), its shape arguments, the weights' bytes."""
    digest = hashlib.sha256(f"{network}|{shape}|".encode())
    with open(weights, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:32]


def count_parameters(network: Any) -> int:
    """Every parameter of a ``torch.nn.Module`` (buffers such as BatchNorm statistics are not parameters)."""
    return int(sum(p.numel() for p in network.parameters()))


def stored_count(key: str) -> int | None:
    """The count stored under ``key``; None when absent or unreadable (then it is counted again)."""
    path = cache_root() / FOLDER / f"{key}.json"
    if not path.is_file():
        return None
    try:
        value = read_json(path).get("parameters")
    except (BenchError, OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def store_count(key: str, count: int) -> None:
    """Remember a count taken from a built network; a cache folder that cannot be written only costs a rebuild."""
    try:
        atomic_write_json(cache_root() / FOLDER / f"{key}.json", {"parameters": int(count)})
    except OSError:
        pass


def known_parameters(key: str, built: Any, build: Callable[[], Any]) -> int:
    """The count: from ``built`` (the network, if already built), else the stored one, else from ``build()``.
    A count taken from a network is stored."""
    if built is None:
        stored = stored_count(key)
        if stored is not None:
            return stored
        built = build()
    count = count_parameters(built)
    if stored_count(key) != count:
        store_count(key, count)
    return count


def remembered(key: str, compute: Callable[[], int]) -> int:
    """Another integer fact of a weights file (e.g. the majority class a baseline's weights hold): the stored
    one, else ``compute()`` (which may import torch), then stored under ``key``."""
    stored = stored_count(key)
    if stored is not None:
        return stored
    value = int(compute())
    store_count(key, value)
    return value
