"""Table-driven bad inputs across commands and formats (issue 11): every case exits 2 with exactly one line on
stderr naming the file and the field or location (``datasets check`` exits 1 and lists the problem), never a
traceback, never a silent number.  Inputs are built by ``tests/hostile/cases.py``, each from a valid baseline
that ``test_valid_baselines_score`` shows is accepted, so each failure is its mutation's doing.  Cases that can
crash natively are in ``test_crafted_results.py`` (child process, 2 GiB, 30 s)."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from click.testing import CliRunner

from harness.cli import main
from tests.hostile import cases as c
from tests.hostile.cases import DELETE, edited

Case = tuple[str, Callable[[Path], list[str]], int, str]
CASES: list[Case] = []


def case(name: str, code: int, pattern: str):
    def register(build: Callable[[Path], list[str]]):
        CASES.append((name, build, code, pattern))
        return build
    return register


def coco_eval(task: str, results=None, gt=None, raw_results: str | None = None, raw_gt: str | None = None,
              extra: tuple[str, ...] = ()):
    def build(t: Path) -> list[str]:
        default = {"detection": c.box_results, "instance": c.segm_results, "keypoints": c.keypoint_results}[task]()
        gt_path = c.write_json(t / "gt.json", raw_gt if raw_gt is not None else (gt if gt is not None else c.coco_gt()))
        pred = c.write_json(t / "pred.json", raw_results if raw_results is not None else
                            (results if results is not None else default))
        return ["eval", "--task", task, "--gt", str(gt_path), "--pred", str(pred), *extra]
    return build


PRED = r"pred\.json: "
GTF = r"gt\.json: "

# ---------------------------------------------------------------- A: box results (detection)
BOX = c.box_results()
for name, results, pattern in [
    ("score-nan", '[{"image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "score": NaN}]', r"result #0: score must be finite"),
    ("score-inf", '[{"image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "score": -Infinity}]', r"result #0: score must be finite"),
    ("score-string", edited(BOX, (1, "score"), "0.5"), r"result #1: score must be a number"),
    ("score-bool", edited(BOX, (0, "score"), True), r"result #0: score must be a number"),
    ("score-missing", edited(BOX, (1, "score"), DELETE), r"result #1: missing key 'score'"),
    ("score-null", edited(BOX, (0, "score"), None), r"result #0: score must be a number"),
    ("score-list", edited(BOX, (0, "score"), [0.5]), r"result #0: score must be a number"),
    ("bbox-nan", '[{"image_id": 1, "category_id": 1, "bbox": [NaN, 1, 2, 2], "score": 0.5}]', r"result #0: bbox must be finite"),
    ("bbox-negative-width", edited(BOX, (1, "bbox"), [1, 1, -2, 2]), r"result #1: bbox has a negative width"),
    ("bbox-negative-height", edited(BOX, (0, "bbox"), [1, 1, 2, -0.5]), r"result #0: bbox has a negative width or height"),
    ("bbox-three-numbers", edited(BOX, (0, "bbox"), [1, 1, 2]), r"result #0: bbox must hold 4 numbers, got 3"),
    ("bbox-strings", edited(BOX, (0, "bbox"), ["1", 1, 2, 2]), r"result #0: bbox must hold numbers only"),
    ("bbox-dict", edited(BOX, (0, "bbox"), {"x": 1}), r"result #0: bbox must hold 4 numbers"),
    ("bbox-missing", edited(BOX, (1, "bbox"), DELETE), r"result #1: missing key 'bbox'"),
    ("image-id-unknown", edited(BOX, (1, "image_id"), 99), r"result #1: image_id 99 is not in the ground truth"),
    ("image-id-fractional", edited(BOX, (0, "image_id"), 1.5), r"result #0: image_id 1\.5 is not in the ground truth"),
    ("image-id-bool", edited(BOX, (0, "image_id"), True), r"result #0: image_id True is not in the ground truth"),
    ("image-id-list", edited(BOX, (0, "image_id"), [1]), r"result #0: image_id \[1\] is not in the ground truth"),
    ("image-id-beyond-int64", edited(BOX, (0, "image_id"), 2**70), r"result #0: image_id .* is not in the ground truth"),
    ("image-id-missing", edited(BOX, (0, "image_id"), DELETE), r"result #0: missing key 'image_id'"),
    ("category-unknown", edited(BOX, (0, "category_id"), 7), r"result #0: category_id 7 is not in the ground truth"),
    ("category-string", edited(BOX, (1, "category_id"), "person"), r"result #1: category_id 'person' is not in the ground truth"),
    ("result-not-object", [BOX[0], 5], r"result #1: expected an object, got int"),
    ("results-object", {"results": BOX}, r"results must be a list of objects, got dict"),
    ("results-number", "3", r"results must be a list of objects, got int"),
    ("results-truncated", '[{"image_id": 1, "category_id": 1,', r"malformed JSON at line 1"),
    ("results-trailing-comma", '[{"image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "score": 0.5},]', r"malformed JSON"),
    ("results-deep", "[" * 5000 + "]" * 5000, r"malformed JSON: nested deeper"),
    ("results-empty-file", "", r"malformed JSON"),
    ("first-result-has-nothing", [{"image_id": 1, "category_id": 1, "score": 0.5}], r"result #0: has none of 'bbox'"),
]:
    case(f"det-{name}", 2, PRED + pattern)(coco_eval("detection", raw_results=results if isinstance(results, str) else None,
                                                     results=None if isinstance(results, str) else results))


@case("det-results-not-utf8", 2, PRED + r"not UTF-8 text")
def _(t):
    args = coco_eval("detection")(t)
    (t / "pred.json").write_bytes(b'[{"image_id": 1, "category_id": 1, "bbox": [1,1,2,2], "score": 0.5, "x": "\xff"}]')
    return args


@case("det-results-missing-file", 2, r"missing\.json: .*not found")
def _(t):
    args = coco_eval("detection")(t)
    return args[:-1] + [str(t / "missing.json")]


@case("det-results-is-a-folder", 2, r"pred\.json: .*(not found|file)")
def _(t):
    args = coco_eval("detection")(t)
    (t / "pred.json").unlink()
    (t / "pred.json").mkdir()
    return args


# ---------------------------------------------------------------- B: COCO ground truth files
GT = c.coco_gt()
for name, gt, pattern in [
    ("width-string", edited(GT, ("images", 0, "width"), "abc"), r"image #0 \(id 1\): width must be a number, got 'abc'"),
    ("height-nan", '{"images": [{"id": 1, "width": 64, "height": NaN}], "annotations": [], "categories": [{"id": 1, "name": "p"}]}', r"image #0 \(id 1\): height must be finite"),
    ("images-not-list", edited(GT, ("images",), {"id": 1}), r"ground truth: 'images' must be a list, got dict"),
    ("annotations-missing", edited(GT, ("annotations",), DELETE), r"ground truth has no 'annotations' list"),
    ("categories-missing", edited(GT, ("categories",), DELETE), r"ground truth has no 'categories' list"),
    ("gt-is-list", [], r"ground truth must be a JSON object with 'images', got list"),
    ("duplicate-image-id", edited(GT, ("images", 1, "id"), 1), r"image #1: duplicate id 1 \(also image #0\)"),
    ("duplicate-annotation-id", edited(GT, ("annotations", 1, "id"), 1), r"annotation #1: duplicate id 1"),
    ("image-id-float", edited(GT, ("images", 0, "id"), 1.5), r"image #0: id must be an integer or a string, got 1\.5"),
    ("image-id-beyond-int64", edited(GT, ("images", 0, "id"), 2**70, ("annotations", 0, "image_id"), 2**70), r"image #0: id must be an integer or a string"),
    ("area-negative", edited(GT, ("annotations", 0, "area"), -5), r"annotation #0 \(id 1\): area must not be negative, got -5\.0"),
    ("area-string", edited(GT, ("annotations", 1, "area"), "big"), r"annotation #1 \(id 2\): area must be a number, got 'big'"),
    ("area-missing", edited(GT, ("annotations", 0, "area"), DELETE), r"annotation #0 \(id 1\): missing key 'area'"),
    ("iscrowd-no", edited(GT, ("annotations", 0, "iscrowd"), "no"), r"annotation #0 \(id 1\): iscrowd must be a number, got 'no'"),
    ("iscrowd-two", edited(GT, ("annotations", 1, "iscrowd"), 2), r"annotation #1 \(id 2\): iscrowd must be 0 or 1, got 2"),
    ("bbox-negative", edited(GT, ("annotations", 0, "bbox"), [1, 1, -3, 4]), r"annotation #0 \(id 1\): bbox has a negative width"),
    ("bbox-nan", '{"images": [{"id": 1, "width": 64, "height": 48}], "categories": [{"id": 1, "name": "p"}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "area": 1, "iscrowd": 0, "bbox": [NaN, 1, 1, 1]}]}', r"annotation #0 \(id 1\): bbox must be finite"),
    ("annotation-image-unknown", edited(GT, ("annotations", 0, "image_id"), 42), r"annotation #0 \(id 1\): image_id 42 is not in 'images'"),
    ("annotation-category-unknown", edited(GT, ("annotations", 1, "category_id"), 5), r"annotation #1 \(id 2\): category_id 5 is not in 'categories'"),
    ("category-ids-mixed", edited(GT, ("categories",), [{"id": 1, "name": "a"}, {"id": "b", "name": "b"}]), r"category ids mix integers and strings"),
    ("gt-deep", '{"images": ' + "[" * 5000 + "]" * 5000 + "}", r"malformed JSON: nested deeper"),
    ("gt-malformed", '{"images": [}', r"malformed JSON at line 1"),
]:
    case(f"gt-{name}", 2, GTF + pattern)(coco_eval("detection", raw_gt=gt if isinstance(gt, str) else None,
                                                   gt=None if isinstance(gt, str) else gt))

# ---------------------------------------------------------------- C: masks (instance) in-process
SEGM = c.segm_results()
for name, results, pattern in [
    ("segm-missing", edited(SEGM, (0, "segmentation"), DELETE), r"result #0: (missing key .segmentation.|has none of .bbox., .segmentation.)"),
    ("segm-number", edited(SEGM, (0, "segmentation"), 5), r"result #0: segmentation must be polygons or an RLE object, got int"),
    ("segm-empty-polygon-list", edited(SEGM, (1, "segmentation"), []), r"result #1: a polygon segmentation must be a non-empty list"),
    ("segm-odd-coordinates", edited(SEGM, (0, "segmentation"), [[1, 2, 3, 4, 5, 6, 7]]), r"result #0: a polygon needs an even"),
    ("segm-string-coordinates", edited(SEGM, (0, "segmentation"), [["1", 2, 3, 4, 5, 6]]), r"result #0: polygon coordinates must be numbers"),
    ("rle-size-mismatch", edited(SEGM, (0, "segmentation"), {"size": [10, 10], "counts": "0"}), r"result #0: mask size \[10, 10\] differs from the image size \[48, 64\]"),
    ("rle-counts-number", edited(SEGM, (0, "segmentation"), {"size": [48, 64], "counts": 5}), r"result #0: RLE 'counts' must be a string or a list"),
    ("rle-no-size", edited(SEGM, (0, "segmentation"), {"counts": "0"}), r"result #0: an RLE segmentation needs 'counts' and 'size'"),
    ("rle-short", edited(SEGM, (1, "segmentation"), {"size": [48, 64], "counts": "01"}), r"result #1: RLE counts add up to 1 pixels, the mask size holds 3072"),
    ("rle-uncompressed-short", edited(SEGM, (0, "segmentation"), {"size": [48, 64], "counts": [5, 5]}), r"result #0: RLE counts must be non-negative and add up to 3072"),
]:
    case(f"instance-{name}", 2, PRED + pattern)(coco_eval("instance", results=results))

# ---------------------------------------------------------------- D: keypoint results
KPT = c.keypoint_results()
for name, results, pattern in [
    ("keypoints-short", edited(KPT, (0, "keypoints"), [1, 2, 3]), r"result #0: keypoints must hold 51 numbers, got 3"),
    ("keypoints-strings", edited(KPT, (1, "keypoints"), ["1"] * 51), r"result #1: keypoints must hold numbers only"),
    ("keypoints-nan", '[{"image_id": 1, "category_id": 1, "score": 0.5, "keypoints": [NaN' + ", 1" * 50 + "]}]", r"result #0: keypoints must be finite"),
    ("keypoints-missing", edited(KPT, (0, "keypoints"), DELETE), r"result #0: (missing key 'keypoints'|has none of)"),
    ("keypoints-score-string", edited(KPT, (0, "score"), "high"), r"result #0: score must be a number"),
    ("keypoints-category", edited(KPT, (1, "category_id"), 3), r"result #1: category_id 3 is not in the ground truth"),
]:
    case(f"kpt-{name}", 2, PRED + pattern)(coco_eval("keypoints", raw_results=results if isinstance(results, str) else None,
                                                     results=None if isinstance(results, str) else results))
for name, gt, pattern in [
    ("gt-keypoints-strings", edited(GT, ("annotations", 0, "keypoints"), ["a"] * 51), r"annotation #0 \(id 1\): keypoints must hold numbers only"),
    ("gt-keypoints-short", edited(GT, ("annotations", 1, "keypoints"), [1, 2, 2]), r"annotation #1 \(id 2\): keypoints must hold 51 numbers"),
    ("gt-num-keypoints-missing", edited(GT, ("annotations", 0, "num_keypoints"), DELETE), r"annotation #0 \(id 1\): missing key 'num_keypoints'"),
]:
    case(f"kpt-{name}", 2, GTF + pattern)(coco_eval("keypoints", gt=gt))


@case("kpt-sigmas-mismatch", 2, r"--sigmas has 3 values")
def _(t):
    return coco_eval("keypoints", extra=("--sigmas", "0.1,0.2,0.3"))(t)


@case("kpt-sigmas-negative", 2, r"--sigmas must be positive finite numbers")
def _(t):
    return coco_eval("keypoints", extra=("--sigmas", "-1" + ",0.1" * 16))(t)


@case("det-json-out-is-folder", 2, r"--json .* is a folder; give a file name")
def _(t):
    (t / "out").mkdir()
    return coco_eval("detection", extra=("--json", str(t / "out")))(t)


@case("det-json-out-under-file", 2, r"--json .*x\.json: .*file is a file, not a folder")
def _(t):
    (t / "file").write_text("x")
    return coco_eval("detection", extra=("--json", str(t / "file" / "x.json")))(t)


@case("det-max-dets-text", 2, r"--max-dets must be coco, mmdet or integers")
def _(t):
    return coco_eval("detection", extra=("--max-dets", "lots"))(t)


@case("det-max-dets-zero", 2, r"--max-dets must be positive")
def _(t):
    return coco_eval("detection", extra=("--max-dets", "0,10,100"))(t)


# ---------------------------------------------------------------- E: semantic label maps
def semantic(mutate: Callable[[Path, Path], None], extra: tuple[str, ...] = ("--num-classes", "3")):
    def build(t: Path) -> list[str]:
        gt, pred = c.semantic_pair(t)
        mutate(gt, pred)
        return ["eval", "--task", "semantic", "--gt", str(gt), "--pred", str(pred), *extra]
    return build


LABELS = (np.arange(48 * 64).reshape(48, 64) % 3).astype(np.uint8)
for name, mutate, pattern in [
    ("jpeg-named-png", lambda g, p: c.label_png(p / "x1.png", LABELS, fmt="JPEG"), r"x1\.png: label map is not a PNG file \(its content is JPEG\)"),
    ("one-bit-png", lambda g, p: c.label_png(p / "x2.png", LABELS > 0, mode="1"), r"x2\.png: label map is a 1-bit PNG"),
    ("gt-one-bit-png", lambda g, p: c.label_png(g / "x1.png", LABELS > 0, mode="1"), r"gt/x1\.png: label map is a 1-bit PNG"),
    ("not-an-image", lambda g, p: (p / "x1.png").write_bytes(b"not a png"), r"x1\.png: cannot decode image"),
    ("truncated-png", lambda g, p: (p / "x2.png").write_bytes((p / "x2.png").read_bytes()[:60]), r"x2\.png: cannot decode image"),
    ("size-mismatch", lambda g, p: c.label_png(p / "x1.png", LABELS[:20]), r"x1\.png: .*(size|64x48|x20)"),
    ("rgb-prediction", lambda g, p: c.label_png(p / "x1.png", LABELS, mode="RGB"), r"x1\.png: expected a single-channel or palette label PNG"),
    ("missing-prediction", lambda g, p: (p / "x2.png").unlink(), r"x2"),
    ("class-out-of-range", lambda g, p: c.label_png(p / "x1.png", LABELS + 7), r"x1\.png: .*(label|class|value)"),
    ("empty-size-png", lambda g, p: (p / "x1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30), r"x1\.png: cannot decode image"),
]:
    case(f"semantic-{name}", 2, pattern)(semantic(mutate))


@case("semantic-bomb-header", 2, r"x1\.png: image declares .*pixels")
def _(t):
    import struct
    import zlib

    def bomb(g, p):
        def chunk(kind: bytes, body: bytes) -> bytes:
            return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

        (p / "x1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 200000, 200000, 8, 0, 0, 0, 0))
                                   + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))
    return semantic(bomb)(t)


@case("semantic-num-classes-zero", 2, r"--num-classes")
def _(t):
    return semantic(lambda g, p: None, ("--num-classes", "0"))(t)


# ---------------------------------------------------------------- F: optical flow files
def flow(mutate: Callable[[Path, Path], None]):
    def build(t: Path) -> list[str]:
        gt, pred = c.flow_pair(t)
        mutate(gt, pred)
        return ["eval", "--task", "flow", "--gt", str(gt), "--pred", str(pred)]
    return build


PFLO = lambda p: p / "s" / "frame_0001.flo"  # noqa: E731
for name, mutate, pattern in [
    ("bad-tag", lambda g, p: c.flo(PFLO(p), np.zeros((8, 12, 2)), tag=1.0), r"frame_0001\.flo: not a Middlebury \.flo file"),
    ("huge-header", lambda g, p: c.flo(PFLO(p), np.zeros((1, 1, 2)), size=(10**6, 10**6)), r"frame_0001\.flo: implausible size"),
    ("negative-size", lambda g, p: c.flo(PFLO(p), np.zeros((1, 1, 2)), size=(-5, 3)), r"frame_0001\.flo: implausible size"),
    ("truncated-body", lambda g, p: PFLO(p).write_bytes(PFLO(p).read_bytes()[:100]), r"frame_0001\.flo: .*flow body"),
    ("truncated-header", lambda g, p: PFLO(p).write_bytes(b"PIEH"), r"frame_0001\.flo: truncated \.flo header"),
    ("size-mismatch", lambda g, p: c.flo(PFLO(p), np.zeros((4, 12, 2))), r"frame_0001\.flo: .*(size|12x4|4x12|shape)"),
    ("missing-prediction", lambda g, p: PFLO(p).unlink(), r"frame_0001"),
    ("nan-prediction", lambda g, p: c.flo(PFLO(p), np.full((8, 12, 2), np.nan)), r"frame_0001\.flo: .*(finite|NaN|nan)"),
]:
    case(f"flow-{name}", 2, pattern)(flow(mutate))

# ---------------------------------------------------------------- G: gate and baselines
def gate(entries, reports: Callable[[Path], None] | None = None, extra: tuple[str, ...] = ()):
    def build(t: Path) -> list[str]:
        path = c.baselines_yaml(t / "baselines.yaml", entries)
        (t / "reports").mkdir()
        if reports is not None:
            reports(t / "reports")
        return ["gate", "--baselines", str(path), "--reports-dir", str(t / "reports"), *extra]
    return build


B = c.BASELINE
for name, entries, pattern in [
    ("tolerence-typo", [{**B, "tolerence": 0.01}], r"baselines\[0\]\.tolerence: unknown key"),
    ("negative-tolerance", [{**B, "tolerance": -0.5}], r"baselines\[0\]\.tolerance: must be a finite number >= 0"),
    ("tolerance-string", [{**B, "tolerance": "1%"}], r"baselines\[0\]\.tolerance: Input should be a valid number"),
    ("expected-missing", [{k: v for k, v in B.items() if k != "expected"}], r"baselines\[0\]: missing expected"),
    ("direction-wrong", [B, {**B, "direction": "down"}], r"baselines\[1\]\.direction: direction must be"),
    ("limit-negative", [{**B, "limit": -3}], r"baselines\[0\]\.limit: Input should be greater than or equal to 1"),
    ("entry-not-mapping", [B, "AP"], r"baselines\[1\]: Input should be a valid dictionary"),
    ("baselines-not-list", "baselines: 5\n", r"expected a top-level 'baselines' list"),
    ("top-level-list", "- 1\n- 2\n", r"expected a top-level 'baselines' list"),
    ("unknown-top-key", f"baselines: []\nextra: 1\n", r"extra: unknown key"),
    ("malformed-yaml", "baselines: [\n", r"malformed YAML"),
]:
    case(f"gate-{name}", 2, r"baselines\.yaml: " + pattern)(gate(entries))


@case("gate-not-utf8", 2, r"baselines\.yaml: not UTF-8 text")
def _(t):
    args = gate([B])(t)
    (t / "baselines.yaml").write_bytes(b"baselines: [{task: \xff}]\n")
    return args


@case("gate-baselines-missing", 2, r"nothere\.yaml: baselines file not found")
def _(t):
    args = gate([B])(t)
    return ["gate", "--baselines", str(t / "nothere.yaml"), "--reports-dir", str(t / "reports")]


def record_edit(edit):
    def write(reports: Path) -> None:
        import json

        from tests.core.test_gate_and_leaderboard import record

        run = record("heatmap", 0.6, "2")
        edit(run)
        (reports / "r1").mkdir()
        (reports / "r1" / "metrics.json").write_text(json.dumps(run))
    return write


for name, edit, pattern in [
    ("metrics-list", lambda r: r.update(metrics=[1]), r"field 'metrics': expected an object"),
    ("metric-string", lambda r: r["metrics"].update(AP="0.6"), r"field 'metrics\.AP': expected a number"),
    ("metric-bool", lambda r: r["metrics"].update(AP=True), r"field 'metrics\.AP': expected a number, got True"),
    ("task-missing", lambda r: r.pop("task"), r"field 'task': missing"),
    ("model-name-number", lambda r: r["model"].update(name=5), r"field 'model\.name': expected a string"),
    ("limit-string", lambda r: r.update(limit="48"), r"field 'limit': expected an integer"),
    ("confidence-string", lambda r: r.update(confidence={"AP": "narrow"}), r"field 'confidence\.AP': expected \[low, high\]"),
    ("finished-missing", lambda r: r.pop("finished_utc"), r"field 'finished_utc': missing"),
]:
    case(f"gate-record-{name}", 2, r"r1/metrics\.json: " + pattern)(gate([B], record_edit(edit)))


@case("gate-reports-dir-is-file", 2, r"--reports-dir .* must be a folder, not a file")
def _(t):
    args = gate([B])(t)
    (t / "file").write_text("x")
    return args[:-1] + [str(t / "file")]


# ---------------------------------------------------------------- H: bench run options and suites
def run(*extra: str):
    def build(t: Path) -> list[str]:
        (t / "file").write_text("x")
        return ["run", "--task", "toy", "--reports-dir", str(t / "reports"), "--leaderboards-dir", str(t / "lb"),
                "--cache-dir", str(t / "cache"), *[a.replace("@", str(t)) for a in extra]]
    return build


for name, extra, pattern in [
    ("device-bogus", ("--device", "bogus"), r"--device 'bogus' is not a device"),
    ("device-cuda", ("--device", "cuda"), r"--device cuda: no CUDA device is available"),
    ("device-cuda-index", ("--device", "cuda:9"), r"--device cuda:9: no CUDA device"),
    ("device-cpu-index", ("--device", "cpu:3"), r"--device 'cpu:3': the CPU device has no index"),
    ("device-mps", ("--device", "mps"), r"--device mps: no MPS device"),
    ("seed-negative", ("--seed", "-1"), r"--seed must be in \[0, 2\*\*32\), got -1"),
    ("seed-huge", ("--seed", str(2**40)), r"--seed must be in \[0, 2\*\*32\)"),
    ("seed-text", ("--seed", "abc"), r"run: Invalid value for '--seed'"),
    ("reports-dir-file", ("--reports-dir", "@/file"), r"--reports-dir .*/file must be a folder, not a file"),
    ("cache-dir-under-file", ("--cache-dir", "@/file/cache"), r"--cache-dir .*/file/cache must be a folder, not a file"),
    ("leaderboards-dir-file", ("--leaderboards-dir", "@/file"), r"--leaderboards-dir .*/file must be a folder"),
    ("limit-zero", ("--limit", "0"), r"run: Invalid value for '--limit'"),
    ("unknown-option", ("--bogus",), r"run: No such option '--bogus'"),
    ("unknown-model", ("--model", "no-such-model"), r"no-such-model"),
    ("unknown-dataset", ("--dataset", "no-such-set"), r"no-such-set"),
    ("precision-fp8", ("--precision", "fp8"), r"run: Invalid value for '--precision'"),
    ("entry-timeout-without-suite", ("--entry-timeout", "5"), r"--entry-timeout applies to --suite entries"),
    ("entry-timeout-zero", ("--entry-timeout", "0"), r"run: Invalid value for '--entry-timeout'"),
    ("model-arg-no-equals", ("--model-arg", "threads"), r"--model-arg 'threads': expected key=value"),
    ("model-arg-empty-key", ("--model-arg", "a..b=1"), r"--model-arg 'a\.\.b=1': expected key=value"),
    ("model-arg-mapping", ("--model-arg", "x={a: 1}"), r"--model-arg x: '\{a: 1\}' is a dict"),
    ("model-arg-bad-yaml", ("--model-arg", "x=[1,"), r"--model-arg x: cannot parse '\[1,' as a YAML value"),
    ("model-arg-unknown", ("--model-arg", "threads=2"), r"--model-arg threads: model '.*' does not accept it"),
    ("cfg-options-not-openmmlab", ("--cfg-options", "a.b=1"), r"--cfg-options: model '.*' has no config"),
    ("label-map-missing", ("--task", "detection", "--model", "centernet", "--label-map", "@/nope.yaml"), r"nope\.yaml: --label-map: file not found"),
    ("label-map-wrong-task", ("--label-map", "@/file"), r"--label-map applies to detection and instance"),
    ("ann-file-alone", ("--ann-file", "@/file"), r"--ann-file and --img-dir go together"),
    ("ann-file-wrong-task", ("--ann-file", "@/file", "--img-dir", "@"), r"--ann-file reads COCO-format files"),
    ("log-unknown", ("--log", "neptune"), r"--log 'neptune': unknown tracker"),
    ("multi-scale-text", ("--multi-scale", "0.5,big"), r"--multi-scale '0.5,big': expected comma-separated numbers"),
    ("multi-scale-empty-item", ("--multi-scale", "0.5,,1"), r"--multi-scale '0.5,,1': expected comma-separated"),
    ("multi-scale-zero", ("--multi-scale", "0,1"), r"--multi-scale '0,1': every scale must be in \[0.125, 4\], got 0"),
    ("multi-scale-nan", ("--multi-scale", "nan"), r"--multi-scale 'nan': every scale must be in"),
    ("multi-scale-repeated", ("--multi-scale", "1,1.0"), r"--multi-scale '1,1.0': a scale is repeated"),
    ("multi-scale-unsupported", ("--multi-scale", "0.5,1"),
     r"no model with a multi-scale test among the models to run"),
]:
    case(f"run-{name}", 2, pattern)(run(*extra))


for name, text, pattern in [
    ("timeout-text", "runs: [{task: toy, timeout: soon}]", r"runs\[0\]: timeout must be a number of seconds, got 'soon'"),
    ("timeout-zero", "runs: [{task: toy, timeout: 0}]", r"runs\[0\]: timeout must be positive, got 0"),
    ("precision-fp8", "runs: [{task: toy, precision: fp8}]", r"runs\[0\]: precision must be one of fp32, fp16, bf16"),
]:
    @case(f"suite-{name}", 2, pattern)
    def _(t, text=text):
        (t / "suite.yaml").write_text(text)
        return ["run", "--suite", str(t / "suite.yaml"), "--reports-dir", str(t / "r")]


for name, text, pattern in [
    ("tolerance-one", "machines: {m: {baselines: [{task: t, model: m, batch_size: 1, images_per_s: 9, tolerance: 1}]}}",
     r"machines\.m\.baselines\[0\]\.tolerance"),
    ("speed-zero", "machines: {m: {baselines: [{task: t, model: m, batch_size: 1, images_per_s: 0}]}}",
     r"machines\.m\.baselines\[0\]\.images_per_s"),
    ("not-yaml", "machines: [", r"malformed YAML"),
]:
    @case(f"throughput-gate-{name}", 2, pattern)
    def _(t, text=text):
        (t / "tb.yaml").write_text(text)
        return ["gate", "--throughput", "--throughput-baselines", str(t / "tb.yaml"), "--throughput-csv", str(t / "x.csv")]


@case("run-unknown-task", 2, r"no-such-task")
def _(t):
    return ["run", "--task", "no-such-task", "--reports-dir", str(t / "r")]


def suite(text: str | bytes):
    def build(t: Path) -> list[str]:
        path = t / "suite.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return ["run", "--suite", str(path), "--reports-dir", str(t / "reports"), "--leaderboards-dir", str(t / "lb")]
    return build


for name, text, pattern in [
    ("not-utf8", b"runs:\n  - task: \xff\n", r"not UTF-8 text"),
    ("malformed", "runs: [\n", r"malformed YAML"),
    ("not-mapping", "- 1\n", r"expected a mapping with a 'runs' list"),
    ("unknown-top-key", "runs: [{task: toy}]\nextra: 1\n", r"unknown top-level key 'extra'"),
    ("empty-runs", "runs: []\n", r"expected a non-empty 'runs' list"),
    ("entry-not-mapping", "runs: [toy]\n", r"runs\[0\]: expected a mapping"),
    ("unknown-key", "runs: [{task: toy, modle: x}]\n", r"runs\[0\]: unknown key 'modle'"),
    ("limit-string", "runs: [{task: toy, limit: '5'}]\n", r"runs\[0\]: limit must be an integer"),
    ("limit-zero", "runs: [{task: toy, limit: 0}]\n", r"runs\[0\]: limit must be positive"),
    ("missing-task", "runs: [{model: toy-linear}]\n", r"runs\[0\]: missing task"),
    ("unknown-model", "runs: [{task: toy, model: nope}]\n", r"runs\[0\]: .*nope"),
    ("both-model-and-models", "runs: [{task: toy, model: a, models: [b]}]\n", r"runs\[0\]: give either model or models"),
]:
    case(f"suite-{name}", 2, r"suite\.yaml: " + pattern)(suite(text))


# ---------------------------------------------------------------- I: site and throughput.csv
def site(prepare: Callable[[Path], None]):
    def build(t: Path) -> list[str]:
        for folder in ("reports", "lb"):
            (t / folder).mkdir()
        prepare(t)
        return ["site", "--reports-dir", str(t / "reports"), "--leaderboards-dir", str(t / "lb"), "--out", str(t / "site")]
    return build


for name, prepare, pattern in [
    ("throughput-csv-garbage", lambda t: (t / "lb" / "throughput.csv").write_bytes(b"\xff\xfe\x00garbage\n\x00"), r"throughput\.csv: malformed CSV"),
    ("throughput-csv-missing-columns", lambda t: (t / "lb" / "throughput.csv").write_text("a,b\n1,2\n"), r"throughput\.csv: missing column 'task'"),
    ("throughput-csv-text-number", lambda t: (t / "lb" / "throughput.csv").write_text("task,model,batch_size,images_per_s\ndet,m,1,fast\n"), r"throughput\.csv: row 2, column 'images_per_s': not a number"),
    ("throughput-csv-ragged", lambda t: (t / "lb" / "throughput.csv").write_text('task,model\n"det,m\n'), r"throughput\.csv: malformed CSV"),
    ("record-metrics-list", lambda t: record_edit(lambda r: r.update(metrics=[1]))(t / "reports"), r"r1/metrics\.json: field 'metrics': expected an object"),
    ("out-is-file", lambda t: (t / "site").write_text("x"), r"--out .*site must be a folder, not a file"),
]:
    case(f"site-{name}", 2, pattern)(site(prepare))


# ---------------------------------------------------------------- J: datasets check (exit 1, problem listed)
def check(mutate: Callable[[dict, Path], None], task: str = "keypoints"):
    def build(t: Path) -> list[str]:
        gt = c.coco_gt()
        mutate(gt, t)
        root = c.coco_root(t / "coco", gt)
        return ["datasets", "check", "--dataset", "coco", "--data-root", str(root), "--split", "val", "--task", task]
    return build


def _escape_link(gt: dict, t: Path) -> None:
    (t / "outside.jpg").write_bytes(b"x")
    (t / "coco" / "val").mkdir(parents=True, exist_ok=True)
    os.symlink(t / "outside.jpg", t / "coco" / "val" / "link.jpg")
    gt["images"][1]["file_name"] = "link.jpg"


ANN = "annotations/person_keypoints_val\\.json: "
for name, mutate, task, pattern in [
    ("file-name-parent", lambda g, t: g["images"][0].update(file_name="../../x.jpg"), "keypoints", r"file name '\.\./\.\./x\.jpg' resolves outside the data folder"),
    ("file-name-absolute", lambda g, t: g["images"][0].update(file_name="/etc/hostname"), "keypoints", r"file name '/etc/hostname' is absolute"),
    ("file-name-symlink-out", _escape_link, "keypoints", r"file name 'link\.jpg' resolves outside the data folder"),
    ("file-name-number", lambda g, t: g["images"][0].update(file_name=7), "keypoints", ANN + r"images\[0\]: file_name must be a non-empty string"),
    ("width-string", lambda g, t: g["images"][0].update(width="abc"), "keypoints", ANN + r"images\[0\]: width must be a positive integer, got 'abc'"),
    ("height-zero", lambda g, t: g["images"][1].update(height=0), "keypoints", ANN + r"images\[1\]: height must be a positive integer, got 0"),
    ("iscrowd-no", lambda g, t: g["annotations"][0].update(iscrowd="no"), "keypoints", ANN + r"annotations\[0\] \(id 1\): iscrowd must be 0 or 1, got 'no'"),
    ("keypoints-strings", lambda g, t: g["annotations"][1].update(keypoints=["1"] * 51), "keypoints", ANN + r"annotations\[1\] \(id 2\): keypoints must be finite numbers"),
    ("keypoints-visibility", lambda g, t: g["annotations"][0]["keypoints"].__setitem__(2, 5), "keypoints", ANN + r"annotations\[0\] \(id 1\): keypoint visibility flags must be 0, 1 or 2, got 5"),
    ("skeleton-integer", lambda g, t: g["categories"][0].update(skeleton=5), "keypoints", ANN + r"categories\[0\]: skeleton must be a list of \[a, b\] joint numbers"),
    ("skeleton-out-of-range", lambda g, t: g["categories"][0].update(skeleton=[[1, 40]]), "keypoints", ANN + r"categories\[0\]: skeleton must be a list"),
    ("num-keypoints-string", lambda g, t: g["annotations"][0].update(num_keypoints="17"), "keypoints", ANN + r"annotations\[0\] \(id 1\): num_keypoints must be a non-negative integer"),
    ("image-id-beyond-int64", lambda g, t: g["images"][0].update(id=2**70), "detection", r"images\[0\]: id must be an integer within 64 bits"),
]:
    case(f"check-{name}", 1, pattern)(check(mutate, task))


@case("check-missing-image", 1, r"b\.jpg: image file is missing")
def _(t):
    args = check(lambda g, t: None)(t)
    (t / "coco" / "val" / "b.jpg").unlink()
    return args


@case("check-truncated-image", 1, r"a\.jpg: cannot decode image")
def _(t):
    args = check(lambda g, t: None)(t)
    path = t / "coco" / "val" / "a.jpg"
    path.write_bytes(path.read_bytes()[:40])
    return args


@case("check-bomb-image", 1, r"a\.jpg: image declares .*pixels")
def _(t):
    args = check(lambda g, t: None)(t)
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    (t / "coco" / "val" / "a.jpg").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0))
                                               + chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b""))
    return args


# ---------------------------------------------------------------------------------------------- the tests
def test_enough_cases():
    assert len(CASES) >= 120, len(CASES)
    assert len({name for name, *_ in CASES}) == len(CASES)


@pytest.mark.parametrize("name, build, code, pattern", CASES, ids=[case[0] for case in CASES])
def test_bad_input(tmp_path, monkeypatch, name, build, code, pattern):
    monkeypatch.chdir(tmp_path)
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scale"))
    import toyplugin  # noqa: F401  (the toy task for `bench run` cases)

    args = build(tmp_path)
    result = CliRunner().invoke(main, args, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # an internal bug keeps its traceback
    assert result.exit_code == code, (result.exit_code, result.output[-1500:])
    if code == 2:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: "), lines[0]
        assert re.search(pattern, lines[0]), lines[0]
    else:
        assert re.search(pattern, result.output), result.output[-2000:]


def test_valid_baselines_score(tmp_path, monkeypatch):
    """The unmutated inputs are accepted, so every case above fails because of its mutation."""
    monkeypatch.chdir(tmp_path)
    for index, build in enumerate([coco_eval("detection"), coco_eval("instance"), coco_eval("keypoints"),
                                   semantic(lambda g, p: None), flow(lambda g, p: None), check(lambda g, t: None),
                                   check(lambda g, t: None, "detection")]):
        folder = tmp_path / str(index)
        folder.mkdir()
        result = CliRunner().invoke(main, build(folder))
        assert result.exit_code == 0, result.output[-1500:]
