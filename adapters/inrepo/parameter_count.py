"""Facts of a weights file, known without torch: so ``info()`` and ``check_compatible`` cost no torch import on a
cached run.

``info()`` reports how many parameters a model has (metrics.json, ``check_compatible``), and a detection model
the classes and category ids its checkpoint was trained on.  Reading them means loading the checkpoint (and
building the network, for the count), which imports torch; a fully cached re-run of ``bench run`` needs nothing
else from torch.  Such a fact is a function of (what reads it, e.g. the network class, its shape arguments, the
weights file's bytes), so it is read the first time and stored as a small JSON object under
``cache_root()/parameter-counts/<key>.json``, the key hashing all three; later runs read it back.  A changed
weights file has another key, so its facts are read again, never served stale; with no stored facts (a fresh
cache, a new weights file) they are read from the file: never guessed.
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
    """What the facts depend on: the reader (``module:Class``), its arguments, the weights' bytes."""
    digest = hashlib.sha256(f"{network}|{shape}|".encode())
    with open(weights, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:32]


def count_parameters(network: Any) -> int:
    """Every parameter of a ``torch.nn.Module`` (buffers such as BatchNorm statistics are not parameters)."""
    return int(sum(p.numel() for p in network.parameters()))


def stored_facts(key: str) -> dict[str, Any] | None:
    """The JSON object stored under ``key``; None when absent or unreadable (then it is read again)."""
    path = cache_root() / FOLDER / f"{key}.json"
    if not path.is_file():
        return None
    try:
        value = read_json(path)
    except (BenchError, OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def store_facts(key: str, facts: dict[str, Any]) -> None:
    """Remember facts read from a weights file; a cache folder that cannot be written only costs a re-read."""
    try:
        atomic_write_json(cache_root() / FOLDER / f"{key}.json", facts)
    except OSError:
        pass


def remembered_facts(key: str, compute: Callable[[], dict[str, Any]],
                     valid: Callable[[dict[str, Any]], bool] = lambda facts: True) -> dict[str, Any]:
    """The facts stored under ``key`` if ``valid`` accepts them, else ``compute()`` (which may import torch),
    then stored under ``key``."""
    stored = stored_facts(key)
    if stored is not None and valid(stored):
        return stored
    facts = compute()
    store_facts(key, facts)
    return facts


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def stored_count(key: str) -> int | None:
    """The count stored under ``key``; None when absent or unreadable (then it is counted again)."""
    value = (stored_facts(key) or {}).get("parameters")
    return value if _is_count(value) else None


def store_count(key: str, count: int) -> None:
    """Remember a count taken from a built network."""
    store_facts(key, {"parameters": int(count)})


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
