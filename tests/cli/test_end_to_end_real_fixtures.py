"""`bench run` end to end on the REAL native-layout fixtures in tests/data (not the embedded minis): the files a
run WROTE, scored by the official tool, give the run's numbers to 1e-12, and `bench eval --run` gives them bit for
bit.  The embedded-mini twin of this file is tests/cli/test_end_to_end_official.py; its helpers are reused.

Official tools run here: pycocotools (COCO keypoints), cityscapesscripts' pixel- and instance-level evaluators,
mmsegmentation's IoUMetric (VOC palette PNGs) and mmdetection's eval_map (VOC boxes, float32).  Where the tool is
MATLAB / binary only (the VOC devkit's VOCevaldet.m, the ADE20K devkit, the MPII toolkit, the Sintel evaluation),
its published rule is written out below in plain numpy, never by calling bench's metric code.

Models: the committed in-repo weights learned the embedded minis, whose label spaces differ from real VOC, so the
VOC detector is `bench train`-ed for a few seconds on the image it is run on (VOC2007 / VOC2012 000001), the VOC
segmenter is a torchvision LR-ASPP with seeded random weights, and the Cityscapes instance model is `bench
train`-ed on the frankfurt frame (models that overfit their one image: the comparisons are not between zeros).  Every run is the whole
fixture (no --limit), --bootstrap 0 --no-cache, into tmp reports / leaderboards folders.
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
from PIL import Image

from tests.cli.test_end_to_end_official import (KEYPOINT_STATS, assert_rescore_identical, assert_same, bench,
                                                pycocotools, read_flo)

DATA = Path(__file__).resolve().parents[1] / "data"
VOC = DATA / "voc" / "VOCdevkit"
CITYSCAPES = DATA / "cityscapes"


def run_real(tmp_path: Path, task: str, model: str, data_root: Path, *extra: str) -> tuple[Path, dict]:
    """``bench run`` on a whole fixture; the run folder and its metrics.json."""
    reports = tmp_path / "reports"
    result = bench("run", "--task", task, "--model", model, "--data-root", str(data_root), "--bootstrap", "0",
                   "--no-cache", "--reports-dir", str(reports), "--leaderboards-dir", str(tmp_path / "boards"),
                   *extra)
    assert result.exit_code == 0, result.output
    (run_dir,) = [p for p in reports.iterdir() if model in p.name]
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["limit"] is None and record["dataset"]["root"].startswith(str(data_root).rstrip("/"))
    return run_dir, record


def train(tmp_path: Path, task: str, model: str, dataset: str, data_root: Path, split: str, epochs: int) -> Path:
    out = tmp_path / f"{model}.pt"
    result = bench("train", "--task", task, "--model", model, "--dataset", dataset, "--data-root", str(data_root),
                   "--split", split, "--val-split", "", "--epochs", str(epochs), "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


# ------------------------------------------------------------------------------------------------ VOC boxes
def devkit_ap(detections: list[tuple[str, float, np.ndarray]], gt: dict[str, list[tuple[np.ndarray, bool]]],
              mode: str) -> float:
    """VOCevaldet.m (VOC2007 devkit; VOC2010+ for ``area``), written out from the MATLAB source.

    Detections sorted by descending confidence (MATLAB's ``sort(-confidence)``, stable on ties); each is matched
    to the ground-truth box of its image with the largest overlap, boxes in 1-based inclusive pixels (widths
    ``x2 - x1 + 1``), overlap = intersection / union; overlap >= 0.5: a difficult box ignores the detection, a
    box not yet detected makes it a TP (and is marked), an already detected one makes it an FP; else FP.
    rec = cumsum(tp) / npos (npos = non-difficult boxes), prec = cumsum(tp) / (cumsum(fp) + cumsum(tp)).
    11-point (VOC2007): ``for t = 0:0.1:1, ap = ap + max(prec(rec >= t)) / 11`` (0 when empty), summed in that
    order.  Area (VOC2010+): precision made monotone from the right over [0, rec, 1] / [0, prec, 0], summed over
    the recall steps.
    """
    order = sorted(range(len(detections)), key=lambda i: -detections[i][1])
    taken = {image: [False] * len(boxes) for image, boxes in gt.items()}
    tp, fp = np.zeros(len(order)), np.zeros(len(order))
    for d, i in enumerate(order):
        image, _, bb = detections[i]
        best, best_j = -math.inf, -1
        for j, (g, _) in enumerate(gt.get(image, [])):
            iw = min(bb[2], g[2]) - max(bb[0], g[0]) + 1
            ih = min(bb[3], g[3]) - max(bb[1], g[1]) + 1
            if iw > 0 and ih > 0:
                union = (bb[2] - bb[0] + 1) * (bb[3] - bb[1] + 1) + (g[2] - g[0] + 1) * (g[3] - g[1] + 1) - iw * ih
                if iw * ih / union > best:
                    best, best_j = iw * ih / union, j
        if best >= 0.5:
            if gt[image][best_j][1]:
                continue
            if not taken[image][best_j]:
                tp[d], taken[image][best_j] = 1, True
            else:
                fp[d] = 1
        else:
            fp[d] = 1
    npos = sum(not difficult for boxes in gt.values() for _, difficult in boxes)
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    rec, prec = tp / npos, tp / (fp + tp)
    if mode == "11point":
        ap = 0.0
        for t in np.arange(11) * 0.1:  # MATLAB's 0:0.1:1 (k * 0.1 on the lower half; no recall here sits on a t)
            above = prec[rec >= t]
            ap = ap + (above.max() if above.size else 0.0) / 11
        return ap
    mrec, mpre = np.concatenate([[0.0], rec, [1.0]]), np.concatenate([[0.0], prec, [0.0]])
    for k in range(len(mpre) - 2, -1, -1):
        mpre[k] = max(mpre[k], mpre[k + 1])
    steps = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[steps] - mrec[steps - 1]) * mpre[steps]))


@pytest.mark.parametrize("year, protocol, headline_mode, objects, found", [
    # VOC2007 000001: a dog and a person; the VOC2007 devkit scores 11-point AP
    ("2007", "voc07-devkit", "11point", {"dog", "person"}, "dog"),
    # the VOC2012 000001 pair (VOC2007's 000002 renamed by mmyolo): one train; VOC2010+ devkits score the area
    ("2012", "voc-devkit", "area", {"train"}, "train"),
])
def test_voc_boxes_against_the_devkit_rule_and_mmdet_eval_map(tmp_path, year, protocol, headline_mode, objects,
                                                              found):
    from tests.metrics.voc_oracles import eval_map
    from tests.submissions.test_voc_devkit import parse_results, parse_xml

    # a detector for the 20 VOC classes, fitted on the year's one image for 120 steps
    checkpoint = train(tmp_path, "detection", "centernet", "voc", VOC, f"{year}-trainval", 120)
    run_dir, record = run_real(tmp_path, "detection", "centernet", VOC, "--dataset", "voc", "--split",
                               f"{year}-test", "--checkpoint", str(checkpoint))
    assert record["protocol"]["name"] == protocol and record["dataset"]["split"] == f"{year}-test"
    assert record["samples"] == 1
    year_dir = VOC / f"VOC{year}"
    classes = list(record["per_class"]["AP"])
    assert len(classes) == 20
    rows = parse_results(run_dir / "predictions", "test", classes)
    assert sum(len(r) for r in rows.values()) > 10  # the run wrote real detections
    gt: dict[str, dict[str, list]] = {name: {} for name in classes}
    for obj in ElementTree.parse(year_dir / "Annotations" / "000001.xml").getroot().iter("object"):
        box = np.array([float(obj.find("bndbox").find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")])
        gt[obj.find("name").text].setdefault("000001", []).append((box, obj.find("difficult").text == "1"))
    assert {name for name, boxes in gt.items() if boxes} == objects
    # the devkit evaluates a class only where it has ground truth; the mean is over those classes
    for mode in ("11point", "area"):
        expected = {name: devkit_ap([(i, s, np.array(b)) for i, s, *b in rows[c]], gt[name], mode)
                    for c, name in enumerate(classes) if gt[name]}
        keys = [f"AP_{mode}"] + (["AP"] if mode == headline_mode else [])
        for key in keys:
            for name in classes:
                ours = record["per_class"][key][name]
                assert math.isnan(ours) if name not in expected else ours == pytest.approx(expected[name], abs=1e-12)
            assert record["metrics"][f"m{key}"] == pytest.approx(np.mean(list(expected.values())), abs=1e-12)
    assert record["metrics"]["mAP"] > 0 and record["per_class"]["AP"][found] > 0.5  # found, not 0 == 0
    # mmdet's eval_map (float32) on the same files, 0-based as mmdet loads VOC
    detections = [[np.array([[x1 - 1, y1 - 1, x2 - 1, y2 - 1, s] for _, s, x1, y1, x2, y2 in rows[c]]).reshape(-1, 5)
                   for c in range(len(classes))]]
    annotations = [parse_xml(year_dir / "Annotations" / "000001.xml", classes)]
    for mode in ("11point", "area"):
        expected_map, _ = eval_map(detections, annotations, mode)
        assert record["metrics"][f"mAP_{mode}"] == pytest.approx(float(expected_map), abs=1e-6)
    assert_rescore_identical(tmp_path, run_dir, record)


# -------------------------------------------------------------------------------------------- VOC semantic
def random_voc_segmenter(path: Path) -> Path:
    """torchvision's LR-ASPP for the 21 VOC classes with seeded random weights (no download).  Freshly
    initialised batch norms (running mean 0, var 1) make a near-constant argmax; the running statistics are set
    from one forward pass on seeded noise so that the label maps vary over the image."""
    import torch
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large

    torch.manual_seed(0)
    network = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21)
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # cumulative average: the running stats become the batch's
    network.train()
    with torch.no_grad():
        network(torch.randn(2, 3, 256, 256, generator=torch.Generator().manual_seed(0)))
    torch.save(network.state_dict(), path)
    return path


def test_voc2012_segmentation_palette_pngs_against_mmseg(tmp_path):
    import torch
    from mmseg.evaluation.metrics import IoUMetric

    checkpoint = random_voc_segmenter(tmp_path / "lraspp.pt")
    run_dir, record = run_real(tmp_path, "semantic", "tv-lraspp_mobilenet_v3_large", VOC, "--dataset", "voc",
                               "--checkpoint", str(checkpoint))
    assert record["dataset"]["split"] == "2012-val" and record["samples"] == 3
    year_dir = VOC / "VOC2012"
    files = sorted((run_dir / "predictions").glob("*.png"))
    assert [f.stem for f in files] == ["2011_000003", "2011_000006", "2011_000025"]
    results, labels_seen = [], set()
    for prediction_file in files:
        assert Image.open(prediction_file).mode == "P"  # VOC result files are palette PNGs
        pred = np.asarray(Image.open(prediction_file)).astype(np.int64)
        label = np.asarray(Image.open(year_dir / "SegmentationClass" / prediction_file.name)).astype(np.int64)
        assert pred.shape == label.shape
        labels_seen |= set(np.unique(pred).tolist())
        results.append(IoUMetric.intersect_and_union(torch.from_numpy(pred), torch.from_numpy(label), 21, 255))
    assert len(labels_seen - {0}) >= 5  # many classes predicted, not one constant map
    # mmseg's areas are integer pixel counts in float32 (exact below 2**24); the ratios are formed in float64
    # with mmseg's formulas (total_area_to_metrics: nan-mean over classes, aAcc over labelled pixels)
    inter, union, pred_area, label_area = (np.sum([r[i].numpy() for r in results], axis=0).astype(np.float64)
                                           for i in range(4))
    with np.errstate(divide="ignore", invalid="ignore"):
        iou, acc, dice = inter / union, inter / label_area, 2 * inter / (pred_area + label_area)
    assert record["metrics"]["aAcc"] == pytest.approx(inter.sum() / label_area.sum(), abs=1e-12)
    assert record["metrics"]["mIoU"] == pytest.approx(float(np.nanmean(iou)), abs=1e-12)
    assert record["metrics"]["mAcc"] == pytest.approx(float(np.nanmean(acc)), abs=1e-12)
    assert record["metrics"]["mDice"] == pytest.approx(float(np.nanmean(dice)), abs=1e-12)
    assert record["metrics"]["aAcc"] > 0 and record["metrics"]["mIoU"] > 0
    assert_rescore_identical(tmp_path, run_dir, record)


# ------------------------------------------------------------------------------------------------- ADE20K
def test_ade20k_sample_data_against_the_devkit_rule(tmp_path):
    root = DATA / "ade20k" / "ADEChallengeData2016"
    run_dir, record = run_real(tmp_path, "semantic", "fcn", root, "--dataset", "ade20k")
    assert record["protocol"]["name"] == "ade20k-devkit" and record["samples"] == 3
    # the devkit (evaluationCode/utils_eval.m, intersectionAndUnion): pixels annotated 0 ("other") are left out
    # (pred .* (anno > 0)); per class c in 1..150 the intersection and union of (pred == c) and (anno == c) are
    # summed over images; IoU = I / (U + eps), the mean over all 150 classes; pixel accuracy = correct / labelled
    inter, union = np.zeros(150), np.zeros(150)
    correct = labelled = 0
    predicted_classes = set()
    files = sorted((run_dir / "predictions").glob("*.png"))
    assert [f.stem for f in files] == ["ADE_val_00000001", "ADE_val_00000002", "ADE_val_00000003"]
    for prediction_file in files:
        pred = np.asarray(Image.open(prediction_file)).astype(np.int64)
        anno = np.asarray(Image.open(root / "annotations" / "validation" / prediction_file.name)).astype(np.int64)
        assert pred.shape == anno.shape and pred.min() >= 1  # result files hold 1..150, as the annotations do
        predicted_classes |= set(np.unique(pred).tolist())
        pred = pred * (anno > 0)
        correct += int(((pred == anno) & (anno > 0)).sum())
        labelled += int((anno > 0).sum())
        for c in range(1, 151):
            p, a = pred == c, anno == c
            inter[c - 1] += (p & a).sum()
            union[c - 1] += (p | a).sum()
    assert len(predicted_classes) > 1
    iou = inter / (union + np.spacing(1))
    assert record["metrics"]["mIoU"] == pytest.approx(iou.mean(), abs=1e-12)
    assert record["metrics"]["aAcc"] == pytest.approx(correct / labelled, abs=1e-12)
    assert_rescore_identical(tmp_path, run_dir, record)


# ------------------------------------------------------------------------------------------------ Cityscapes
def test_cityscapes_frankfurt_semantic_against_cityscapesscripts(tmp_path, monkeypatch):
    monkeypatch.setattr(np, "in1d", lambda a, b, invert=False: np.isin(np.ravel(a), b, invert=invert), raising=False)
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official

    run_dir, record = run_real(tmp_path, "semantic", "fcn", CITYSCAPES, "--dataset", "cityscapes")
    assert record["protocol"]["name"] == "cityscapes-pixel" and record["samples"] == 1
    (prediction,) = sorted((run_dir / "predictions").rglob("*.png"))
    assert prediction.relative_to(run_dir / "predictions").as_posix() == "frankfurt/frankfurt_000000_000294.png"
    assert len(np.unique(np.asarray(Image.open(prediction)))) > 2  # labelIds of several classes
    ground_truth = CITYSCAPES / "gtFine" / "val" / "frankfurt" / "frankfurt_000000_000294_gtFine_labelIds.png"
    args = official.args
    for name, value in dict(quiet=True, JSONOutput=False, evalInstLevelScore=True, evalPixelAccuracy=False,
                            colorized=False).items():
        monkeypatch.setattr(args, name, value)
    monkeypatch.chdir(tmp_path)
    result = official.evaluateImgLists([str(prediction)], [str(ground_truth)], args)
    theirs = {"mIoU": result["averageScoreClasses"], "iIoU": result["averageScoreInstClasses"],
              "IoU_category": result["averageScoreCategories"], "iIoU_category": result["averageScoreInstCategories"]}
    assert_same(record["metrics"], theirs, theirs)
    assert 0 < record["metrics"]["mIoU"] < 1 and not math.isnan(record["metrics"]["iIoU"])
    assert_same(record["per_class"]["IoU"], result["classScores"], record["per_class"]["IoU"])
    assert_same(record["per_class"]["iIoU"], result["classInstScores"], record["per_class"]["iIoU"])
    assert_rescore_identical(tmp_path, run_dir, record)


def test_cityscapes_frankfurt_instances_against_cityscapesscripts(tmp_path, monkeypatch):
    from tests.metrics.cityscapes_instance_cases import official_runner

    # the in-repo mask model, fitted on the frame itself for 120 steps (its 7 instances: a model that finds them)
    checkpoint = train(tmp_path, "instance", "centernet-mask", "cityscapes", CITYSCAPES, "val", 120)
    run_dir, record = run_real(tmp_path, "instance", "centernet-mask", CITYSCAPES, "--dataset", "cityscapes",
                               "--checkpoint", str(checkpoint))
    assert record["protocol"]["name"] == "cityscapes-instance" and record["samples"] == 1
    (txt,) = sorted((run_dir / "predictions").rglob("*_pred.txt"))
    assert len(txt.read_text().splitlines()) > 3
    gt = CITYSCAPES / "gtFine" / "val" / "frankfurt" / "frankfurt_000000_000294_gtFine_instanceIds.png"
    reference = official_runner(monkeypatch)(CITYSCAPES, run_dir / "predictions", tmp_path / "official", [str(gt)])
    averages = reference["averages"]
    assert 0.1 < averages["allAp"] <= 1  # the comparison is not between two zeros
    assert record["metrics"]["AP"] == pytest.approx(averages["allAp"], abs=1e-12)
    assert record["metrics"]["AP50"] == pytest.approx(averages["allAp50%"], abs=1e-12)
    for name, theirs in averages["classes"].items():
        for ours_key, their_key in (("AP", "ap"), ("AP50", "ap50%")):
            ours, expected = record["per_class"][ours_key][name], float(theirs[their_key])
            assert (math.isnan(ours) and math.isnan(expected)) or ours == pytest.approx(expected, abs=1e-12), name
    assert_rescore_identical(tmp_path, run_dir, record)


# ------------------------------------------------------------------------------------------------- Sintel
@pytest.mark.parametrize("render_pass", ["clean", "final"])
def test_sintel_alley_1_flo_against_the_benchmark_rule(tmp_path, render_pass):
    training = DATA / "sintel" / "training"
    run_dir, record = run_real(tmp_path, "flow", "horn-schunck", DATA / "sintel", "--split", render_pass)
    assert record["protocol"]["name"] == "sintel" and record["samples"] == 1
    assert record["dataset"]["split"] == render_pass
    (path,) = sorted((run_dir / "predictions").rglob("*.flo"))
    assert path.relative_to(run_dir / "predictions").as_posix() == "alley_1/frame_0002.flo"
    predicted, gt = read_flo(path), read_flo(training / "flow" / "alley_1" / "frame_0002.flo")
    assert predicted.shape == gt.shape and np.abs(predicted).max() > 0.1  # a real flow field
    # the Sintel benchmark: EPE = Euclidean distance of the flow vectors averaged over every pixel; "matched" =
    # pixels neither occluded (occlusions/ 255) nor leaving the frame (invalid/ 255), "unmatched" the others;
    # s0-10 / s10-40 / s40+: pixels whose ground-truth speed is in [0, 10), [10, 40), [40, inf)
    epe = np.sqrt(((predicted - gt) ** 2).sum(axis=-1))
    occluded = np.asarray(Image.open(training / "occlusions" / "alley_1" / "frame_0002.png")) == 255
    invalid = np.asarray(Image.open(training / "invalid" / "alley_1" / "frame_0002.png")) == 255
    unmatched = occluded | invalid
    speed = np.sqrt((gt ** 2).sum(axis=-1))
    assert 0 < unmatched.sum() < unmatched.size
    expected = {"EPE": epe.mean(), "EPE_matched": epe[~unmatched].mean(), "EPE_unmatched": epe[unmatched].mean(),
                "1px": (epe < 1).mean(), "3px": (epe < 3).mean(), "5px": (epe < 5).mean()}
    for name, low, high in (("s0-10", 0, 10), ("s10-40", 10, 40), ("s40+", 40, np.inf)):
        band = (speed >= low) & (speed < high)
        expected[f"EPE_{name}"] = epe[band].mean() if band.any() else math.nan
    for name, value in expected.items():
        ours = record["metrics"][name]
        assert (math.isnan(value) and math.isnan(ours)) or ours == pytest.approx(float(value), abs=1e-12), name
    assert_rescore_identical(tmp_path, run_dir, record)


# --------------------------------------------------------------------------------------------------- MPII
def mpii_root_with_head_boxes(tmp_path: Path) -> Path:
    """The mmpose MPII fixture copied with an official ``annotations/mpii_gt_val.mat`` (which the reader picks up
    beside ``mpii_val.json``).  Joints: the json's, 1-based as in the .mat; ``jnt_missing`` = not joints_vis.
    Head boxes (the fixture has none), by this rule: the square centred on the midpoint of the upper neck
    (joint 8) and the head top (joint 9), its side their distance (so PCKh's head size 0.6 * diagonal =
    0.6 * sqrt(2) * that distance, roughly the real MPII ratio)."""
    from tests.datasets.mpii_files import write_gt_mat

    root = tmp_path / "mpii"
    shutil.copytree(DATA / "mpii", root)
    people = json.loads((root / "annotations" / "mpii_val.json").read_text())
    joints = np.array([p["joints"] for p in people], np.float64)
    present = np.array([p["joints_vis"] for p in people]) > 0
    assert present[:, 8:10].all()
    middle, side = (joints[:, 8] + joints[:, 9]) / 2, np.linalg.norm(joints[:, 9] - joints[:, 8], axis=1)
    boxes = np.stack([middle - side[:, None] / 2, middle + side[:, None] / 2], axis=1)
    write_gt_mat(root / "annotations" / "mpii_gt_val.mat", joints, present, boxes)
    return root


def test_mpii_pred_mat_against_the_toolkit_rule(tmp_path):
    """evaluatePCKh.m (MATLAB only), applied to the written ``pred.mat`` and the ``mpii_gt_val.mat`` built above:
    head size = 0.6 * the head box diagonal; a joint with ``jnt_missing == 0`` is correct when its distance /
    head size <= threshold; the mean pools every joint but pelvis (6) and thorax (7)."""
    import scipy.io

    root = mpii_root_with_head_boxes(tmp_path)
    run_dir, record = run_real(tmp_path, "keypoints", "heatmap", root, "--dataset", "mpii")
    assert record["protocol"]["name"] == "mpii-pckh" and record["samples"] == 5
    predicted = scipy.io.loadmat(run_dir / "predictions" / "pred.mat")["pos_pred_src"]
    gt = scipy.io.loadmat(root / "annotations" / "mpii_gt_val.mat")
    positions, missing, head_boxes = gt["pos_gt_src"], gt["jnt_missing"], gt["headboxes_src"]
    assert predicted.shape == positions.shape == (16, 2, 5) and np.isfinite(predicted).all()
    head_size = 0.6 * np.linalg.norm(head_boxes[1] - head_boxes[0], axis=0)
    distance = np.linalg.norm(predicted - positions, axis=1) / head_size
    visible = missing == 0
    keep = np.ones(16, bool)
    keep[[6, 7]] = False
    for threshold, name in ((0.5, "PCKh@0.5"), (0.1, "PCKh@0.1")):
        correct = (distance <= threshold) & visible
        expected = correct[keep].sum() / visible[keep].sum()
        assert record["metrics"][name] == pytest.approx(expected, abs=1e-12)
    assert record["metrics"]["PCKh@0.5"] > 0
    # the toolkit's table (genTablePCK): per joint PCKh@0.5 = correct / visible; a part is the mean of its two
    # joints, Head the mean of upper neck and head top.  Joint order (0-based): rank rkne rhip lhip lkne lank
    # pelv thor neck head rwri relb rsho lsho lelb lwri
    per_joint = ((distance <= 0.5) & visible).sum(axis=1) / visible.sum(axis=1)
    parts = {"Head": (8, 9), "Shoulder": (12, 13), "Elbow": (11, 14), "Wrist": (10, 15), "Hip": (2, 3),
             "Knee": (1, 4), "Ankle": (0, 5)}
    for part, (a, b) in parts.items():
        assert record["metrics"][part] == pytest.approx((per_joint[a] + per_joint[b]) / 2, abs=1e-12), part
    # AUC: the pooled PCKh curve over thresholds 0:0.01:0.5, integrated (trapezoids) over the thresholds scaled
    # to [0, 1] (MATLAB's colon values differ from k / 100 in the last bit at most; no distance sits there)
    thresholds = np.arange(51) / 100
    curve = [((distance <= t) & visible)[keep].sum() / visible[keep].sum() for t in thresholds]
    auc = sum((curve[k] + curve[k + 1]) / 2 * (thresholds[k + 1] - thresholds[k]) / 0.5 for k in range(50))
    assert record["metrics"]["AUC"] == pytest.approx(auc, abs=1e-12)
    assert_rescore_identical(tmp_path, run_dir, record)


# ------------------------------------------------------------------------------------------ COCO keypoints
def coco_keypoint_root(tmp_path: Path) -> Path:
    """The 4 COCO val2017 images and their person keypoints as a COCO download: annotations/ + val2017/."""
    fixture = DATA / "coco-keypoints"
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    shutil.copy(fixture / "test_coco.json", root / "annotations" / "person_keypoints_val2017.json")
    (root / "val2017").mkdir()
    for image in fixture.glob("*.jpg"):
        shutil.copy(image, root / "val2017" / image.name)
    return root


def test_coco_keypoints_against_pycocotools(tmp_path):
    root = coco_keypoint_root(tmp_path)
    # mean-pose (the mean pose of the training people placed in each person box) scores above zero here
    run_dir, record = run_real(tmp_path, "keypoints", "mean-pose", root)
    assert record["protocol"]["submission"] == "coco-results" and record["samples"] == 4
    results = json.loads((run_dir / "predictions.json").read_text())
    assert len(results) >= 12 and all(len(r["keypoints"]) == 51 for r in results)
    annotations = root / "annotations" / "person_keypoints_val2017.json"
    official = pycocotools(annotations, run_dir / "predictions.json", "keypoints", 4)
    assert_same(record["metrics"], dict(zip(KEYPOINT_STATS, official)), KEYPOINT_STATS)
    assert record["metrics"]["AP"] > 0 and record["metrics"]["AR"] > 0
    assert_rescore_identical(tmp_path, run_dir, record)
