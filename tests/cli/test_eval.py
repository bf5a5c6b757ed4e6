"""``bench eval``: prediction files scored with no model, against published numbers and the official tools.

Every bad-input case must end in exactly one line on stderr that names the file, and a non-zero exit.
"""
from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from harness.cli import main
from harness.io.flowio import read_flo, write_flo
from harness.labels.keypoints import MPII_JOINT_CODES

DATA = Path(__file__).resolve().parents[1] / "data"
COCO = DATA / "coco"
COCO_GT = COCO / "instances_val2014_100.json"
COCO_BBOX = COCO / "instances_val2014_fakebbox100_results.json"
COCO_SEGM = COCO / "instances_val2014_fakesegm100_results.json"
BBOX_STATS = [0.5045806987249628, 0.6969727247299577, 0.5729816669904824, 0.5856257209410443, 0.5193996948036719,
              0.5013978986347466, 0.38681277964578054, 0.5936795762842003, 0.595352982877607, 0.6398109626113442,
              0.5664205978994309, 0.5642905982905982]
SEGM_STATS = [0.3195452758576433, 0.5622883972521636, 0.29892653412086784, 0.3873740315997838, 0.31018272403369485,
              0.3269339071005138, 0.2682297225711534, 0.41544868114906375, 0.4168394992198818, 0.4694498622754236,
              0.37675922666197265, 0.3814715099715099]
BOX_NAMES = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
KEYPOINT_NAMES = ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]


# ---------------------------------------------------------------------------------------------- helpers
def bench_eval(*args: object):
    return CliRunner().invoke(main, ["eval", *(str(a) for a in args)])


def scored(tmp_path: Path, *args: object) -> dict:
    """Run ``bench eval`` with --json and return the record."""
    out = tmp_path / "result.json"
    result = bench_eval(*args, "--json", out)
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def assert_one_line_error(result, *needles: object) -> str:
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert str(needle) in lines[0], (needle, lines[0])
    return lines[0]


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def quiet(function, *args, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()):
        return function(*args, **kwargs)


def pycocotools_stats(gt: dict, results: list, iou_type: str, max_dets: list[int] | None = None) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    coco = COCO()
    coco.dataset = copy.deepcopy(gt)
    quiet(coco.createIndex)
    detections = quiet(coco.loadRes, copy.deepcopy(results))
    evaluator = COCOeval(coco, detections, iou_type)
    if max_dets is not None:
        evaluator.params.maxDets = max_dets
    quiet(evaluator.evaluate)
    quiet(evaluator.accumulate)
    quiet(evaluator.summarize)
    return evaluator.stats


needs_coco = pytest.mark.skipif(
    importlib.util.find_spec("harness.metrics.coco") is None,
    reason="the COCO evaluator (harness.metrics.coco) has not landed yet",
)


# ------------------------------------------------------------------------------------------------ COCO
@needs_coco
@pytest.mark.parametrize("task, results, expected", [
    ("detection", COCO_BBOX, BBOX_STATS), ("instance", COCO_SEGM, SEGM_STATS),
])
def test_coco_reproduces_the_published_stats(tmp_path, task, results, expected):
    record = scored(tmp_path, "--task", task, "--gt", COCO_GT, "--pred", results)
    assert list(record["metrics"]) == BOX_NAMES
    np.testing.assert_allclose(list(record["metrics"].values()), expected, rtol=0, atol=1e-12)
    assert record["task"] == task
    assert record["settings"]["dialect"] == "pycocotools" and record["settings"]["max_dets"] == [1, 10, 100]
    assert record["settings"]["iou_type"] == ("bbox" if task == "detection" else "segm")
    assert len(record["per_class"]["AP"]) == 80


@needs_coco
def test_coco_mmdet_max_dets_match_pycocotools_with_the_same_setting(tmp_path):
    record = scored(tmp_path, "--task", "detection", "--gt", COCO_GT, "--pred", COCO_BBOX, "--max-dets", "mmdet")
    assert record["settings"]["max_dets"] == [100, 300, 1000]
    assert record["settings"]["max_dets_dialect"] == "mmdet"
    assert list(record["metrics"])[6:9] == ["AR100", "AR300", "AR1000"]
    gt = json.loads(COCO_GT.read_text())
    reference = pycocotools_stats(gt, json.loads(COCO_BBOX.read_text()), "bbox", [100, 300, 1000])
    np.testing.assert_allclose(list(record["metrics"].values()), reference, rtol=0, atol=1e-12)


@needs_coco
def test_segm_results_with_boxes_follow_loadres_unless_a_dialect_drops_them(tmp_path):
    """pycocotools takes the box area when a segm result has 'bbox'; detectron2 and mmdet drop the box first."""
    gt = json.loads(COCO_GT.read_text())
    results = json.loads(COCO_SEGM.read_text())
    rng = np.random.default_rng(0)
    for result in results:  # boxes unrelated to the masks, so areas (and APs/m/l) differ
        result["bbox"] = [float(v) for v in rng.uniform(0, 40, 2)] + [float(v) for v in rng.uniform(1, 150, 2)]
    path = write_json(tmp_path / "segm_with_boxes.json", results)
    as_given = scored(tmp_path, "--task", "instance", "--gt", COCO_GT, "--pred", path)
    np.testing.assert_allclose(list(as_given["metrics"].values()), pycocotools_stats(gt, results, "segm"),
                               rtol=0, atol=1e-12)
    assert "box areas" in as_given["settings"]["notes"][0]
    without_boxes = [{k: v for k, v in r.items() if k != "bbox"} for r in results]
    dropped = scored(tmp_path, "--task", "instance", "--gt", COCO_GT, "--pred", path, "--dialect", "detectron2")
    np.testing.assert_allclose(list(dropped["metrics"].values()), pycocotools_stats(gt, without_boxes, "segm"),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(list(dropped["metrics"].values()), SEGM_STATS, rtol=0, atol=1e-12)
    assert as_given["metrics"]["APs"] != dropped["metrics"]["APs"]


def keypoint_results(gt: dict, seed: int) -> list[dict]:
    """Noisy copies of the labelled people, false positives, and tied scores."""
    rng = np.random.default_rng(seed)
    results = []
    for ann in gt["annotations"]:
        if ann["iscrowd"] or ann["num_keypoints"] == 0:
            continue
        kps = np.asarray(ann["keypoints"], dtype=np.float64).reshape(17, 3)
        scale = math.sqrt(ann["area"]) * rng.uniform(0.01, 0.15)
        for copy_index in range(rng.integers(1, 3)):
            xy = kps[:, :2] + rng.normal(0, scale * (1 + 3 * copy_index), (17, 2))
            flat = np.concatenate([xy, np.ones((17, 1))], axis=1).ravel()
            results.append({"image_id": ann["image_id"], "category_id": 1, "keypoints": flat.tolist(),
                            "score": float(rng.choice([0.9, 0.7, 0.7, 0.5]))})
    image_ids = [image["id"] for image in gt["images"]]
    for _ in range(5):  # people that are not there
        xy = rng.uniform(0, 400, (17, 2))
        flat = np.concatenate([xy, np.ones((17, 1))], axis=1).ravel()
        results.append({"image_id": int(rng.choice(image_ids)), "category_id": 1, "keypoints": flat.tolist(),
                        "score": float(rng.uniform(0, 1))})
    return results


@needs_coco
@pytest.mark.parametrize("seed", [0, 1])
def test_coco_keypoints_match_pycocotools(tmp_path, seed):
    gt_path = DATA / "coco-keypoints" / "test_coco.json"
    gt = json.loads(gt_path.read_text())
    results = keypoint_results(gt, seed)
    pred = write_json(tmp_path / "keypoints.json", results)
    record = scored(tmp_path, "--task", "keypoints", "--gt", gt_path, "--pred", pred)
    assert list(record["metrics"]) == KEYPOINT_NAMES
    reference = pycocotools_stats(gt, results, "keypoints")
    np.testing.assert_allclose(list(record["metrics"].values()), reference, rtol=0, atol=1e-12)
    assert 0 < record["metrics"]["AP"] < 1


@needs_coco
def test_keypoints_with_another_skeleton_need_sigmas(tmp_path):
    gt = json.loads((DATA / "coco-keypoints" / "test_coco.json").read_text())
    gt["categories"][0]["keypoints"] = gt["categories"][0]["keypoints"][:5]
    for ann in gt["annotations"]:
        ann["keypoints"] = ann["keypoints"][:15]
    gt_path = write_json(tmp_path / "five.json", gt)
    pred = write_json(tmp_path / "pred.json", [])
    assert_one_line_error(bench_eval("--task", "keypoints", "--gt", gt_path, "--pred", pred), gt_path, "--sigmas")


def coco_results_with(tmp_path: Path, change) -> Path:
    results = json.loads(COCO_BBOX.read_text())[:20]
    change(results)
    path = tmp_path / "bad_results.json"
    path.write_text(json.dumps(results))  # json writes NaN/Infinity literals, as careless exporters do
    return path


@needs_coco
@pytest.mark.parametrize("change, needles", [
    (lambda r: r[3].update(image_id=999999999), ["result #3", "image_id", "999999999"]),
    (lambda r: r[4].update(category_id=1234), ["result #4", "category_id", "1234"]),
    (lambda r: r[5].update(score=float("nan")), ["result #5", "score"]),
    (lambda r: r[6].update(bbox=[1.0, float("inf"), 3.0, 4.0]), ["result #6", "bbox"]),
    (lambda r: r[7].update(bbox=[1.0, 2.0, -3.0, 4.0]), ["result #7", "negative width"]),
    (lambda r: r[8].update(score=float("-inf")), ["result #8", "score"]),
])
def test_bad_coco_results_are_one_line_errors(tmp_path, change, needles):
    pred = coco_results_with(tmp_path, change)
    result = bench_eval("--task", "detection", "--gt", COCO_GT, "--pred", pred)
    assert_one_line_error(result, pred, *needles)


@needs_coco
def test_missing_and_malformed_coco_files(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('[{"image_id": 1, "category_id": 1,')
    assert_one_line_error(bench_eval("--task", "detection", "--gt", COCO_GT, "--pred", broken), broken, "malformed JSON")
    assert_one_line_error(bench_eval("--task", "detection", "--gt", broken, "--pred", COCO_BBOX), broken, "malformed JSON")
    missing = tmp_path / "nope.json"
    assert_one_line_error(bench_eval("--task", "detection", "--gt", COCO_GT, "--pred", missing), missing, "not found")
    assert_one_line_error(bench_eval("--task", "detection", "--gt", missing, "--pred", COCO_BBOX), missing, "not found")


# -------------------------------------------------------------------------------------------- semantic
ADE = DATA / "ade20k"


def test_ade20k_reproduces_the_devkit_readme_and_mmseg(tmp_path):
    """Devkit README: 'Mean IoU over 150 classes: 0.1000', 'Pixel-wise Accuracy: 100.00%'; mmseg: 1.0 / 1.0."""
    args = ("--task", "semantic", "--dataset", "ade20k", "--gt", ADE / "annotations", "--pred", ADE / "predictions")
    official = scored(tmp_path, *args)
    assert official["settings"]["dialect"] == "ade20k-devkit"
    assert official["metrics"]["mIoU"] == pytest.approx(15 / 150, abs=1e-12)
    assert f"{official['metrics']['mIoU']:.4f}" == "0.1000"
    assert official["metrics"]["aAcc"] == 1.0
    assert len(official["per_class"]["IoU"]) == 150 and official["per_class"]["IoU"]["1"] in (0.0, 1.0)
    assert scored(tmp_path, *args, "--dialect", "official")["metrics"] == official["metrics"]
    mmseg = scored(tmp_path, *args, "--dialect", "mmseg")
    assert mmseg["settings"]["dialect"] == "mmseg"
    assert mmseg["metrics"]["mIoU"] == 1.0 and mmseg["metrics"]["aAcc"] == 1.0
    assert sum(v is not None for v in mmseg["per_class"]["IoU"].values()) == 15  # NaN classes written as null


def test_ade20k_prediction_zero_is_a_false_negative(tmp_path):
    pred_dir = tmp_path / "pred"
    shutil.copytree(ADE / "predictions", pred_dir)
    first = sorted(pred_dir.glob("*.png"))[0]
    labels = np.asarray(Image.open(first)).copy()
    labelled = int(np.count_nonzero(labels))
    labels[:10, :] = 0  # "no class" predicted on the top rows
    lost = labelled - int(np.count_nonzero(labels))
    Image.fromarray(labels).save(first)
    total = sum(int(np.count_nonzero(np.asarray(Image.open(p)))) for p in (ADE / "annotations").glob("*.png"))
    record = scored(tmp_path, "--task", "semantic", "--dataset", "ade20k", "--gt", ADE / "annotations", "--pred", pred_dir)
    assert lost > 0
    assert record["metrics"]["aAcc"] == pytest.approx((total - lost) / total, abs=1e-15)


VOC_GT = DATA / "voc" / "labelme-seg" / "SegmentationClass"


def confusion_reference(pairs, num_classes: int, ignore: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class TP, FP, FN counted pixel by pixel (predicted ignore = no class)."""
    tp, fp, fn = (np.zeros(num_classes) for _ in range(3))
    for gt, pred in pairs:
        keep = gt != ignore
        for c in range(num_classes):
            tp[c] += np.count_nonzero(keep & (gt == c) & (pred == c))
            fp[c] += np.count_nonzero(keep & (gt != c) & (pred == c))
            fn[c] += np.count_nonzero(keep & (gt == c) & (pred != c))
    return tp, fp, fn


def perturbed_voc_predictions(tmp_path: Path, seed: int) -> tuple[Path, list[tuple[np.ndarray, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    pred_dir = tmp_path / "voc_pred" / "nested"  # predictions are found recursively
    pred_dir.mkdir(parents=True)
    pairs = []
    for gt_path in sorted(VOC_GT.glob("*.png")):
        gt = np.asarray(Image.open(gt_path))
        pred = np.where(gt == 255, 0, gt).astype(np.uint8)
        flip = rng.random(gt.shape) < 0.2
        pred[flip] = rng.integers(0, 21, size=int(flip.sum()))
        pred[:3, :3] = 255  # "no class" predictions
        Image.fromarray(pred, mode="L").save(pred_dir / gt_path.name)
        pairs.append((gt, pred))
    return pred_dir.parent, pairs


def test_voc_palette_pngs_against_a_pixel_count(tmp_path):
    pred_dir, pairs = perturbed_voc_predictions(tmp_path, 0)
    record = scored(tmp_path, "--task", "semantic", "--dataset", "voc", "--gt", VOC_GT, "--pred", pred_dir)
    tp, fp, fn = confusion_reference(pairs, 21, 255)
    with np.errstate(invalid="ignore"):
        iou = tp / (tp + fp + fn)
    assert record["metrics"]["mIoU"] == pytest.approx(float(np.nanmean(iou)), abs=1e-12)
    assert record["metrics"]["aAcc"] == pytest.approx(tp.sum() / (tp + fn).sum(), abs=1e-12)
    assert record["per_class"]["IoU"]["person"] == pytest.approx(iou[15], abs=1e-12)
    assert record["settings"]["dialect"] == "mmseg" and record["settings"]["items"] == 3


def test_generic_label_maps_with_an_id_list(tmp_path):
    pred_dir, pairs = perturbed_voc_predictions(tmp_path, 1)
    ids = tmp_path / "val.txt"
    ids.write_text("2011_000003\n2011_000025\n")
    for extra in ("2011_000006.png",):  # the unlisted prediction must go too, or it has no ground truth
        (pred_dir / "nested" / extra).unlink()
    record = scored(tmp_path, "--task", "semantic", "--num-classes", 21, "--ignore-index", 255,
                    "--gt", VOC_GT, "--pred", pred_dir, "--ids", ids)
    tp, fp, fn = confusion_reference([pairs[0], pairs[2]], 21, 255)
    with np.errstate(invalid="ignore"):
        iou = tp / (tp + fp + fn)
    assert record["metrics"]["mIoU"] == pytest.approx(float(np.nanmean(iou)), abs=1e-12)
    assert record["settings"]["dataset"] == "generic" and record["settings"]["items"] == 2


def test_semantic_file_matching_errors(tmp_path):
    pred_dir = tmp_path / "pred"
    shutil.copytree(ADE / "predictions", pred_dir)
    args = ("--task", "semantic", "--dataset", "ade20k", "--gt", ADE / "annotations", "--pred", pred_dir)
    missing = pred_dir / "ADE_val_00000002.png"
    missing.unlink()
    assert_one_line_error(bench_eval(*args), ADE / "annotations" / "ADE_val_00000002.png", "no prediction")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(missing)
    assert_one_line_error(bench_eval(*args), missing, "ground truth", "4x4")  # size differs from the GT
    missing.unlink()
    shutil.copy(ADE / "predictions" / "ADE_val_00000002.png", missing)
    stray = pred_dir / "ADE_val_00000099.png"
    shutil.copy(missing, stray)
    assert_one_line_error(bench_eval(*args), stray, "has no ground truth")
    stray.unlink()
    bad = np.asarray(Image.open(missing)).copy()
    bad[0, 0] = 200  # not a class of ADE20K's 0..150
    Image.fromarray(bad).save(missing)
    assert_one_line_error(bench_eval(*args), missing, "200")
    missing.write_bytes(b"not a png")
    assert_one_line_error(bench_eval(*args), missing, "cannot decode")
    gone = tmp_path / "gone"
    assert_one_line_error(bench_eval("--task", "semantic", "--dataset", "ade20k", "--gt", gone, "--pred", pred_dir),
                          gone, "not found")
    assert_one_line_error(bench_eval("--task", "semantic", "--dataset", "ade20k", "--gt", ADE / "annotations",
                                     "--pred", gone), gone, "not found")


# ------------------------------------------------------------------------------------------ cityscapes
CITYSCAPES = DATA / "cityscapes" / "gtFine" / "val" / "frankfurt"
CS_STEM = "frankfurt_000000_000294_gtFine_"


@pytest.fixture
def cityscapesscripts(monkeypatch):
    """The official evaluateImgLists, configured for quiet in-memory use (numpy 2.4 has no np.in1d)."""
    monkeypatch.setattr(np, "in1d", lambda a, b, invert=False: np.isin(np.ravel(a), b, invert=invert), raising=False)
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official

    for name, value in dict(quiet=True, JSONOutput=False, evalInstLevelScore=True, evalPixelAccuracy=False,
                            colorized=False).items():
        monkeypatch.setattr(official.args, name, value)
    return official


def cityscapes_dataset(tmp_path: Path, seed: int, with_instances: bool = True):
    """Ground truth in gtFine/val/<city>/ (the real frame and flipped/rolled copies) and perturbed predictions
    named as people name them (``*_leftImg8bit.png``, some in sub-folders)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(Image.open(CITYSCAPES / f"{CS_STEM}labelIds.png"))
    instances = np.asarray(Image.open(CITYSCAPES / f"{CS_STEM}instanceIds.png"))
    frames = {
        "frankfurt_000000_000294": (labels, instances),
        "frankfurt_000001_000019": (np.fliplr(labels), np.fliplr(instances)),
        "lindau_000002_000019": (np.roll(labels, 37, axis=1), np.roll(instances, 37, axis=1)),
    }
    gt_files, pred_files = [], []
    for index, (key, (label_map, instance_map)) in enumerate(frames.items()):
        city = key.split("_")[0]
        gt_dir = tmp_path / "cityscapes" / "gtFine" / "val" / city
        gt_dir.mkdir(parents=True, exist_ok=True)
        gt_file = gt_dir / f"{key}_gtFine_labelIds.png"
        Image.fromarray(np.ascontiguousarray(label_map)).save(gt_file)
        if with_instances:
            Image.fromarray(np.ascontiguousarray(instance_map).astype(np.uint16)).save(
                gt_dir / f"{key}_gtFine_instanceIds.png")
        pred = label_map.copy()
        noise = rng.random(pred.shape) < 0.25
        pred[noise] = rng.integers(0, 34, size=int(noise.sum()))  # ignored labelIds included
        y, x = rng.integers(0, 80), rng.integers(0, 150)
        pred[y: y + 40, x: x + 90] = rng.choice([26, 29, 24])  # car, caravan (ignored), person blocks
        pred_dir = tmp_path / "pred" / (city if index % 2 else "")
        pred_dir.mkdir(parents=True, exist_ok=True)
        pred_file = pred_dir / f"{key}_leftImg8bit.png"
        Image.fromarray(pred.astype(np.uint8)).save(pred_file)
        gt_files.append(str(gt_file))
        pred_files.append(str(pred_file))
    return tmp_path / "cityscapes", tmp_path / "pred", gt_files, pred_files


def assert_scores_close(ours: dict, theirs: dict) -> None:
    """Ours lists the evaluated classes; the reference also lists ignored labels, all NaN."""
    assert set(ours) <= set(theirs)
    assert all(math.isnan(value) for name, value in theirs.items() if name not in ours)
    for name, value in theirs.items():
        if name not in ours:
            continue
        if math.isnan(value):
            assert ours[name] is None, name
        else:
            assert ours[name] == pytest.approx(value, abs=1e-12), name


@pytest.mark.parametrize("seed", [0, 1])
def test_cityscapes_matches_cityscapesscripts(tmp_path, cityscapesscripts, seed):
    root, pred_root, gt_files, pred_files = cityscapes_dataset(tmp_path, seed)
    record = scored(tmp_path, "--task", "semantic", "--dataset", "cityscapes", "--gt", root, "--pred", pred_root)
    official = cityscapesscripts.evaluateImgLists(pred_files, gt_files, cityscapesscripts.args)
    assert record["metrics"]["mIoU"] == pytest.approx(official["averageScoreClasses"], abs=1e-12)
    assert record["metrics"]["iIoU"] == pytest.approx(official["averageScoreInstClasses"], abs=1e-12)
    assert record["metrics"]["IoU_category"] == pytest.approx(official["averageScoreCategories"], abs=1e-12)
    assert record["metrics"]["iIoU_category"] == pytest.approx(official["averageScoreInstCategories"], abs=1e-12)
    assert_scores_close(record["per_class"]["IoU"], official["classScores"])
    assert_scores_close(record["per_class"]["iIoU"], official["classInstScores"])
    assert_scores_close(record["per_class"]["IoU_category"], official["categoryScores"])
    assert_scores_close(record["per_class"]["iIoU_category"], official["categoryInstScores"])
    assert record["settings"]["items"] == 3 and record["settings"]["dialect"] == "cityscapesscripts"
    wrong_split = bench_eval("--task", "semantic", "--dataset", "cityscapes", "--gt", root, "--pred", pred_root,
                             "--split", "test")
    assert_one_line_error(wrong_split, root / "gtFine", "'test'")


def test_cityscapes_train_id_predictions_score_like_label_ids(tmp_path):
    from cityscapesscripts.helpers.labels import labels as official_labels

    root, pred_root, _, pred_files = cityscapes_dataset(tmp_path, 4)
    by_label = scored(tmp_path, "--task", "semantic", "--dataset", "cityscapes", "--gt", root, "--pred", pred_root)
    to_train = np.full(256, 255, dtype=np.uint8)
    for label in official_labels:
        if label.id >= 0:
            to_train[label.id] = label.trainId
    for path in pred_files:
        Image.fromarray(to_train[np.asarray(Image.open(path))]).save(path)
    by_train = scored(tmp_path, "--task", "semantic", "--dataset", "cityscapes", "--gt", root, "--pred", pred_root,
                      "--prediction-ids", "train_id")
    assert by_train["settings"]["prediction_ids"] == "train_id"
    assert by_train["metrics"]["mIoU"] == pytest.approx(by_label["metrics"]["mIoU"], abs=1e-15)
    assert by_train["per_class"]["IoU"] == pytest.approx(by_label["per_class"]["IoU"], abs=1e-15)


def test_cityscapes_without_instance_maps_skips_iiou(tmp_path):
    root, pred_root, _, _ = cityscapes_dataset(tmp_path, 2, with_instances=False)
    record = scored(tmp_path, "--task", "semantic", "--dataset", "cityscapes", "--gt", root / "gtFine", "--pred", pred_root)
    assert "iIoU" not in record["metrics"] and 0 < record["metrics"]["mIoU"] < 1
    assert record["settings"]["iIoU"].startswith("skipped")


def test_cityscapes_matching_errors(tmp_path):
    root, pred_root, gt_files, pred_files = cityscapes_dataset(tmp_path, 3)
    args = ("--task", "semantic", "--dataset", "cityscapes", "--gt", root, "--pred", pred_root)
    second = Path(pred_files[1]).with_name("frankfurt_000001_000019_copy.png")
    shutil.copy(pred_files[1], second)
    assert_one_line_error(bench_eval(*args), "frankfurt_000001_000019", "second prediction")
    second.unlink()
    nameless = pred_root / "prediction.png"
    shutil.copy(pred_files[0], nameless)
    assert_one_line_error(bench_eval(*args), nameless, "<city>_<seq>_<frame>")
    nameless.unlink()
    Path(pred_files[2]).unlink()
    assert_one_line_error(bench_eval(*args), Path(gt_files[2]), "no prediction")
    instance = Path(gt_files[0].replace("labelIds", "instanceIds"))
    instance.unlink()
    shutil.copy(pred_files[1], pred_files[2])
    assert_one_line_error(bench_eval(*args), instance, "instance map missing")


# ------------------------------------------------------------------------------------------------ flow
FLOW = DATA / "flow-small"


def sintel_layout(tmp_path: Path) -> tuple[Path, Path, dict]:
    """training/{flow,occlusions,invalid}/<scene>/frame_XXXX.* from the real 50x50 crops plus one 20x10 frame;
    predictions: exact (EPE 0), GT + (1.5, 2) (EPE ~2.5), and constant (6, 8) on zero flow (EPE exactly 10)."""
    root = tmp_path / "MPI-Sintel"
    pred = tmp_path / "pred"
    gt_a = read_flo(FLOW / "0000000-flow_01.flo")
    gt_b = read_flo(FLOW / "0000000-flow_10.flo")
    gt_c = np.zeros((10, 20, 2), np.float32)
    pred_b = (gt_b + np.array([1.5, 2.0], np.float32)).astype(np.float32)
    pred_c = np.broadcast_to(np.array([6.0, 8.0], np.float32), gt_c.shape).copy()
    occ_a = np.asarray(Image.open(FLOW / "0000000-occ_01.png")).any(axis=-1)  # stored as RGB
    occ_b = np.asarray(Image.open(FLOW / "0000000-occ_10.png")).any(axis=-1)
    occ_c = np.zeros((10, 20), bool)
    occ_c[:5] = True
    inv_b = np.zeros((50, 50), bool)
    inv_b[:, :7] = True
    frames = {"alley_1/frame_0001": (gt_a, gt_a, occ_a, np.zeros((50, 50), bool)),
              "alley_1/frame_0002": (gt_b, pred_b, occ_b, inv_b),
              "bamboo_2/frame_0001": (gt_c, pred_c, occ_c, np.zeros((10, 20), bool))}
    for key, (gt, prediction, occluded, invalid) in frames.items():
        for folder in ("flow", "occlusions", "invalid"):
            (root / "training" / folder / key).parent.mkdir(parents=True, exist_ok=True)
        (pred / key).parent.mkdir(parents=True, exist_ok=True)
        write_flo(root / "training" / "flow" / f"{key}.flo", gt)
        write_flo(pred / f"{key}.flo", prediction)
        Image.fromarray(occluded.astype(np.uint8) * 255).save(root / "training" / "occlusions" / f"{key}.png")
        Image.fromarray(invalid.astype(np.uint8) * 255).save(root / "training" / "invalid" / f"{key}.png")
    return root, pred, frames


def test_flow_on_a_sintel_layout_against_hand_computed_epe(tmp_path):
    root, pred, frames = sintel_layout(tmp_path)
    record = scored(tmp_path, "--task", "flow", "--gt", root, "--pred", pred)
    gt_b, pred_b = frames["alley_1/frame_0002"][:2]
    diff = pred_b.astype(np.float64) - gt_b.astype(np.float64)
    epe_b = np.sqrt(diff[..., 0] ** 2 + diff[..., 1] ** 2)
    assert np.allclose(epe_b, 2.5, atol=1e-5)
    pixels = 2500 + 2500 + 200
    metrics = record["metrics"]
    assert metrics["EPE"] == pytest.approx((0 + epe_b.sum() + 10 * 200) / pixels, abs=1e-12)
    assert metrics["1px"] == pytest.approx(2500 / pixels, abs=1e-15)
    assert metrics["3px"] == pytest.approx(5000 / pixels, abs=1e-15)
    assert metrics["5px"] == pytest.approx(5000 / pixels, abs=1e-15)
    assert metrics["Fl-all"] == pytest.approx(200 / pixels, abs=1e-15)  # only the 10 px errors on zero flow
    unmatched_b = frames["alley_1/frame_0002"][2] | frames["alley_1/frame_0002"][3]
    unmatched_a = frames["alley_1/frame_0001"][2]
    unmatched_count = int(unmatched_a.sum() + unmatched_b.sum() + 100)
    assert metrics["EPE_unmatched"] == pytest.approx((epe_b[unmatched_b].sum() + 10 * 100) / unmatched_count, abs=1e-12)
    assert metrics["EPE_matched"] == pytest.approx(
        (epe_b[~unmatched_b].sum() + 10 * 100) / (pixels - unmatched_count), abs=1e-12)
    assert record["settings"]["layout"] == "sintel" and record["settings"]["dialect"] == "pixels"
    assert record["settings"]["items"] == 3

    assert scored(tmp_path, "--task", "flow", "--dataset", "sintel", "--gt", root, "--pred", pred)["metrics"] == metrics
    per_image = scored(tmp_path, "--task", "flow", "--gt", root / "training", "--pred", pred, "--dialect", "per-image")
    assert per_image["metrics"]["EPE"] == pytest.approx((0 + epe_b.mean() + 10) / 3, abs=1e-12)
    errors = scored(tmp_path, "--task", "flow", "--gt", root, "--pred", pred, "--px-convention", "error-rate")
    assert errors["metrics"]["1px"] == pytest.approx(2700 / pixels, abs=1e-15)


def test_flow_on_a_flat_folder(tmp_path):
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    gt_dir.mkdir()
    pred_dir.mkdir()
    shutil.copy(FLOW / "00001_flow.flo", gt_dir / "00001_flow.flo")
    flow = read_flo(FLOW / "00001_flow.flo")
    write_flo(pred_dir / "00001_flow.flo", np.zeros_like(flow))
    record = scored(tmp_path, "--task", "flow", "--gt", gt_dir, "--pred", pred_dir)
    speed = np.sqrt(flow[..., 0].astype(np.float64) ** 2 + flow[..., 1].astype(np.float64) ** 2)
    assert record["metrics"]["EPE"] == pytest.approx(speed.mean(), abs=1e-12)
    assert "EPE_matched" not in record["metrics"] and record["settings"]["layout"] == "flat"
    refused = bench_eval("--task", "flow", "--dataset", "sintel", "--gt", gt_dir, "--pred", pred_dir)
    assert_one_line_error(refused, gt_dir, "training/")


def test_bad_flow_files_are_one_line_errors(tmp_path):
    root, pred, _ = sintel_layout(tmp_path)
    args = ("--task", "flow", "--gt", root, "--pred", pred)
    target = pred / "alley_1" / "frame_0002.flo"
    good = target.read_bytes()
    target.write_bytes(np.array([1.0], "<f4").tobytes() + good[4:])
    assert_one_line_error(bench_eval(*args), target, "tag")
    target.write_bytes(good[:-100])
    assert_one_line_error(bench_eval(*args), target, "truncated")
    flow = read_flo(FLOW / "0000000-flow_10.flo").copy()
    flow[3, 4, 0] = np.nan
    write_flo(target, flow)
    assert_one_line_error(bench_eval(*args), target, "non-finite")
    write_flo(target, np.zeros((40, 50, 2), np.float32))
    assert_one_line_error(bench_eval(*args), target, "50x40")
    target.unlink()
    assert_one_line_error(bench_eval(*args), root / "training" / "flow" / "alley_1" / "frame_0002.flo", "no prediction")
    stray = pred / "alley_1" / "frame_0009.flo"
    write_flo(stray, flow)
    assert_one_line_error(bench_eval(*args), stray, "no ground truth")
    stray.unlink()
    write_flo(target, read_flo(FLOW / "0000000-flow_10.flo"))
    mask = root / "training" / "occlusions" / "bamboo_2" / "frame_0001.png"
    mask.unlink()
    assert_one_line_error(bench_eval(*args), mask, "missing")
    assert_one_line_error(bench_eval("--task", "flow", "--gt", tmp_path / "none", "--pred", pred), tmp_path / "none")


# ------------------------------------------------------------------------------------------------ MPII
MPII_JSON = DATA / "mpii" / "annotations" / "mpii_val.json"
#: error of each joint as a fraction of the head size, half-way between the thresholds of the 0.01 grid
JOINT_FRACTIONS = np.array([0.045, 0.305, 0.625, 0.055, 0.455, 0.805, 0.205, 0.075, 0.045, 0.555, 0.305, 0.055, 0.155,
                            0.355, 0.955, 0.255])


def mpii_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    people = json.loads(MPII_JSON.read_text())
    joints = np.array([p["joints"] for p in people], dtype=np.float64)  # (N, 16, 2)
    visible = np.array([p["joints_vis"] for p in people]) > 0
    visible[1, 5] = visible[3, 9] = False  # two missing joints, skipped by PCKh
    heads = joints[:, 8:10]  # upper neck, head top
    boxes = np.stack([heads.min(axis=1) - 12.0, heads.max(axis=1) + 9.0], axis=1)  # (N, 2, 2) [[x1, y1], [x2, y2]]
    return joints, visible, boxes


def write_mpii_gt(path: Path) -> Path:
    from scipy.io import savemat

    joints, visible, boxes = mpii_arrays()
    savemat(path, {"jnt_missing": (~visible).T.astype(np.float64), "pos_gt_src": np.transpose(joints, (1, 2, 0)),
                   "headboxes_src": np.transpose(boxes, (1, 2, 0)),
                   "dataset_joints": np.array([[np.array([code]) for code in MPII_JOINT_CODES]], dtype=object)})
    return path


def mpii_predictions() -> np.ndarray:
    """GT moved by JOINT_FRACTIONS x head size, in a direction that changes per person."""
    joints, _, boxes = mpii_arrays()
    head_size = 0.6 * np.linalg.norm(boxes[:, 1] - boxes[:, 0], axis=-1)
    angles = np.arange(len(joints))[:, None] * 0.7 + np.arange(16)[None, :] * 0.3
    direction = np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    return joints + direction * (JOINT_FRACTIONS[None, :, None] * head_size[:, None, None])


def expected_pckh(threshold: float) -> float:
    """Pooled over the present joints except pelvis (6) and thorax (7)."""
    _, visible, _ = mpii_arrays()
    counted = visible.copy()
    counted[:, [6, 7]] = False
    correct = counted & (JOINT_FRACTIONS[None, :] <= threshold)
    return correct.sum() / counted.sum()


def save_preds(path: Path, layout: str, preds: np.ndarray) -> Path:
    from scipy.io import savemat

    arrays = {"2x16xN": np.transpose(preds, (2, 1, 0)), "Nx16x2": preds, "16x2xN": np.transpose(preds, (1, 2, 0))}
    savemat(path, {"preds": arrays[layout]})
    return path


@pytest.mark.parametrize("layout", ["2x16xN", "Nx16x2", "16x2xN"])
def test_mpii_mat_predictions_against_hand_counts(tmp_path, layout):
    gt = write_mpii_gt(tmp_path / "mpii_gt_val.mat")
    pred = save_preds(tmp_path / "preds.mat", layout, mpii_predictions())
    record = scored(tmp_path, "--task", "mpii", "--gt", gt, "--pred", pred)
    metrics = record["metrics"]
    assert metrics["PCKh@0.5"] == pytest.approx(expected_pckh(0.5), abs=1e-12)
    assert metrics["PCKh@0.1"] == pytest.approx(expected_pckh(0.1), abs=1e-12)
    thresholds = np.linspace(0, 0.5, 51)
    curve = np.array([expected_pckh(t) for t in thresholds])
    assert metrics["AUC"] == pytest.approx(float(np.trapezoid(curve, thresholds / 0.5)), abs=1e-12)
    assert record["per_class"]["PCKh@0.5"]["l_elbow"] == 0.0  # 0.95 head sizes off for everyone
    assert record["per_class"]["PCKh@0.5"]["r_ankle"] == 1.0
    assert metrics["Head"] == pytest.approx(0.5 * (1.0 + 0.0), abs=1e-12)  # upper neck right, head top 0.55 off
    assert record["settings"]["prediction_layout"] == layout and record["settings"]["dialect"] == "official"


def test_mpii_json_ground_truth_needs_head_boxes_and_matches_by_image(tmp_path):
    joints, visible, boxes = mpii_arrays()
    people = json.loads(MPII_JSON.read_text())
    for person, vis in zip(people, visible):
        person["joints_vis"] = vis.astype(int).tolist()
    gt = write_json(tmp_path / "mpii_val.json", people)
    preds = mpii_predictions()
    by_image = write_json(tmp_path / "preds.json", [{"image": p["image"], "joints": preds[i].tolist()}
                                                   for i, p in reversed(list(enumerate(people)))])
    assert_one_line_error(bench_eval("--task", "mpii", "--gt", gt, "--pred", by_image), gt, "--headboxes")
    head_boxes = write_json(tmp_path / "heads.json", boxes.reshape(-1, 4).tolist())
    record = scored(tmp_path, "--task", "mpii", "--gt", gt, "--pred", by_image, "--headboxes", head_boxes)
    assert record["metrics"]["PCKh@0.5"] == pytest.approx(expected_pckh(0.5), abs=1e-12)
    mat_boxes = write_mpii_gt(tmp_path / "mpii_gt_val.mat")
    again = scored(tmp_path, "--task", "mpii", "--gt", gt, "--pred", by_image, "--headboxes", mat_boxes)
    assert again["metrics"] == record["metrics"]


def test_mpii_mmpose_dialect_adds_one_pixel(tmp_path):
    gt = write_mpii_gt(tmp_path / "mpii_gt_val.mat")
    preds = mpii_predictions()
    shifted = write_json(tmp_path / "preds.json", [{"index": i, "joints": (p - 1.0).tolist()} for i, p in enumerate(preds)])
    mmpose = scored(tmp_path, "--task", "mpii", "--gt", gt, "--pred", shifted, "--dialect", "mmpose")
    assert mmpose["metrics"]["PCKh@0.5"] == pytest.approx(expected_pckh(0.5), abs=1e-12)
    assert mmpose["metrics"]["Head"] == 0.0  # mmpose's Head is the head top only
    assert mmpose["settings"]["prediction_offset"] == 1.0


def test_bad_mpii_predictions_are_one_line_errors(tmp_path):
    gt = write_mpii_gt(tmp_path / "mpii_gt_val.mat")
    preds = mpii_predictions()
    with_nan = preds.copy()
    with_nan[2, 7, 1] = np.nan
    nan_mat = save_preds(tmp_path / "nan.mat", "Nx16x2", with_nan)
    assert_one_line_error(bench_eval("--task", "mpii", "--gt", gt, "--pred", nan_mat), nan_mat, "person #2", "thorax")
    allowed = scored(tmp_path, "--task", "mpii", "--gt", gt, "--pred", nan_mat, "--allow-missing")
    assert allowed["metrics"]["PCKh@0.5"] == pytest.approx(expected_pckh(0.5), abs=1e-12)  # thorax is not in the mean
    wrong_size = save_preds(tmp_path / "four.mat", "Nx16x2", preds[:4])
    assert_one_line_error(bench_eval("--task", "mpii", "--gt", gt, "--pred", wrong_size), wrong_size, "4x16x2")
    entries = [{"index": i, "joints": p.tolist()} for i, p in enumerate(preds)]
    entries[3]["index"] = 7
    unknown = write_json(tmp_path / "unknown.json", entries)
    assert_one_line_error(bench_eval("--task", "mpii", "--gt", gt, "--pred", unknown), unknown, "prediction #3", "index 7")
    entries[3]["index"] = 3
    entries[1]["joints"][4][0] = float("inf")
    infinite = write_json(tmp_path / "inf.json", entries)
    assert_one_line_error(bench_eval("--task", "mpii", "--gt", gt, "--pred", infinite), infinite, "prediction #1")
    short = write_json(tmp_path / "short.json", [{"index": i, "joints": p.tolist()} for i, p in enumerate(preds[:4])])
    assert_one_line_error(bench_eval("--task", "mpii", "--gt", gt, "--pred", short), short, "person #4", "no prediction")
    by_image = write_json(tmp_path / "by_image.json", [{"image": "005808361.jpg", "joints": preds[0].tolist()}])
    assert_one_line_error(bench_eval("--task", "mpii", "--gt", gt, "--pred", by_image), by_image, "'image'")
    not_mat = tmp_path / "broken.mat"
    not_mat.write_bytes(b"garbage")
    assert_one_line_error(bench_eval("--task", "mpii", "--gt", gt, "--pred", not_mat), not_mat)
    assert_one_line_error(bench_eval("--task", "mpii", "--gt", not_mat, "--pred", nan_mat), not_mat)


# ----------------------------------------------------------------------------------------------- usage
def test_usage_errors_are_one_line(tmp_path):
    assert_one_line_error(bench_eval("--task", "segmentation", "--gt", tmp_path, "--pred", tmp_path),
                          "segmentation", "did you mean")
    assert_one_line_error(bench_eval("--task", "flow", "--gt", tmp_path, "--pred", tmp_path, "--num-classes", 3),
                          "--num-classes")
    assert_one_line_error(bench_eval("--task", "semantic", "--dataset", "kitti", "--gt", tmp_path, "--pred", tmp_path),
                          "kitti")
    assert_one_line_error(bench_eval("--task", "semantic", "--dataset", "ade20k", "--dialect", "pixels",
                                     "--gt", tmp_path, "--pred", tmp_path), "pixels")
    assert_one_line_error(bench_eval("--task", "semantic", "--gt", tmp_path, "--pred", tmp_path), "--num-classes")


def test_text_output_shows_the_numbers_and_the_dialect():
    result = bench_eval("--task", "semantic", "--dataset", "ade20k", "--gt", ADE / "annotations",
                        "--pred", ADE / "predictions")
    assert result.exit_code == 0
    assert "0.1000" in result.stdout and "ade20k-devkit" in result.stdout and "mIoU" in result.stdout
