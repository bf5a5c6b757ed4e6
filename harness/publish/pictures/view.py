"""What report.html shows, prepared from a metrics.json record (and the run's pictures, when built).

Kept out of the template so the template only lays things out: the headline with its interval, one merged
per-class table sorted by the headline's per-class metric, and the metric rows with their intervals.
"""
from __future__ import annotations

from typing import Any

COLLAPSE_ROWS = 12


def report_view(record: dict[str, Any]) -> dict[str, Any]:
    metrics = record.get("metrics") or {}
    confidence = record.get("confidence") or {}
    protocol = record.get("protocol") or {}
    headline = protocol.get("headline") or next(iter(metrics), None)
    columns = [c for c in (protocol.get("columns") or []) if c in metrics and c != headline][:7]
    per_class = record.get("per_class") or {}
    groups = _per_class_groups(per_class, headline)
    return {
        "headline": headline,
        "headline_value": metrics.get(headline) if headline else None,
        "headline_interval": confidence.get(headline) if headline else None,
        "headline_higher": (record.get("higher_is_better") or {}).get(headline, True) if headline else True,
        "summary": [(name, metrics[name], confidence.get(name) if metrics[name] != -1 else None) for name in columns],
        "level": int(round(100 * ((record.get("bootstrap") or {}).get("level") or 0.95))),
        "per_class_groups": groups,
        "collapse_rows": COLLAPSE_ROWS,
    }


def _per_class_groups(per_class: dict[str, dict[str, Any]], headline: str | None) -> list[dict[str, Any]]:
    """Per-class tables that share their row names become one table (AP, AP50, AP75 per class side by side);
    rows are sorted by the first column that names the headline (AP, or IoU for mIoU), best first."""
    groups: dict[tuple, list[str]] = {}
    for metric, table in per_class.items():
        groups.setdefault(tuple(table), []).append(metric)
    out = []
    for names, metrics in groups.items():
        key = next((m for m in metrics if headline and (m == headline or m == headline[1:])), metrics[0])

        def sort_value(name: str) -> float:
            value = per_class[key].get(name)
            return -1e300 if not isinstance(value, (int, float)) or value != value or value == -1 else float(value)

        rows = sorted(names, key=sort_value, reverse=True)
        out.append({"title": ", ".join(metrics) + " per " + ("joint" if any(m.startswith("PCK") for m in metrics)
                                                               else "class"),
                    "metrics": metrics, "sorted_by": key,
                    "rows": [(name, [per_class[m].get(name) for m in metrics]) for name in rows]})
    return out
