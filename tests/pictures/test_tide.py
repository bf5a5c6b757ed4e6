"""TIDE-style error analysis: hand-built images where each error type is known, and tidecv on the COCO fixture."""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from harness.publish.pictures.tide import ERROR_TYPES, average_precision, tide
from harness.core.structures import DetectionPrediction, DetectionTarget

DATA = Path(__file__).resolve().parents[1] / "data" / "coco"
G1, G2 = [0, 0, 10, 10], [20, 20, 10, 10]


def image(gt, preds):
    """gt: [(box, class)], preds: [(box, class, score)]"""
    target = DetectionTarget(image_id=1, width=200, height=200, boxes=np.array([b for b, _ in gt], float).reshape(-1, 4),
                             labels=np.array([c for _, c in gt]), areas=np.array([b[2] * b[3] for b, _ in gt], float),
                             iscrowd=np.zeros(len(gt), bool))
    prediction = DetectionPrediction(boxes=np.array([b for b, _, _ in preds], float).reshape(-1, 4),
                                     scores=np.array([s for _, _, s in preds], float),
                                     labels=np.array([c for _, c, _ in preds]))
    return target, prediction


# Hand-derived numbers (AP in percent on 101 recall points, precision made monotone from the right):
# - "two hits around one error": points T(0.9) F(0.8) T(0.7), 2 objects -> precision [1, 1/2, 2/3] -> monotone
#   [1, 2/3, 2/3], recall [1/2, 1/2, 1]; the 51 grid points r <= 0.5 read 1, the 50 above read 2/3:
#   AP = (51 + 50 * 2/3) / 101 * 100 = 83.4983...; removing the error gives 100.
TWO_HITS_AP = (51 + 50 * 2 / 3) / 101 * 100
CASES = {
    # class-2 detection exactly on a class-1 object: AP 0 (class 1 found nothing, class 2 has one false
    # positive); relabelled, class 1 has one true positive (AP 100) and class 2 is empty (not averaged).
    "cls": ([(G1, 1)], [(G1, 2, 0.9)], 0.0, 100.0),
    # right class, IoU 50/150 = 1/3 in [0.1, 0.5]: AP 0; snapped onto the object: AP 100.
    "loc": ([(G1, 1)], [([5, 0, 10, 10], 1, 0.9)], 0.0, 100.0),
    # a second detection of G1 ranked between the two hits
    "dupe": ([(G1, 1), (G2, 1)], [(G1, 1, 0.9), (G1, 1, 0.8), (G2, 1, 0.7)], TWO_HITS_AP, 100.0 - TWO_HITS_AP),
    # a detection far from everything, same ranking
    "bkg": ([(G1, 1), (G2, 1)], [(G1, 1, 0.9), ([100, 100, 10, 10], 1, 0.8), (G2, 1, 0.7)], TWO_HITS_AP,
            100.0 - TWO_HITS_AP),
    # class-2 detection with IoU 1/3 on a class-1 object: class 1 AP 100, class 2 (a false positive, no ground
    # truth) AP 0 -> mean 50; removed, class 2 is empty and the mean is 100.
    "both": ([(G1, 1), (G2, 1)], [(G1, 1, 0.9), ([5, 0, 10, 10], 2, 0.8), (G2, 1, 0.7)], 50.0, 50.0),
    # one of two objects found: precision 1 up to recall 1/2 -> 51/101; without the missed object AP 100.
    "missed": ([(G1, 1), (G2, 1)], [(G1, 1, 0.9)], 51 / 101 * 100, 100 - 51 / 101 * 100),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_each_error_type_on_a_hand_built_image(kind):
    gt, preds, ap, gain = CASES[kind]
    result = tide([image(gt, preds)])
    assert result.counts == {k: int(k == kind) for k in ERROR_TYPES}
    assert result.ap == pytest.approx(ap, abs=1e-9)
    assert result.delta_ap[kind] == pytest.approx(gain, abs=1e-9)
    assert all(result.delta_ap[k] == 0 for k in ERROR_TYPES if k != kind)


def test_only_the_best_scoring_error_per_object_is_fixed():
    # two loc errors on one object: fixing turns the 0.9 one into a hit and drops the 0.8 one -> AP 100 (not 50)
    result = tide([image([(G1, 1)], [([5, 0, 10, 10], 1, 0.9), ([0, 5, 10, 10], 1, 0.8)])])
    assert result.counts["loc"] == 2 and result.counts["missed"] == 0
    assert result.delta_ap["loc"] == pytest.approx(100.0)


def test_average_precision_perfect_and_empty():
    assert average_precision([(0.5, True)], 1) == pytest.approx(100.0)
    assert average_precision([], 3) == 0.0 and average_precision([(0.5, False)], 0) == 0.0


def _fixture(results_name: str, masks: bool):
    gt = json.loads((DATA / "instances_val2014_100.json").read_text())
    results = json.loads((DATA / results_name).read_text())
    by_image = defaultdict(list)
    for ann in gt["annotations"]:
        by_image[ann["image_id"]].append(ann)
    dets = defaultdict(list)
    for r in results:
        dets[r["image_id"]].append(r)
    pairs = []
    for img in gt["images"]:
        anns = by_image[img["id"]]
        target = DetectionTarget(
            image_id=img["id"], width=img["width"], height=img["height"],
            boxes=np.array([a["bbox"] for a in anns], float).reshape(-1, 4),
            labels=np.array([a["category_id"] for a in anns]), areas=np.array([a["area"] for a in anns], float),
            iscrowd=np.array([bool(a["iscrowd"]) for a in anns]), masks=[a["segmentation"] for a in anns])
        rs = dets[img["id"]]
        prediction = DetectionPrediction(
            boxes=np.array([r.get("bbox", [0, 0, 0, 0]) for r in rs], float).reshape(-1, 4),
            scores=np.array([r["score"] for r in rs], float), labels=np.array([r["category_id"] for r in rs]),
            masks=[r["segmentation"] for r in rs] if masks else None)
        pairs.append((target, prediction))
    return pairs


@pytest.mark.parametrize("results_name,masks", [("instances_val2014_fakebbox100_results.json", False),
                                                ("instances_val2014_fakesegm100_results.json", True)])
def test_agrees_with_tidecv_on_the_coco_fixture(results_name, masks):
    tidecv = pytest.importorskip("tidecv")
    from tidecv import datasets

    evaluator = tidecv.TIDE()
    run = evaluator.evaluate(datasets.COCO(str(DATA / "instances_val2014_100.json")),
                             datasets.COCOResult(str(DATA / results_name)),
                             mode=tidecv.TIDE.MASK if masks else tidecv.TIDE.BOX)
    theirs = evaluator.get_main_errors()[run.preds.name] if hasattr(run.preds, "name") else None
    counts = {error.short_name: len(errors) for error, errors in run.error_dict.items()}
    ours = tide(_fixture(results_name, masks), masks=masks)
    names = {"cls": "Cls", "loc": "Loc", "both": "Both", "dupe": "Dupe", "bkg": "Bkg", "missed": "Miss"}
    assert ours.ap == pytest.approx(run.ap, abs=1e-6)
    assert {k: ours.counts[k] for k in names} == {k: counts[v] for k, v in names.items()}
    for kind, short in names.items():
        assert ours.delta_ap[kind] == pytest.approx(theirs[short], abs=1e-6), kind
    assert sum(ours.counts.values()) > 50  # the fixture exercises the analysis, not an empty case
