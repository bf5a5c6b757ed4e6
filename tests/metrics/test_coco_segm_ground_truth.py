"""Mask ground truth through the compiled parser (``parse_ground_truth(data, segm=True)`` +
``ground_truth_from_columns``) against the general reader (``read_json`` + ``load_ground_truth``).

The fast path may decline (None: the evaluator then runs the general reader, which names any problem); when it
builds a table, the table and every mask must be the general path's, byte for byte."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.core.errors import DataError
from harness.io.jsonio import read_json
from harness.metrics.coco import kernels
from harness.metrics.coco.tables import ground_truth_from_columns, load_ground_truth

pytestmark = pytest.mark.skipif(not kernels.ENABLED, reason="compiled kernels not built")

DATA = Path(__file__).parents[1] / "data"


def _masks(table) -> list[tuple[bytes, list[int]]]:
    out = []
    for i in range(len(table.masks)):
        rle = table.masks[i]
        counts = rle["counts"]
        out.append((counts.encode() if isinstance(counts, str) else bytes(counts), [int(v) for v in rle["size"]]))
    return out


def _same_table(a, b) -> None:
    for name in ("image", "category", "crowd", "ignore", "area", "id_is_zero", "image_sizes"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert a.bbox is None and b.bbox is None and a.keypoints is None and b.keypoints is None
    assert a.category_names == b.category_names and a.images.ids == b.images.ids
    assert a.categories.ids == b.categories.ids
    assert _masks(a) == _masks(b)


def _outcomes(path: Path) -> tuple[Any, Any]:
    """(fast table or None, general table or the general path's error message)."""
    parsed = kernels.parse_ground_truth(path.read_bytes(), segm=True)
    fast = ground_truth_from_columns(parsed, "segm", None, path) if parsed is not None else None
    try:
        general: Any = load_ground_truth(read_json(path), "segm", None, path)
    except DataError as exc:
        general = str(exc)
    if fast is not None:
        assert not isinstance(general, str), general
        _same_table(fast, general)
    return fast, general


def _write(tmp_path: Path, gt: Any, name: str = "gt.json") -> Path:
    path = tmp_path / name
    path.write_text(gt if isinstance(gt, str) else json.dumps(gt))
    return path


def _base() -> dict[str, Any]:
    from pycocotools import mask as mask_utils

    mask = np.zeros((20, 30), dtype=np.uint8, order="F")
    mask[3:9, 4:12] = 1
    compressed = mask_utils.encode(mask)
    return {
        "images": [{"id": 7, "height": 20, "width": 30}, {"id": 3, "height": 40, "width": 25}],
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 1, "area": 12.5, "iscrowd": 0,
             "segmentation": [[1, 1, 10, 1, 10.5, 8.25, 1, 9]], "bbox": [1, 1, 9.5, 8]},
            {"id": 2, "image_id": 3, "category_id": 2, "area": 40, "iscrowd": 0,
             "segmentation": [[0, 0, 5, 0, 5, 5], [10, 10, 20, 12, 15, 30, 11, 25]]},
            {"id": 3, "image_id": 7, "category_id": 2, "area": 48, "iscrowd": 1,
             "segmentation": {"size": [20, 30], "counts": compressed["counts"].decode()}},
            {"id": 4, "image_id": 7, "category_id": 1, "area": 30, "iscrowd": 1,
             "segmentation": {"size": [20, 30], "counts": [64, 6, 14, 6, 510]}},
            {"id": 0, "image_id": 3, "category_id": 1, "area": 3,
             "segmentation": [[-3, -2, 30, 50.75, 2.2, 17.6]]},
        ],
    }


@pytest.mark.parametrize("name", ["coco/instances_val2014_100.json"])
def test_real_coco_file_takes_the_fast_path_with_the_same_table(name):
    """Real COCO: polygons, crowds as uncompressed RLE, unicode file names."""
    fast, general = _outcomes(DATA / name)
    assert fast is not None and not isinstance(general, str) and fast.crowd.any()


def test_synthetic_set_takes_the_fast_path_with_the_same_table(tmp_path):
    from harness.metrics.coco.synthetic import synthetic_masks

    gt, _ = synthetic_masks(0, num_images=40, num_categories=5, dets_per_image=4)
    fast, general = _outcomes(_write(tmp_path, gt))
    assert fast is not None


def test_polygons_and_rles_mixed_take_the_fast_path(tmp_path):
    fast, _ = _outcomes(_write(tmp_path, _base()))
    assert fast is not None and fast.crowd.tolist() == [False, False, True, True, False]
    assert fast.id_is_zero.tolist() == [False, False, False, False, True]
    gt = _base()
    gt["annotations"] = [a for a in gt["annotations"] if a.get("iscrowd") == 1]  # RLEs only
    assert _outcomes(_write(tmp_path, gt))[0] is not None
    gt = _base()
    gt["annotations"] = [a for a in gt["annotations"] if a.get("iscrowd") != 1]  # polygons only
    assert _outcomes(_write(tmp_path, gt))[0] is not None


def _set_segmentation(index: int, value: Any):
    def change(gt):
        gt["annotations"][index]["segmentation"] = value
    return change


def _edit_text(old: str, new: str):
    return lambda text: text.replace(old, new, 1)


# each: the general path refuses it (or takes a branch the columns do not hold): the fast path must decline
DECLINED = {
    "odd length": _set_segmentation(0, [[1, 1, 10, 1, 10, 8, 1]]),
    "empty polygon list": _set_segmentation(0, []),
    "empty part": _set_segmentation(1, [[0, 0, 5, 0, 5, 5], []]),
    "box of 4 numbers": _set_segmentation(0, [[1, 1, 5, 5]]),  # pycocotools' [[x, y, w, h]] branch
    "short second part": _set_segmentation(1, [[0, 0, 5, 0, 5, 5], [1, 2]]),
    "string number": _set_segmentation(0, [["1", 1, 10, 1, 10, 8]]),
    "bool": _set_segmentation(0, [[True, 1, 10, 1, 10, 8]]),
    "null number": _set_segmentation(0, [[None, 1, 10, 1, 10, 8]]),
    "nested too deep": _set_segmentation(0, [[[1, 1, 10, 1, 10, 8]]]),
    "flat list": _set_segmentation(0, [1, 1, 10, 1, 10, 8]),
    "string": _set_segmentation(0, "polygon"),
    "null": _set_segmentation(0, None),
    "number": _set_segmentation(0, 5),
    "beyond the coordinate bound": _set_segmentation(0, [[1, 1, 2e7, 1, 10, 8]]),
    "beyond the walk bound": _set_segmentation(
        0, [[0, 0, 9e6, 0, 9e6, 9e6, 0, 9e6, 0, 0, 9e6, 9e6, 0, 0, 9e6, 0]]),
    "RLE of another size": _set_segmentation(2, {"size": [21, 30], "counts": "abc"}),
    "RLE counts not adding up": _set_segmentation(3, {"size": [20, 30], "counts": [64, 6]}),
    "RLE without counts": _set_segmentation(3, {"size": [20, 30]}),
    "RLE counts of another type": _set_segmentation(3, {"size": [20, 30], "counts": 5}),
    "RLE string outside the alphabet": _set_segmentation(2, {"size": [20, 30], "counts": "~~~"}),
    "missing segmentation": lambda gt: gt["annotations"][1].pop("segmentation"),
    "missing area": lambda gt: gt["annotations"][1].pop("area"),
    "negative area": lambda gt: gt["annotations"][1].update(area=-1),
    "iscrowd 2": lambda gt: gt["annotations"][1].update(iscrowd=2),
    "unknown image": lambda gt: gt["annotations"][1].update(image_id=99),
    "duplicate id": lambda gt: gt["annotations"][1].update(id=1),
    "missing height": lambda gt: gt["images"][1].pop("height"),
    "zero width": lambda gt: gt["images"][0].update(width=0),
    "fractional height": lambda gt: gt["images"][0].update(height=20.5),
    "no annotations": lambda gt: gt.update(annotations=[]),
}
DECLINED_TEXT = {
    "NaN": _edit_text("10.5, 8.25", "NaN, 8.25"),
    "Infinity": _edit_text("10.5, 8.25", "Infinity, 8.25"),
    "overflowing literal": _edit_text("10.5, 8.25", "1e400, 8.25"),
    "huge integer": _edit_text("10.5, 8.25", "1" + "0" * 400 + ", 8.25"),
    "repeated segmentation key": _edit_text('"segmentation": [[0, 0, 5',
                                            '"segmentation": [], "segmentation": [[0, 0, 5'),
    "truncated": lambda text: text[: text.index("10.5, 8.25")],
}


@pytest.mark.parametrize("case", sorted(DECLINED))
def test_what_the_general_path_refuses_the_fast_path_declines(tmp_path, case):
    gt = copy.deepcopy(_base())
    DECLINED[case](gt)
    fast, general = _outcomes(_write(tmp_path, gt))
    assert fast is None
    if case not in ("box of 4 numbers", "short second part", "no annotations"):  # valid, just not in the columns
        assert isinstance(general, str) and "\n" not in general, general


@pytest.mark.parametrize("case", sorted(DECLINED_TEXT))
def test_text_the_fast_parser_does_not_take_is_declined(tmp_path, case):
    text = DECLINED_TEXT[case](json.dumps(_base()))
    fast, general = _outcomes(_write(tmp_path, text))
    assert fast is None
    if case not in ("repeated segmentation key",):  # the last value wins in the general reader
        assert isinstance(general, str) and "\n" not in general, general


def test_random_polygons_fast_path_equals_general_path(tmp_path):
    """Random files of polygons (some awkward: off the image, far outside, odd or short parts, values out of
    bounds) and crowds: whenever the fast path builds a table it is the general path's."""
    rng = np.random.default_rng(5)
    built = declined = 0
    for trial in range(60):
        images = [{"id": int(i), "height": int(rng.integers(1, 120)), "width": int(rng.integers(1, 120))}
                  for i in rng.permutation(12)[: int(rng.integers(1, 6))] + 1]
        annotations = []
        for k in range(int(rng.integers(1, 15))):
            image = images[int(rng.integers(len(images)))]
            h, w = image["height"], image["width"]
            parts = []
            for _ in range(int(rng.integers(1, 4))):
                n = int(rng.integers(3, 12))
                values = rng.uniform(-10, max(h, w) + 10, 2 * n)
                if rng.random() < 0.3:
                    values = np.round(values * 5) / 5  # the rasteriser's grid
                parts.append([float(v) for v in values])
            if rng.random() < 0.03:  # awkward: the general path refuses or takes another branch
                which = int(rng.integers(5))
                part = parts[0]
                parts[0] = [part[:-1], part[:4], [], part[:2] + [float("nan")] + part[3:],
                            part[:2] + [3e7] + part[3:]][which]
            segmentation: Any = parts
            crowd = int(rng.random() < 0.1)
            if crowd:
                counts = list(rng.integers(0, 6, 6))
                counts.append(h * w - sum(counts))
                segmentation = {"size": [h, w], "counts": [int(c) for c in counts]}
            annotations.append({"id": 100 * trial + k, "image_id": image["id"], "category_id": int(rng.integers(1, 3)),
                                "area": float(rng.uniform(0, 100)), "iscrowd": crowd, "segmentation": segmentation})
        gt = {"images": images, "annotations": annotations, "categories": [{"id": 1}, {"id": 2}]}
        fast, general = _outcomes(_write(tmp_path, gt, f"gt{trial}.json"))
        if fast is None:
            declined += 1
        else:
            built += 1
    assert built > 30 and declined > 0


def test_cli_names_a_bad_segm_ground_truth_in_one_line(tmp_path):
    from click.testing import CliRunner

    from harness.cli import main

    gt = _base()
    gt["annotations"][0]["segmentation"] = [[1, 1, 10, 1, 10, 8, 1]]
    gt_path = _write(tmp_path, gt)
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps([{"image_id": 7, "category_id": 1, "score": 0.5,
                                 "segmentation": [[1, 1, 10, 1, 10, 8]]}]))
    result = CliRunner().invoke(main, ["eval", "--task", "instance", "--gt", str(gt_path), "--pred", str(pred)])
    assert result.exit_code == 2
    assert "annotation" in result.output and "even, non-zero number of coordinates" in result.output
    assert "Traceback" not in result.output


def test_start_up_prefetch_form_gives_the_same_table():
    """``harness.cli.early`` parses mask ground truth at start-up and keeps only the texts it needs: the table
    built from that form is the one built from the file."""
    from harness.cli import early

    path = DATA / "coco/instances_val2014_100.json"
    data = path.read_bytes()
    raw = early._ground_truth(early.compiled_kernels().parse_ground_truth, data, True)
    from_prefetch = ground_truth_from_columns(kernels.ground_truth_from_raw(raw), "segm", None, path)
    assert from_prefetch is not None
    _same_table(from_prefetch, ground_truth_from_columns(kernels.parse_ground_truth(data, True), "segm", None, path))
    boxes_only = early._ground_truth(early.compiled_kernels().parse_ground_truth, data)  # no segmentations
    assert ground_truth_from_columns(kernels.ground_truth_from_raw(boxes_only), "segm", None, path) is None


@pytest.mark.parametrize("seed", range(4))
def test_combined_column_puts_every_mask_in_its_place(seed):
    """``masks._combine`` (rasterised masks spliced with the given RLEs) against a mask-by-mask reference,
    owners in item order (the splice) and shuffled (the per-mask loop)."""
    from harness.metrics.coco.masks import _combine
    from harness.metrics.coco.rle_column import RleColumn

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    owners = np.flatnonzero(rng.random(n) < 0.7)
    if seed % 2:
        owners = rng.permutation(owners)
    texts = [bytes(rng.integers(48, 112, int(rng.integers(0, 9))).astype(np.uint8)) for _ in owners]
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum([len(t) for t in texts], out=offsets[1:])
    column = RleColumn(b"".join(texts), offsets, np.ones((len(texts), 2), dtype=np.int64))
    rles: list[Any] = [None] * n
    want = [b""] * n
    for j, i in enumerate(owners.tolist()):
        want[i] = texts[j]
    for i in sorted(set(range(n)) - set(owners.tolist())):
        text = "".join(chr(c) for c in rng.integers(48, 112, int(rng.integers(1, 6))))
        rles[i] = {"size": [2, 3], "counts": text if i % 2 else text.encode()}
        want[i] = text.encode()
    image = rng.integers(0, 3, n)
    sizes = np.array([[2, 3], [4, 5], [6, 7]], dtype=np.float64)
    got = _combine(rles, column, owners, image, sizes, True)
    assert [got.blob[got.offsets[i]:got.offsets[i + 1]] for i in range(n)] == want
    assert got.sizes.tolist() == sizes[image].astype(np.int64).tolist()
