"""Semantic segmentation from folders of PNG label maps: ADE20K, PASCAL VOC and Cityscapes presets, or generic.

Predictions are PNGs in the same label space as the ground-truth files, one per image, read one pair at a
time so memory stays flat whatever the dataset size.

* Generic, ``ade20k`` and ``voc``: prediction and ground truth pair up by file stem (searched recursively).
  ADE20K files hold 0..150 with 0 = "other": ground truth 0 is ignored (``reduce_zero_label``) and a predicted
  0 names no class, so it is a false negative of the true class, as in the devkit and in mmsegmentation's
  submission format (which adds 1 to the 0..149 output).  The default dialect is the devkit's mean over all
  150 classes; ``mmseg`` is the nanmean.  VOC files are palette PNGs (the palette index is the class), 21
  classes, 255 = boundary/ignore.
* ``cityscapes``: ground truth ``*_gtFine_labelIds.png`` under ``gtFine/<split>/<city>/`` (or any folder
  below ``--gt``); a prediction belongs to the ground truth whose ``<city>_<seq>_<frame>`` id appears in its
  file name, as cityscapesscripts finds them.  iIoU uses ``*_gtFine_instanceIds.png`` beside each ground truth
  when present.  Predictions hold labelIds (the official encoding) or, with ``--prediction-ids train_id``,
  trainIds.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from harness.core.errors import BenchError, DataError, PredictionError
from harness.file_eval import FILE_EVALUATORS
from harness.file_eval.base import EvalRequest, FileEvaluator, index_files, pair_files, require_dir, require_file
from harness.core.metric import MetricResult
from harness.metrics.semantic import DEFAULT_IGNORE_INDEX, SemanticDialect, out_of_range_values, reduce_zero_label
from harness.core.structures import Sample, SemanticPrediction, SemanticTarget

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)


@dataclass(frozen=True)
class LabelMapPreset:
    """How one dataset stores label maps and which mean its official number uses."""

    num_classes: int
    ignore_index: int
    reduce_zero_label: bool
    default_dialect: str
    class_names: tuple[str, ...] | None
    encoding: str


PRESETS: dict[str, LabelMapPreset] = {
    "ade20k": LabelMapPreset(  # classes are named by their value in the files, 1..150
        150, DEFAULT_IGNORE_INDEX, True, "ade20k-devkit", tuple(str(value) for value in range(1, 151)),
        "PNG values 0..150, 0 = other (ignored in the ground truth, no class in a prediction)",
    ),
    "voc": LabelMapPreset(21, 255, False, "mmseg", VOC_CLASSES, "palette PNGs, index = class 0..20, 255 = ignore"),
}
CITYSCAPES = "cityscapes"
#: dialect names accepted here; "official" means the preset's reference evaluator
DIALECTS = ("mmseg", "ade20k-devkit", "official", "cityscapesscripts")
CITYSCAPES_ID = re.compile(r"([A-Za-z]+)_(\d{6})_(\d{6})")
GT_LABEL_SUFFIX = "_gtFine_labelIds.png"
GT_INSTANCE_SUFFIX = "_gtFine_instanceIds.png"


def evaluate_label_maps(request: EvalRequest) -> MetricResult:
    if request.dataset == CITYSCAPES:
        return _evaluate_cityscapes(request)
    return _evaluate_by_stem(request)


# ------------------------------------------------------------------------------- generic, ade20k, voc
def _resolve_preset(request: EvalRequest) -> tuple[LabelMapPreset, str]:
    if request.option("prediction_ids") is not None or request.option("split") is not None:
        raise BenchError("--prediction-ids and --split apply to --dataset cityscapes only")
    preset = PRESETS.get(request.dataset) if request.dataset else None
    num_classes = request.option("num_classes")
    if preset is None:
        if num_classes is None:
            raise BenchError("task 'semantic' needs --dataset (ade20k, voc, cityscapes) or --num-classes N")
        shifted = bool(request.option("reduce_zero_label", False))
        preset = LabelMapPreset(
            num_classes, request.option("ignore_index", DEFAULT_IGNORE_INDEX), shifted, "mmseg", None,
            "PNG values 1..num_classes, 0 ignored (reduce_zero_label)" if shifted else "PNG values 0..num_classes-1",
        )
    elif num_classes is not None or request.option("ignore_index") is not None or request.option("reduce_zero_label"):
        raise BenchError(f"--dataset {request.dataset} fixes the classes; "
                         "drop --num-classes/--ignore-index/--reduce-zero-label")
    if preset.ignore_index < preset.num_classes and preset.ignore_index >= 0:
        raise BenchError(f"--ignore-index {preset.ignore_index} is a class index (0..{preset.num_classes - 1})")
    dialect = request.dialect or preset.default_dialect
    if dialect == "official":
        if request.dataset != "ade20k":
            raise BenchError("--dialect official names the ADE20K devkit (with --dataset ade20k) or cityscapesscripts")
        dialect = "ade20k-devkit"
    if dialect not in ("mmseg", "ade20k-devkit"):
        raise BenchError(f"--dialect {dialect} applies to --dataset cityscapes only (here: mmseg, ade20k-devkit)")
    return preset, dialect


def _read_ids(path: Path) -> set[str]:
    require_file(path, "--ids list")
    try:
        lines = path.read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the id list ({exc})", path) from None
    if not lines:
        raise DataError("the id list is empty", path)
    return set(lines)


def _gt_folder(gt: Path, dataset: str | None) -> Path:
    require_dir(gt, "ground-truth")
    if dataset == "voc" and (gt / "SegmentationClass").is_dir():
        return gt / "SegmentationClass"  # a VOC2012/ devkit folder
    return gt


def _evaluate_by_stem(request: EvalRequest) -> MetricResult:
    from harness.metrics.semantic import SemanticSegmentationMetric

    preset, dialect = _resolve_preset(request)
    gt_root = _gt_folder(request.gt, request.dataset)
    pred_root = require_dir(request.pred, "prediction", PredictionError)
    gt_files = index_files(gt_root.rglob("*.png"), lambda p: p.stem, "ground-truth", DataError)
    ids_file = request.option("ids")
    if ids_file is not None:
        wanted = _read_ids(Path(ids_file))
        missing = sorted(wanted - set(gt_files))
        if missing:
            raise DataError(f"id {missing[0]!r} has no ground-truth PNG in {gt_root}", ids_file)
        gt_files = {key: path for key, path in gt_files.items() if key in wanted}
    pred_files = index_files(pred_root.rglob("*.png"), lambda p: p.stem, "prediction", PredictionError)
    pairs = pair_files(gt_files, pred_files, gt_root, lambda key: f"{pred_root}/{key}.png")

    metric = SemanticSegmentationMetric(
        preset.num_classes, class_names=preset.class_names, ignore_index=preset.ignore_index, dialect=cast(SemanticDialect, dialect),
        reduce_zero_label=preset.reduce_zero_label,
    )
    # predictions share the files' label space: with reduce_zero_label they hold 0..C (0 = no class)
    file_classes = preset.num_classes + 1 if preset.reduce_zero_label else preset.num_classes
    for key, gt_path, pred_path in request.track(pairs, "label maps"):
        gt, pred = _read_pair(gt_path, pred_path)
        bad = out_of_range_values(pred, file_classes, preset.ignore_index)
        if bad.size:
            shown = ", ".join(str(v) for v in bad[:5].tolist())
            raise PredictionError(f"item {key!r}: label values outside 0..{file_classes - 1} "
                                  f"or {preset.ignore_index}: {shown}", pred_path)
        if preset.reduce_zero_label:
            pred = reduce_zero_label(pred, preset.ignore_index)
        _add(metric.update, key, gt_path, pred_path, gt, pred)
    result = metric.compute()
    result.settings.update(
        dataset=request.dataset or "generic", encoding=preset.encoding, items=len(pairs),
        matching="prediction and ground truth by file stem", ground_truth=str(gt_root), predictions=str(pred_root),
        ids=str(ids_file) if ids_file is not None else None,
    )
    if preset.reduce_zero_label:
        result.settings["prediction_labels"] = "as the annotation files: 0 = no class (a false negative), k = class k-1"
    return result


def read_label_png(path: Path) -> np.ndarray:
    """``harness.io.imageio.read_label_png``, imported on first use: Pillow is not needed to score COCO files."""
    from harness.io.imageio import read_label_png as read

    return read(path)


def _read_pair(gt_path: Path, pred_path: Path) -> tuple[np.ndarray, np.ndarray]:
    gt = read_label_png(gt_path)
    pred = read_label_png(pred_path)
    if gt.ndim != 2:
        raise DataError(f"ground-truth label map must be single-channel, got shape {gt.shape}", gt_path)
    if pred.ndim != 2:
        raise PredictionError(f"label map must be single-channel, got shape {pred.shape}", pred_path)
    if pred.shape != gt.shape:
        raise PredictionError(
            f"label map is {pred.shape[1]}x{pred.shape[0]} (WxH), ground truth {gt_path.name} is "
            f"{gt.shape[1]}x{gt.shape[0]}", pred_path,
        )
    return gt, pred


def _add(update: Any, key: str, gt_path: Path, pred_path: Path, gt: np.ndarray, pred: np.ndarray,
         **target_fields: Any) -> None:
    """Score one pair; the metric's own errors are re-raised naming the file they are about."""
    try:
        update([Sample(key, None, SemanticTarget(gt, **target_fields))], [SemanticPrediction(pred)])
    except PredictionError as exc:
        raise PredictionError(str(exc), pred_path) from None
    except DataError as exc:
        raise DataError(str(exc), gt_path) from None


# ------------------------------------------------------------------------------------------ cityscapes
CITYSCAPES_SPLITS = ("train", "val", "test", "train_extra")


def _cityscapes_gt_root(gt: Path, split: str) -> Path:
    """The dataset root, ``gtFine/``, ``gtFine/<split>/`` or any folder below it."""
    require_dir(gt, "ground-truth")
    if (gt / "gtFine").is_dir():
        gt = gt / "gtFine"
    if (gt / split).is_dir():
        return gt / split
    if any((gt / name).is_dir() for name in CITYSCAPES_SPLITS):  # never mix splits
        raise DataError(f"no split folder {split!r} here", gt)
    return gt


def _cityscapes_gt_key(path: Path) -> str:
    prefix = path.name[: -len(GT_LABEL_SUFFIX)]
    if not CITYSCAPES_ID.fullmatch(prefix):
        raise DataError("file name is not <city>_<seq>_<frame>_gtFine_labelIds.png", path)
    return prefix


def _cityscapes_pred_key(path: Path) -> str:
    found = CITYSCAPES_ID.search(path.name)
    if found is None:
        raise PredictionError("file name holds no Cityscapes id <city>_<seq>_<frame>", path)
    return found.group(0)


def _evaluate_cityscapes(request: EvalRequest) -> MetricResult:
    from harness.metrics.cityscapes import CityscapesSemanticMetric

    for name in ("num_classes", "ignore_index", "reduce_zero_label", "ids"):
        if request.option(name) is not None and request.option(name) is not False:
            flag = "--" + name.replace("_", "-")
            raise BenchError(f"--dataset cityscapes fixes the classes and the file list; drop {flag}")
    if request.dialect not in (None, "official", "cityscapesscripts"):
        raise BenchError(f"--dataset cityscapes has one dialect, cityscapesscripts (got {request.dialect!r})")
    split = request.option("split", "val")
    prediction_ids = request.option("prediction_ids", "label_id")
    gt_root = _cityscapes_gt_root(request.gt, split)
    pred_root = require_dir(request.pred, "prediction", PredictionError)
    gt_files = index_files(gt_root.rglob(f"*{GT_LABEL_SUFFIX}"), _cityscapes_gt_key, "ground-truth", DataError)
    pred_files = index_files(pred_root.rglob("*.png"), _cityscapes_pred_key, "prediction", PredictionError)
    pairs = pair_files(gt_files, pred_files, gt_root, lambda key: f"a PNG named *{key}* under {pred_root}")

    instance_files = {key: gt.with_name(gt.name.replace(GT_LABEL_SUFFIX, GT_INSTANCE_SUFFIX))
                      for key, gt in gt_files.items()}
    present = {key for key, path in instance_files.items() if path.is_file()}
    if present and len(present) != len(instance_files):
        missing = sorted(set(instance_files) - present)[0]
        raise DataError("instance map missing (others are present, so iIoU needs every one)", instance_files[missing])
    instance_level = bool(present)

    metric = CityscapesSemanticMetric(prediction_ids=prediction_ids, instance_level=instance_level)
    for key, gt_path, pred_path in request.track(pairs, "label maps"):
        gt, pred = _read_pair(gt_path, pred_path)
        instances = read_label_png(instance_files[key]) if instance_level else None
        _add(metric.update, key, gt_path, pred_path, gt, pred, instance_map=instances)
    result = metric.compute()
    result.settings.update(
        dataset=CITYSCAPES, dialect="cityscapesscripts", items=len(pairs), iIoU="gtFine_instanceIds" if instance_level
        else "skipped: no gtFine_instanceIds files", matching="<city>_<seq>_<frame> id in the prediction file name",
        ground_truth=str(gt_root), predictions=str(pred_root),
    )
    return result


FILE_EVALUATORS.register("semantic")(
    FileEvaluator(
        run=evaluate_label_maps,
        options=frozenset({"num_classes", "ignore_index", "reduce_zero_label", "ids", "split", "prediction_ids"}),
        datasets=("ade20k", "voc", CITYSCAPES),
        dialects=DIALECTS,
        summary="folders of PNG label maps matched by file stem (Cityscapes: by <city>_<seq>_<frame>)",
    )
)
