"""The compiled COCO kernels against what they replace: Python's own JSON parser (numbers bit for bit), numpy's
stable lexsort, and the numpy matching path (whole evaluations compared array for array).  The pycocotools
differential tests (test_coco_random etc.) run with the kernels on; these pin the kernels themselves."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from harness.metrics.coco import evaluator, kernels
from harness.metrics.coco.synthetic import synthetic_boxes, synthetic_keypoints

pytestmark = pytest.mark.skipif(not kernels.ENABLED, reason="compiled kernels not built")


def _bits(values) -> list[bytes]:
    return [struct.pack("<d", float(v)) for v in values]


def test_numbers_parse_to_the_same_doubles_as_python():
    rng = np.random.default_rng(0)
    texts = ["0", "-0", "-0.0", "0.0", "1", "1.5", "5e-324", "1e-300", "1.7976931348623157e308", "1e22", "1e23",
             "9007199254740993", "9007199254740993.0", "123456789012345678901234567890", "0.1", "0.30000000000000004",
             "2.2250738585072014e-308", "1E5", "1e+5", "12.5e-3", "-4.35", "100000000000000000000000.5",
             "0.000000000000000000000001", "9223372036854775807", "-9223372036854775808", "9223372036854775808"]
    floats = np.concatenate([rng.uniform(-1e4, 1e4, 300), rng.uniform(0, 1, 300), 10.0 ** rng.uniform(-30, 30, 300)])
    texts += [repr(float(x)) for x in floats] + [f"{x:.2f}" for x in floats[:300]] + [f"{x:.6e}" for x in floats]
    text = "[" + ",".join(f'{{"image_id":1,"category_id":2,"score":{t},"bbox":[{t},{t},0,1]}}' for t in texts) + "]"
    parsed = kernels.parse_results(text.encode())
    assert parsed is not None
    count, columns, present, _ = parsed
    expected = [float(json.loads(t)) for t in texts]
    assert count == len(texts) and present["score"] == len(texts) and present["keypoints"] == 0
    assert _bits(columns["score"]) == _bits(expected)
    assert _bits(columns["bbox"][:, 0]) == _bits(expected)


@pytest.mark.parametrize("text", [
    "[]", "{}", '[{"image_id":1}', '[{"image_id":1},]', '[{"image_id":1.0}]', '[{"image_id":"1"}]',
    '[{"image_id":true}]', '[{"score":NaN}]', '[{"score":01}]', '[{"score":.5}]', '[{"score":1.}]',
    '[{"score":+1}]', '[{"id":1}]', '[{"image_id":1,"image_id":2}]', '[{"bbox":[1,2,3]}]',
    '[{"keypoints":[1,2,3]},{"keypoints":[1,2]}]', '\ufeff[{"image_id":1}]', '[{"image_id":1}] x',
    '[{"image_id":99999999999999999999}]', '[{"image\\u005fid":1}]', '[{"image_id":1} {"image_id":2}]',
])
def test_anything_unusual_goes_to_the_general_parser(text):
    assert kernels.parse_results(text.encode()) is None


@pytest.mark.parametrize("threads", [1, 2])
def test_group_order_is_a_stable_lexsort(threads):
    rng = np.random.default_rng(1)
    for n, groups in ((0, 1), (1, 1), (50, 3), (5000, 40), (3000, 2), (9000, 1), (9000, 2), (20000, 7000)):
        key = rng.integers(0, groups, n)
        score = rng.choice([0.0, -0.0, 0.25, 0.5, 0.5000000000000001, 1.0], n)  # many ties
        order, bounds = kernels.group_order(key, score, groups, threads=threads)  # 2: groups split by rows
        assert np.array_equal(order, np.lexsort((-score, key)))
        assert np.array_equal(bounds, np.searchsorted(key[order], np.arange(groups + 1)))
        order, _ = kernels.group_order(key, None, groups)
        assert np.array_equal(order, np.argsort(key, kind="stable"))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("kind", ["bbox", "keypoints"])
def test_evaluation_equals_the_numpy_path(kind, threads, monkeypatch):
    """The compiled path, on one thread or two (OKS pairs split in halves, accumulation by area range)."""
    monkeypatch.setattr(kernels, "OKS_THREADS", threads)
    if kind == "bbox":
        gt, results = synthetic_boxes(3, num_images=60, num_categories=5, gt_per_image=6, dets_per_image=40)
    else:
        gt, results = synthetic_keypoints(3, num_images=60, dets_per_image=10)
    for r in results[::7]:  # score ties across and within images
        r["score"] = 0.5
    fast = evaluator.evaluate_coco(gt, results, kind)
    monkeypatch.setattr(kernels, "ENABLED", False)
    slow = evaluator.evaluate_coco(gt, results, kind)
    assert np.array_equal(fast.precision, slow.precision) and np.array_equal(fast.recall, slow.recall)
    assert fast.precision.max() > 0


def test_file_fast_path_equals_the_general_path(tmp_path, monkeypatch):
    from harness.metrics.coco import make_params
    from harness.metrics.coco.tables import load_ground_truth, load_result_bytes, load_results

    gt, results = synthetic_boxes(4, num_images=30, num_categories=4, gt_per_image=5, dets_per_image=20)
    table = load_ground_truth(gt, "bbox")
    fast = load_result_bytes(json.dumps(results).encode(), table, "bbox")
    slow = load_results(results, table, "bbox")
    assert fast is not None
    for name in ("image", "category", "score", "area", "bbox"):
        assert np.array_equal(getattr(fast, name), getattr(slow, name)), name
    results[3]["image_id"] = 10**6  # unknown image: the general path names it, so the fast path declines
    assert load_result_bytes(json.dumps(results).encode(), table, "bbox") is None
    results[3]["image_id"] = gt["images"][0]["id"]
    results[5]["bbox"][2] = -1.0
    assert load_result_bytes(json.dumps(results).encode(), table, "bbox") is None
    assert make_params("bbox").max_dets[-1] == 100


def test_mask_iou_and_area_equal_pycocotools():
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(5)
    h, w = 37, 29
    masks = []
    for i in range(60):
        m = np.zeros((h, w), dtype=np.uint8, order="F")
        if i % 10:  # every tenth mask empty
            y0, x0 = rng.integers(0, h - 2), rng.integers(0, w - 2)
            m[y0:rng.integers(y0 + 1, h + 1), x0:rng.integers(x0 + 1, w + 1)] = 1
            m[rng.random((h, w)) < 0.1] ^= 1  # ragged, many runs
        if i % 7 == 0:
            m[:] = 1  # full mask: the run list starts with a zero-length background run
        masks.append(m)
    rles = mask_utils.encode(np.asfortranarray(np.stack(masks, axis=2)))
    for r in rles[::2]:
        r["counts"] = r["counts"].decode()  # str as results files have it, bytes as pycocotools makes it
    dt, gt = rles[:40], rles[40:]
    crowd = (np.arange(len(gt)) % 3 == 0).astype(np.uint8)
    pair_dt, pair_gt = np.meshgrid(np.arange(len(dt)), np.arange(len(gt)), indexing="ij")
    got = kernels.mask_iou(dt, gt, crowd, pair_dt.ravel(), pair_gt.ravel())
    want = np.asarray(mask_utils.iou(dt, gt, crowd), dtype=np.float64).ravel()
    assert got is not None and _bits(got) == _bits(want)
    assert (want > 0).sum() > 100 and ((want > 0) & (want < 1)).any()
    # from 4096 pairs on, two threads take half the pairs each: every pair still gets its own IoU, in place
    shuffled = rng.permutation(np.tile(np.arange(pair_dt.size), 11))
    assert len(shuffled) >= 2 * 4096
    got = kernels.mask_iou(dt, gt, crowd, pair_dt.ravel()[shuffled], pair_gt.ravel()[shuffled])
    assert got is not None and _bits(got) == _bits(want[shuffled])
    assert _bits(kernels.mask_areas(rles)) == _bits(np.asarray(mask_utils.area(rles), dtype=np.float64))
    assert kernels.mask_areas([{"counts": "bad counts ~"}]) is None


def test_segm_results_fast_path_equals_the_general_path():
    from harness.metrics.coco.synthetic import synthetic_masks
    from harness.metrics.coco.tables import load_ground_truth, load_result_bytes, load_results

    gt, results = synthetic_masks(6, num_images=12, num_categories=3, dets_per_image=15)
    for r in results:
        if isinstance(r["segmentation"]["counts"], bytes):
            r["segmentation"]["counts"] = r["segmentation"]["counts"].decode()
    assert any("\\" in r["segmentation"]["counts"] for r in results)  # JSON escapes inside the strings
    table = load_ground_truth(gt, "segm")
    text = json.dumps(results).replace("/", "\\/")  # an escaped slash is still the same string
    fast = load_result_bytes(text.encode(), table, "segm")
    slow = load_results(results, table, "segm")
    assert fast is not None
    for name in ("image", "category", "score", "area"):
        assert np.array_equal(getattr(fast, name), getattr(slow, name)), name
    assert fast.masks == slow.masks
    results[0]["segmentation"]["size"] = [1, 1]  # not the image's size: the general path names it
    assert load_result_bytes(json.dumps(results).encode(), table, "segm") is None


def _same_table(a, b) -> None:
    for name in ("image", "category", "crowd", "ignore", "area", "id_is_zero", "bbox", "keypoints", "image_sizes"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None and y is None) or np.array_equal(x, y), name
    assert a.category_names == b.category_names and a.images.ids == b.images.ids and a.categories.ids == b.categories.ids


@pytest.mark.parametrize("name, iou_type, num_keypoints", [
    ("coco/instances_val2014_100.json", "bbox", None),  # real COCO: polygons and RLE crowds skipped, unicode
    ("coco-keypoints/test_coco.json", "keypoints", 17),
])
def test_ground_truth_fast_path_equals_the_general_path(name, iou_type, num_keypoints):
    from pathlib import Path

    from harness.metrics.coco.tables import ground_truth_from_columns, load_ground_truth

    path = Path(__file__).parents[1] / "data" / name
    parsed = kernels.parse_ground_truth(path.read_bytes())
    assert parsed is not None
    fast = ground_truth_from_columns(parsed, iou_type, num_keypoints)
    assert fast is not None
    _same_table(fast, load_ground_truth(json.loads(path.read_text()), iou_type, num_keypoints))


def test_ground_truth_parser_refuses_what_json_refuses_or_it_does_not_decide():
    good = {"images": [{"id": 1, "width": 4, "height": 4, "file_name": "caf\u00e9 \U0001f600.jpg"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "area": 1,
                             "segmentation": [[0, 0, 1, 0, 1, 1]], "extra": {"a": [True, False, None, "x\\n\\u00e9"]}}],
            "categories": [{"id": 1, "name": "a"}], "info": None}
    text = json.dumps(good, ensure_ascii=False)
    parsed = kernels.parse_ground_truth(text.encode())
    assert parsed is not None and parsed[0] == 1 and parsed[4]["images"] == good["images"]
    assert parsed[1]["iscrowd"].tolist() == [0]  # missing iscrowd reads as 0
    bad = [
        text.replace('"info": null', '"info": NaN'),  # not JSON (Python would take it: general path)
        text.replace('"extra"', '"ex\ttra"'),  # control character in a string
        text.replace('"x\\\\n', '"x\\q'),  # bad escape
        text.replace('"annotations": [', '"annotations": [1, '),  # not an object
        text.replace('"area": 1,', '"area": 1, "area": 2,'),  # repeated annotation key
        text.replace('"info": null', '"images": []'),  # repeated top-level key
        text.replace('"iscrowd"', '"x"').replace('"area": 1', '"area": 1, "iscrowd": true'),  # bool iscrowd
        text + ",",  # trailing garbage
        text.replace('"annotations": [{', '"annotations": []}').split('}]}')[0],  # truncated
    ]
    for variant in bad:
        assert variant != text
        assert kernels.parse_ground_truth(variant.encode()) is None, variant[:200]
    invalid_utf8 = text.encode().replace("caf\u00e9".encode(), b"caf\xe9")
    assert kernels.parse_ground_truth(invalid_utf8) is None


def test_oks_equals_the_numpy_path_and_numpys_own_sum():
    from harness.metrics.coco import ious

    rng = np.random.default_rng(7)
    n, g, k = 400, 60, 17
    sigmas = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]) / 10
    dt = rng.uniform(0, 100, (n, k, 3))
    gt = rng.uniform(0, 100, (g, k, 3))
    gt[:, :, 2] = rng.integers(0, 3, (g, k))  # every count of labelled keypoints, and none at all
    gt[:5, :, 2] = 0
    box = np.concatenate([rng.uniform(0, 50, (g, 2)), rng.uniform(1, 50, (g, 2))], axis=1)
    area = rng.uniform(10, 3000, g)
    rows_d, rows_g = rng.integers(0, n, 5000), rng.integers(0, g, 5000)
    fast = ious.oks_pairs(dt, gt, box, area, sigmas, rows_d, rows_g)
    kernels.ENABLED = False
    try:
        slow = ious.oks_pairs(dt, gt, box, area, sigmas, rows_d, rows_g)
    finally:
        kernels.ENABLED = True
    assert _bits(fast) == _bits(slow)
    # two threads, one per half of the pairs, across chunk boundaries: the same bits
    for chunk, threads in ((64, 2), (7, 2), (4999, 2), (64, 1)):
        out = np.full(len(rows_d), np.nan)
        kernels.oks_pairs(dt, gt, box, area, sigmas, rows_d, rows_g, out, chunk=chunk, threads=threads)
        assert _bits(out) == _bits(slow), (chunk, threads)
    with pytest.raises(ValueError):  # an error in the second thread reaches the caller
        kernels.oks_pairs(dt, gt, box, area, sigmas, rows_d, rows_g, np.empty(len(rows_d) - 10), chunk=64, threads=2)
    variances = (sigmas * 2) ** 2  # pycocotools' computeOks, one pair at a time, for a sample
    for i in range(0, 5000, 97):
        d, q = dt[rows_d[i]], gt[rows_g[i]]
        visible = q[:, 2] > 0
        if visible.any():
            dx, dy = d[:, 0] - q[:, 0], d[:, 1] - q[:, 1]
        else:
            b = box[rows_g[i]]
            z = np.zeros(k)
            dx = np.max((z, b[0] - b[2] - d[:, 0]), axis=0) + np.max((z, d[:, 0] - (b[0] + b[2] * 2)), axis=0)
            dy = np.max((z, b[1] - b[3] - d[:, 1]), axis=0) + np.max((z, d[:, 1] - (b[1] + b[3] * 2)), axis=0)
        e = (dx**2 + dy**2) / variances / (area[rows_g[i]] + np.spacing(1)) / 2
        if visible.any():
            e = e[visible]
        assert _bits([fast[i]]) == _bits([np.sum(np.exp(-e)) / e.shape[0]])


def test_segm_evaluation_from_packed_masks_equals_the_general_path():
    from harness.metrics.coco import make_params
    from harness.metrics.coco.synthetic import synthetic_masks
    from harness.metrics.coco.tables import load_ground_truth, load_result_bytes, load_results

    gt, results = synthetic_masks(8, num_images=15, num_categories=3, dets_per_image=12)
    for r in results:
        if isinstance(r["segmentation"]["counts"], bytes):
            r["segmentation"]["counts"] = r["segmentation"]["counts"].decode()
    table = load_ground_truth(gt, "segm")
    fast = load_result_bytes(json.dumps(results).encode(), table, "segm")
    assert fast is not None and len(fast.masks) == len(results) and fast.masks[3] == results[3]["segmentation"]
    params = make_params("segm")
    got = evaluator.evaluate_tables(table, fast, params)
    want = evaluator.evaluate_tables(table, load_results(results, table, "segm"), params)
    assert np.array_equal(got.precision, want.precision) and got.stats[0] > 0


def _polygon_cases(seed: int, count: int):
    """Random polygons of every awkward kind: off the image, negative, on the 1/5-pixel grid (ties in the
    rasteriser's rounding), repeated vertices, one-point parts, steep and shallow edges, several parts."""
    rng = np.random.default_rng(seed)
    for trial in range(count):
        h, w = int(rng.integers(1, 300)), int(rng.integers(1, 300))
        side = max(h, w)
        parts = []
        for _ in range(int(rng.integers(1, 4))):
            k = int(rng.integers(1, 40))
            kind = trial % 6
            if kind == 0:
                values = rng.uniform(-20, side + 20, 2 * k)
            elif kind == 1:
                values = rng.integers(-5, side + 5, 2 * k) + rng.choice([0.0, 0.1, 0.2, 0.5, 0.6, -0.1, -0.5], 2 * k)
            elif kind == 2:
                values = np.repeat(rng.uniform(-3, side, k), 2)  # every vertex on the diagonal
            elif kind == 3:
                values = np.tile(rng.uniform(0, side, 2), k) + rng.integers(0, 2, 2 * k) * 0.2  # repeats
            elif kind == 4:
                values = rng.uniform(-1e3, 1e3, 2 * k)  # far outside
            else:
                values = rng.uniform(0, side, 2 * k)
            parts.append([float(v) for v in values])
        if len(parts[0]) <= 4:  # pycocotools reads 4 numbers or fewer first as a box: keep to polygons
            parts[0] += [1.0, 2.0, 3.0, 1.0]
        yield h, w, parts


def test_polygon_rasteriser_equals_pycocotools():
    """frPyObjects on the parts, then merge (COCO.annToRLE): the same strings, byte for byte, and areas."""
    from pycocotools import mask as mask_utils

    cases = list(_polygon_cases(7, 1500))
    coords = np.concatenate([np.asarray(part) for _, _, parts in cases for part in parts])
    part_lengths = [len(part) for _, _, parts in cases for part in parts]
    part_starts = np.concatenate([[0], np.cumsum(part_lengths)])
    item_parts = np.concatenate([[0], np.cumsum([len(parts) for _, _, parts in cases])])
    sizes = np.array([[h, w] for h, w, _ in cases])
    column = kernels.polygons_to_rles(coords, part_starts, item_parts, sizes)
    assert len(column) == len(cases)
    for i, (h, w, parts) in enumerate(cases):
        own = mask_utils.frPyObjects(parts, h, w)
        expected = own[0] if len(own) == 1 else mask_utils.merge(own)
        assert column[i] == {"size": [h, w], "counts": expected["counts"].decode()}, (h, w, parts)
        assert column.areas[i] == mask_utils.area(expected)


def test_polygon_rasteriser_refuses_values_outside_the_checked_bounds():
    one = np.array([0, 8]), np.array([0, 1])
    with pytest.raises(ValueError, match="within"):
        kernels.polygons_to_rles(np.array([0, 0, np.nan, 1, 2, 2, 1, 0]), *one, np.array([[10, 10]]))
    with pytest.raises(ValueError, match="within"):
        kernels.polygons_to_rles(np.array([0, 0, 1e9, 1, 2, 2, 1, 0]), *one, np.array([[10, 10]]))
    with pytest.raises(ValueError, match="image sizes"):
        kernels.polygons_to_rles(np.arange(8.0), *one, np.array([[0, 10]]))
    with pytest.raises(ValueError, match="odd"):
        kernels.polygons_to_rles(np.arange(8.0), np.array([0, 7]), np.array([0, 1]), np.array([[10, 10]]))


def test_box_iou_equals_the_numpy_bbiou():
    from harness.metrics.coco import ious

    rng = np.random.default_rng(11)
    num_d, num_g, num_p = 300, 80, 20000
    dt = np.concatenate([rng.uniform(-50, 500, (num_d, 2)), rng.uniform(0, 200, (num_d, 2))], axis=1)
    gt = np.concatenate([rng.uniform(-50, 500, (num_g, 2)), rng.uniform(0, 200, (num_g, 2))], axis=1)
    dt[:40] = np.round(dt[:40] / 25) * 25  # touching and identical edges, zero sizes, -0.0
    gt[:20] = np.round(gt[:20] / 25) * 25
    dt[40:60] = gt[:20]
    dt[60, 2], gt[5, 3], dt[61, 0] = 0.0, 0.0, -0.0
    dt[62] = [1e300, 1e300, 1e300, 1e300]  # huge values: the same overflow in both
    crowd = rng.random(num_g) < 0.2
    pair_dt, pair_gt = rng.integers(0, num_d, num_p), rng.integers(0, num_g, num_p)
    pair_dt[:2000] = np.repeat(np.arange(40, 60), 100)
    pair_gt[:2000] = np.tile(np.arange(20), 100)
    pair_dt[2000:2100] = 62
    with np.errstate(all="ignore"):
        slow = ious.box_iou_pairs(dt[pair_dt], gt[pair_gt], crowd[pair_gt])
    fast = kernels.box_iou(dt, gt, crowd, pair_dt, pair_gt)
    assert _bits(fast) == _bits(slow)
    assert (fast == 1.0).sum() >= 20 and (fast == 0).sum() > 100 and ((fast > 0) & (fast < 1)).sum() > 100
    with pytest.raises(ValueError):
        kernels.box_iou(dt, gt, crowd, pair_dt, np.full(num_p, num_g))


def test_keypoint_results_fast_path_equals_the_general_path():
    """The parser's keypoint extent (min / max of x and y, taken while parsing) gives the areas and boxes of
    ``loadRes``' keypoints branch exactly as the numpy reductions of the general path."""
    from harness.metrics.coco.tables import load_ground_truth, load_result_bytes, load_results

    gt, results = synthetic_keypoints(8, num_images=40, dets_per_image=12)
    rng = np.random.default_rng(8)
    for i, r in enumerate(results[:60]):  # negative, tied, single-point and huge coordinates
        values = rng.uniform(-300, 300, 51).round(rng.integers(0, 4))
        values[2::3] = rng.integers(0, 3, 17)
        if i % 5 == 0:
            values[0::3], values[1::3] = values[0], values[1]  # every keypoint in one place: zero area
        if i % 7 == 0:
            values[3] = 1e300
        r["keypoints"] = values.tolist()
    table = load_ground_truth(gt, "keypoints", 17)
    fast = load_result_bytes(json.dumps(results).encode(), table, "keypoints", 17)
    slow = load_results(results, table, "keypoints", 17)
    assert fast is not None
    for name in ("image", "category", "score", "area", "bbox", "keypoints"):
        assert _bits(np.asarray(getattr(fast, name)).ravel()) == _bits(np.asarray(getattr(slow, name)).ravel()), name
    assert (fast.area == 0).sum() >= 12
