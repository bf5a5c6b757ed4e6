"""The compiled COCO kernels (``_ckernels.c``, built at install by setup.py) behind numpy-shaped functions.

Each function returns exactly what the numpy path it replaces returns (tests run both and compare every bit);
when the extension is not built (no C compiler at install) or ``BENCH_NO_CKERNELS=1`` is set, ``ENABLED`` is
False and callers keep their numpy path.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import TYPE_CHECKING, Any, Sequence, TypedDict

import numpy as np

if TYPE_CHECKING:
    from harness.metrics.coco.rle_column import RleColumn


def _compiled() -> ModuleType | None:
    """The extension module, or None when it is not built or ``BENCH_NO_CKERNELS`` switches it off."""
    if os.environ.get("BENCH_NO_CKERNELS", "") not in ("", "0"):
        return None
    try:
        return importlib.import_module("harness.metrics.coco._ckernels")
    except ImportError:  # pragma: no cover - the install builds it; the numpy path is the fallback
        return None


#: the compiled kernels (a C module has no annotations: its functions take and return buffers, typed here by
#: the wrappers below), or None
_C: Any = _compiled()

#: whether the compiled kernels are used (tests switch it off to run the numpy path)
ENABLED: bool = _C is not None

#: threads of the compiled OKS and accumulation: their parts are independent, so the numbers never depend on it;
#: the other core is idle by then (``bench eval`` parsed the files while it imported)
OKS_THREADS = min(2, os.cpu_count() or 1)


class ResultColumns(TypedDict):
    """The columns ``parse_results`` reads: one entry per result that has the key."""

    image_id: np.ndarray
    category_id: np.ndarray
    score: np.ndarray
    bbox: np.ndarray  # (n, 4) xywh
    keypoints: np.ndarray  # (n, values per result)
    keypoint_extent: np.ndarray  # (n, 4) min x, min y, max x, max y of the keypoints (x, y, v triples), or (0, 4)
    segmentation: RleColumn


def parse_results(data: bytes | bytearray | memoryview) -> tuple[int, ResultColumns, dict[str, int], int] | None:
    """A results file's bytes as columns, or None unless it is a plain non-empty JSON array of objects whose keys
    are among image_id / category_id (integers), score (a number), bbox (4 numbers), keypoints (numbers, the same
    count in every result), segmentation (a compressed RLE: {"size": [h, w], "counts": str}; the column is an
    ``RleColumn``), each at most once.  Returns (results, columns, how many results have each key,
    keypoint values per result or -1); a column holds the values of the results that have the key."""
    if not ENABLED:
        return None
    return results_from_raw(_C.parse_results(data))


def results_from_raw(parsed: Any) -> tuple[int, ResultColumns, dict[str, int], int] | None:
    """``parse_results`` from what the compiled parser returned (the start-up prefetch of ``harness.cli.early``
    runs the parser itself, before numpy is imported)."""
    if parsed is None:
        return None
    count, raw, present, kp_len = parsed
    columns: ResultColumns = {
        "image_id": np.frombuffer(raw["image_id"], dtype=np.int64),
        "category_id": np.frombuffer(raw["category_id"], dtype=np.int64),
        "score": np.frombuffer(raw["score"], dtype=np.float64),
        "bbox": np.frombuffer(raw["bbox"], dtype=np.float64).reshape(-1, 4),
        "keypoints": np.frombuffer(raw["keypoints"], dtype=np.float64).reshape(-1, max(kp_len, 1)),
        "keypoint_extent": np.frombuffer(raw["keypoint_extent"], dtype=np.float64).reshape(-1, 4),
        "segmentation": _rle_column(raw["segmentation"]),
    }
    return count, columns, present, kp_len


def _rle_column(packed: tuple[bytes, bytes, bytes, bytes]) -> RleColumn:
    from harness.metrics.coco.rle_column import RleColumn

    blob, offsets, sizes, areas = packed
    column = RleColumn(blob, np.frombuffer(offsets, dtype=np.int64), np.frombuffer(sizes, dtype=np.int64).reshape(-1, 2))
    column.areas = np.frombuffer(areas, dtype=np.float64)  # decoded while packing; NaN: not a mask's text
    return column


def _masks_arg(rles: Any) -> Any:
    """A mask list as the kernels take it: an ``RleColumn`` packed, anything else as is."""
    packed = getattr(rles, "packed", None)
    return packed if packed is not None else rles


def group_order(key: np.ndarray, score: np.ndarray | None, num_groups: int, threads: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """(order, bounds): rows stably sorted by ``key`` (0 <= key < num_groups) and, inside a group, by descending
    ``score`` with ties in row order (``np.lexsort((-score, key))``); group g is order[bounds[g]:bounds[g+1]].
    With ``threads`` 2 a second thread sorts the groups of the later half of the rows."""
    key = np.ascontiguousarray(key, dtype=np.int64)
    order = np.empty(len(key), dtype=np.int64)
    bounds = np.empty(num_groups + 1, dtype=np.int64)
    scores: Any = b"" if score is None else np.ascontiguousarray(score, dtype=np.float64)
    _C.group_order(key, scores, int(num_groups), order, bounds, OKS_THREADS if threads is None else int(threads))
    return order, bounds


def greedy_match(pair_det: np.ndarray, pair_gt: np.ndarray, pair_iou: np.ndarray, gt_crowd: np.ndarray,
                 gt_ignored: np.ndarray, thresholds: np.ndarray, num_candidates: int) -> np.ndarray:
    """(T, A, C) ground truth taken by each candidate detection (pairs ordered by detection, then ground truth;
    ``thresholds`` already clipped to 1 - 1e-10); see ``matching.greedy_match`` for the rule."""
    num_a, num_g = gt_ignored.shape
    matched = np.empty((len(thresholds), num_a, num_candidates), dtype=np.int32)
    _C.greedy_match(
        np.ascontiguousarray(pair_det, dtype=np.int64), np.ascontiguousarray(pair_gt, dtype=np.int64),
        np.ascontiguousarray(pair_iou, dtype=np.float64), np.ascontiguousarray(gt_crowd, dtype=np.uint8),
        np.ascontiguousarray(gt_ignored, dtype=np.uint8), np.ascontiguousarray(thresholds, dtype=np.float64),
        num_a, num_g, matched,
    )
    return matched


def accumulate(order: np.ndarray, cat_bounds: np.ndarray, dt_rank: np.ndarray, slot_of: np.ndarray,
               plain_inside: np.ndarray, cand_tp: np.ndarray, cand_counted: np.ndarray, num_positives: np.ndarray,
               recall_thresholds: np.ndarray, max_dets, precision: np.ndarray, recall: np.ndarray) -> None:
    """Fill ``precision`` (T, R, K, A, M) and ``recall`` (T, K, A, M), which arrive as -1, as pycocotools'
    accumulate does for every image once; ``cand_tp``/``cand_counted`` are (T, A, C) as the plan holds them."""
    num_t, num_a = cand_tp.shape[:2]
    num_k = len(cat_bounds) - 1

    def i64(x):
        return np.ascontiguousarray(x, dtype=np.int64)

    def u8(x):
        return np.ascontiguousarray(x).view(np.uint8) if np.asarray(x).dtype == bool else np.ascontiguousarray(x, np.uint8)

    # gathered into accumulation order once, so the walks read memory in sequence
    _C.accumulate(
        i64(order), i64(cat_bounds), i64(dt_rank[order]), i64(slot_of[order]), u8(plain_inside[:, order]),
        u8(cand_tp.transpose(2, 1, 0)), u8(cand_counted.transpose(2, 1, 0)), i64(num_positives),
        np.ascontiguousarray(recall_thresholds, dtype=np.float64), i64(np.asarray(max_dets)), num_t, num_a, num_k,
        precision, recall,
    )


def box_iou(dt_box: np.ndarray, gt_box: np.ndarray, gt_crowd: np.ndarray, pair_dt: np.ndarray,
            pair_gt: np.ndarray) -> np.ndarray:
    """``ious.box_iou_pairs(dt_box[pair_dt], gt_box[pair_gt], gt_crowd[pair_gt])`` without the gathers: cocoapi's
    bbIou of every pair in one pass, the same operations in the same order (finite boxes)."""
    out = np.empty(len(pair_dt), dtype=np.float64)
    _C.box_iou(np.ascontiguousarray(dt_box, dtype=np.float64), np.ascontiguousarray(gt_box, dtype=np.float64),
               np.ascontiguousarray(gt_crowd, dtype=np.uint8), np.ascontiguousarray(pair_dt, dtype=np.int64),
               np.ascontiguousarray(pair_gt, dtype=np.int64), out)
    return out


def mask_areas(rles: Sequence[dict[str, Any]]) -> np.ndarray | None:
    """Areas of compressed RLEs (dicts with 'counts' str/bytes), as ``pycocotools.mask.area``; None when a
    string is outside the format (the caller asks pycocotools)."""
    if not ENABLED:
        return None
    raw = _C.mask_areas(_masks_arg(rles))
    return None if raw is None else np.frombuffer(raw, dtype=np.float64).copy()


def polygons_to_rles(coords: np.ndarray, part_starts: np.ndarray, item_parts: np.ndarray, sizes: np.ndarray) -> Any:
    """The masks of polygon segmentations as an ``RleColumn`` (with areas), exactly what pycocotools'
    ``frPyObjects`` + ``merge`` give (``COCO.annToRLE``); None without the compiled kernels.

    ``coords`` holds every part's x, y values back to back; part p is ``coords[part_starts[p]:part_starts[p+1]]``,
    item i the union of parts ``item_parts[i]`` .. ``item_parts[i+1] - 1`` at ``sizes[i]`` = (height, width).
    The values must have passed ``harness.io.validation.coco_geometry`` (the kernel refuses others again)."""
    if not ENABLED:
        return None
    from harness.metrics.coco.rle_column import RleColumn

    sizes = np.ascontiguousarray(sizes, dtype=np.int64).reshape(-1, 2)
    blob, offsets, areas = _C.polygons_to_rles(
        np.ascontiguousarray(coords, dtype=np.float64), np.ascontiguousarray(part_starts, dtype=np.int64),
        np.ascontiguousarray(item_parts, dtype=np.int64), sizes)
    column = RleColumn(blob, np.frombuffer(offsets, dtype=np.int64), sizes)
    column.areas = np.frombuffer(areas, dtype=np.float64)
    return column


def mask_iou(dt_rles: Sequence[dict[str, Any]], gt_rles: Sequence[dict[str, Any]], gt_crowd: np.ndarray,
             pair_dt: np.ndarray, pair_gt: np.ndarray) -> np.ndarray | None:
    """IoU of the mask pairs (dt_rles[pair_dt[i]], gt_rles[pair_gt[i]]) as ``pycocotools.mask.iou`` gives it,
    or None when a string is outside the format."""
    if not ENABLED:
        return None
    out = np.empty(len(pair_dt), dtype=np.float64)
    done = _C.mask_iou(_masks_arg(dt_rles), _masks_arg(gt_rles), np.ascontiguousarray(gt_crowd, dtype=np.uint8),
                       np.ascontiguousarray(pair_dt, dtype=np.int64), np.ascontiguousarray(pair_gt, dtype=np.int64), out)
    return out if done else None


def match_status(pair_det: np.ndarray, pair_gt: np.ndarray, pair_iou: np.ndarray, gt_crowd: np.ndarray,
                 gt_ignored: np.ndarray, thresholds: np.ndarray, num_candidates: int, gt_id_is_zero: np.ndarray,
                 dt_outside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``greedy_match`` that keeps, instead of the matches, each candidate's COCOeval status: (C, A) uint16 bits
    per threshold of true positive and of counted false positive (neither: ignored).  At most 16 thresholds."""
    num_a, num_g = gt_ignored.shape
    tp_bits = np.empty((num_candidates, num_a), dtype=np.uint16)
    fp_bits = np.empty((num_candidates, num_a), dtype=np.uint16)
    _C.greedy_match(
        np.ascontiguousarray(pair_det, dtype=np.int64), np.ascontiguousarray(pair_gt, dtype=np.int64),
        np.ascontiguousarray(pair_iou, dtype=np.float64), np.ascontiguousarray(gt_crowd, dtype=np.uint8),
        np.ascontiguousarray(gt_ignored, dtype=np.uint8), np.ascontiguousarray(thresholds, dtype=np.float64),
        num_a, num_g, bytearray(), np.ascontiguousarray(gt_id_is_zero, dtype=np.uint8),
        np.ascontiguousarray(dt_outside, dtype=np.uint8), tp_bits, fp_bits,
    )
    return tp_bits, fp_bits


def accumulate_matches(seq: np.ndarray, cat_bounds: np.ndarray, dt_rank: np.ndarray, slot_of: np.ndarray,
                       dt_outside: np.ndarray, cand_tp: np.ndarray, cand_fp: np.ndarray, num_positives: np.ndarray,
                       recall_thresholds: np.ndarray, max_dets, num_t: int,
                       precision: np.ndarray, recall: np.ndarray, threads: int | None = None) -> None:
    """pycocotools' accumulate for every image once, from the candidates' status bits (``match_status``); fills
    ``precision`` laid out (K, A, M, T, R) and ``recall`` (K, A, M, T), which arrive as -1.  With ``threads`` 2
    a second thread takes the later half of the area ranges (each area range is independent)."""
    num_a = dt_outside.shape[0]
    num_k = len(cat_bounds) - 1

    def i64(x):
        return np.ascontiguousarray(x, dtype=np.int64)

    _C.accumulate_matches(
        i64(seq), i64(cat_bounds), i64(dt_rank), i64(slot_of), np.ascontiguousarray(dt_outside, dtype=np.uint8),
        np.ascontiguousarray(cand_tp, dtype=np.uint16), np.ascontiguousarray(cand_fp, dtype=np.uint16),
        i64(num_positives), np.ascontiguousarray(recall_thresholds, dtype=np.float64), i64(np.asarray(max_dets)),
        num_t, num_a, num_k, precision, recall, OKS_THREADS if threads is None else int(threads),
    )



def accumulate_weighted(cat_bounds: np.ndarray, block_start: np.ndarray, image: np.ndarray, rank: np.ndarray,
                        slot: np.ndarray, inside: np.ndarray, cand_tp: np.ndarray, cand_fp: np.ndarray,
                        weights: np.ndarray, positive_key: np.ndarray, positive_image: np.ndarray, num_k: int,
                        recall_thresholds: np.ndarray, max_dets: Sequence[int], wanted: Sequence[bool], num_t: int,
                        threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``accumulate_matches`` for the image multisets ``weights`` (B, I): per-position columns in accumulation
    order (``block_start`` flags runs of equal category, score and image; ``inside`` bit a: inside area range
    a; ``slot`` -1 for never-matched detections); every non-ignored (ground truth, area range) as its key
    ``k * A + a`` and image.  Returns precision (B, M', A, T, K, R) for the ``wanted`` maxDets and recall
    (B, M, A, T, K), -1 where a category has no positives in a resample.  ``threads`` 2 walks half of the
    resamples in a second thread (the numbers do not depend on it)."""
    num_b, num_i = weights.shape
    num_a = cand_tp.shape[1] if cand_tp.ndim == 2 else 1
    num_r, num_m = len(recall_thresholds), len(max_dets)
    num_wanted = int(sum(bool(x) for x in wanted))
    precision = np.empty((num_b, num_wanted, num_a, num_t, num_k, num_r))
    recall = np.empty((num_b, num_m, num_a, num_t, num_k))

    def i64(x: Any) -> np.ndarray:
        return np.ascontiguousarray(x, dtype=np.int64)

    # (I, B): one image's weights in all resamples side by side; whole numbers, exact in float64
    by_image = np.ascontiguousarray(np.asarray(weights, dtype=np.float64).T)
    _C.accumulate_weighted(
        i64(cat_bounds), np.ascontiguousarray(block_start, dtype=np.uint8), i64(image), i64(rank), i64(slot),
        np.ascontiguousarray(inside, dtype=np.uint8), np.ascontiguousarray(cand_tp, dtype=np.uint16),
        np.ascontiguousarray(cand_fp, dtype=np.uint16), by_image, i64(positive_key), i64(positive_image),
        np.ascontiguousarray(recall_thresholds, dtype=np.float64), i64(np.asarray(max_dets)),
        np.ascontiguousarray(np.asarray(wanted, dtype=bool), dtype=np.uint8), num_t, num_a, num_k, num_i,
        int(threads), precision, recall,
    )
    return precision, recall


GT_COLUMNS = {"id": np.int64, "image_id": np.int64, "category_id": np.int64, "iscrowd": np.int64,
              "area": np.float64, "num_keypoints": np.float64}


def parse_ground_truth(data: bytes) -> tuple[int, dict[str, np.ndarray], dict[str, int], int, dict[str, Any]] | None:
    """A COCO annotation file's bytes as (annotations, annotation columns, how many annotations have each key,
    keypoint values per annotation, the other top-level values parsed) -- or None unless the file is an object
    whose "annotations" are objects with integer id / image_id / category_id / iscrowd (missing: 0), numeric
    area / num_keypoints, 4-number bbox and same-length keypoints, other keys (segmentation, ...) skipped.  The
    other top-level values (images, categories, ...) are parsed by orjson; "annotations" stands in as []."""
    if not ENABLED:
        return None
    parsed = _C.parse_ground_truth(data)
    if parsed is None:
        return None
    view = memoryview(data)
    count, raw, present, kp_len, spans = parsed
    return ground_truth_from_raw((count, raw, present, kp_len,
                                  {key: view[start:stop] for key, (start, stop) in spans.items()}))


def ground_truth_from_raw(parsed: Any) -> tuple[int, dict[str, np.ndarray], dict[str, int], int, dict[str, Any]] | None:
    """``parse_ground_truth`` from what the compiled parser returned, with each top-level span replaced by its
    text (the form the start-up prefetch of ``harness.cli.early`` hands over: it keeps those few texts and lets
    the whole file go)."""
    if parsed is None:
        return None
    import orjson

    count, raw, present, kp_len, texts = parsed
    columns: dict[str, np.ndarray] = {name: np.frombuffer(raw[name], dtype=dtype) for name, dtype in GT_COLUMNS.items()}
    columns["bbox"] = np.frombuffer(raw["bbox"], dtype=np.float64).reshape(-1, 4)
    columns["keypoints"] = np.frombuffer(raw["keypoints"], dtype=np.float64).reshape(-1, max(kp_len, 1))
    try:
        rest = {key: orjson.loads(text) for key, text in texts.items()}
    except orjson.JSONDecodeError:  # e.g. an integer beyond 64 bits: the general reader handles it
        return None
    rest["annotations"] = []
    return count, columns, present, kp_len, rest


def oks_pairs(dt_keypoints: np.ndarray, gt_keypoints: np.ndarray, gt_box: np.ndarray, gt_area: np.ndarray,
              sigmas: np.ndarray, dt_rows: np.ndarray, gt_rows: np.ndarray, out: np.ndarray,
              chunk: int = 1 << 13, threads: int | None = None) -> np.ndarray:
    """``ious.oks_pairs`` in C around numpy's exp: the exponents with computeOks' arithmetic, exp by numpy,
    the sums in np.sum's pairwise order (see ``_ckernels.c``).  With ``threads`` 2 a second thread takes the
    second half of the pairs (the kernels and numpy's exp release the GIL)."""
    variances = np.ascontiguousarray((np.asarray(sigmas, dtype=np.float64) * 2) ** 2)
    dt_kp = np.ascontiguousarray(dt_keypoints, dtype=np.float64)
    gt_kp = np.ascontiguousarray(gt_keypoints, dtype=np.float64)
    box = np.ascontiguousarray(gt_box, dtype=np.float64)
    area = np.ascontiguousarray(gt_area, dtype=np.float64)

    def run(start: int, stop: int) -> None:
        k = len(variances)
        terms = np.empty((min(chunk, stop - start), k))
        counts = np.empty(len(terms), dtype=np.int64)
        for at in range(start, stop, chunk):
            d = np.ascontiguousarray(dt_rows[at:min(at + chunk, stop)], dtype=np.int64)
            g = np.ascontiguousarray(gt_rows[at:min(at + chunk, stop)], dtype=np.int64)
            e, c = terms[:len(d)], counts[:len(d)]
            _C.oks_terms(dt_kp, gt_kp, box, area, variances, d, g, e, c)
            np.negative(e, out=e)
            np.exp(e, out=e)
            _C.oks_sums(e, c, k, out[at:at + len(d)])

    n = len(dt_rows)
    if threads is None:
        threads = OKS_THREADS
    if threads < 2 or n < 2 * chunk:
        run(0, n)
        return out
    import threading

    half = (n // 2 + chunk - 1) // chunk * chunk
    failed: list[BaseException] = []

    def second() -> None:
        try:
            run(half, n)
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            failed.append(exc)

    worker = threading.Thread(target=second, name="oks-pairs")
    worker.start()
    try:
        run(0, half)
    finally:
        worker.join()
    if failed:
        raise failed[0]
    return out
