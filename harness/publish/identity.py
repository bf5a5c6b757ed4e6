"""Which run a leaderboard row stands for: the weights, the copy of the data and the conditions of the score.

``bench run`` records ``identity`` in metrics.json (``harness.run.run_conditions``): the checkpoint file and
its sha256, whether the user gave it, the data root or annotation file with the ground truth's fingerprint,
and the conditions that move a score (input size, flip test, score threshold, maxDets, precision, keypoint
protocol, ``--model-arg``, ``--cfg-options``, ``--label-map``).  From it this module derives

* the columns a leaderboard shows (``checkpoint``: file name and digest; ``data``; ``conditions``), and
* the row ``key``: '' for the official run of a model (its shipped weights, the embedded data, no model
  arguments), else a short hash of what differs.  A row is replaced only by a run with the same (dataset,
  protocol, model, key): ``--model heatmap --checkpoint other.pt``, another copy of a dataset or a run with
  ``--model-arg`` get rows of their own and never overwrite the official one.

``--limit`` runs never reach a leaderboard (``bench_run``); the site keeps them on boards of their own.
Records from before ``identity`` was recorded get key '' (they were all official runs).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from harness.core.run_record import RunRecord

#: the leaderboard columns made here, shown after the model
IDENTITY_COLUMNS = ("checkpoint", "data", "conditions")


@dataclass(frozen=True)
class RunIdentity:
    key: str
    checkpoint: str
    data: str
    conditions: str
    user_checkpoint: bool = False
    #: the model a baseline names: its shipped weights (or, for models without any, the user's file), no model
    #: arguments, config overrides or label map; ``bench gate`` checks only such runs
    gated: bool = True

    @property
    def official(self) -> bool:
        return self.key == ""

    @property
    def label(self) -> str:
        """What tells this row apart from the official one, for a model name: the checkpoint, else the key."""
        return "" if self.official else (self.checkpoint if self.user_checkpoint else f"#{self.key[:6]}")

    def columns(self) -> dict[str, str]:
        return {"checkpoint": self.checkpoint, "data": self.data, "conditions": self.conditions}


def _short(value: Any, digits: int = 10) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:digits]


def _assignments(values: Mapping[str, Any] | None) -> list[str]:
    return [f"{key}={json.dumps(value, sort_keys=True)}" for key, value in sorted((values or {}).items())]


def conditions_text(conditions: Mapping[str, Any]) -> str:
    """``input 256x192 · flip · score>=0.05 · maxDets 100 · fp32 · gt-boxes · arg threads=1``: one cell."""
    parts = []
    size = conditions.get("input_size")
    if size:
        parts.append("input " + "x".join(str(int(v)) for v in size))
    if conditions.get("flip_test"):
        parts.append("flip")
    if conditions.get("score_threshold") is not None:
        parts.append(f"score>={conditions['score_threshold']}")
    if conditions.get("max_dets") is not None:
        parts.append(f"maxDets {conditions['max_dets']}")
    if conditions.get("precision"):
        parts.append(str(conditions["precision"]))
    if conditions.get("keypoint_protocol"):
        parts.append(str(conditions["keypoint_protocol"]))
    parts += [f"arg {text}" for text in _assignments(conditions.get("model_args"))]
    parts += [f"cfg {text}" for text in _assignments(conditions.get("cfg_options"))]
    label_map = conditions.get("label_map") or {}
    if label_map:
        parts.append(f"label map {Path(str(label_map.get('file', ''))).name}@{str(label_map.get('sha256', ''))[:8]}")
    return " · ".join(parts)


def identity_of(record: Mapping[str, Any] | RunRecord) -> RunIdentity:
    """The identity of a metrics.json record, as read or typed (see the module docstring)."""
    if isinstance(record, RunRecord):
        record = record.to_dict()
    recorded = record.get("identity") or {}
    model = record.get("model") or {}
    dataset = record.get("dataset") or {}
    checkpoint = recorded.get("checkpoint") or {}
    data = recorded.get("data") or {}
    conditions = recorded.get("conditions") or {}
    file = checkpoint.get("file") or model.get("checkpoint")
    digest = str(checkpoint.get("sha256") or "")
    checkpoint_text = f"{Path(str(file)).name}@{digest[:8]}" if file and digest else (Path(str(file)).name if file else "")
    where = data.get("ann_file") or data.get("root") or dataset.get("data_root")
    data_text = "embedded" if not where else str(where)
    if where and data.get("fingerprint"):
        data_text += f"@{str(data['fingerprint'])[:8]}"
    differs: dict[str, Any] = {}
    if checkpoint.get("user"):
        differs["checkpoint"] = digest or str(file)
    if where:
        differs["data"] = [str(where), data.get("img_dir"), data.get("fingerprint")]
    for name in ("model_args", "cfg_options", "label_map"):
        if conditions.get(name):
            differs[name] = conditions[name]
    return RunIdentity(key=_short(differs) if differs else "", checkpoint=checkpoint_text, data=data_text,
                       conditions=conditions_text(conditions), user_checkpoint=bool(checkpoint.get("user")),
                       gated=not (checkpoint.get("replaces_shipped") or any(
                           conditions.get(name) for name in ("model_args", "cfg_options", "label_map"))))
