"""The dataset part of the prediction-cache key: what, besides the model, decides a prediction.

``Dataset.fingerprint()`` hashes the ground truth only.  Two dataset copies with the same annotations (a
mirror, a copy with other images) share it, so the data root is part of the key; the seed is too (runs call
``seed_everything`` before predicting, and a stochastic model's output depends on it).  Per-image contents
are checked per sample by ``harness.run.input_stamps``; model weights, options and adapter code are keyed by
``Adapter.fingerprint`` and ``predcache.code_fingerprint``; device kind and batching by ``PredictionCache``.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any


def data_root_key(root: str | Path | None) -> str:
    """A short hash of the resolved data root (symlinks followed), '' for none."""
    if root is None:
        return ""
    resolved = os.path.realpath(os.fspath(root))
    return hashlib.sha256(resolved.encode()).hexdigest()[:10]


def dataset_cache_key(dataset_fingerprint: str, dataset: Any, seed: int) -> str:
    """``<ground truth>-r<data root>-s<seed>``: the folder name part that belongs to the data."""
    root = data_root_key(getattr(getattr(dataset, "info", None), "root", None))
    return f"{dataset_fingerprint}-r{root}-s{int(seed)}"
