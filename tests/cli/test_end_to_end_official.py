"""`bench run` end to end, per dataset: the predictions a run WROTE, scored by the official tool, give the run's
numbers to 1e-12, and `bench eval --run` on the same files gives them bit for bit.

The official tools run here: pycocotools (COCO boxes, masks, keypoints), cityscapesscripts'
evalPixelLevelSemanticLabeling (Cityscapes labelId PNGs) and mmsegmentation's IoUMetric functions (VOC palette
PNGs).  The ADE20K devkit and the Sintel evaluation are MATLAB / binary only: their formulas are written out
below in plain numpy from their published definitions (devkit: per-class I / (U + eps) averaged over all 150
classes; Sintel: EPE pooled over every pixel), never by calling bench's metric code.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from harness.cli import main

LIMIT = 16


def bench(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def run_one(tmp_path: Path, task: str, model: str, *extra: str) -> tuple[Path, dict]:
    reports = tmp_path / "reports"
    result = bench("run", "--task", task, "--model", model, "--limit", str(LIMIT), "--bootstrap", "0", "--no-cache",
                   "--reports-dir", str(reports), "--leaderboards-dir", str(tmp_path / "boards"), *extra)
    assert result.exit_code == 0, result.output
    (run_dir,) = [p for p in reports.iterdir() if model in p.name]
    return run_dir, json.loads((run_dir / "metrics.json").read_text())


def rescored(tmp_path: Path, run_dir: Path) -> dict:
    out = tmp_path / "eval.json"
    result = bench("eval", "--run", str(run_dir), "--json", str(out))
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())["metrics"]


def assert_same(ours: dict, theirs: dict, names) -> None:
    for name in names:
        a, b = ours[name], theirs[name]
        if b is None or (isinstance(b, float) and math.isnan(b)):
            assert a is None or math.isnan(a), name
        else:
            assert a == pytest.approx(b, abs=1e-12, rel=0), name


def assert_rescore_identical(tmp_path: Path, run_dir: Path, record: dict) -> None:
    again = rescored(tmp_path, run_dir)
    for name, value in record["metrics"].items():
        other = again[name]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            assert other is None or math.isnan(other), name
        else:
            assert other == value, name  # bit for bit: the same pipeline on the same predictions


# ------------------------------------------------------------------------------------------------------ COCO
COCO_STATS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
KEYPOINT_STATS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def pycocotools(annotation_file: Path, results_file: Path, iou_type: str, limit: int) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO(str(annotation_file))
    results = json.loads(results_file.read_text())
    evaluator = COCOeval(gt, gt.loadRes(results) if results else COCO(), iou_type)
    evaluator.params.imgIds = sorted(gt.getImgIds())[:limit]
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return evaluator.stats


def annotation_file(record: dict) -> Path:
    (path,) = (Path(record["dataset"]["root"]) / "annotations").glob("*.json")
    return path


@pytest.mark.parametrize("task, model, iou_type, stats", [
    ("detection", "centernet", "bbox", COCO_STATS),
    ("keypoints", "heatmap", "keypoints", KEYPOINT_STATS),
])
def test_coco_boxes_and_keypoints(tmp_path, task, model, iou_type, stats):
    run_dir, record = run_one(tmp_path, task, model)
    assert record["protocol"]["submission"] == "coco-results" and record["samples"] == LIMIT
    official = pycocotools(annotation_file(record), run_dir / "predictions.json", iou_type, LIMIT)
    assert_same(record["metrics"], dict(zip(stats, official)), stats)
    assert_rescore_identical(tmp_path, run_dir, record)


def test_coco_instance_masks_and_their_boxes(tmp_path):
    run_dir, record = run_one(tmp_path, "instance", "centernet-mask")
    segm = pycocotools(annotation_file(record), run_dir / "predictions.json", "segm", LIMIT)
    boxes = pycocotools(annotation_file(record), run_dir / "predictions.bbox.json", "bbox", LIMIT)
    assert_same(record["metrics"], dict(zip(COCO_STATS, segm)), COCO_STATS)
    assert_same(record["metrics"], {f"bbox/{k}": v for k, v in zip(COCO_STATS, boxes)},
                [f"bbox/{k}" for k in COCO_STATS])
    assert_rescore_identical(tmp_path, run_dir, record)


# -------------------------------------------------------------------------------------------------- semantic
def test_cityscapes_semantic_with_iiou_against_cityscapesscripts(tmp_path, monkeypatch):
    monkeypatch.setattr(np, "in1d", lambda a, b, invert=False: np.isin(np.ravel(a), b, invert=invert), raising=False)
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official

    run_dir, record = run_one(tmp_path, "semantic", "fcn", "--dataset", "cityscapes")
    assert record["protocol"]["name"] == "cityscapes-pixel"
    assert record["metrics"]["iIoU"] == record["metrics"]["iIoU"]  # filled, not NaN
    gt_root = Path(record["dataset"]["root"]) / "gtFine" / "val"
    predictions = sorted((run_dir / "predictions").rglob("*.png"))
    assert len(predictions) == LIMIT
    ground_truth = [gt_root / p.parent.name / f"{p.stem}_gtFine_labelIds.png" for p in predictions]
    args = official.args
    for name, value in dict(quiet=True, JSONOutput=False, evalInstLevelScore=True, evalPixelAccuracy=False,
                            colorized=False).items():
        monkeypatch.setattr(args, name, value)
    result = official.evaluateImgLists([str(p) for p in predictions], [str(g) for g in ground_truth], args)
    theirs = {"mIoU": result["averageScoreClasses"], "iIoU": result["averageScoreInstClasses"],
              "IoU_category": result["averageScoreCategories"], "iIoU_category": result["averageScoreInstCategories"]}
    assert_same(record["metrics"], theirs, theirs)
    # cityscapesscripts lists every label; those outside the 19 evaluated classes (ignoreInEval) are NaN there
    assert_same(record["per_class"]["IoU"], result["classScores"], record["per_class"]["IoU"])
    assert_same(record["per_class"]["iIoU"], result["classInstScores"], record["per_class"]["iIoU"])
    for scores, ours in ((result["classScores"], record["per_class"]["IoU"]),
                         (result["classInstScores"], record["per_class"]["iIoU"])):
        assert all(math.isnan(value) for name, value in scores.items() if name not in ours)
    assert_rescore_identical(tmp_path, run_dir, record)


def test_voc_semantic_palette_pngs_against_mmseg(tmp_path):
    import torch
    from mmseg.evaluation.metrics import IoUMetric

    run_dir, record = run_one(tmp_path, "semantic", "unet", "--dataset", "voc")
    year_dir = Path(record["dataset"]["root"])
    classes = len(record["per_class"]["IoU"])
    results = []
    for prediction_file in sorted((run_dir / "predictions").glob("*.png")):
        assert Image.open(prediction_file).mode == "P"  # VOC result files are palette PNGs
        pred = torch.from_numpy(np.asarray(Image.open(prediction_file)).astype(np.int64))
        label = torch.from_numpy(np.asarray(Image.open(year_dir / "SegmentationClass" / prediction_file.name))
                                 .astype(np.int64))
        results.append(IoUMetric.intersect_and_union(pred, label, classes, 255))
    assert len(results) == LIMIT
    # mmseg's areas are integer pixel counts held in float32 (exact below 2**24); its total_area_to_metrics then
    # divides in float32, so the ratios are formed here in float64 with mmseg's formulas
    inter, union, pred_area, label_area = (np.sum([r[i].numpy() for r in results], axis=0).astype(np.float64)
                                           for i in range(4))
    with np.errstate(divide="ignore", invalid="ignore"):
        iou, acc, dice = inter / union, inter / label_area, 2 * inter / (pred_area + label_area)
    assert record["metrics"]["aAcc"] == pytest.approx(inter.sum() / label_area.sum(), abs=1e-12)
    assert record["metrics"]["mIoU"] == pytest.approx(float(np.nanmean(iou)), abs=1e-12)
    assert record["metrics"]["mAcc"] == pytest.approx(float(np.nanmean(acc)), abs=1e-12)
    assert record["metrics"]["mDice"] == pytest.approx(float(np.nanmean(dice)), abs=1e-12)
    # and mmseg's own float32 summary agrees to float32 precision
    scores = IoUMetric.total_area_to_metrics(*(sum(r[i] for r in results) for i in range(4)), ["mIoU"], beta=1)
    assert record["metrics"]["aAcc"] == pytest.approx(float(scores["aAcc"]), abs=1e-6)
    assert_rescore_identical(tmp_path, run_dir, record)


def test_ade20k_devkit_mean_over_all_classes(tmp_path):
    run_dir, record = run_one(tmp_path, "semantic", "majority-class", "--dataset", "ade20k")
    assert record["protocol"]["name"] == "ade20k-devkit"
    root = Path(record["dataset"]["root"])
    # the devkit (evaluationCode/utils_eval.m, intersectionAndUnion): on each image, pixels whose annotation is
    # 0 ("other") are left out; per class c in 1..150 the intersection and union of (pred == c) and (anno == c)
    # are summed over images; IoU = I / (U + eps); the mean is over all 150 classes; pixel accuracy is
    # correct / labelled pixels.  Prediction files hold 1..150 as the annotations do.
    inter, union = np.zeros(150), np.zeros(150)
    correct = labelled = 0
    files = sorted((run_dir / "predictions").glob("*.png"))
    assert len(files) == LIMIT
    for prediction_file in files:
        pred = np.asarray(Image.open(prediction_file)).astype(np.int64)
        anno = np.asarray(Image.open(root / "annotations" / "validation" / prediction_file.name)).astype(np.int64)
        pred = pred * (anno > 0)
        correct += int(((pred == anno) & (anno > 0)).sum())
        labelled += int((anno > 0).sum())
        for c in range(1, 151):
            p, a = pred == c, anno == c
            inter[c - 1] += (p & a).sum()
            union[c - 1] += (p | a).sum()
    iou = inter / (union + np.spacing(1))
    assert record["metrics"]["mIoU"] == pytest.approx(iou.mean(), abs=1e-12)
    assert record["metrics"]["aAcc"] == pytest.approx(correct / labelled, abs=1e-12)
    assert_rescore_identical(tmp_path, run_dir, record)


# ------------------------------------------------------------------------------------------------------- flow
def read_flo(path: Path) -> np.ndarray:
    """The Middlebury layout, read independently: float32 tag 202021.25, int32 width, height, (u, v) rows."""
    data = path.read_bytes()
    assert np.frombuffer(data, "<f4", 1)[0] == np.float32(202021.25)
    width, height = np.frombuffer(data, "<i4", 2, 4)
    return np.frombuffer(data, "<f4", offset=12).reshape(height, width, 2).astype(np.float64)


def test_sintel_flo_files_pooled_epe(tmp_path):
    run_dir, record = run_one(tmp_path, "flow", "horn-schunck")
    assert record["protocol"]["name"] == "sintel"
    training = Path(record["dataset"]["root"])
    files = sorted((run_dir / "predictions").rglob("*.flo"))
    assert len(files) == LIMIT and all(f.parent.parent == run_dir / "predictions" for f in files)  # <scene>/frame
    # Sintel's EPE: the Euclidean distance of the flow vectors, averaged over every pixel of every frame
    errors = []
    for path in files:
        gt = read_flo(training / "flow" / path.parent.name / path.name)
        errors.append(np.sqrt(((read_flo(path) - gt) ** 2).sum(axis=-1)).ravel())
    pooled = np.concatenate(errors)
    assert record["metrics"]["EPE"] == pytest.approx(math.fsum(pooled) / pooled.size, abs=1e-12)
    assert record["metrics"]["1px"] == pytest.approx(float((pooled < 1).mean()), abs=1e-12)
    assert_rescore_identical(tmp_path, run_dir, record)


# ------------------------------------------------------------------------------------------------ VOC boxes
@pytest.mark.parametrize("dialect", [None, "mmdet"])
def test_voc_devkit_result_files_against_mmdet_eval_map(tmp_path, dialect):
    """mmdet's eval_map (area mode = the devkit's VOC2010+ AP, computed in float32) on the comp4 files the run
    wrote.  Under ``--dialect mmdet`` the numbers are mmdet's to the bit; the default devkit dialect agrees to
    float32 precision (the exact float64 devkit cases live in tests/metrics/test_voc_mmdet.py)."""
    from tests.metrics.voc_oracles import eval_map
    from tests.submissions.test_voc_devkit import parse_results, parse_xml

    run_dir, record = run_one(tmp_path, "detection", "centernet", "--dataset", "voc",
                              *(("--dialect", dialect) if dialect else ()))
    assert record["protocol"]["name"] == "voc-devkit" and record["protocol"]["dialect"] == dialect
    year_dir = Path(record["dataset"]["root"])
    classes = list(record["per_class"]["AP"])
    image_set = record["dataset"]["split"].split("-", 1)[1]
    rows = parse_results(run_dir / "predictions", image_set, classes)
    image_ids = [line.split()[0] for line in (year_dir / "ImageSets" / "Main" / f"{image_set}.txt").read_text()
                 .splitlines()[:LIMIT]]
    detections = [[np.array([[x1 - 1, y1 - 1, x2 - 1, y2 - 1, s] for i, s, x1, y1, x2, y2 in rows[c] if i == image_id])
                   .reshape(-1, 5) for c in range(len(classes))] for image_id in image_ids]
    assert sum(len(d) for image in detections for d in image) > LIMIT  # the run wrote real detections
    annotations = [parse_xml(year_dir / "Annotations" / f"{i}.xml", classes) for i in image_ids]
    expected_map, per_class = eval_map(detections, annotations, "area")
    if dialect == "mmdet":
        assert record["metrics"]["mAP"] == float(expected_map)
    else:
        assert record["metrics"]["mAP"] == pytest.approx(float(expected_map), abs=1e-6)
    assert_rescore_identical(tmp_path, run_dir, record)


# ------------------------------------------------------------------------------------------------------ MPII
def test_mpii_pred_mat_scored_with_the_toolkit_formula(tmp_path):
    """The MPII toolkit (evaluatePCKh.m) is MATLAB only; its rule, applied here to the written ``pred.mat`` and the
    dataset's ``mpii_gt_val.mat``: head size = 0.6 * the head box diagonal; a joint with ``jnt_missing == 0``
    is correct when its distance / head size <= threshold; per-joint PCKh over the people; the mean pools every
    joint but pelvis (index 6) and thorax (7), i.e. per-joint values weighted by their visible counts."""
    import scipy.io

    run_dir, record = run_one(tmp_path, "keypoints", "heatmap", "--dataset", "mpii")
    assert record["protocol"]["name"] == "mpii-pckh"
    predicted = scipy.io.loadmat(run_dir / "predictions" / "pred.mat")["pos_pred_src"]
    (gt_file,) = Path(record["dataset"]["root"]).rglob("mpii_gt_val.mat")
    gt = scipy.io.loadmat(gt_file)
    positions, missing, head_boxes = gt["pos_gt_src"], gt["jnt_missing"], gt["headboxes_src"]
    scored = np.isfinite(predicted).all(axis=(0, 1))  # --limit: people of unscored images were written as NaN
    assert 0 < scored.sum() < scored.size
    head_size = 0.6 * np.linalg.norm(head_boxes[1] - head_boxes[0], axis=0)
    distance = np.linalg.norm(predicted - positions, axis=1) / head_size
    visible = (missing == 0) & scored
    keep = np.ones(16, bool)
    keep[[6, 7]] = False
    for threshold, name in ((0.5, "PCKh@0.5"), (0.1, "PCKh@0.1")):
        correct = (distance <= threshold) & visible
        expected = correct[keep].sum() / visible[keep].sum()
        assert record["metrics"][name] == pytest.approx(expected, abs=1e-12)
    assert_rescore_identical(tmp_path, run_dir, record)


# ------------------------------------------------------------------------------------------ cityscapes instance
def test_cityscapes_instance_results_against_cityscapesscripts(tmp_path, monkeypatch):
    from tests.metrics.cityscapes_instance_cases import official_runner

    run_dir, record = run_one(tmp_path, "instance", "centernet-mask", "--dataset", "cityscapes")
    assert record["protocol"]["name"] == "cityscapes-instance"
    assert record["predictions"] == {"format": "cityscapes-instance", "path": "predictions"}
    gt_root = Path(record["dataset"]["root"]) / "gtFine" / "val"
    txt_files = sorted((run_dir / "predictions").rglob("*_pred.txt"))
    assert len(txt_files) == LIMIT
    ground_truth = [str(gt_root / t.parent.name / t.name.replace("_pred.txt", "_gtFine_instanceIds.png"))
                    for t in txt_files]
    reference = official_runner(monkeypatch)(Path(record["dataset"]["root"]), run_dir / "predictions",
                                             tmp_path / "official", ground_truth)
    averages = reference["averages"]
    assert 0.05 < averages["allAp"] < 1  # a trained model: the comparison below is not between two zeros
    assert record["metrics"]["AP"] == pytest.approx(averages["allAp"], abs=1e-12)
    assert record["metrics"]["AP50"] == pytest.approx(averages["allAp50%"], abs=1e-12)
    for name, theirs in averages["classes"].items():
        for ours_key, their_key in (("AP", "ap"), ("AP50", "ap50%")):
            ours, expected = record["per_class"][ours_key][name], float(theirs[their_key])
            assert (math.isnan(ours) and math.isnan(expected)) or ours == pytest.approx(expected, abs=1e-12)
    assert_rescore_identical(tmp_path, run_dir, record)
