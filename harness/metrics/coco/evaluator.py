"""``evaluate_coco``: COCO AP/AR for boxes, masks and keypoints, equal to pycocotools' COCOeval by default.

The pipeline is columnar end to end: load and validate the dicts into arrays (``tables``), sort everything
into the (image, category) groups that occur (``grouping``), compute the overlaps of all same-group pairs in
chunks (``ious``), match greedily for every group, IoU threshold and area range at once (``matching``), then
build the precision and recall arrays (``accumulate``) and the summary (``summary``).  ``prepare_tables``
stops before the accumulation, so a bootstrap (``resampled_stats``) re-accumulates one matching with image
weights instead of evaluating every resample from scratch.

With the compiled kernels, one box evaluation skips the pair arrays: ``_box_matching`` computes each group's
overlaps and matches in one pass (``kernels.box_status``), and the grouping, the per-category order and the
accumulation split their independent groups or categories between ``EVAL_THREADS`` threads (the numbers never
depend on the split; tests/metrics/test_coco_box_threads.py runs both).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from harness.metrics.coco.grouping import all_pairs, build_groups
from harness.metrics.coco.ious import box_iou_pairs, mask_iou_pairs, oks_pairs
from harness.metrics.coco.kernels import THREADS
from harness.metrics.coco.matching import greedy_match
from harness.metrics.coco.params import CocoParams, make_params
from harness.metrics.coco.summary import (
    mean_over_valid, precision_max_dets, summarize, summarize_resamples, summary_names, summary_table,
)
from harness.metrics.coco.tables import GroundTruthTable, ResultTable, load_ground_truth, load_results

if TYPE_CHECKING:  # the numpy accumulation plan loads when used: a compiled evaluation never builds one
    from harness.metrics.coco.accumulate import AccumulationPlan


#: threads of the compiled grouping, box matching and accumulation of one evaluation (groups and categories are
#: independent: the numbers never depend on it)
EVAL_THREADS = THREADS


@dataclass
class CocoEvalResult:
    """Summary stats in COCOeval order, named metrics, per-category AP and the full precision/recall arrays.

    ``precision`` is [T, R, K, A, M] and ``recall`` [T, K, A, M] exactly as ``COCOeval.eval`` (-1 where a
    category has no non-ignored ground truth).  With ``use_cats=False`` K is 1 and per-category numbers are empty.
    """

    params: CocoParams
    stats: np.ndarray
    metrics: dict[str, float]
    precision: np.ndarray
    recall: np.ndarray
    category_ids: list[Any]
    category_names: list[str]
    per_category: dict[str, dict[str, float]] = field(default_factory=dict)

    def pr_curve(self, iou: float = 0.5, area: str = "all", max_dets: int | None = None) -> dict[str, Any]:
        """Precision at the 101 recall points, averaged over categories that have ground truth.

        Points where no category has ground truth are NaN.  ``max_dets`` defaults to the largest setting.
        """
        t = int(np.flatnonzero(np.isclose(self.params.iou_thresholds, iou, rtol=0, atol=1e-9))[0])
        a = self.params.area_labels.index(area)
        m = self.params.max_dets.index(self.params.max_dets[-1] if max_dets is None else max_dets)
        curve = self.precision[t, :, :, a, m]  # (R, K)
        valid = curve > -1
        count = valid.sum(axis=1)
        total = np.where(valid, curve, 0.0).sum(axis=1)
        mean = np.divide(total, count, out=np.full(len(total), np.nan), where=count > 0)
        return {
            "iou": round(float(self.params.iou_thresholds[t]), 2),
            "area": area,
            "max_dets": int(self.params.max_dets[m]),
            "recall": [float(r) for r in self.params.recall_thresholds],
            "precision": [float(p) for p in mean],
        }


def evaluate_coco(
    gt: dict[str, Any],
    results: Sequence[dict[str, Any]],
    iou_type: str,
    *,
    sigmas: Sequence[float] | np.ndarray | None = None,
    max_dets: Sequence[int] | None = None,
    use_cats: bool = True,
    gt_path: str | Path | None = None,
    results_path: str | Path | None = None,
) -> CocoEvalResult:
    """COCO evaluation of ``results`` (a COCO results list) against ``gt`` (a COCO annotation dict).

    Defaults reproduce pycocotools' COCOeval.  ``max_dets=MMDET_MAX_DETS`` (100, 300, 1000) is mmdet's
    dialect.  ``sigmas`` gives one OKS sigma per keypoint (COCO-17 by default).  ``gt_path``/``results_path``
    only name the files in error messages.
    """
    params = make_params(iou_type, sigmas=sigmas, max_dets=max_dets, use_cats=use_cats)
    num_keypoints = len(params.sigmas) if params.sigmas is not None else None
    gt_table = load_ground_truth(gt, iou_type, num_keypoints, gt_path)
    result_table = load_results(results, gt_table, iou_type, num_keypoints, results_path)
    return evaluate_tables(gt_table, result_table, params)


def prepare_tables(gt: GroundTruthTable, dt: ResultTable, params: CocoParams) -> AccumulationPlan:
    """Everything up to the accumulation (groups, overlaps, matches), which a bootstrap then reuses."""
    return plan_evaluation(gt, dt, params, *_match_tables(gt, dt, params))


def _match_tables(gt: GroundTruthTable, dt: ResultTable, params: CocoParams):
    """(groups, matches, gt_ignored (A, G), dt_outside (A, D)) in the sorted views."""
    groups, pair_det, pair_gt, pair_iou, gt_crowd, gt_ignored, dt_outside = _candidate_pairs(gt, dt, params)
    matches = greedy_match(
        pair_det, pair_gt, pair_iou, groups.dt_rank, gt_crowd, gt_ignored, params.iou_thresholds
    )
    return groups, matches, gt_ignored, dt_outside


def _candidate_pairs(gt: GroundTruthTable, dt: ResultTable, params: CocoParams):
    """Groups, the same-group pairs that reach the lowest threshold (by detection, then ground truth) with their
    overlaps, and the crowd / ignored flags of the ground truths and area flags of the detections."""
    groups, gt_crowd, gt_ignored, dt_outside = _group_flags(gt, dt, params)
    pair_det, pair_gt = all_pairs(groups)
    pair_iou = _pair_overlaps(gt, dt, params, groups, pair_det, pair_gt)
    # pairs below the lowest threshold never match: drop them now rather than carry them through matching
    useful = pair_iou >= np.minimum(params.iou_thresholds, 1 - 1e-10).min()
    pair_det, pair_gt, pair_iou = pair_det[useful], pair_gt[useful], pair_iou[useful]
    return groups, pair_det, pair_gt, pair_iou, gt_crowd, gt_ignored, dt_outside


def _group_flags(gt: GroundTruthTable, dt: ResultTable, params: CocoParams):
    """Groups, and the crowd / ignored (A, G) flags of the sorted ground truths and area flags (A, D) of the
    sorted detections."""
    num_images, num_categories = len(gt.images), len(gt.categories)
    groups = build_groups(
        gt.image, gt.category, dt.image, dt.category, dt.score,
        num_images, num_categories, params.max_dets[-1], params.use_cats, EVAL_THREADS,
    )
    g_rows, d_rows = groups.gt_order, groups.dt_order
    lows = np.array([lo for lo, _ in params.area_ranges], dtype=np.float64)[:, None]
    highs = np.array([hi for _, hi in params.area_ranges], dtype=np.float64)[:, None]
    gt_area = gt.area[g_rows]
    gt_crowd = gt.crowd[g_rows]
    gt_ignored = gt.ignore[g_rows][None, :] | (gt_area[None, :] < lows) | (gt_area[None, :] > highs)
    dt_area = dt.area[d_rows]
    dt_outside = (dt_area[None, :] < lows) | (dt_area[None, :] > highs)
    return groups, gt_crowd, gt_ignored, dt_outside


def resampled_stats(
    gt: dict[str, Any],
    results: Sequence[dict[str, Any]],
    iou_type: str,
    counts: np.ndarray,
    *,
    sigmas: Sequence[float] | np.ndarray | None = None,
    max_dets: Sequence[int] | None = None,
    use_cats: bool = True,
) -> tuple[tuple[str, ...], np.ndarray]:
    """Summary stats of image resamples: ``counts`` (resamples, images) says how often each image (in sorted-id
    order) is drawn.  Returns (names, (resamples, stats)).

    Overlaps and matches are computed once; each resample only re-accumulates them with image weights, and
    only at the maxDets the summary reads precision at: by the compiled kernel (``_resampled_compiled``, chunks
    of resamples at once) when it is built and there are at most 16 IoU thresholds, else by
    ``AccumulationPlan.run_many``.  Each row equals ``evaluate_coco`` on the resampled image list (copies of an
    image side by side) bit for bit, by either path.
    """
    params = make_params(iou_type, sigmas=sigmas, max_dets=max_dets, use_cats=use_cats)
    num_keypoints = len(params.sigmas) if params.sigmas is not None else None
    gt_table = load_ground_truth(gt, iou_type, num_keypoints)
    dt_table = load_results(results, gt_table, iou_type, num_keypoints)
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 2 or counts.shape[1] != len(gt_table.images):
        raise ValueError(f"counts must be (resamples, {len(gt_table.images)} images), got {counts.shape}")
    from harness.metrics.coco import kernels

    if kernels.ENABLED and len(params.iou_thresholds) <= 16 and len(set(params.max_dets)) == len(params.max_dets):
        try:
            return summary_names(params), _resampled_compiled(gt_table, dt_table, params, counts)
        except OverflowError:  # weights so large that a count could pass int32: the numpy plan below
            pass
    plan = prepare_tables(gt_table, dt_table, params)
    out = np.empty((len(counts), len(summary_names(params))))
    for row, (precision, recall) in enumerate(plan.run_many(counts, precision_for=precision_max_dets(params))):
        out[row] = summarize(params, precision, recall)
    return summary_names(params), out


#: resamples per call of the compiled weighted accumulation (bounds the (B, A, T, K, R) precision block)
RESAMPLE_CHUNK = 16
#: threads of the compiled weighted accumulation (resamples are independent: the numbers never depend on it)
RESAMPLE_THREADS = THREADS


@dataclass
class _CompiledMatching:
    """One matching by the compiled kernels, as one evaluation and the resampled intervals both start from:
    each candidate detection's status bits per (IoU threshold, area range), and every row's category key."""

    groups: Any
    gt_ignored: Any
    dt_outside: Any
    candidates: np.ndarray
    cand_tp: np.ndarray
    cand_fp: np.ndarray
    k_gt: np.ndarray
    k_dt: np.ndarray
    num_k: int
    #: the view's detections in pycocotools' per-category order (score descending, ties by image then rank), each
    #: category's [start, end) in it, and each detection's candidate slot (-1: it matched nothing)
    order: np.ndarray
    cat_bounds: np.ndarray
    slot_of: np.ndarray


def _category_keys(gt: GroundTruthTable, dt: ResultTable, params: CocoParams, groups: Any
                   ) -> tuple[np.ndarray, np.ndarray, int]:
    """Each ground truth's and detection's category slot in the view's order, and the slot count
    (one slot for all with ``use_cats=False``)."""
    g_rows, d_rows = groups.gt_order, groups.dt_order
    if params.use_cats:
        return gt.category[g_rows], dt.category[d_rows], len(gt.categories)
    return np.zeros(len(g_rows), np.int64), np.zeros(len(d_rows), np.int64), 1


def _compiled_matching(gt: GroundTruthTable, dt: ResultTable, params: CocoParams, every_detection: bool = False
                       ) -> _CompiledMatching:
    """The matching from candidate pairs (only detections that overlap a ground truth enough get a slot); with
    ``every_detection``, boxes are matched by ``_box_matching`` instead (the same statuses, a slot for all)."""
    from harness.metrics.coco import kernels

    if every_detection and params.iou_type == "bbox":
        return _box_matching(gt, dt, params)
    groups, pair_det, pair_gt, pair_iou, gt_crowd, gt_ignored, dt_outside = _candidate_pairs(gt, dt, params)
    first = np.ones(len(pair_det), dtype=bool)
    first[1:] = pair_det[1:] != pair_det[:-1]
    candidates = pair_det[first]
    cand_tp, cand_fp = kernels.match_status(
        pair_det, pair_gt, pair_iou, gt_crowd, gt_ignored, np.minimum(params.iou_thresholds, 1 - 1e-10),
        len(candidates), gt.id_is_zero[groups.gt_order], dt_outside,
    )
    k_gt, k_dt, num_k = _category_keys(gt, dt, params, groups)
    order, cat_bounds = kernels.group_order(k_dt, dt.score[groups.dt_order], num_k)
    slot_of = np.full(len(groups.dt_order), -1, dtype=np.int64)
    slot_of[candidates] = np.arange(len(candidates))
    return _CompiledMatching(groups, gt_ignored, dt_outside, candidates, cand_tp, cand_fp, k_gt, k_dt, num_k,
                             order, cat_bounds, slot_of)


def _box_matching(gt: GroundTruthTable, dt: ResultTable, params: CocoParams) -> _CompiledMatching:
    """``_compiled_matching`` of boxes in one compiled pass (``kernels.box_status``: IoU and greedy matching per
    (image, category) group, the groups split between ``EVAL_THREADS`` threads), without the pair arrays:
    every detection is its own candidate, with the status bits the pairs would give it."""
    from harness.metrics.coco import kernels

    assert dt.bbox is not None and gt.bbox is not None  # the tables of a bbox evaluation hold boxes
    groups, gt_crowd, gt_ignored, dt_outside = _group_flags(gt, dt, params)
    g_rows = groups.gt_order
    cand_tp, cand_fp = kernels.box_status(
        dt.bbox, gt.bbox, groups.dt_order, g_rows, groups.dt_bounds, groups.gt_bounds, gt_crowd,
        gt.id_is_zero[g_rows], gt_ignored, dt_outside, np.minimum(params.iou_thresholds, 1 - 1e-10), EVAL_THREADS,
    )
    k_gt, k_dt, num_k = _category_keys(gt, dt, params, groups)
    order, cat_bounds = kernels.category_order(k_dt, dt.score[groups.dt_order], num_k, EVAL_THREADS)
    every = np.arange(len(groups.dt_order))
    return _CompiledMatching(groups, gt_ignored, dt_outside, every, cand_tp, cand_fp, k_gt, k_dt, num_k,
                             order, cat_bounds, every)


def _resampled_compiled(gt: GroundTruthTable, dt: ResultTable, params: CocoParams, counts: np.ndarray) -> np.ndarray:
    """``resampled_stats`` by the compiled kernels: one matching (status bits, as ``_accumulate_compiled``), then
    ``kernels.accumulate_weighted`` re-accumulates it for a chunk of resamples at a time, all at once in C, and
    summarizes each resample there too (``summary_table``; ``summarize_resamples`` only when a stat names a
    repeated IoU threshold).  The counts are integers and the arithmetic pycocotools', so every row equals
    ``AccumulationPlan.run_many`` and a full evaluation of the resampled list bit for bit.  Raises OverflowError
    (``resampled_stats`` then uses the numpy plan) when a resample's weights could overflow the kernel's int32
    counts."""
    from harness.metrics.coco import kernels

    m = _compiled_matching(gt, dt, params)
    groups, gt_ignored, dt_outside, order, k_gt, num_k = m.groups, m.gt_ignored, m.dt_outside, m.order, m.k_gt, m.num_k
    d_rows = groups.dt_order
    score = dt.score[d_rows]
    image = dt.image[d_rows][order]
    o_score, o_cat = score[order], m.k_dt[order]
    block_start = np.ones(len(order), dtype=bool)  # runs of equal (category, score, image): copied as a whole
    block_start[1:] = (o_cat[1:] != o_cat[:-1]) | (o_score[1:] != o_score[:-1]) | (image[1:] != image[:-1])
    num_a = len(params.area_ranges)
    inside = np.zeros(len(order), dtype=np.uint8)
    for a in range(num_a):
        inside |= (~dt_outside[a][order]).astype(np.uint8) << a
    # every non-ignored (ground truth, area range): the kernel sums their images' weights per (category, area)
    gt_image = gt.image[groups.gt_order]
    positive_key = np.concatenate([k_gt[~ignored] * num_a + a for a, ignored in enumerate(gt_ignored)])
    positive_image = np.concatenate([gt_image[~ignored] for ignored in gt_ignored])
    wanted_dets = precision_max_dets(params)
    wanted = [dets in wanted_dets for dets in params.max_dets]
    table = summary_table(params, wanted_dets)
    rank, slot = groups.dt_rank[order], m.slot_of[order]
    chunk = min(RESAMPLE_CHUNK, len(counts))
    num_t, num_a, num_r = len(params.iou_thresholds), len(params.area_ranges), len(params.recall_thresholds)
    # one set of output buffers for every chunk (the precision block is tens of megabytes at COCO size)
    buffers = (np.empty((chunk, len(wanted_dets), num_a, num_t, num_k, num_r)),
               np.empty((chunk, len(params.max_dets), num_a, num_t, num_k)),
               np.empty((chunk, 0 if table is None else len(table))))
    out = np.empty((len(counts), len(summary_names(params))))
    for start in range(0, len(counts), RESAMPLE_CHUNK):
        block = counts[start:start + RESAMPLE_CHUNK]
        precision, recall, stats = kernels.accumulate_weighted(
            m.cat_bounds, block_start, image, rank, slot, inside, m.cand_tp, m.cand_fp,
            block, positive_key, positive_image, num_k, params.recall_thresholds, params.max_dets, wanted,
            num_t, RESAMPLE_THREADS, specs=table, out=(buffers[0][:len(block)], buffers[1][:len(block)],
                                                       buffers[2][:len(block)]),
        )
        out[start:start + len(block)] = (stats if table is not None
                                         else summarize_resamples(params, precision, recall, wanted_dets))
    return out


def evaluate_tables(gt: GroundTruthTable, dt: ResultTable, params: CocoParams) -> CocoEvalResult:
    from harness.metrics.coco import kernels

    if kernels.ENABLED and len(params.iou_thresholds) <= 16:
        precision, recall = _accumulate_compiled(gt, dt, params)
    else:
        precision, recall = prepare_tables(gt, dt, params).run()
    return result_from_arrays(gt, params, precision, recall)


def _accumulate_compiled(gt: GroundTruthTable, dt: ResultTable, params: CocoParams) -> tuple[np.ndarray, np.ndarray]:
    """(precision, recall) of one evaluation by the compiled kernels: the matching keeps only each candidate's
    status bits, and the accumulation walks them; none of the (T, A, candidates) arrays of ``plan_accumulation``
    (which a bootstrap needs) are built.  The same counts and arithmetic as ``AccumulationPlan.run``."""
    from harness.metrics.coco import kernels

    m = _compiled_matching(gt, dt, params, every_detection=True)
    num_k = m.num_k
    num_positives = np.stack([np.bincount(m.k_gt[~ignored], minlength=num_k) for ignored in m.gt_ignored], axis=1)
    num_t, num_r, num_a, num_m = (len(params.iou_thresholds), len(params.recall_thresholds), len(params.area_ranges),
                                  len(params.max_dets))
    precision = np.full((num_t, num_r, num_k, num_a, num_m), -1.0)
    recall = np.full((num_t, num_k, num_a, num_m), -1.0)
    kernels.accumulate_matches(m.order, m.cat_bounds, m.groups.dt_rank, m.slot_of, m.dt_outside, m.cand_tp, m.cand_fp,
                               num_positives, params.recall_thresholds, params.max_dets, num_t, precision, recall,
                               EVAL_THREADS)
    return precision, recall


def result_from_arrays(gt: GroundTruthTable, params: CocoParams, precision: np.ndarray, recall: np.ndarray
                       ) -> CocoEvalResult:
    stats = summarize(params, precision, recall)
    names = summary_names(params)
    return CocoEvalResult(
        params=params,
        stats=stats,
        metrics={name: float(value) for name, value in zip(names, stats)},
        precision=precision,
        recall=recall,
        category_ids=list(gt.categories.ids) if params.use_cats else [-1],
        category_names=list(gt.category_names) if params.use_cats else ["all"],
        per_category=_per_category(params, precision, gt.category_names, gt.categories.ids) if params.use_cats else {},
    )


def plan_evaluation(gt: GroundTruthTable, dt: ResultTable, params: CocoParams, groups, matches, gt_ignored,
                    dt_outside) -> AccumulationPlan:
    from harness.metrics.coco.accumulate import plan_accumulation

    g_rows, d_rows = groups.gt_order, groups.dt_order
    k_gt, k_dt, num_k = _category_keys(gt, dt, params, groups)
    return plan_accumulation(
        dt_category=k_dt,
        dt_score=dt.score[d_rows],
        dt_rank=groups.dt_rank,
        dt_image=dt.image[d_rows],
        dt_outside=dt_outside,
        matches=matches,
        gt_ignored=gt_ignored,
        gt_id_is_zero=gt.id_is_zero[g_rows],
        gt_category=k_gt,
        gt_image=gt.image[g_rows],
        num_categories=num_k,
        num_images=len(gt.images),
        recall_thresholds=params.recall_thresholds,
        max_dets=params.max_dets,
    )


#: pairs per chunk of box overlaps
PAIR_CHUNK = 1 << 16


def _pair_overlaps(
    gt: GroundTruthTable, dt: ResultTable, params: CocoParams, groups, pair_det: np.ndarray, pair_gt: np.ndarray
) -> np.ndarray:
    g_rows, d_rows = groups.gt_order, groups.dt_order
    if params.iou_type == "bbox":
        assert dt.bbox is not None and gt.bbox is not None  # the tables of a bbox evaluation hold boxes
        from harness.metrics.coco import kernels

        if kernels.ENABLED:  # one pass in C, no (pairs, 4) gathers
            return kernels.box_iou(dt.bbox, gt.bbox, gt.crowd, d_rows[pair_det], g_rows[pair_gt])
        out = np.empty(len(pair_det), dtype=np.float64)
        for start in range(0, len(pair_det), PAIR_CHUNK):  # chunks: (pairs, 4) gathers stay small
            d, g = d_rows[pair_det[start:start + PAIR_CHUNK]], g_rows[pair_gt[start:start + PAIR_CHUNK]]
            out[start:start + PAIR_CHUNK] = box_iou_pairs(dt.bbox[d], gt.bbox[g], gt.crowd[g])
        return out
    if params.iou_type == "segm":
        from harness.metrics.coco import kernels

        assert dt.masks is not None and gt.masks is not None  # the tables of a segm evaluation hold masks
        # only the same-category pairs, straight from the run lengths (no per-image all-category matrices)
        values = kernels.mask_iou(dt.masks, gt.masks, gt.crowd, d_rows[pair_det], g_rows[pair_gt])
        if values is not None:
            return values
        image_starts = groups.image_starts(len(gt.images))
        return mask_iou_pairs(
            [dt.masks[i] for i in d_rows], [gt.masks[i] for i in g_rows], gt.crowd[g_rows],
            groups.dt_bounds[image_starts], groups.gt_bounds[image_starts], pair_det, pair_gt,
        )
    assert dt.keypoints is not None and gt.keypoints is not None and gt.bbox is not None and params.sigmas is not None
    return oks_pairs(dt.keypoints, gt.keypoints, gt.bbox, gt.area, params.sigmas, d_rows[pair_det], g_rows[pair_gt])


def _per_category(
    params: CocoParams, precision: np.ndarray, names: list[str], ids: list[Any]
) -> dict[str, dict[str, float]]:
    """AP per category at area 'all' and the largest maxDets (detectron2's and mmdet's convention); NaN when
    the category has no ground truth."""
    labels = _unique_labels(names, ids)
    out: dict[str, dict[str, float]] = {"AP": {}, "AP50": {}, "AP75": {}}
    for k, label in enumerate(labels):
        for key, t in (("AP", None), ("AP50", 0.5), ("AP75", 0.75)):
            s = precision[:, :, k, 0, -1]
            if t is not None:
                s = s[np.where(t == params.iou_thresholds)[0]]
            valid = s[s > -1]
            out[key][label] = float(np.mean(valid)) if valid.size else float("nan")
    return out


def _unique_labels(names: list[str], ids: list[Any]) -> list[str]:
    """Category names as keys; a name shared by several categories gets its id appended."""
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return [name if counts[name] == 1 else f"{name} (id {cid})" for name, cid in zip(names, ids)]


__all__ = ["CocoEvalResult", "evaluate_coco", "evaluate_tables", "mean_over_valid"]
