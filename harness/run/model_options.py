"""``--model-arg key=value`` and ``--cfg-options key=value``: adapter options and OpenMMLab config overrides.

Values are YAML scalars (``0.05`` a float, ``true`` a bool, ``null`` None, ``[640, 640]`` a flat list of
scalars), parsed with ``yaml.safe_load``: nothing is evaluated, and a mapping or a nested list is refused.
``--model-arg`` keys are checked against the adapter's ``accepted_options`` (a typo would otherwise run the
model with its default and a wrong identity); a dotted key (``model_kwargs.box_score_thresh=0.05``) sets an
entry of a dict option.  ``--cfg-options`` keys are mmengine's dotted config paths, passed through as
``options["cfg_options"]`` to adapters that accept it.  Both are recorded in the run's ``identity`` and key its
prediction cache (through ``Adapter.fingerprint``, which hashes the options).
"""
from __future__ import annotations

from typing import Any, Iterable

import yaml

from harness.core.errors import BenchError

_SCALARS = (str, int, float, bool, type(None))


def parse_value(text: str, where: str) -> Any:
    """One YAML scalar (or flat list of scalars); BenchError naming ``where`` otherwise."""
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as exc:
        raise BenchError(f"{where}: cannot parse {text!r} as a YAML value ({' '.join(str(exc).split())[:80]})") from None
    if isinstance(value, list) and all(isinstance(item, _SCALARS) for item in value):
        return value
    if not isinstance(value, _SCALARS):
        raise BenchError(f"{where}: {text!r} is a {type(value).__name__}; give a number, string, true/false, null "
                         "or a flat [list]")
    return value


def parse_assignments(items: Iterable[str], option: str) -> dict[str, Any]:
    """``["a=1", "b.c=x"]`` -> ``{"a": 1, "b.c": "x"}`` (keys kept dotted), in the order given."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise BenchError(f"{option} {item!r}: expected key=value")
        out[key] = parse_value(text, f"{option} {key}")
    return out


def nest(assignments: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys as nested dicts: ``{"model_kwargs.min_size": 300}`` -> ``{"model_kwargs": {"min_size": 300}}``."""
    out: dict[str, Any] = {}
    for key, value in assignments.items():
        *parents, last = key.split(".")
        node = out
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise BenchError(f"--model-arg {key}: {part!r} is set to a value and used as a group")
            node = child
        node[last] = value
    return out


def adapter_options(cls: type, name: str, model_args: dict[str, Any], cfg_options: dict[str, Any]) -> dict[str, Any]:
    """The options ``--model-arg`` / ``--cfg-options`` give model ``name``, checked against what its class accepts."""
    accepted: dict[str, str] = dict(getattr(cls, "accepted_options", {}) or {})
    options: dict[str, Any] = {}
    if model_args:
        unknown = sorted({key.split(".")[0] for key in model_args} - set(accepted))
        if unknown:
            known = ", ".join(sorted(accepted)) or "none"
            raise BenchError(f"--model-arg {unknown[0]}: model {name!r} does not accept it (accepted: {known})")
        options.update(nest(model_args))
    if cfg_options:
        if "cfg_options" not in accepted:
            raise BenchError(f"--cfg-options: model {name!r} has no config to override (OpenMMLab models only: "
                             "mmdet:, mmdet-ins:, mmpose:, mmseg:)")
        options["cfg_options"] = {**dict(options.get("cfg_options") or {}), **cfg_options}
    return options
