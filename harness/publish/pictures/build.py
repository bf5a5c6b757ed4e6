"""Build a run's pictures: the per-image table, charts, error analysis and gallery, for ``report.html``.

``build_pictures`` reads the run's predictions back from the submission it wrote (the same reader ``bench eval
--run`` uses), so it works on any finished run folder and the runner stays unchanged.  It returns what the report
template shows and writes every file next to ``report.html`` (``pictures/``, ``per_image.csv``/``.parquet``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.core.dataset import Dataset
from harness.publish.pictures import charts, draw
from harness.publish.pictures.collect import Pair, read_pairs, safe_name
from harness.publish.pictures.per_image import PerImage, end_point_error, per_image

GALLERY_SIZE = 12
PICTURES = "pictures"
#: tasks whose targets and predictions this package knows how to match and draw; other (plugin) tasks get the
#: report without pictures
TASKS = ("detection", "instance", "keypoints", "semantic", "flow")


@dataclass
class Figure:
    title: str
    src: str  # relative to report.html
    caption: str = ""
    wide: bool = False


@dataclass
class GalleryItem:
    src: str
    image_id: str
    why: str  # "worst" or "random"
    score: float
    caption: str


@dataclass
class Pictures:
    figures: list[Figure] = field(default_factory=list)
    gallery: list[GalleryItem] = field(default_factory=list)
    gallery_note: str = ""
    per_image_files: list[str] = field(default_factory=list)
    per_image_note: str = ""
    score_name: str = ""
    score_threshold: float | None = None  # detection: the operating threshold of the per-image counts
    tide: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    note: str = ""  # said in passing (a plugin task without pictures), unlike problems

    def summary(self) -> dict[str, Any]:
        """What ``metrics.json`` records about the analysis (file names and the TIDE numbers)."""
        return {"per_image": self.per_image_files, "per_image_score": self.score_name,
                "per_image_note": self.per_image_note, "score_threshold": self.score_threshold, "tide": self.tide,
                "gallery": [item.image_id for item in self.gallery], "pictures_dir": PICTURES}


def build_pictures(run_dir: Path, record: dict[str, Any], dataset: Dataset, indices: Sequence[int],
                   gallery_size: int = GALLERY_SIZE, seed: int = 0) -> Pictures:
    run_dir = Path(run_dir)
    out = run_dir / PICTURES
    task = record["task"]
    if task not in TASKS:
        return Pictures(note=f"No pictures for task {task!r} (drawn for {', '.join(TASKS)}).")
    (out / "gallery").mkdir(parents=True, exist_ok=True)
    info = dataset.info
    pairs = read_pairs(dataset, indices, run_dir, record["predictions"]["format"])
    table = per_image(task, info, pairs)
    pictures = Pictures(per_image_files=table.write(run_dir), per_image_note=table.notes.get("score", ""),
                        score_name=table.score, score_threshold=table.notes.get("score_threshold"))
    if task in ("detection", "instance", "keypoints"):
        _coco_curves(pictures, out, task, info, pairs)
    _class_bars(pictures, out, record)
    if task in ("detection", "instance"):
        _detection_extras(pictures, out, info, pairs, table, masks=task == "instance")
    if task == "semantic":
        names = list(info.classes)
        path, note = charts.confusion(table.extras["confusion"], names, names, out / "confusion.png",
                                      "confusion matrix (pixels, rows normalised)")
        pictures.figures.append(Figure("Confusion matrix", f"{PICTURES}/confusion.png", note))
    if task == "keypoints":
        _pck_skeleton(pictures, out, info, pairs, record)
    if task == "flow":
        charts.epe_histogram(table.extras["epe_histogram"], table.extras["epe_edges"], out / "epe_histogram.png",
                             "end-point error over every valid pixel")
        charts.flow_wheel(out / "flow_wheel.png")
        pictures.figures.append(Figure("End-point error histogram", f"{PICTURES}/epe_histogram.png",
                                       "dashed: the 1, 3 and 5 px thresholds"))
        pictures.figures.append(Figure("Flow colour key", f"{PICTURES}/flow_wheel.png",
                                       "direction = hue, length = saturation (white: no motion)"))
    _gallery(pictures, out, task, info, pairs, table, gallery_size, seed)
    return pictures


def build_pictures_safely(run_dir: Path, record: dict[str, Any], dataset: Dataset, indices: Sequence[int],
                          gallery_size: int = GALLERY_SIZE, seed: int = 0) -> Pictures:
    """``build_pictures`` for the end of a run: the metrics are already computed and must be written whatever
    happens to the pictures, so a failure here is printed with its traceback and named in the report instead of
    losing the run's result."""
    import sys
    import traceback

    try:
        return build_pictures(run_dir, record, dataset, indices, gallery_size=gallery_size, seed=seed)
    except Exception as exc:  # noqa: BLE001 -- diagnostics must not cost the run its metrics.json
        traceback.print_exc(file=sys.stderr)
        return Pictures(problems=[f"building the pictures failed ({type(exc).__name__}: {exc}); the metrics are "
                                  "unaffected"])


def _coco_curves(pictures: Pictures, out: Path, task: str, info: Any, pairs: Sequence[Pair]) -> None:
    """Precision at 101 recall points for every IoU threshold and class, from bench's COCO evaluator."""
    from harness.tasks import get_task
    from harness.metrics.coco import evaluate_coco
    from harness.metrics.coco_metric import _CocoMetric

    metric = next((m for m in get_task(task).metrics(info) if isinstance(m, _CocoMetric)), None)
    if metric is None:
        return
    metric.update([p.sample for p in pairs], [p.prediction for p in pairs])
    gt, results = metric.coco_dicts()
    result = evaluate_coco(gt, results, metric.iou_type, max_dets=metric.max_dets, use_cats=metric.use_cats,
                           **metric._eval_kwargs())
    params = result.params
    a = params.area_labels.index("all")
    m = len(params.max_dets) - 1
    precision = result.precision[:, :, :, a, m]  # (T, R, K)
    recall = np.asarray(params.recall_thresholds)
    valid = precision > -1
    mean = np.where(valid.any(axis=2), np.where(valid, precision, 0).sum(axis=2) / np.maximum(valid.sum(axis=2), 1),
                    np.nan)
    what = {"detection": "boxes", "instance": "masks", "keypoints": "OKS"}[task]
    charts.pr_by_iou(recall, mean, params.iou_thresholds, out / "pr_by_iou.png",
                     f"precision-recall ({what}, area all, maxDets {params.max_dets[-1]}), mean over classes")
    pictures.figures.append(Figure("Precision-recall per IoU threshold", f"{PICTURES}/pr_by_iou.png",
                                   "one curve per threshold; AP is the mean precision over the 101 recall points"))
    if precision.shape[2] > 1:
        _, note = charts.pr_by_class(recall, precision, result.category_names, params.iou_thresholds,
                                     out / "pr_by_class.png", f"precision-recall per class ({what})")
        pictures.figures.append(Figure("Precision-recall per class", f"{PICTURES}/pr_by_class.png",
                                       note or "best AP first", wide=True))


def _class_bars(pictures: Pictures, out: Path, record: dict[str, Any]) -> None:
    per_class = record.get("per_class") or {}
    headline = (record.get("protocol") or {}).get("headline") or next(iter(record.get("metrics") or {}), "")
    key = headline if headline in per_class else headline[1:] if headline[1:] in per_class else None
    if key is None:
        key = next((k for k in per_class if not k.startswith("PCK")), None)
    if key is None or len(per_class[key]) < 2:
        return
    table = per_class[key]
    higher = (record.get("higher_is_better") or {}).get(headline, True)
    _, note = charts.class_bars(list(table), list(table.values()), key, out / "per_class.png", higher)
    pictures.figures.append(Figure(f"{key} per class", f"{PICTURES}/per_class.png",
                                   (note + "; " if note else "") + "best first; classes without a score are left out"))


def _detection_extras(pictures: Pictures, out: Path, info: Any, pairs: Sequence[Pair], table: PerImage,
                      masks: bool) -> None:
    from harness.publish.pictures.tide import DESCRIPTIONS, tide

    names = list(info.classes)
    matrix = table.extras["class_confusion"]
    charts.confusion(matrix, names + ["background"], names + ["missed"], out / "class_confusion.png",
                     f"class confusion at IoU 0.5, detections scoring >= {table.extras['threshold']:.2f}")
    pictures.figures.append(Figure("Class confusion (IoU 0.5)", f"{PICTURES}/class_confusion.png",
                                   "rows: ground-truth class (last: no object); columns: detected class (last: missed)"))
    result = tide([(p.sample.target, p.prediction) for p in pairs], masks=masks)
    charts.tide_bars(result.delta_ap, result.counts, out / "tide.png",
                     f"TIDE error analysis ({'masks' if masks else 'boxes'}): AP50 {result.ap:.2f}")
    pictures.figures.append(Figure("Error analysis (TIDE)", f"{PICTURES}/tide.png",
                                   "AP50 points each error type costs, fixed one type at a time"))
    pictures.tide = {"ap50": result.ap, "delta_ap": result.delta_ap, "counts": result.counts,
                     "settings": result.settings, "descriptions": DESCRIPTIONS}
    for kind in result.delta_ap:  # per-image error counts join the per-image table
        table.table[f"tide_{kind}"] = [counts[kind] for counts in result.per_image]
    pictures.per_image_files = table.write(out.parent)


def _pck_skeleton(pictures: Pictures, out: Path, info: Any, pairs: Sequence[Pair], record: dict[str, Any]) -> None:
    per_class = record.get("per_class") or {}
    key = next((k for k in per_class if k.startswith("PCK")), None)
    names = list(info.keypoint_names)
    if key is None or not names:
        return
    values = [float(per_class[key].get(name, np.nan)) for name in names]
    total = np.zeros((len(names), 2))
    count = np.zeros(len(names))
    for pair in pairs:
        target = pair.sample.target
        for box, points in zip(np.asarray(target.boxes).reshape(-1, 4), np.asarray(target.keypoints)):
            if box[2] <= 0 or box[3] <= 0:
                continue
            labelled = points[:, 2] > 0
            total[labelled] += (points[labelled, :2] - box[:2]) / box[2]  # box widths: keeps the aspect
            count[labelled] += 1
    layout = np.where(count[:, None] > 0, total / np.maximum(count, 1)[:, None], np.nan)
    layout = np.where(np.isnan(layout), np.nanmean(layout, axis=0) if np.isfinite(layout).any() else 0.5, layout)
    charts.pck_skeleton(layout, names, values, info.skeleton, out / "pck_skeleton.png", f"{key} per joint")
    pictures.figures.append(Figure(f"{key} per joint", f"{PICTURES}/pck_skeleton.png",
                                   "joints at their mean position inside the person box", wide=True))


def select_gallery(scores: np.ndarray, higher_is_better: bool, size: int, seed: int) -> list[tuple[int, str]]:
    """(position, why): the worst half by per-image score (n/a last), then a fixed-seed random sample of the rest."""
    n = len(scores)
    if n <= size:
        order = np.argsort(np.where(np.isnan(scores), np.inf, scores if higher_is_better else -scores), kind="stable")
        return [(int(i), "all") for i in order]
    key = np.where(np.isnan(scores), np.inf, scores if higher_is_better else -scores)
    worst = [int(i) for i in np.argsort(key, kind="stable")[: math.ceil(size / 2)]]
    rest = np.setdiff1d(np.arange(n), worst)
    sample = sorted(int(i) for i in np.random.default_rng(seed).choice(rest, size - len(worst), replace=False))
    return [(i, "worst") for i in worst] + [(i, "random") for i in sample]


def _gallery(pictures: Pictures, out: Path, task: str, info: Any, pairs: Sequence[Pair], table: PerImage,
             size: int, seed: int) -> None:
    scores = table.table[table.score].to_numpy(dtype=np.float64)
    chosen = select_gallery(scores, table.higher_is_better, size, seed)
    names = dict(zip(info.category_ids, info.classes))
    palette = draw.palette_for(info, len(info.classes)) if task == "semantic" else None
    rows = table.table.to_dict("records")
    for rank, (position, why) in enumerate(chosen):
        pair = pairs[position]
        matches = table.extras["matches"][position] if task in ("detection", "instance") else None
        picture = draw_pair(task, info, pair, matches, table.extras.get("threshold", 0.0), names, palette)
        name = f"{rank:02d}_{safe_name(pair.sample.sample_id)}.png"
        picture.save(out / "gallery" / name)
        row = rows[position]
        details = " · ".join(f"{CAPTION_NAMES.get(k, k)} {_short(v)}" for k, v in row.items()
                             if k in CAPTION_NAMES or (k not in ("image_id", table.score) and k not in HIDDEN
                                                       and not str(k).startswith("tide_")))
        pictures.gallery.append(GalleryItem(f"{PICTURES}/gallery/{name}", str(pair.sample.sample_id), why,
                                            float(scores[position]), details))
    pictures.gallery_note = (f"{len(chosen)} images: the worst by per-image {table.score} and a random sample "
                             f"(seed {seed})" if len(pairs) > size else f"all {len(chosen)} images, worst first")


def draw_pair(task: str, info: Any, pair: Pair, matches: Any = None, threshold: float = 0.0,
              names: dict[Any, str] | None = None, palette: np.ndarray | None = None) -> Any:
    """Ground truth and prediction of one image side by side (a PIL image), as the gallery draws them."""
    from harness.publish.pictures.per_image import match_image

    image = pair.sample.load_image()
    target, prediction = pair.sample.target, pair.prediction
    names = names if names is not None else dict(zip(info.category_ids, info.classes))
    if task in ("detection", "instance"):
        matches = matches if matches is not None else match_image(target, prediction, task == "instance")
        return draw.detection_pair(image, target, prediction, matches, threshold, names, masks=task == "instance")
    if task == "keypoints":
        return draw.keypoints_pair(image, target, prediction, info.skeleton)
    if task == "semantic":
        background = next((i for i, name in enumerate(info.classes)
                           if name.strip("_ ").lower() in ("background", "unlabeled")), None)
        palette = palette if palette is not None else draw.palette_for(info, len(info.classes))
        return draw.semantic_pair(image, target, prediction, palette, info.ignore_index, background)
    epe, valid = end_point_error(target, prediction)
    return draw.flow_pair(image, target, prediction, epe, valid)


CAPTION_NAMES = {"tp": "TP", "fp": "FP", "fn": "FN", "gt": "objects", "people": "people",
                 "pixel_accuracy": "pixel accuracy", "within_1px": "share < 1 px", "Fl": "Fl"}
HIDDEN = {"detections", "detections_above_threshold", "valid_pixels", "classes_present"}


def _short(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if value != value else f"{value:.3g}"
    return str(value)
