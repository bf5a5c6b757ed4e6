"""The compiled COCO kernels (``_ckernels.c``, built at install by setup.py) behind numpy-shaped functions.

Each function returns exactly what the numpy path it replaces returns (tests run both and compare every bit);
when the extension is not built (no C compiler at install) or ``BENCH_NO_CKERNELS=1`` is set, ``ENABLED`` is
False and callers keep their numpy path.
"""
from __future__ import annotations

import importlib
import mmap
import os
from types import ModuleType
from typing import TYPE_CHECKING, Any, Sequence, TypedDict

import numpy as np

if TYPE_CHECKING:
    from harness.metrics.coco.grouping import Groups
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

#: threads of the compiled kernels that split their work (at most two: the parts are independent, so the numbers
#: never depend on it): the cores this process may run on, not the machine's (a container or taskset may allow one)
THREADS = min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
#: threads of the compiled OKS and group order (the other core is idle by then: ``bench eval`` parsed the files
#: while it imported)
OKS_THREADS = THREADS


class ResultColumns(TypedDict):
    """The columns ``parse_results`` reads: one entry per result that has the key."""

    image_id: np.ndarray
    category_id: np.ndarray
    score: np.ndarray
    bbox: np.ndarray  # (n, 4) xywh
    keypoints: np.ndarray  # (n, values per result)
    keypoint_extent: np.ndarray  # (n, 4) min x, min y, max x, max y of the keypoints (x, y, v triples), or (0, 4)
    segmentation: RleColumn


def parse_results(data: bytes | bytearray | memoryview | mmap.mmap
                  ) -> tuple[int, ResultColumns, dict[str, int], int] | None:
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


#: results files from this size on are parsed as two halves in two threads (below, a thread costs more)
SPLIT_MIN_BYTES = 1 << 20


def parse_results_file(path: str | os.PathLike[str], threads: int = 2
                       ) -> tuple[int, ResultColumns, dict[str, int], int] | None:
    """``parse_results`` of a file, its two halves parsed at once (the parser releases the GIL): the file is cut
    at a ``},{`` near the middle, each thread maps its half of the file copy-on-write (nothing copied; only
    the page holding the cut is, to make it ``]`` or ``[``), parses it and the columns are joined.

    The parser reads left to right and only accepts a complete array, so if both halves parse, the cut was
    between two top-level objects (a cut inside a string leaves the first half's string unterminated) and the
    joined columns are the whole file's.  When a half does not parse, or the halves disagree on the keypoint
    count, the whole file is parsed in one piece, whose answer then stands."""
    if not ENABLED:
        return None
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        split = threads > 1 and size >= SPLIT_MIN_BYTES and hasattr(mmap, "MAP_PRIVATE")
        cut = _cut_point(handle, size) if split else None
        if cut is None:
            handle.seek(0)
            return parse_results(handle.read())
    import threading

    halves: list[Any] = [None, None]

    def parse_half(which: int) -> None:
        start = 0 if which == 0 else cut - cut % mmap.ALLOCATIONGRANULARITY
        with open(path, "rb") as handle:
            mapped = mmap.mmap(handle.fileno(), cut + 1 - start if which == 0 else size - start,
                               flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE, offset=start)
        mapped[cut - start] = ord("[" if which else "]")
        view = memoryview(mapped)
        piece = view[cut - start:] if which else view
        try:
            halves[which] = parse_results(piece)
        finally:
            piece.release()
            view.release()
            mapped.close()

    helper = threading.Thread(target=parse_half, args=(1,), name="results-parser-2", daemon=True)
    helper.start()
    parse_half(0)
    helper.join()
    joined = _join_parsed(*halves) if halves[0] is not None and halves[1] is not None else None
    halves.clear()
    # the halves' columns were allocated in the parser threads' malloc arenas: hand their pages back now, or
    # they stay resident beside everything the evaluation allocates in the main arena
    _C.release_free_memory()
    if joined is not None:
        return joined
    with open(path, "rb") as handle:
        return parse_results(handle.read())


def _cut_point(handle: Any, size: int) -> int | None:
    """The file position of a ``,`` between ``}`` and ``{`` (whitespace allowed) just past the middle, or None."""
    start = size // 2
    handle.seek(start)
    window = handle.read(1 << 16)
    space = b" \t\r\n"
    position = 0
    while True:
        position = window.find(b"}", position)
        if position < 0:
            return None
        at = position + 1
        while at < len(window) and window[at] in space:
            at += 1
        if at < len(window) and window[at] == ord(","):
            after = at + 1
            while after < len(window) and window[after] in space:
                after += 1
            if after < len(window) and window[after] == ord("{"):
                return start + at
        position += 1


def _join_parsed(first: Any, second: Any) -> tuple[int, ResultColumns, dict[str, int], int] | None:
    """Two halves' ``parse_results`` as one; None when their keypoint counts differ (the caller then parses the
    whole, which refuses that)."""
    n1, c1, p1, k1 = first
    n2, c2, p2, k2 = second
    if k1 >= 0 and k2 >= 0 and k1 != k2:
        return None
    kp_len = k1 if k1 >= 0 else k2

    def keypoint_column(key: str) -> np.ndarray:  # a half without keypoints has an empty column
        if k1 < 0:
            return c2[key]
        if k2 < 0:
            return c1[key]
        return np.concatenate([c1[key], c2[key]])

    s1, s2 = c1["segmentation"], c2["segmentation"]
    segmentation = _join_rle_columns(s1, s2)
    columns: ResultColumns = {
        "image_id": np.concatenate([c1["image_id"], c2["image_id"]]),
        "category_id": np.concatenate([c1["category_id"], c2["category_id"]]),
        "score": np.concatenate([c1["score"], c2["score"]]),
        "bbox": np.concatenate([c1["bbox"], c2["bbox"]]),
        "keypoints": keypoint_column("keypoints"),
        "keypoint_extent": keypoint_column("keypoint_extent"),
        "segmentation": segmentation,
    }
    return n1 + n2, columns, {key: p1[key] + p2[key] for key in p1}, kp_len


def _join_rle_columns(first: RleColumn, second: RleColumn) -> RleColumn:
    from harness.metrics.coco.rle_column import RleColumn

    if len(second) == 0:
        return first
    if len(first) == 0:
        return second
    column = RleColumn(first.blob + second.blob, np.concatenate([first.offsets[:-1], second.offsets + len(first.blob)]),
                       np.concatenate([first.sizes, second.sizes]))
    assert first.areas is not None and second.areas is not None  # the packer computes them
    column.areas = np.concatenate([first.areas, second.areas])
    return column


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


def dense_groups(gt_full: np.ndarray, dt_full: np.ndarray, dt_score: np.ndarray, space: int, max_det: int,
                 stride: int, threads: int = 1) -> Groups:
    """``grouping.build_groups`` with categories, keys ``image * stride + category`` all below ``space`` (a slot
    per possible key), in one compiled pass; ``threads`` 2 sorts the groups' scores in two threads."""
    from harness.metrics.coco.grouping import Groups

    n = len(dt_full)
    keys = np.empty(space, dtype=np.int64)
    gt_order = np.empty(len(gt_full), dtype=np.int64)
    gt_bounds = np.empty(space + 1, dtype=np.int64)
    dt_order, dt_group, dt_rank = (np.empty(n, dtype=np.int64) for _ in range(3))
    dt_bounds = np.empty(space + 1, dtype=np.int64)
    num_groups, kept = _C.dense_groups(
        np.ascontiguousarray(gt_full, dtype=np.int64), np.ascontiguousarray(dt_full, dtype=np.int64),
        np.ascontiguousarray(dt_score, dtype=np.float64), int(space), int(max_det), int(threads),
        keys, gt_order, gt_bounds, dt_order, dt_group, dt_rank, dt_bounds,
    )
    return Groups(num_groups=num_groups, gt_order=gt_order, gt_bounds=gt_bounds[:num_groups + 1],
                  dt_order=dt_order[:kept], dt_bounds=dt_bounds[:num_groups + 1], dt_group=dt_group[:kept],
                  dt_rank=dt_rank[:kept], keys=keys[:num_groups], stride=stride)


def category_order(key: np.ndarray, score: np.ndarray, num_groups: int, threads: int = 1
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``group_order`` with scores, the groups' sorts split between ``threads`` (at most two) threads."""
    order = np.empty(len(key), dtype=np.int64)
    bounds = np.empty(num_groups + 1, dtype=np.int64)
    _C.category_order(np.ascontiguousarray(key, dtype=np.int64), np.ascontiguousarray(score, dtype=np.float64),
                      int(num_groups), int(threads), order, bounds)
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
                       precision: np.ndarray, recall: np.ndarray, threads: int = 1) -> None:
    """pycocotools' accumulate for every image once, from the candidates' status bits (``match_status``); fills
    ``precision`` (T, R, K, A, M) and ``recall`` (T, K, A, M), COCOeval's layouts, which arrive as -1.  ``threads`` 2
    walks about half of the categories in a second thread (the numbers do not depend on it)."""
    num_a = dt_outside.shape[0]
    num_k = len(cat_bounds) - 1

    def i64(x):
        return np.ascontiguousarray(x, dtype=np.int64)

    _C.accumulate_status(
        i64(seq), i64(cat_bounds), i64(dt_rank), i64(slot_of), np.ascontiguousarray(dt_outside, dtype=np.uint8),
        np.ascontiguousarray(cand_tp, dtype=np.uint16), np.ascontiguousarray(cand_fp, dtype=np.uint16),
        i64(num_positives), np.ascontiguousarray(recall_thresholds, dtype=np.float64), i64(np.asarray(max_dets)),
        num_t, num_a, num_k, int(threads), precision, recall,
    )


def box_status(dt_box: np.ndarray, gt_box: np.ndarray, dt_rows: np.ndarray, gt_rows: np.ndarray,
               dt_bounds: np.ndarray, gt_bounds: np.ndarray, gt_crowd: np.ndarray, gt_id_is_zero: np.ndarray,
               gt_ignored: np.ndarray, dt_outside: np.ndarray, thresholds: np.ndarray, threads: int = 1
               ) -> tuple[np.ndarray, np.ndarray]:
    """``match_status`` of every detection of the sorted view (rows ``dt_rows`` of ``dt_box``, groups delimited by
    ``dt_bounds`` / ``gt_bounds``), box IoU included: (D, A) uint16 bits per threshold of true positive and of
    counted false positive, the overlaps computed per group in C (cocoapi's bbIou arithmetic) and never stored.
    ``threads`` 2 splits the groups by work between two threads (the numbers do not depend on it)."""
    num_a = gt_ignored.shape[0]
    tp_bits = np.empty((len(dt_rows), num_a), dtype=np.uint16)
    fp_bits = np.empty((len(dt_rows), num_a), dtype=np.uint16)

    def i64(x: Any) -> np.ndarray:
        return np.ascontiguousarray(x, dtype=np.int64)

    def u8(x: Any) -> np.ndarray:
        return np.ascontiguousarray(x, dtype=np.uint8)

    _C.box_status(
        np.ascontiguousarray(dt_box, dtype=np.float64), np.ascontiguousarray(gt_box, dtype=np.float64),
        i64(dt_rows), i64(gt_rows), i64(dt_bounds), i64(gt_bounds), u8(gt_crowd), u8(gt_id_is_zero), u8(gt_ignored),
        u8(dt_outside), np.ascontiguousarray(thresholds, dtype=np.float64), num_a, int(threads), tp_bits, fp_bits,
    )
    return tp_bits, fp_bits



def accumulate_weighted(cat_bounds: np.ndarray, block_start: np.ndarray, image: np.ndarray, rank: np.ndarray,
                        slot: np.ndarray, inside: np.ndarray, cand_tp: np.ndarray, cand_fp: np.ndarray,
                        weights: np.ndarray, positive_key: np.ndarray, positive_image: np.ndarray, num_k: int,
                        recall_thresholds: np.ndarray, max_dets: Sequence[int], wanted: Sequence[bool], num_t: int,
                        threads: int = 1, specs: np.ndarray | None = None,
                        out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``accumulate_matches`` for the image multisets ``weights`` (B, I): per-position columns in accumulation
    order (``block_start`` flags runs of equal category, score and image; ``inside`` bit a: inside area range
    a; ``slot`` -1 for never-matched detections); every non-ignored (ground truth, area range) as its key
    ``k * A + a`` and image.  Returns precision (B, M', A, T, K, R) for the ``wanted`` maxDets, recall
    (B, M, A, T, K), -1 where a category has no positives in a resample, and the summary (B, S) of each
    resample as ``specs`` (``summary.summary_table``) asks (S = 0 without).  ``threads`` 2 walks half of the
    resamples in a second thread (the numbers do not depend on it).  ``out`` holds the three arrays to fill (a
    bootstrap reuses them from chunk to chunk, instead of fresh pages for tens of megabytes every time)."""
    num_b, num_i = weights.shape
    num_a = cand_tp.shape[1] if cand_tp.ndim == 2 else 1
    num_r, num_m = len(recall_thresholds), len(max_dets)
    num_wanted = int(sum(bool(x) for x in wanted))
    table = np.zeros((0, 4), dtype=np.int64) if specs is None else np.ascontiguousarray(specs, dtype=np.int64)
    shapes = ((num_b, num_wanted, num_a, num_t, num_k, num_r), (num_b, num_m, num_a, num_t, num_k),
              (num_b, len(table)))
    if out is None:
        out = (np.empty(shapes[0]), np.empty(shapes[1]), np.empty(shapes[2]))
    for array, shape in zip(out, shapes):
        if array.shape != shape or array.dtype != np.float64 or not array.flags.c_contiguous:
            raise ValueError(f"accumulate_weighted: an output buffer is not float64 {shape}")
    precision, recall, stats = out

    def i64(x: Any) -> np.ndarray:
        return np.ascontiguousarray(x, dtype=np.int64)

    # (I, B): one image's weights in all resamples side by side, int32 (the kernel also checks that no count of
    # a resample can pass 2**31 - 1: its total weight times the most detections a category has in one image)
    weights = np.asarray(weights)
    if weights.size and (weights.min() < 0 or weights.max() > np.iinfo(np.int32).max):
        raise ValueError("accumulate_weighted: weights must be whole numbers in [0, 2**31)")
    by_image = np.ascontiguousarray(weights.T, dtype=np.int32)
    _C.accumulate_weighted(
        i64(cat_bounds), np.ascontiguousarray(block_start, dtype=np.uint8), i64(image), i64(rank), i64(slot),
        np.ascontiguousarray(inside, dtype=np.uint8), np.ascontiguousarray(cand_tp, dtype=np.uint16),
        np.ascontiguousarray(cand_fp, dtype=np.uint16), by_image, i64(positive_key), i64(positive_image),
        np.ascontiguousarray(recall_thresholds, dtype=np.float64), i64(np.asarray(max_dets)),
        np.ascontiguousarray(np.asarray(wanted, dtype=bool), dtype=np.uint8), table, num_t, num_a, num_k, num_i,
        int(threads), precision, recall, stats,
    )
    return precision, recall, stats


GT_COLUMNS = {"id": np.int64, "image_id": np.int64, "category_id": np.int64, "iscrowd": np.int64,
              "area": np.float64, "num_keypoints": np.float64}


def parse_ground_truth(data: bytes, segm: bool = False) -> tuple[Any, ...] | None:
    """A COCO annotation file's bytes as (annotations, annotation columns, how many annotations have each key,
    keypoint values per annotation, the other top-level values parsed) -- or None unless the file is an object
    whose "annotations" are objects with integer id / image_id / category_id / iscrowd (missing: 0), numeric
    area / num_keypoints, 4-number bbox and same-length keypoints, other keys (segmentation, ...) skipped.  The
    other top-level values (images, categories, ...) are parsed by orjson; "annotations" stands in as [].

    With ``segm``, each "segmentation" must be a non-empty list of number lists (polygons) or an object (an RLE,
    parsed by orjson), and a sixth item holds them: (how many annotations have one, coords, part lengths, parts
    per annotation (0: an object), the objects in file order)."""
    if not ENABLED:
        return None
    parsed = _C.parse_ground_truth(data, True) if segm else _C.parse_ground_truth(data)
    if parsed is None:
        return None
    view = memoryview(data)
    count, raw, present, kp_len, spans = parsed[:5]
    out: tuple[Any, ...] = (count, raw, present, kp_len,
                            {key: view[start:stop] for key, (start, stop) in spans.items()})
    if segm:
        seen, coords, part_lengths, parts, objects = parsed[5]
        bounds = np.frombuffer(objects, dtype=np.int64).reshape(-1, 2).tolist()
        out += ((seen, coords, part_lengths, parts, [view[start:stop] for start, stop in bounds]),)
    return ground_truth_from_raw(out)


def ground_truth_from_raw(parsed: Any) -> tuple[Any, ...] | None:
    """``parse_ground_truth`` from what the compiled parser returned, with each top-level span replaced by its
    text (the form the start-up prefetch of ``harness.cli.early`` hands over: it keeps those few texts and lets
    the whole file go)."""
    if parsed is None:
        return None
    import orjson

    count, raw, present, kp_len, texts = parsed[:5]
    columns: dict[str, np.ndarray] = {name: np.frombuffer(raw[name], dtype=dtype) for name, dtype in GT_COLUMNS.items()}
    columns["bbox"] = np.frombuffer(raw["bbox"], dtype=np.float64).reshape(-1, 4)
    columns["keypoints"] = np.frombuffer(raw["keypoints"], dtype=np.float64).reshape(-1, max(kp_len, 1))
    try:
        rest = {key: orjson.loads(text) for key, text in texts.items()}
        if len(parsed) > 5:
            seen, coords, part_lengths, parts, objects = parsed[5]
            segm = (seen, np.frombuffer(coords, dtype=np.float64), np.frombuffer(part_lengths, dtype=np.int64),
                    np.frombuffer(parts, dtype=np.int64), [orjson.loads(text) for text in objects])
    except orjson.JSONDecodeError:  # e.g. an integer beyond 64 bits: the general reader handles it
        return None
    rest["annotations"] = []
    if len(parsed) > 5:
        return count, columns, present, kp_len, rest, segm
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
