"""PASCAL VOC AP on the real VOC2007 annotation plus hand-checked closed-form cases."""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.core.errors import PredictionError
from harness.metrics import METRICS
from harness.metrics.matlab import colon
from harness.metrics.voc import DIALECTS, VocAPMetric, average_precision, voc_ap, voc_overlaps
from harness.core.structures import DetectionPrediction, DetectionTarget, Sample

VOC = Path(__file__).resolve().parents[1] / "data" / "voc" / "VOCdevkit" / "VOC2007" / "Annotations"
CLASSES = {"dog": 12, "person": 15}


def read_voc_xml(path: Path) -> DetectionTarget:
    """Test-local reader (independent of harness.datasets.voc): harness boxes are continuous xywh, the devkit's
    1-based inclusive box [x1, y1, x2, y2] is the continuous [x1 - 1, y1 - 1, x2, y2]."""
    root = ET.parse(path).getroot()
    boxes, labels, difficult = [], [], []
    for obj in root.iter("object"):
        box = obj.find("bndbox")
        x1, y1, x2, y2 = (float(box.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
        boxes.append(xyxy(x1, y1, x2, y2))
        labels.append(CLASSES[obj.find("name").text])
        difficult.append(obj.find("difficult").text == "1")
    size = root.find("size")
    return DetectionTarget(
        image_id=root.find("filename").text, width=int(size.find("width").text),
        height=int(size.find("height").text), boxes=np.array(boxes), labels=np.array(labels),
        areas=np.zeros(len(boxes)), iscrowd=np.zeros(len(boxes), dtype=bool), ignore=np.array(difficult),
    )


def xyxy(*box: float) -> list[float]:
    """The devkit's 1-based inclusive [x1, y1, x2, y2] as a harness box: pixel i covers [i - 1, i)."""
    return [box[0] - 1, box[1] - 1, box[2] - box[0] + 1, box[3] - box[1] + 1]


def run(target: DetectionTarget, boxes, scores, labels, **kwargs) -> dict:
    metric = VocAPMetric(class_names={v: k for k, v in CLASSES.items()}, **kwargs)
    prediction = DetectionPrediction(np.array(boxes, dtype=float).reshape(-1, 4), np.array(scores, dtype=float),
                                     np.array(labels))
    metric.update([Sample(target.image_id, None, target)], [prediction])
    return metric.compute()


def test_fixture_annotation_is_what_we_think():
    target = read_voc_xml(VOC / "000001.xml")
    assert target.labels.tolist() == [12, 15]
    assert target.boxes.tolist() == [xyxy(48, 240, 195, 371), xyxy(8, 12, 352, 498)]
    assert not target.ignore.any()


def test_plus_one_widths():
    iou = voc_overlaps(np.array([0.0, 0, 9, 9]), np.array([[5.0, 0, 14, 9], [10.0, 10, 20, 20]]))
    assert iou.tolist() == [50 / 150, 0.0]


def test_hand_checked_ap_on_real_annotation():
    target = read_voc_xml(VOC / "000001.xml")
    dog, person = xyxy(48, 240, 195, 371), xyxy(8, 12, 352, 498)
    wrong = xyxy(300, 0, 340, 20)
    # person: FP (0.9) then TP (0.8) -> recall [0, 1], precision [0, 1/2] -> AP 1/2 in both modes
    # dog: TP (0.7) then a duplicate (0.6) -> FP -> AP 1
    result = run(target, [wrong, person, dog, dog], [0.9, 0.8, 0.7, 0.6], [15, 15, 12, 12])
    assert result.per_class["AP"] == {"dog": 1.0, "person": 0.5}
    # the devkit adds p/11 eleven times: 1.0000000000000002, not 1
    assert result.per_class["AP_11point"] == pytest.approx({"dog": 1.0, "person": 0.5}, abs=1e-15)
    assert result.metrics["mAP"] == 0.75


def test_iou_exactly_half_is_a_match_for_the_devkit_only():
    target = read_voc_xml(VOC / "000001.xml")
    # same x extent as the person (345 px wide incl. +1), height 243.5 of 487 -> IoU exactly 0.5
    half = xyxy(8, 12, 352, 254.5)
    assert voc_overlaps(np.array([8, 12, 352, 254.5]), np.array([[8.0, 12, 352, 498]]))[0] == 0.5
    assert run(target, [half], [0.9], [15]).per_class["AP"]["person"] == 1.0
    assert run(target, [half], [0.9], [15], dialect="py-faster-rcnn").per_class["AP"]["person"] == 0.0


def test_difficult_objects_are_neither_tp_nor_fp():
    target = read_voc_xml(VOC / "000001.xml")
    target.ignore = np.array([False, True])  # the person is difficult
    person, dog = xyxy(8, 12, 352, 498), xyxy(48, 240, 195, 371)
    result = run(target, [person, person, dog], [0.95, 0.9, 0.5], [15, 15, 12])
    assert result.per_class["AP"]["dog"] == 1.0  # no FP from the two person hits... they are another class
    assert math.isnan(result.per_class["AP"]["person"])  # no non-difficult person: AP undefined, out of mAP
    assert result.metrics["mAP"] == 1.0
    # a difficult dog sitting under a higher-scored detection does not push a real dog down
    target.labels = np.array([12, 12])
    result = run(target, [person, dog], [0.95, 0.5], [12, 12])
    assert result.per_class["AP"]["dog"] == 1.0


def test_argmax_match_taken_is_a_false_positive():
    # two GTs; the second detection overlaps GT A best (already taken) and GT B less -> FP, not a match to B
    target = DetectionTarget("x", 100, 100, np.array([xyxy(0, 0, 9, 9), xyxy(6, 0, 15, 9)]), np.array([1, 1]),
                             np.zeros(2), np.zeros(2, dtype=bool), np.zeros(2, dtype=bool))
    result = run(target, [xyxy(0, 0, 9, 9), xyxy(1, 0, 10, 9)], [0.9, 0.8], [1, 1])
    # TP, FP -> recall [.5, .5], precision [1, .5] -> area AP 0.5
    assert result.per_class["AP"]["1"] == 0.5


def test_eleven_point_devkit_thresholds_differ_from_numpy_at_recall_three_fifths():
    # 5 GT; detections in score order: TP TP TP FP FP TP TP -> recall reaches exactly 3/5 with precision 1
    gt = np.array([[10.0 * i, 0, 10.0 * i + 5, 5] for i in range(5)])
    misses = np.array([[200.0, 200, 205, 205]] * 2)
    boxes = np.concatenate([gt[:3], misses, gt[3:]])
    scores = np.arange(7, 0, -1, dtype=float)
    detections = {"img": (np.array([xyxy(*b) for b in boxes]), scores)}
    ground_truth = {"img": (np.array([xyxy(*g) for g in gt]), np.zeros(5, dtype=bool))}
    devkit = voc_ap(detections, ground_truth, mode="11point")
    python = voc_ap(detections, ground_truth, mode="11point", dialect="py-faster-rcnn")
    assert devkit == pytest.approx((7 + 4 * 5 / 7) / 11, abs=1e-15)
    assert python == pytest.approx((6 + 5 * 5 / 7) / 11, abs=1e-15)
    assert colon(0, 0.1, 1)[6] == 0.6 and np.arange(0, 1.1, 0.1)[6] > 0.6
    area = voc_ap(detections, ground_truth, mode="area")
    assert area == pytest.approx(0.6 * 1 + 0.2 * (5 / 7) + 0.2 * (5 / 7), abs=1e-15)


def test_area_ap_uses_the_monotone_envelope():
    recall = np.array([0.25, 0.25, 0.5, 0.75])
    precision = np.array([1.0, 0.5, 2 / 3, 0.75])
    # envelope: [1, .75, .75, .75] at recall steps .25 -> AP = .25 * 1 + .25 * .75 + .25 * .75
    assert average_precision(recall, precision, "area") == pytest.approx(0.625, abs=1e-15)


def test_prediction_errors_name_the_item():
    target = read_voc_xml(VOC / "000001.xml")
    metric = METRICS.get("voc_ap")()
    bad = DetectionPrediction(np.zeros((2, 4)), np.array([0.5, np.nan]), np.array([12, 15]))
    with pytest.raises(PredictionError, match="000001.jpg.*non-finite"):
        metric.update([Sample("000001.jpg", None, target)], [bad])
    with pytest.raises(PredictionError, match="000001.jpg.*2 boxes, 1 scores"):
        metric.update([Sample("000001.jpg", None, target)],
                      [DetectionPrediction(np.zeros((2, 4)), np.array([0.5]), np.array([12, 15]))])


# ------------------------------------------------------------------------ literal devkit-loop oracle
def devkit_loop_ap(images, iou_threshold=0.5, strict=False, mode="area"):
    """A literal transcription of the devkit's procedure for one class: global stable sort, then per detection
    a scan over that image's GTs keeping the first maximum among intersecting boxes."""
    dets = [(img, box, score) for img, (gts, diff, boxes, scores) in enumerate(images)
            for box, score in zip(boxes, scores)]
    order = sorted(range(len(dets)), key=lambda i: -dets[i][2])  # Python's sort is stable
    taken = [np.zeros(len(gts), dtype=bool) for gts, *_ in images]
    npos = sum(int((~diff).sum()) for _, diff, *_ in images)
    tp, fp = [], []
    for i in order:
        img, bb, _ = dets[i]
        gts, diff = images[img][0], images[img][1]
        ovmax, jmax = -math.inf, -1
        for j, g in enumerate(gts):
            iw = min(bb[2], g[2]) - max(bb[0], g[0]) + 1
            ih = min(bb[3], g[3]) - max(bb[1], g[1]) + 1
            if iw > 0 and ih > 0:
                ua = (bb[2] - bb[0] + 1) * (bb[3] - bb[1] + 1) + (g[2] - g[0] + 1) * (g[3] - g[1] + 1) - iw * ih
                ov = iw * ih / ua
                if ov > ovmax:
                    ovmax, jmax = ov, j
        ok = ovmax > iou_threshold if strict else ovmax >= iou_threshold
        if ok:
            if diff[jmax]:
                tp.append(0), fp.append(0)
            elif taken[img][jmax]:
                tp.append(0), fp.append(1)
            else:
                taken[img][jmax] = True
                tp.append(1), fp.append(0)
        else:
            tp.append(0), fp.append(1)
    tp, fp = np.cumsum(tp, dtype=float), np.cumsum(fp, dtype=float)
    with np.errstate(invalid="ignore"):
        rec, prec = tp / npos, tp / (fp + tp)  # NaN where nothing counted yet, as in MATLAB
    if mode == "11point":
        ap = 0.0
        thresholds = np.arange(0.0, 1.1, 0.1) if strict else colon(0, 0.1, 1)
        for t in thresholds:
            reached = prec[rec >= t]
            reached = reached[~np.isnan(reached)]  # MATLAB's max skips NaN
            ap = ap + (reached.max() if reached.size else 0.0) / 11
        return ap
    mrec = [0.0, *rec, 1.0]
    mpre = [0.0, *prec, 0.0]
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = float(np.fmax(mpre[i], mpre[i + 1]))  # MATLAB's max(NaN, x) is x
    return sum((mrec[i] - mrec[i - 1]) * mpre[i] for i in range(1, len(mrec)) if mrec[i] != mrec[i - 1])


def random_images(seed: int, count: int):
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        n_gt = int(rng.integers(0, 5))
        xy = rng.integers(0, 40, size=(n_gt, 2)).astype(float)
        gts = np.concatenate([xy, xy + rng.integers(4, 20, size=(n_gt, 2))], axis=1)
        diff = rng.random(n_gt) < 0.2
        n_det = int(rng.integers(0, 7))
        if n_gt:  # detections jittered around GTs, plus strays
            base = gts[rng.integers(0, n_gt, size=n_det)]
        else:
            base = np.tile([5.0, 5, 15, 15], (n_det, 1))
        boxes = base + rng.integers(-4, 5, size=(n_det, 4))
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2])
        scores = np.round(rng.random(n_det), 1)  # coarse scores -> many ties
        images.append((gts, diff, boxes, scores))
    return images


def metric_for(images, **kwargs) -> VocAPMetric:
    metric = VocAPMetric(**kwargs)
    for index, (gts, diff, boxes, scores) in enumerate(images):
        target = DetectionTarget(index, 64, 64, np.array([xyxy(*g) for g in gts]).reshape(-1, 4),
                                 np.ones(len(gts), dtype=int), np.zeros(len(gts)), np.zeros(len(gts), dtype=bool),
                                 diff)
        prediction = DetectionPrediction(np.array([xyxy(*b) for b in boxes]).reshape(-1, 4), scores,
                                         np.ones(len(scores), dtype=int))
        metric.update([Sample(index, None, target)], [prediction])
    return metric


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("dialect", ["voc-devkit", "py-faster-rcnn"])
def test_matches_literal_devkit_loop_with_ties(seed, dialect):
    images = random_images(seed, 6)
    if sum(int((~d).sum()) for _, d, *_ in images) == 0:
        pytest.skip("no positives drawn")
    for mode in ("area", "11point"):
        expected = devkit_loop_ap(images, strict=dialect == "py-faster-rcnn", mode=mode)
        result = metric_for(images, dialect=dialect, ap_mode=mode).compute()
        assert result.per_class["AP"]["1"] == pytest.approx(expected, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 8), st.randoms(use_true_random=False))
def test_chunked_merge_equals_one_stream(seed, count, random):
    images = random_images(seed, count)
    whole = metric_for(images).compute().metrics
    cut = random.randint(0, count)
    first, second = metric_for(images[:cut]), metric_for(images[cut:])
    first.merge_state(second.state_dict())
    assert first.compute().metrics == pytest.approx(whole, nan_ok=True)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 8), st.randoms(use_true_random=False))
def test_image_order_does_not_matter_without_score_ties(seed, count, random):
    images = [(g, d, b, s + np.arange(len(s)) * 1e-6 + i * 1e-4)
              for i, (g, d, b, s) in enumerate(random_images(seed, count))]
    shuffled = list(images)
    random.shuffle(shuffled)
    assert metric_for(shuffled).compute().metrics == pytest.approx(metric_for(images).compute().metrics, nan_ok=True)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 8))
def test_perfect_detections_score_one(seed, count):
    images = [(g, d, g.copy(), np.ones(len(g))) for g, d, _, _ in random_images(seed, count)]
    result = metric_for(images).compute()
    if not math.isnan(result.metrics["mAP"]):
        # area AP sums delta-recall x precision in floating point, as the devkit does: 1 up to rounding
        assert result.metrics["mAP"] == pytest.approx(1.0, abs=1e-12)
        assert result.metrics["mAP_11point"] == pytest.approx(1.0, abs=1e-15)


# ------------------------------------------------------------------ one box convention, through the reader
def voc2007_dog_sample() -> Sample:
    from harness.datasets import DATASETS

    dataset = DATASETS.get("voc")(VOC.parents[1], "2007-test", "detection")
    sample = dataset[0]
    assert sample.sample_id == "000001" and sample.target.labels.tolist() == [12, 15]
    return sample


def score_dog(box: list[float], dialect: str = "voc-devkit") -> float:
    sample = voc2007_dog_sample()
    metric = VocAPMetric(dialect=dialect, class_names={12: "dog", 15: "person"})
    metric.update([sample], [DetectionPrediction(np.array([box]), np.array([0.9]), np.array([12]))])
    return metric.compute().per_class["AP"]["dog"]


def test_real_dog_with_devkit_iou_just_under_half_is_a_miss():
    # GT dog in 000001.xml: <xmin>48 <ymin>240 <xmax>195 <ymax>371 (1-based inclusive): 148 x 132 pixels,
    # the continuous box [47, 195) x [239, 371).
    # Detection, devkit corners [45, 239, 195, 306]: 151 x 68 pixels, continuous [44, 195) x [238, 306),
    # i.e. harness box [44, 238, 151, 68].
    # Devkit IoU: iw = min(195, 195) - max(45, 48) + 1 = 148, ih = min(371, 306) - max(239, 240) + 1 = 67,
    # inter = 148 * 67 = 9916, union = 148 * 132 + 151 * 68 - 9916 = 19536 + 10268 - 9916 = 19888,
    # IoU = 9916 / 19888 = 2479 / 4972 = 0.498592... < 0.5: a false positive, dog AP 0.
    # (Adding the +1 twice, as the reader and metric once did, made both boxes a pixel wider and taller:
    # 149 * 68 / (149 * 133 + 152 * 69 - 149 * 68) = 10132 / 20173 = 0.50226 -> a match, AP 1.)
    detection = [44.0, 238.0, 151.0, 68.0]
    for dialect in DIALECTS:
        assert score_dog(detection, dialect) == 0.0
    # control: devkit corners [48, 240, 195, 305] cover the dog's top 66 of 132 rows, IoU 66 / 132 = 0.5 exactly:
    # a match for the devkit and mmdet (>=), a miss for py-faster-rcnn (>)
    half = [47.0, 239.0, 148.0, 66.0]
    assert score_dog(half) == 1.0 and score_dog(half, "mmdet") == 1.0
    assert score_dog(half, "py-faster-rcnn") == 0.0
    assert score_dog([47.0, 239.0, 148.0, 132.0]) == 1.0  # the GT box itself


def test_voc2007_test_is_scored_with_eleven_point_ap_by_its_protocol():
    from harness.datasets import DATASETS

    info = DATASETS.get("voc")(VOC.parents[1], "2007-test", "detection").info
    protocol = info.protocol
    assert protocol.name == "voc07-devkit" and protocol.headline == "mAP" and protocol.submission == "voc-devkit"
    assert [(spec.metric, dict(spec.options)) for spec in protocol.metrics] == [("voc_ap", {"ap_mode": "11point"})]
    metric = METRICS.get("voc_ap").from_dataset(info, **protocol.metrics[0].options)
    sample = voc2007_dog_sample()
    # person: FP 0.9 then TP 0.8 -> recall [0, 1], precision [0, 1/2]; 11-point: every t in 0:0.1:1 reaches
    # recall 1 with precision 1/2 -> AP = 11 * (1/2) / 11; dog: no detection -> AP 0; mAP over the 2 present
    # classes (the other 18 have no GT: NaN, out of the mean) = 1/4.
    person = [7.0, 11.0, 345.0, 487.0]
    metric.update([sample], [DetectionPrediction(np.array([[300.0, 0, 40, 20], person]), np.array([0.9, 0.8]),
                                                 np.array([15, 15]))])
    result = metric.compute()
    assert result.per_class["AP"]["person"] == pytest.approx(0.5, abs=1e-15)
    assert result.per_class["AP"]["dog"] == 0.0 and math.isnan(result.per_class["AP"]["cat"])
    assert result.metrics["mAP"] == pytest.approx(0.25, abs=1e-15) and result.settings["ap_mode"] == "11point"
    voc2012 = DATASETS.get("voc")(VOC.parents[1], "2012-trainval", "detection").info.protocol
    assert voc2012.name == "voc-devkit" and dict(voc2012.metrics[0].options) == {"ap_mode": "area"}
