"""What a run's score depends on besides the model's name: recorded as ``identity`` in metrics.json.

``harness.publish.identity`` turns it into leaderboard columns and the row key.  Gathered here, at run time,
because only the run knows which weights file was read, whether the user chose it, which data root was opened
and which options the model was given.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harness.core.fingerprint import file_digest

#: option names that hold a detection score threshold, in adapters' options or OpenMMLab configs
_THRESHOLD_NAMES = ("score_thr", "score_threshold", "box_score_thresh", "score_thresh", "conf_thres")


def _score_threshold(*sources: Any) -> Any:
    """The first score threshold found in nested options (``model_kwargs.box_score_thresh``, ...)."""
    for source in sources:
        if isinstance(source, dict):
            for key, value in source.items():
                if str(key).split(".")[-1] in _THRESHOLD_NAMES and isinstance(value, (int, float)):
                    return value
                found = _score_threshold(value)
                if found is not None:
                    return found
    return None


def _max_dets(settings: dict[str, Any]) -> int | None:
    values = [v for key, v in settings.items() if str(key).endswith("max_dets") and isinstance(v, list) and v]
    return max(int(max(v)) for v in values) if values else None


def run_identity(config: Any, adapter: Any, dataset: Any, fingerprint: str, info: Any,
                 settings: dict[str, Any]) -> dict[str, Any]:
    """The ``identity`` entry of a run's record (see ``harness.publish.identity``)."""
    weights = adapter.weights_file()
    weights_path = Path(weights) if weights is not None else None
    ann_file = getattr(config, "ann_file", None)
    data_root = config.data_root
    conditions: dict[str, Any] = {
        "input_size": list(info.input_size) if info.input_size is not None else None,
        "flip_test": bool(adapter.options.get("flip_test", False)),
        "score_threshold": info.extra.get("score_threshold", _score_threshold(adapter.options)),
        "max_dets": _max_dets(settings),
        "precision": str(info.extra.get("precision", "fp32")),
        "keypoint_protocol": (dataset.info.extra.get("keypoint_protocol") or {}).get("name")
        if isinstance(dataset.info.extra.get("keypoint_protocol"), dict) else None,
        "model_args": dict(getattr(config, "model_args", {}) or {}),
        "cfg_options": dict(getattr(config, "cfg_options", {}) or {}),
        "label_map": getattr(adapter, "label_map", None),
    }
    base = adapter
    while hasattr(base, "inner"):  # label map / keypoint-protocol wrappers: the model class underneath
        base = base.inner
    ships_weights = bool(type(base).shipped_weights(base.name.split("+")[0]))
    return {
        "checkpoint": {"file": str(weights_path) if weights_path is not None else None,
                       # the user's file instead of the weights the model ships with: not the model a baseline names
                       "replaces_shipped": config.checkpoint is not None and ships_weights,
                       "sha256": file_digest(weights_path) if weights_path is not None and weights_path.is_file()
                       else None,
                       "user": config.checkpoint is not None},
        "data": {"root": os.path.realpath(data_root) if data_root is not None else None,
                 "ann_file": os.path.realpath(ann_file) if ann_file is not None else None,
                 "img_dir": os.path.realpath(config.img_dir) if ann_file is not None else None,
                 "fingerprint": fingerprint},
        "conditions": conditions,
    }
