"""Cityscapes instance-level test material: roots in the Cityscapes layout, seeded predictions, and the official
cityscapesscripts evaluator run on the files.

Synthetic frames hold instances of several classes (some under 100 px, one exactly 100 px, one of 99 px),
group regions (also under 100 px, which the reference counts twice), void regions (incl. caravan groups),
caravan instances (neither void nor evaluated), and leave train and truck out of the ground truth.
Predictions jitter and grow/shrink ground-truth masks (IoUs across all thresholds), add duplicates, wrong and
non-evaluated classes, boxes straddling groups and void, empty masks, and draw confidences from a small pool
so ties occur within and across images; bus is never predicted (AP 0), truck only as false positives (NaN).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from harness.core.structures import DetectionPrediction

DATA = Path(__file__).resolve().parents[1] / "data" / "cityscapes"
REAL_FRAME = "frankfurt_000000_000294"
EVAL = (24, 25, 26, 27, 28, 31, 32, 33)
GT_CLASSES = (24, 25, 26, 28, 32, 33)  # no truck (27), no train (31)
PRED_CLASSES = (24, 25, 26, 27, 31, 32, 33)  # never bus (28)
VOIDS = (0, 1, 4, 5, 9, 29, 30)
SCORE_POOL = (0.05, 0.2, 0.2, 0.5, 0.5, 0.5, 0.7, 0.9, 0.9, 1.0)


def class_of(ids: np.ndarray) -> np.ndarray:
    return np.where(ids >= 1000, ids // 1000, ids)


def write_frame(root: Path, city: str, frame: str, instance_ids: np.ndarray) -> None:
    gt = root / "gtFine" / "val" / city
    images = root / "leftImg8bit" / "val" / city
    gt.mkdir(parents=True, exist_ok=True)
    images.mkdir(parents=True, exist_ok=True)
    Image.fromarray(instance_ids.astype(np.uint16)).save(gt / f"{frame}_gtFine_instanceIds.png")
    Image.fromarray(class_of(instance_ids.astype(np.int64)).astype(np.uint8)).save(gt / f"{frame}_gtFine_labelIds.png")
    Image.fromarray(np.zeros((*instance_ids.shape, 3), np.uint8)).save(images / f"{frame}_leftImg8bit.png")


def copy_real_frame(root: Path) -> None:
    for kind, folder in (("gtFine_instanceIds", "gtFine"), ("gtFine_labelIds", "gtFine"),
                         ("leftImg8bit", "leftImg8bit")):
        target = root / folder / "val" / "frankfurt"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(DATA / folder / "val" / "frankfurt" / f"{REAL_FRAME}_{kind}.png", target)


def synthetic_frame(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    ids = np.full((height, width), 7, np.int64)  # road
    ids[: height // 4] = 23
    ids[height // 4 : height // 2] = 11
    yy, xx = np.mgrid[:height, :width]

    def region(h: int, w: int, ellipse: bool) -> np.ndarray:
        y, x = int(rng.integers(0, height - h)), int(rng.integers(0, width - w))
        if not ellipse:
            out = np.zeros((height, width), bool)
            out[y : y + h, x : x + w] = True
            return out
        cy, cx = y + h / 2, x + w / 2
        return ((yy - cy) / (h / 2)) ** 2 + ((xx - cx) / (w / 2)) ** 2 <= 1

    for _ in range(int(rng.integers(1, 4))):
        ids[region(int(rng.integers(6, 20)), int(rng.integers(6, 30)), False)] = int(rng.choice(VOIDS))
    counters: dict[int, int] = {}
    for _ in range(int(rng.integers(5, 13))):
        label = int(rng.choice(GT_CLASSES))
        kind = rng.choice(["instance", "instance", "instance", "small", "group", "small group", "100", "99",
                           "caravan"])
        h, w = {"small": (int(rng.integers(3, 9)), int(rng.integers(3, 9))),
                "small group": (int(rng.integers(4, 9)), int(rng.integers(4, 9))),
                "100": (10, 10), "99": (9, 11)}.get(str(kind), (int(rng.integers(10, 30)), int(rng.integers(10, 40))))
        if kind in ("group", "small group"):
            value = label
        else:
            label = 29 if kind == "caravan" else label
            value = label * 1000 + counters.setdefault(label, 0)
            counters[label] += 1
        ids[region(h, w, kind in ("instance", "group") and rng.random() < 0.5)] = value
    return ids


def build_root(root: Path, seed: int, n_frames: int = 6, real: bool = True) -> None:
    """A val split: the real fixture frame (optional), ``n_frames`` synthetic frames in two cities, one frame
    without any instance."""
    rng = np.random.default_rng(seed)
    if real:
        copy_real_frame(root)
    for index in range(n_frames):
        city = ("lindau", "munster")[index % 2]
        height, width = (64, 128) if index % 3 else (96, 160)
        write_frame(root, city, f"{city}_000000_{index:06d}", synthetic_frame(rng, height, width))
    empty = np.full((48, 96), 7, np.int64)
    empty[:10] = 23
    write_frame(root, "lindau", "lindau_000001_000019", empty)


def _jitter(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    out = np.roll(mask, (int(rng.integers(-3, 4)), int(rng.integers(-3, 4))), axis=(0, 1))
    change = rng.choice(["none", "grow", "shrink"])
    if change == "grow":
        out = ndimage.binary_dilation(out, iterations=int(rng.integers(1, 3)))
    elif change == "shrink":
        out = ndimage.binary_erosion(out, iterations=1)
    return out


def _score(rng: np.random.Generator) -> float:
    return float(rng.choice(SCORE_POOL)) if rng.random() < 0.6 else float(rng.random())


def random_predictions(rng: np.random.Generator, ids: np.ndarray) -> list[tuple[int, float, np.ndarray]]:
    """(labelId, confidence, bool mask) per detection, shuffled."""
    ids = np.asarray(ids, dtype=np.int64)
    height, width = ids.shape
    preds: list[tuple[int, float, np.ndarray]] = []
    for value in np.unique(ids).tolist():
        label = value // 1000 if value >= 1000 else value
        if label not in EVAL or label == 28:
            continue
        for _ in range(int(rng.choice([0, 1, 1, 1, 2, 3]))):
            predicted = label if rng.random() < 0.8 else int(rng.choice(PRED_CLASSES + (29, 7)))
            preds.append((predicted, _score(rng), _jitter(rng, ids == value)))
    for _ in range(int(rng.integers(1, 5))):  # boxes anywhere: partly on groups, void, small instances
        mask = np.zeros((height, width), bool)
        y, x = int(rng.integers(0, height - 8)), int(rng.integers(0, width - 8))
        mask[y : y + int(rng.integers(4, 30)), x : x + int(rng.integers(4, 40))] = True
        preds.append((int(rng.choice(PRED_CLASSES)), _score(rng), mask))
    void = np.isin(ids, VOIDS)
    if void.any():  # mostly void
        preds.append((int(rng.choice(PRED_CLASSES)), _score(rng), void | _jitter(rng, void)))
    if rng.random() < 0.3:
        preds.append((int(rng.choice(PRED_CLASSES)), _score(rng), np.zeros((height, width), bool)))
    order = rng.permutation(len(preds))
    return [preds[i] for i in order]


def as_prediction(detections: list[tuple[int, float, np.ndarray]], height: int, width: int) -> DetectionPrediction:
    from pycocotools import mask as mask_codec

    masks = [mask_codec.encode(np.asfortranarray(m.astype(np.uint8))) for _, _, m in detections]
    boxes = np.asarray(mask_codec.toBbox(masks), np.float64).reshape(-1, 4) if masks else np.zeros((0, 4))
    return DetectionPrediction(boxes=boxes, scores=np.array([s for _, s, _ in detections], np.float64),
                               labels=np.array([l for l, _, _ in detections], np.int64), masks=masks)


def read_ids(sample) -> np.ndarray:
    return np.asarray(Image.open(sample.meta["instance_ids_path"])).astype(np.int64)


def official_runner(monkeypatch):
    """cityscapesscripts' evaluateImgLists configured to run offline and quietly, as a function
    ``run(root, pred_root, work, gt_files=None) -> result dict``.

    Each ground truth's txt is found by the reference's own getPrediction under ``CITYSCAPES_RESULTS``; the
    ground-truth cache (which the reference reuses blindly) and its ``matches.json`` go to a fresh ``work``
    folder per call.  numpy 2 lacks ``np.in1d``, which the reference calls (``np.isin`` is the same on 1-D), and
    its JSON dump of the matches trips over numpy 2 scalars (a writer that converts them; nothing reads it back).
    """
    monkeypatch.setattr(np, "in1d", lambda a, b, invert=False: np.isin(np.ravel(a), b, invert=invert),
                        raising=False)
    from cityscapesscripts.evaluation import evalInstanceLevelSemanticLabeling as module

    def write_json(data, path):  # its JSON writer knows no numpy 2 scalars (np.count_nonzero returns them)
        with open(path, "w") as handle:
            json.dump(data, handle, default=lambda o: o.item() if isinstance(o, np.generic) else o.__dict__)

    monkeypatch.setattr(module, "writeDict2JSON", write_json)
    args = module.args
    for name, value in dict(quiet=True, JSONOutput=False, colorized=False, csv=False, predictionPath=None,
                            predictionWalk=None, gtInstancesFile=None, instLabels=[]).items():
        monkeypatch.setattr(args, name, value)

    def run(root: Path, pred_root: Path, work: Path, gt_files: list[str] | None = None) -> dict:
        monkeypatch.setenv("CITYSCAPES_RESULTS", str(pred_root))
        args.predictionPath = None
        args.predictionWalk = None
        work.mkdir(parents=True, exist_ok=True)
        args.gtInstancesFile = str(work / "gtInstances.json")
        monkeypatch.chdir(work)  # the reference writes matches.json into the working directory
        if gt_files is None:
            gt_files = sorted(str(p) for p in (root / "gtFine" / "val").glob("*/*_gtFine_instanceIds.png"))
        predictions = [module.getPrediction(gt, args) for gt in gt_files]
        return module.evaluateImgLists(predictions, gt_files, args)

    return run
