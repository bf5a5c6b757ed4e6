"""The site's charts with matplotlib (replacing the hand-drawn SVG of ``harness.publish.svgplot``): PNG files under
``<site>/charts/`` shown with ``<img>``.

What a reader trips over on a leaderboard chart, and what is done about it here:
- legends over the curves: the legend sits outside the axes, to the right;
- repeated colours: one colour per model for the whole page, from tab10 then tab20 (20 distinct colours);
- a floor model (zero-flow at 10^5 images/s) squashing everyone else: throughput is on a log axis whose limits
  come from the points themselves, with a margin;
- overprinted labels: adjustText moves them apart, with a leader line to their point;
- which models are worth it: the Pareto front (no other model both faster and more accurate) is drawn as a line.
"""
from __future__ import annotations

import math
from html import escape
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DPI = 100


def model_colours(models: Sequence[str]) -> dict[str, str]:
    """One distinct colour per model (sorted names), the same on every chart of a page."""
    names = sorted(set(models))
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {name: matplotlib.colors.to_hex(cmap(i % cmap.N)) for i, name in enumerate(names)}


def _img(path: Path, site_dir: Path, alt: str) -> str:
    return f'<img class="chart" src="{escape(str(path.relative_to(site_dir)))}" alt="{escape(alt)}">'


def line_chart_png(lines: Sequence[tuple[str, Sequence[float], Sequence[float]]], *, title: str, xlabel: str,
                   ylabel: str, unit_square: bool, colours: dict[str, str], path: Path, site_dir: Path) -> str:
    """Several curves on one axis; ``lines`` labels are ``model`` or ``model · curve``; returns an ``<img>``."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    styles = ["-", "--", ":", "-."]
    subs: dict[str, int] = {}
    for label, xs, ys in lines:
        model, _, sub = label.partition(" · ")
        style = styles[subs.setdefault(sub, len(subs)) % len(styles)]
        ax.plot(xs, ys, style, color=colours.get(model, "#333"), lw=1.6, label=label)
    if unit_square:
        ax.set(xlim=(0, 1), ylim=(0, 1.02))
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    fig.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return _img(path, site_dir, title)


def pareto_front(points: Sequence[tuple[str, float, float]], higher_is_better: bool) -> list[tuple[str, float, float]]:
    """Points no other point beats on both speed (x, higher) and score (y), ordered by speed."""
    sign = 1 if higher_is_better else -1
    front: list[tuple[str, float, float]] = []
    for name, x, y in sorted(points, key=lambda p: (-p[1], -sign * p[2])):
        if not front or sign * y > sign * front[-1][2]:
            front.append((name, x, y))
    return sorted(front, key=lambda p: p[1])


def scatter_chart_png(points: Sequence[tuple[str, float | None, float | None]], *, title: str, xlabel: str,
                      ylabel: str, colours: dict[str, str], path: Path, site_dir: Path,
                      higher_is_better: bool = True) -> str:
    """Score against throughput, one labelled point per model, log x, Pareto front; returns an ``<img>``."""
    valid = [(n, float(x), float(y)) for n, x, y in points
             if x is not None and y is not None and math.isfinite(x) and math.isfinite(y) and x > 0]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if valid:
        xs = np.array([p[1] for p in valid])
        ys = np.array([p[2] for p in valid])
        for name, x, y in valid:
            ax.scatter([x], [y], s=46, color=colours.get(name, "#333"), edgecolor="#222", linewidth=0.5, zorder=3)
        front = pareto_front(valid, higher_is_better)
        if len(front) > 1:
            ax.plot([p[1] for p in front], [p[2] for p in front], color="#888", lw=1.2, ls="--", zorder=2,
                    label="Pareto front")
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
        ax.set_xscale("log")
        lo, hi = xs.min(), xs.max()
        span = max(math.log10(hi) - math.log10(lo), 0.5)
        ax.set_xlim(10 ** (math.log10(lo) - 0.12 * span), 10 ** (math.log10(hi) + 0.12 * span))
        ypad = max((ys.max() - ys.min()) * 0.12, abs(ys.max()) * 0.02, 1e-3)
        ax.set_ylim(ys.min() - ypad, ys.max() + ypad)
        texts = [ax.text(x, y, name, fontsize=8) for name, x, y in valid]
        try:
            from adjustText import adjust_text

            adjust_text(texts, x=list(xs), y=list(ys), ax=ax,
                        arrowprops={"arrowstyle": "-", "color": "#999", "lw": 0.5})
        except ImportError:
            pass
        plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}")
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(plain if span <= 1 else matplotlib.ticker.NullFormatter())  # never 8x10^0
    else:
        ax.text(0.5, 0.5, "no throughput measured", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel=xlabel + " (log scale)", ylabel=ylabel + ("" if higher_is_better else " (lower is better)"))
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    fig.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return _img(path, site_dir, title)
