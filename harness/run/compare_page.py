"""``bench compare A B --html OUT``: the comparison as a page: the metric deltas with their paired intervals, the
per-class deltas as a diverging bar chart, and the images where the runs differ most, each drawn for A and for B
(the gallery's pictures), so the difference can be seen rather than only counted."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.run.compare import Comparison
from harness.core.run_record import RunRecord
from harness.io.jsonio import atomic_write_text
from harness.publish.templating import render


def _delta_chart(frame: Any, metric: str, path: Path, higher_is_better: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = frame.dropna(subset=["delta"]).head(30).iloc[::-1]
    fig, ax = plt.subplots(figsize=(7.0, max(1.8, 0.24 * len(frame) + 0.9)))
    good = frame["delta"] > 0 if higher_is_better else frame["delta"] < 0
    ax.barh(np.arange(len(frame)), frame["delta"], color=np.where(good, "#2ca02c", "#d62728"))
    ax.set_yticks(np.arange(len(frame)), [str(c) for c in frame["class"]], fontsize=8)
    ax.axvline(0, color="#333", lw=0.8)
    ax.set_xlabel(f"{metric}: B - A" + ("" if higher_is_better else " (lower is better)"))
    ax.set_title(f"{metric} per class, largest differences (green: B better)", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.savefig(path, dpi=100, bbox_inches="tight", facecolor="white")
    plt.close(fig)


def write_compare_page(result: Comparison, run_a: Path, run_b: Path, out: Path, images: int = 6) -> Path:
    from harness.publish.pictures.build import draw_pair
    from harness.publish.pictures.collect import Pair, safe_name
    from harness.run.rebuild_pictures import open_run_dataset
    from harness.submissions import SUBMISSIONS

    out = Path(out)
    assets = out.parent / (out.stem + "_files")
    assets.mkdir(parents=True, exist_ok=True)
    record_a, record_b = RunRecord.load(Path(run_a) / "metrics.json"), RunRecord.load(Path(run_b) / "metrics.json")
    headline = result.settings.get("headline")
    chart = None
    for metric, frame in result.per_class.items():
        if headline and metric in (headline, headline[1:]) and len(frame) > 1:
            chart = f"{assets.name}/per_class_delta.png"
            _delta_chart(frame, metric, assets / "per_class_delta.png",
                         result.metrics.get(headline, {}).get("higher_is_better", True))
    shown: list[dict[str, Any]] = []
    if result.images is not None and len(result.images):
        dataset = open_run_dataset(record_a)
        wanted = {str(i): n for n, i in enumerate(result.images["image_id"].head(images))}
        found: dict[str, int] = {}
        for index in range(record_a.samples or 0):
            key = str(dataset[index].sample_id)
            if key in wanted:
                found[key] = index
            if len(found) == len(wanted):
                break
        readers = [SUBMISSIONS.get(r.predictions["format"]).reader(dataset.info, Path(d) / r.predictions["path"])
                   for r, d in ((record_a, run_a), (record_b, run_b))]
        thresholds = [((r.extra.get("analysis") or {}).get("score_threshold") or 0.0) for r in (record_a, record_b)]
        score = result.settings["per_image_score"]
        for row in result.images.head(images).to_dict("records"):
            position = found.get(str(row["image_id"]))
            if position is None:
                continue
            sources = []
            for side, reader, threshold in zip("AB", readers, thresholds):
                sample = dataset[position]
                picture = draw_pair(result.task, dataset.info, Pair(sample, reader.predict(sample)),
                                    threshold=threshold)
                name = f"{len(shown):02d}_{side}_{safe_name(row['image_id'])}.png"
                picture.save(assets / name)
                sources.append(f"{assets.name}/{name}")
            shown.append({"image_id": row["image_id"], "a": row[f"{score}_a"], "b": row[f"{score}_b"],
                          "delta": row["delta"], "src_a": sources[0], "src_b": sources[1]})
    atomic_write_text(out, render("compare.html.j2", result=result, chart=chart, images=shown,
                                  level=int(round(100 * result.settings["level"]))))
    return out
