"""Precision/recall arrays [T, R, K, A, M] and [T, K, A, M], equal to pycocotools' ``accumulate``.

Per category, pycocotools concatenates every image's detections (each image's list already in score order
and cut at maxDet), re-sorts them by score with a stable sort, and walks cumulative TP/FP counts.  Two facts
let us skip most of that work without changing a single bit of the result:

- The interpolated precision at recall threshold r is the maximum of ``tp / (tp + fp + eps)`` over all
  positions whose recall ``tp / npig`` is >= r, and that maximum is always reached at a true positive (a false
  positive or ignored detection repeats the recall of the TP before it with a lower or equal precision).  So
  only true positives need a precision, and each is binned by how many recall thresholds it reaches.
- Detections that never overlap a ground truth above the lowest IoU threshold are false positives at every
  threshold, or ignored in area ranges that exclude their area; their counts are a per-area-range prefix sum.

The same arithmetic as pycocotools (``tp / npig`` and ``tp / (fp + tp + eps)`` in float64 on integer counts)
gives the same bits.
"""
from __future__ import annotations

import numpy as np

from harness.metrics.coco.grouping import stable_lexsort
from harness.metrics.coco.matching import Matches


def accumulate(
    *,
    dt_category: np.ndarray,
    dt_score: np.ndarray,
    dt_rank: np.ndarray,
    dt_outside: np.ndarray,
    matches: Matches,
    gt_ignored: np.ndarray,
    gt_id_is_zero: np.ndarray,
    num_positives: np.ndarray,
    recall_thresholds: np.ndarray,
    max_dets: tuple[int, ...],
) -> tuple[np.ndarray, np.ndarray]:
    """Detections are in the sorted view (image, category, rank); ``dt_outside`` (A, D) flags areas outside each range,
    ``gt_ignored`` (A, G) the ignored ground truths, ``num_positives`` (K, A) the non-ignored GT counts."""
    num_t, num_a, _ = matches.gt.shape
    num_k = num_positives.shape[0]
    num_r = len(recall_thresholds)
    num_m = len(max_dets)
    num_d = len(dt_rank)

    # status of candidate detections at every (t, a): pycocotools' dtm (matched GT id, 0 = none) and dtIg
    cand = matches.detections
    got = matches.gt >= 0
    gt_pos = np.where(got, matches.gt, 0)
    area_axis = np.arange(num_a)[None, :, None]
    matched_ignored = got & gt_ignored[area_axis, gt_pos]
    dtm_nonzero = got & ~gt_id_is_zero[gt_pos]
    cand_ignored = matched_ignored | (~dtm_nonzero & dt_outside[:, cand][None])
    cand_tp = dtm_nonzero & ~cand_ignored
    cand_counted = ~cand_ignored

    slot_of = np.full(num_d, -1, dtype=np.int64)
    slot_of[cand] = np.arange(len(cand))
    plain_inside = ~dt_outside  # never-matched detections inside each area range count as false positives
    plain_inside[:, cand] = False
    # pycocotools' per-category order: score descending, ties by image (ascending id) then rank in the image.
    # The detections arrive sorted by (image, category, rank), so a stable sort on (category, -score) suffices.
    order = stable_lexsort(-dt_score, dt_category)

    precision = -np.ones((num_t, num_r, num_k, num_a, num_m))
    recall = -np.ones((num_t, num_k, num_a, num_m))
    has_gt = num_positives > 0  # (K, A)
    positives = num_positives.T[None, :, :].astype(np.float64)  # (1, A, K)

    for m, max_det in enumerate(max_dets):
        seq = order[dt_rank[order] < max_det]
        seq_cat = dt_category[seq]
        cat_start = np.searchsorted(seq_cat, np.arange(num_k + 1))
        seq_slot = slot_of[seq]
        is_cand = seq_slot >= 0

        # prefix counts of never-matched detections that count (are inside the area range): (A, n + 1)
        plain = plain_inside[:, seq]
        plain_before = np.zeros((num_a, len(seq) + 1), dtype=np.int64)
        np.cumsum(plain, axis=1, out=plain_before[:, 1:])

        cpos = np.flatnonzero(is_cand)  # positions of candidates in seq
        cslot = seq_slot[cpos]
        ccat = seq_cat[cpos]
        c_start = np.searchsorted(ccat, np.arange(num_k + 1))
        tp = cand_tp[:, :, cslot]  # (T, A, n_c)
        counted = cand_counted[:, :, cslot]
        tp_before = np.zeros((num_t, num_a, len(cpos) + 1), dtype=np.int64)
        np.cumsum(tp, axis=2, out=tp_before[:, :, 1:])
        counted_before = np.zeros((num_t, num_a, len(cpos) + 1), dtype=np.int64)
        np.cumsum(counted, axis=2, out=counted_before[:, :, 1:])

        # recall: total true positives per category over non-ignored ground truths
        total_tp = tp_before[:, :, c_start[1:]] - tp_before[:, :, c_start[:-1]]  # (T, A, K)
        rec = total_tp / positives
        recall[:, :, :, m] = np.where(has_gt.T[None], rec, -1).transpose(0, 2, 1)

        # precision at every true positive
        t_idx, a_idx, c_idx = np.nonzero(tp)
        k_idx = ccat[c_idx]
        row = (t_idx * num_a + a_idx) * (len(cpos) + 1)
        here, first = row + c_idx + 1, row + c_start[k_idx]
        tp_flat, counted_flat = tp_before.reshape(-1), counted_before.reshape(-1)
        tp_count = tp_flat[here] - tp_flat[first]
        counted_cand = counted_flat[here] - counted_flat[first]
        plain_row = a_idx * (len(seq) + 1)
        plain_flat = plain_before.reshape(-1)
        counted_plain = plain_flat[plain_row + cpos[c_idx] + 1] - plain_flat[plain_row + cat_start[k_idx]]
        fp_count = counted_cand + counted_plain - tp_count
        tp_f = tp_count.astype(np.float64)
        fp_f = fp_count.astype(np.float64)
        prec = tp_f / (fp_f + tp_f + np.spacing(1))
        rec_at = tp_f / num_positives[k_idx, a_idx]
        reached = np.searchsorted(recall_thresholds, rec_at, side="right")  # thresholds r with r <= recall

        # max precision per (t, a, k, reached); entries are already sorted by that key
        key = ((t_idx * num_a + a_idx) * num_k + k_idx) * (num_r + 1) + reached
        best = np.zeros(num_t * num_a * num_k * (num_r + 1))
        if len(key):
            run_start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
            best[key[run_start]] = np.maximum.reduceat(prec, run_start)
        best = best.reshape(num_t, num_a, num_k, num_r + 1)
        envelope = np.maximum.accumulate(best[..., ::-1], axis=-1)[..., ::-1]
        q = envelope[..., 1:]  # precision at threshold r = best over entries reaching more than r thresholds
        q = np.where(has_gt.T[None, :, :, None], q, -1)  # (T, A, K, R)
        precision[:, :, :, :, m] = q.transpose(0, 3, 2, 1)
    return precision, recall
