"""Report charts drawn with matplotlib (Agg backend: no display, deterministic PNGs next to report.html).

One function per picture; each takes plain arrays and a path and returns the path.  Colours come from
colour-blind-safe qualitative/sequential maps, legends sit outside the axes, and long category lists are cut to
what a person can read (the full numbers stay in the tables).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DPI = 100
BAR_LIMIT = 40  # more classes than this: the best and worst 20


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return path


def _declutter(ax: Any, texts: list, xs: Any, ys: Any) -> None:
    """Move labels off each other and off the points (adjustText); a no-op when it is not installed."""
    try:
        from adjustText import adjust_text
    except ImportError:
        return
    adjust_text(texts, x=list(xs), y=list(ys), ax=ax, arrowprops={"arrowstyle": "-", "color": "#888", "lw": 0.5})


def _cut(names: Sequence[str], values: Sequence[float], higher_is_better: bool
         ) -> tuple[list[str], list[float], str]:
    """Sorted best first, with n/a (NaN, -1) last; long lists keep their best and worst 20."""
    items = [(str(n), float(v)) for n, v in zip(names, values)]
    valid = [(n, v) for n, v in items if np.isfinite(v) and v != -1]
    valid.sort(key=lambda item: -item[1] if higher_is_better else item[1])
    note = ""
    if len(valid) > BAR_LIMIT:
        half = BAR_LIMIT // 2
        note = f"best and worst {half} of {len(valid)} classes"
        valid = valid[:half] + [("…", float("nan"))] + valid[-half:]
    return [n for n, _ in valid], [v for _, v in valid], note


def pr_by_iou(recall: np.ndarray, precision: np.ndarray, iou_thresholds: Any, path: Path,
              title: str) -> Path:
    """precision: (T, R) averaged over classes (NaN where no class has ground truth)."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(iou_thresholds)))
    for t, (iou, colour) in enumerate(zip(iou_thresholds, colours)):
        ap = np.nanmean(precision[t]) if np.isfinite(precision[t]).any() else float("nan")
        ax.plot(recall, precision[t], color=colour, lw=1.8, label=f"IoU {iou:.2f}  (AP {ap:.3f})")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision", title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    return _save(fig, path)


def pr_by_class(recall: np.ndarray, precision: np.ndarray, names: Any, iou_thresholds: Any,
                path: Path, title: str, limit: int = 24) -> tuple[Path, str]:
    """Small multiples, one per class (best AP first): curves at IoU 0.50, 0.75 and the mean over thresholds.

    precision: (T, R, K) with -1 where a class has no ground truth.
    """
    t50 = int(np.argmin(np.abs(np.asarray(iou_thresholds) - 0.5)))
    t75 = int(np.argmin(np.abs(np.asarray(iou_thresholds) - 0.75)))
    has_gt = np.asarray((precision > -1).all(axis=(0, 1)))
    ap = np.where(has_gt, np.where(precision > -1, precision, 0).mean(axis=(0, 1)), -1)
    order = [k for k in np.argsort(-ap, kind="stable") if has_gt[k]]
    note = ""
    if len(order) > limit:
        note = f"the {limit // 2} best and {limit // 2} worst of {len(order)} classes by AP"
        order = order[: limit // 2] + order[-(limit // 2):]
    cols = min(6, max(1, len(order)))
    rows = max(1, -(-len(order) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.1 * cols, 2.0 * rows + 0.6), sharex=True, sharey=True,
                             squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.set_visible(False)
    for ax, k in zip(axes.flat, order):
        ax.set_visible(True)
        ax.plot(recall, precision[t50, :, k], color="#1b9e77", lw=1.4, label="IoU 0.50")
        ax.plot(recall, precision[t75, :, k], color="#d95f02", lw=1.4, label="IoU 0.75")
        ax.plot(recall, np.where(precision[:, :, k] > -1, precision[:, :, k], np.nan).mean(axis=0), color="#7570b3",
                lw=1.2, ls="--", label="mean 0.50:0.95")
        ax.set_title(f"{names[k]}  AP {ap[k]:.2f}", fontsize=8)
        ax.set(xlim=(0, 1), ylim=(0, 1.02))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    # the title goes in front of the legend: suptitle and an "outside" legend would share the top edge
    fig.legend(handles, labels, loc="outside upper center", ncol=3, fontsize=8, frameon=False, title=title,
               title_fontsize=9)
    fig.supxlabel("recall", fontsize=8)
    fig.supylabel("precision", fontsize=8)
    return _save(fig, path), note


def class_bars(names: Sequence[str], values: Sequence[float], metric: str, path: Path,
               higher_is_better: bool = True) -> tuple[Path, str]:
    names, values, note = _cut(names, values, higher_is_better)
    height = max(1.6, 0.22 * len(names) + 0.8)
    fig, ax = plt.subplots(figsize=(7.0, height))
    y = np.arange(len(names))
    finite = np.nan_to_num(values, nan=0.0)
    colours = plt.get_cmap("RdYlGn" if higher_is_better else "RdYlGn_r")(
        np.clip(finite / (max(finite.max(), 1e-12) if not higher_is_better else 1.0), 0, 1))
    ax.barh(y, finite, color=colours, edgecolor="#555", linewidth=0.4)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    for yi, value in zip(y, values):
        if np.isfinite(value):
            ax.text(value, float(yi), f" {value:.3g}", va="center", fontsize=7)
    ax.set_xlabel(metric)
    if higher_is_better and finite.max() <= 1:
        ax.set_xlim(0, 1.08)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{metric} per class" + (f" ({note})" if note else ""), fontsize=10)
    return _save(fig, path), note


def confusion(matrix: np.ndarray, row_names: Any, col_names: Any, path: Path, title: str,
              limit: int = 25) -> tuple[Path, str]:
    """Row-normalised confusion matrix (rows: ground truth); more classes than ``limit``: the most frequent."""
    matrix = np.asarray(matrix, dtype=np.float64)
    note = ""
    rows = np.arange(matrix.shape[0])
    cols = np.arange(matrix.shape[1])
    if matrix.shape[0] > limit and matrix.shape[0] == matrix.shape[1]:
        # the classes that occur most (ground truth + predictions); never classes absent from both
        weight = matrix.sum(axis=1) + matrix.sum(axis=0)
        ranked = [int(i) for i in np.argsort(-weight, kind="stable") if weight[i] > 0][:limit]
        rows = cols = np.sort(np.asarray(ranked, dtype=int))
        note = f"the {len(rows)} most frequent of {matrix.shape[0]} classes (ground truth + predictions)"
    sub = matrix[np.ix_(rows, cols)]
    totals = sub.sum(axis=1, keepdims=True)
    share = np.divide(sub, totals, out=np.zeros_like(sub), where=totals > 0)
    size = max(4.0, 0.32 * len(cols) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(cols)), [col_names[c] for c in cols], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [row_names[r] for r in rows], fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    if len(cols) <= 12:
        for i in range(len(rows)):
            for j in range(len(cols)):
                if share[i, j] >= 0.005:
                    ax.text(j, i, f"{share[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if share[i, j] > 0.6 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the ground-truth row")
    ax.set_title(title + (f"\n({note})" if note else ""), fontsize=10)
    return _save(fig, path), note


def pck_skeleton(layout: np.ndarray, names: Any, values: Any, skeleton: Sequence[tuple[int, int]],
                 path: Path, title: str) -> Path:
    """Each joint at its mean position (normalised to the person box), coloured and labelled by its PCK."""
    fig, (ax, bars) = plt.subplots(1, 2, figsize=(9.5, 5.2), gridspec_kw={"width_ratios": [1, 1.2]})
    values = np.asarray(values, dtype=np.float64)
    cmap = plt.get_cmap("RdYlGn")
    for a, b in skeleton:
        if a < len(layout) and b < len(layout):
            ax.plot(layout[[a, b], 0], layout[[a, b], 1], color="#999", lw=2, zorder=1)
    points = ax.scatter(layout[:, 0], layout[:, 1], c=values, cmap=cmap, vmin=0, vmax=1, s=140, edgecolor="#333",
                        zorder=2)
    ax.set_aspect("equal", adjustable="datalim")
    ax.margins(x=0.3, y=0.06)  # room for the labels at the outer joints
    ax.invert_yaxis()
    texts = [ax.text(x, y, f"{value:.2f}", fontsize=7) for (x, y), value in zip(layout, values)]
    _declutter(ax, texts, layout[:, 0], layout[:, 1])
    ax.axis("off")
    ax.set_title("mean joint position, coloured by PCK", fontsize=9)
    order = np.argsort(values, kind="stable")
    y = np.arange(len(order))
    bars.barh(y, values[order], color=cmap(values[order]), edgecolor="#555", linewidth=0.4)
    bars.set_yticks(y, [names[i] for i in order], fontsize=8)
    bars.invert_yaxis()
    for yi, value in zip(y, values[order]):
        bars.text(value, yi, f" {value:.2f}", va="center", fontsize=7)
    fig.colorbar(points, ax=bars, fraction=0.046, pad=0.02, label="PCK")
    bars.set_xlim(0, 1.12)
    bars.grid(axis="x", alpha=0.3)
    bars.set_title("per joint, worst first", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def epe_histogram(counts: np.ndarray, edges: np.ndarray, path: Path, title: str) -> Path:
    counts = np.asarray(counts, dtype=np.float64)
    shown = edges.copy()
    overflow = counts[-1]
    last = float(edges[-2])
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    finite_edges = np.where(np.isfinite(shown), shown, last * 1.2)
    widths = np.diff(finite_edges)
    total = max(counts.sum(), 1)
    ax.bar(finite_edges[:-1], counts / total / widths, width=widths, align="edge", color="#4c72b0",
           edgecolor="white", linewidth=0.3)
    for x in (1, 3, 5):
        ax.axvline(x, color="#c44e52", ls="--", lw=1)
        ax.text(x, ax.get_ylim()[1] * 0.95, f" {x} px", color="#c44e52", fontsize=8, va="top")
    ax.set_yscale("log")
    # up to the bin holding the 99.9th percentile (at least 8 px): a few wild pixels must not squash the rest
    cumulative = np.cumsum(counts) / total
    cut = int(np.searchsorted(cumulative, 0.999)) + 1
    ax.set_xlim(0, max(8.0, float(finite_edges[min(cut, len(finite_edges) - 1)])))
    ax.set_xlabel("end-point error (px)")
    ax.set_ylabel("share of valid pixels per px (log)")
    share = f"{overflow / total:.2%} of pixels above {last:g} px" if overflow else ""
    ax.set_title(title + (f"  ({share})" if share else ""), fontsize=10)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def tide_bars(delta: dict[str, float], counts: dict[str, int], path: Path, title: str) -> Path:
    kinds = list(delta)
    fig, ax = plt.subplots(figsize=(7.0, 2.8))
    colours = ["#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628"]
    y = np.arange(len(kinds))
    values = [delta[k] for k in kinds]
    ax.barh(y, values, color=colours[: len(kinds)])
    ax.set_yticks(y, [f"{k} ({counts.get(k, 0)})" for k in kinds], fontsize=9)
    ax.invert_yaxis()
    for yi, value in zip(y, values):
        ax.text(value, float(yi), f" {value:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, max(max(values, default=0) * 1.2, 1))
    ax.set_xlabel("AP50 points gained if every error of this type were fixed (count in brackets)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def flow_wheel(path: Path, size: int = 160) -> Path:
    """The colour key of the flow pictures: direction is hue, length is saturation."""
    from harness.publish.pictures.draw import flow_to_rgb

    yy, xx = np.mgrid[-1:1:complex(size), -1:1:complex(size)]
    flow = np.stack([xx, yy], axis=2).astype(np.float32)
    rgb = flow_to_rgb(flow, max_magnitude=1.0)
    rgb[np.hypot(xx, yy) > 1] = 255
    from PIL import Image

    Image.fromarray(rgb).save(path)
    return path
