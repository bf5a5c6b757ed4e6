"""Small inline SVG charts (lines and labelled scatter) for the static site: no JavaScript, no network, crisp.

Generated as text so a page is one self-contained file that opens from disk or any static host.
"""
from __future__ import annotations

import math
from html import escape
from typing import Sequence

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
WIDTH, HEIGHT = 460, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 28, 44
MAX_POINTS = 400


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    step = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * step:
            step *= factor
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.01:
        return f"{value:.3g}"
    return f"{value:.3g}".rstrip("0").rstrip(".") if "." in f"{value:.3g}" else f"{value:.3g}"


def _decimate(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    if len(xs) <= MAX_POINTS:
        return list(xs), list(ys)
    step = len(xs) / MAX_POINTS
    keep = sorted({int(i * step) for i in range(MAX_POINTS)} | {len(xs) - 1})
    return [xs[i] for i in keep], [ys[i] for i in keep]


class _Frame:
    def __init__(self, xlim: tuple[float, float], ylim: tuple[float, float], log_x: bool = False) -> None:
        self.log_x = log_x
        tx = (lambda v: math.log10(v)) if log_x else (lambda v: v)
        self.tx = tx
        self.x0, self.x1 = tx(xlim[0]), tx(xlim[1])
        if self.x1 <= self.x0:
            self.x0, self.x1 = self.x0 - 0.5, self.x1 + 0.5
        self.y0, self.y1 = ylim
        if self.y1 <= self.y0:
            self.y0, self.y1 = self.y0 - 0.5, self.y1 + 0.5

    def px(self, x: float) -> float:
        return LEFT + (self.tx(x) - self.x0) / (self.x1 - self.x0) * (WIDTH - LEFT - RIGHT)

    def py(self, y: float) -> float:
        return HEIGHT - BOTTOM - (y - self.y0) / (self.y1 - self.y0) * (HEIGHT - TOP - BOTTOM)

    def axes(self, title: str, xlabel: str, ylabel: str) -> list[str]:
        parts = [f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" height="{HEIGHT - TOP - BOTTOM}" fill="#fff" stroke="#999"/>',
                 f'<text x="{WIDTH / 2:.0f}" y="16" text-anchor="middle" font-weight="600">{escape(title)}</text>',
                 f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" y="{HEIGHT - 8}" text-anchor="middle">{escape(xlabel)}</text>',
                 f'<text x="14" y="{(TOP + HEIGHT - BOTTOM) / 2:.0f}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {(TOP + HEIGHT - BOTTOM) / 2:.0f})">{escape(ylabel)}</text>']
        if self.log_x:
            xticks = [10 ** e for e in range(math.floor(self.x0), math.ceil(self.x1) + 1) if self.x0 <= e <= self.x1]
        else:
            xticks = _ticks(self.x0, self.x1)
        for x in xticks:
            px = self.px(x)
            parts.append(f'<line x1="{px:.1f}" y1="{TOP}" x2="{px:.1f}" y2="{HEIGHT - BOTTOM}" stroke="#eee"/>')
            parts.append(f'<text x="{px:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle">{_fmt(x)}</text>')
        for y in _ticks(self.y0, self.y1):
            py = self.py(y)
            parts.append(f'<line x1="{LEFT}" y1="{py:.1f}" x2="{WIDTH - RIGHT}" y2="{py:.1f}" stroke="#eee"/>')
            parts.append(f'<text x="{LEFT - 4}" y="{py + 4:.1f}" text-anchor="end">{_fmt(y)}</text>')
        return parts


def _svg(parts: list[str], label: str) -> str:
    body = "\n".join(parts)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
            f'height="{HEIGHT}" role="img" aria-label="{escape(label)}" font-family="system-ui, sans-serif" '
            f'font-size="11">\n{body}\n</svg>')


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def line_chart(series: Sequence[tuple[str, Sequence[float], Sequence[float]]], title: str, xlabel: str, ylabel: str,
               unit_square: bool = False, colours: dict[str, str] | None = None) -> str:
    """One polyline per (label, xs, ys); ``unit_square`` fixes both axes to [0, 1] (precision/recall).

    ``colours`` maps labels to colours, so one model has one colour in every chart of a page.
    """
    xs = _finite([x for _, sx, _ in series for x in sx])
    ys = _finite([y for _, _, sy in series for y in sy])
    if unit_square or not xs:
        xlim, ylim = (0.0, 1.0), (0.0, 1.0)
    else:
        xlim, ylim = (min(xs), max(xs)), (min(0.0, min(ys)), max(ys))
    frame = _Frame(xlim, ylim)
    parts = frame.axes(title, xlabel, ylabel)
    for index, (label, sx, sy) in enumerate(series):
        colour = (colours or {}).get(label, PALETTE[index % len(PALETTE)])
        px, py = _decimate(sx, sy)
        points = " ".join(f"{frame.px(x):.1f},{frame.py(y):.1f}" for x, y in zip(px, py)
                          if x is not None and y is not None and math.isfinite(x) and math.isfinite(y))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{points}">'
                     f'<title>{escape(label)}</title></polyline>')
        legend_y = HEIGHT - BOTTOM - 8 - 13 * (len(series) - 1 - index)  # lower left: empty for PR-style curves
        parts.append(f'<text x="{LEFT + 8}" y="{legend_y}" fill="{colour}">{escape(label)}</text>')
    return _svg(parts, title)


def scatter_chart(points: Sequence[tuple[str, float, float]], title: str, xlabel: str, ylabel: str,
                  colours: dict[str, str] | None = None) -> str:
    """Labelled points; x on a log scale when it spans more than a factor of ten (throughput does)."""
    usable = [(label, x, y) for label, x, y in points
              if x is not None and y is not None and math.isfinite(x) and math.isfinite(y) and x > 0]
    if not usable:
        frame = _Frame((1.0, 10.0), (0.0, 1.0))
        return _svg(frame.axes(title, xlabel, ylabel) + [f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no data</text>'], title)
    xs, ys = [p[1] for p in usable], [p[2] for p in usable]
    log_x = max(xs) / min(xs) > 10
    pad_x = (lambda lo, hi: (lo / 1.5, hi * 1.5)) if log_x else (lambda lo, hi: (lo - 0.1 * (hi - lo or lo), hi + 0.1 * (hi - lo or hi)))
    span = max(ys) - min(ys) or abs(max(ys)) or 1.0
    frame = _Frame(pad_x(min(xs), max(xs)), (min(ys) - 0.15 * span, max(ys) + 0.15 * span), log_x=log_x)
    parts = frame.axes(title, xlabel + (" (log)" if log_x else ""), ylabel)
    for index, (label, x, y) in enumerate(usable):
        colour = (colours or {}).get(label, PALETTE[index % len(PALETTE)])
        px, py = frame.px(x), frame.py(y)
        right_half = px > (LEFT + WIDTH - RIGHT) / 2  # labels point inwards so they are never clipped
        parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4.5" fill="{colour}">'
                     f'<title>{escape(label)}: {y:.4g} at {x:.4g}</title></circle>')
        parts.append(f'<text x="{px - 7 if right_half else px + 7:.1f}" y="{py - 6:.1f}" fill="{colour}" '
                     f'text-anchor="{"end" if right_half else "start"}">{escape(label)}</text>')
    return _svg(parts, title)
