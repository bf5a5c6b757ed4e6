"""Deterministic text for hashing model options and parameters, identical in every process.

``repr`` of an arbitrary object may hold its memory address (``<function f at 0x7f...>``), so a key built
from it differs between processes and a cache keyed by it never hits.  ``stable_text`` encodes values
structurally (dataclasses by field, mappings sorted, adapters by their own fingerprint) and refuses what it
cannot describe without an address, so the mistake shows up as an error, not as a silent cache miss.
"""
from __future__ import annotations

import dataclasses
import hashlib
import enum
import json
import math
import re
from pathlib import Path
from typing import Any

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks (weights, images, detection files: all hashed alike)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class UnstableFingerprint(TypeError):
    """A value whose only description holds a memory address (a closure, a lambda, a bare object)."""


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, Path):
        return {"path": value.as_posix()}
    if isinstance(value, enum.Enum):
        return {"enum": f"{type(value).__qualname__}.{value.name}"}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_encode(v) for v in value), key=lambda item: json.dumps(item, sort_keys=True))
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in sorted(value.items(), key=lambda item: str(item[0]))}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"type": f"{type(value).__module__}.{type(value).__qualname__}",
                "fields": {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    fingerprint = getattr(value, "fingerprint", None)
    if callable(fingerprint) and hasattr(value, "predict"):  # an Adapter (e.g. a person detector option)
        return {"adapter": str(fingerprint())}
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return _encode(value.item())
        if isinstance(value, np.ndarray):
            return {"array": str(value.dtype), "shape": list(value.shape), "data": _encode(value.tolist())}
    except ImportError:  # pragma: no cover
        pass
    text = repr(value)
    if _ADDRESS.search(text):
        raise UnstableFingerprint(f"{type(value).__qualname__} has no stable description (repr holds a memory "
                                  f"address: {text[:80]}); give it fields (a dataclass) or a fingerprint()")
    return {"repr": f"{type(value).__module__}.{type(value).__qualname__}:{text}"}


def stable_text(value: Any) -> str:
    """JSON text describing ``value`` the same way in every process (sorted keys, no addresses)."""
    return json.dumps(_encode(value), sort_keys=True, separators=(",", ":"))
