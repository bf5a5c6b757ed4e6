"""Greedy COCO matching for all images, categories, IoU thresholds and area ranges at once.

pycocotools' ``evaluateImg`` walks each group's detections in score order; a detection takes the unused ground
truth with the highest IoU >= min(t, 1 - 1e-10), ties going to the later ground truth, where ground truths are
ordered regular-first-then-ignored and a detection that found a regular one never looks at the ignored ones;
crowd ground truths can be taken again and again.  Equivalently: among the available candidates, prefer the
regular tier, then the highest IoU, then the latest file position.

Only the order *within* a group is sequential, so we step through detection ranks (0, 1, 2, ...) and handle
rank r of every group together, for all T thresholds x A area ranges in one array.  Pairs below the lowest
threshold can never match and are dropped before the loop, so each step touches only real candidates.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.metrics.coco import kernels


@dataclass
class Matches:
    """Ground truth taken by each candidate detection at each (threshold, area range); -1 when none."""

    detections: np.ndarray  # (C,) positions (in the sorted detection view) of detections with any candidate
    gt: np.ndarray  # (T, A, C) positions in the sorted ground-truth view, or -1


def greedy_match(
    pair_det: np.ndarray,
    pair_gt: np.ndarray,
    pair_iou: np.ndarray,
    det_rank: np.ndarray,
    gt_crowd: np.ndarray,
    gt_ignored: np.ndarray,
    iou_thresholds: np.ndarray,
) -> Matches:
    """Match candidate pairs ordered by (detection, ground truth); ``gt_ignored`` is (A, G) per area range."""
    thresholds = np.minimum(iou_thresholds, 1 - 1e-10)
    keep = pair_iou >= thresholds.min()
    pair_det, pair_gt, pair_iou = pair_det[keep], pair_gt[keep], pair_iou[keep]
    num_t, num_a, num_g = len(thresholds), gt_ignored.shape[0], gt_ignored.shape[1]

    first = np.ones(len(pair_det), dtype=bool)  # pairs come ordered by detection
    first[1:] = pair_det[1:] != pair_det[:-1]
    detections, pair_slot = pair_det[first], np.cumsum(first) - 1
    if len(detections) and kernels.ENABLED:  # the same walk, one detection at a time, in C
        return Matches(detections, kernels.greedy_match(pair_det, pair_gt, pair_iou, gt_crowd, gt_ignored,
                                                        thresholds, len(detections)))
    matched = np.full((num_t, num_a, len(detections)), -1, dtype=np.int32)
    if len(detections) == 0:
        return Matches(detections, matched)

    by_rank = np.argsort(det_rank[pair_det], kind="stable")  # stays ordered by detection, then gt, within a rank
    pair_slot, pair_gt, pair_iou = pair_slot[by_rank], pair_gt[by_rank], pair_iou[by_rank]
    ranks = det_rank[pair_det[by_rank]]
    rank_bounds = np.flatnonzero(np.diff(ranks)) + 1
    taken = np.zeros((num_t, num_a, num_g), dtype=bool)
    reusable = gt_crowd
    thresholds_3d = thresholds[:, None, None]

    for rank_start, rank_stop in zip(np.r_[0, rank_bounds], np.r_[rank_bounds, len(ranks)]):
        # detections of one rank belong to different groups, so they never compete for a ground truth: their
        # pairs can be handled in pieces (cut between detections) that keep the (T, A, pairs) arrays small
        for start, stop in _pieces(pair_slot, rank_start, rank_stop):
            _match_step(pair_slot[start:stop], pair_gt[start:stop], pair_iou[start:stop], thresholds_3d, taken,
                        gt_ignored, reusable, matched)
    return Matches(detections, matched)


#: pairs per matching step (T x A x pairs arrays of this many pairs stay a few tens of MB)
STEP_PAIRS = 1 << 16


def _pieces(pair_slot: np.ndarray, start: int, stop: int) -> list[tuple[int, int]]:
    """[start, stop) cut into pieces of about STEP_PAIRS pairs, never inside one detection's pairs."""
    if stop - start <= STEP_PAIRS:
        return [(start, stop)]
    cuts = [start]
    while cuts[-1] + STEP_PAIRS < stop:
        cut = cuts[-1] + STEP_PAIRS
        slot = pair_slot[cut]
        while cut < stop and pair_slot[cut] == slot:  # move past the detection's remaining pairs
            cut += 1
        if cut >= stop:
            break
        cuts.append(cut)
    return list(zip(cuts, cuts[1:] + [stop]))


def _match_step(slot, gt, iou, thresholds_3d, taken, gt_ignored, reusable, matched) -> None:
    """Match detections of one rank (pairs ordered by detection, then ground truth) at every (t, a)."""
    first = np.r_[True, slot[1:] != slot[:-1]]
    seg_start = np.flatnonzero(first)
    seg_of_pair = np.cumsum(first) - 1

    valid = (iou >= thresholds_3d) & ~taken[:, :, gt]  # (T, A, P)
    regular = valid & ~gt_ignored[:, gt]
    has_regular = np.logical_or.reduceat(regular, seg_start, axis=2)
    eligible = np.where(has_regular[:, :, seg_of_pair], regular, valid)
    best = np.maximum.reduceat(np.where(eligible, iou, -np.inf), seg_start, axis=2)
    winner = eligible & (iou == best[:, :, seg_of_pair])
    choice = np.maximum.reduceat(np.where(winner, gt, -1), seg_start, axis=2)  # latest position wins ties

    matched[:, :, slot[seg_start]] = choice
    t_idx, a_idx, s_idx = np.nonzero(choice >= 0)
    taken_gt = choice[t_idx, a_idx, s_idx]
    single_use = ~reusable[taken_gt]
    taken[t_idx[single_use], a_idx[single_use], taken_gt[single_use]] = True
