"""Jinja2 environment for the HTML reports and leaderboards (templates ship in harness/publish/templates)."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("harness.publish", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = format_number
    env.filters["metric"] = format_metric
    env.filters["setting"] = format_setting
    return env


def format_metric(value: Any, digits: int = 4) -> str:
    """A metric for people: ``n/a`` for COCO's -1 (no ground truth in that range), NaN and None; thousands
    separators instead of exponents for large values; integers as integers."""
    if value is None or value == "" or isinstance(value, bool):
        return "n/a" if value is None or value == "" else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value or value == -1.0 or value in (float("inf"), float("-inf")):
            return "n/a"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.1f}"
        return f"{value:.{digits}f}"
    return str(value)


def format_setting(value: Any) -> str:
    """Settings as written in metrics.json, with float noise removed (0.026000000000000002 -> 0.026)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.12g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_setting(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_setting(v)}" for k, v in value.items()) + "}"
    return str(value)


def format_number(value: Any, digits: int = 4) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        if value != value:
            return "nan"
        return f"{value:.{digits}f}"
    return str(value)


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)
