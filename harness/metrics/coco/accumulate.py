"""Precision/recall arrays [T, R, K, A, M] and [T, K, A, M], equal to pycocotools' ``accumulate``, for the
dataset as given or for any multiset of its images (the bootstrap), from one set of matches.

Per category, pycocotools concatenates every image's detections (each image's list already in score order
and cut at maxDet), re-sorts them by score with a stable sort, and walks cumulative TP/FP counts.  Facts that
let us skip most of that work without changing a single bit of the result:

- The interpolated precision at recall threshold r is the maximum of ``tp / (tp + fp + eps)`` over all
  positions whose recall ``tp / npig`` is >= r, and that maximum is always reached at a true positive (a false
  positive or ignored detection repeats the recall of the TP before it with a lower or equal precision).  So
  only true positives need a precision, and each is binned by how many recall thresholds it reaches.
- Detections that never overlap a ground truth above the lowest IoU threshold are false positives at every
  threshold, or ignored in area ranges that exclude their area; their counts are a per-area-range prefix sum.

Resampling images.  Matching is per (image, category), so an image drawn w times contributes w copies of its
own matches; only the accumulation changes.  Evaluating the resampled list (images in drawn-position order,
so an image's copies are adjacent) sorts each category's detections by score, ties by image then rank: a run
of detections with equal (category, score, image) -- a *block* -- appears as w consecutive copies of itself.
With per-image weights w, the counts before a block are weighted prefix sums over the fixed order, and the
j-th copy of a block's q-th true positive sits at ``tp = before + (j-1) * block_tp + tp_up_to_q`` (fp alike).
For a one-detection block, or a block without counted false positives, precision grows with j, so the last
copy dominates every earlier one (higher recall, precision at least as high): only it is scored.  Otherwise
every copy is scored.  The arithmetic on the resulting integer counts is pycocotools', so the numbers equal,
bit for bit, a full evaluation of the resampled image list (``tests/metrics/test_coco_resampling.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from harness.metrics.coco import kernels
from harness.metrics.coco.grouping import stable_lexsort
from harness.metrics.coco.matching import Matches


@dataclass
class _Pass:
    """Everything about one maxDets setting that does not depend on the image weights."""

    max_det: int
    seq_image: np.ndarray  # (n,) image of each detection in the pass, in accumulation order
    plain: np.ndarray  # (A, n) never-matched detection inside the area range (a false positive)
    plain_before: np.ndarray  # (A, n + 1) unweighted prefix counts of ``plain``
    cat_start: np.ndarray  # (K + 1,) category bounds in the pass
    cand_image: np.ndarray  # (nc,) image of each candidate
    tp: np.ndarray  # (T, A, nc) candidate is a true positive
    counted: np.ndarray  # (T, A, nc) candidate is not ignored
    tp_before: np.ndarray  # (T, A, nc + 1) unweighted prefix counts
    counted_before: np.ndarray
    c_start: np.ndarray  # (K + 1,) category bounds among candidates
    cpos: np.ndarray  # (nc,) position of each candidate in the pass
    ccat: np.ndarray  # (nc,) its category
    # one row per unweighted true positive (t, a, candidate), in (t, a, candidate) order
    e_t: np.ndarray
    e_a: np.ndarray
    e_c: np.ndarray
    e_k: np.ndarray
    e_block_cand: np.ndarray  # first candidate index of the entry's block
    e_block_pos: np.ndarray  # first position (in the pass) of the entry's block
    e_block_tp: np.ndarray  # true positives in the block (one copy)
    e_block_fp: np.ndarray  # counted false positives in the block (one copy)
    e_tp_in: np.ndarray  # true positives of the block up to and including the entry
    e_fp_in: np.ndarray  # counted false positives of the block before the entry
    # filled by the first weighted run (``_index_weighted``); a plain evaluation never needs them
    e_group: np.ndarray | None = None  # (t, a, k) of each entry
    e_positive: np.ndarray | None = None  # (k, a) of each entry, into num_positives
    e_key: np.ndarray | None = None  # bucket base of each entry: ((t, a, k) * (R + 1))
    e_first_in_block: np.ndarray | None = None  # first entry of the same (t, a) at or after the block start
    e_first_in_cat: np.ndarray | None = None  # first entry of the same (t, a, k)
    e_fp_block: np.ndarray | None = None  # query of the block start in ``fp_increments``
    e_fp_cat: np.ndarray | None = None  # query of the category start
    fp_increments: Any = None  # sparse (queries x images): counted false positives between queries


@dataclass
class AccumulationPlan:
    """The matches of one evaluation, arranged so that ``run(weights)`` re-accumulates any image multiset."""

    num_t: int
    num_a: int
    num_k: int
    num_images: int
    recall_thresholds: np.ndarray
    max_dets: tuple[int, ...]
    positive_key: list[np.ndarray]  # per area range: category of each non-ignored ground truth
    positive_image: list[np.ndarray]  # per area range: its image
    num_positives: np.ndarray  # (K, A) unweighted
    shared: "_Shared"
    #: passes kept for weighted runs (a single evaluation builds each pass, uses it and lets it go)
    _kept: dict = field(default_factory=dict)

    def _pass_for(self, max_det: int, keep: bool, local: dict | None = None) -> _Pass:
        """The pass of ``max_det``; settings above every detection's rank share one pass (same detections)."""
        effective = min(max_det, self.shared.max_rank + 1)
        one = self._kept.get(effective) or (local or {}).get(effective)
        if one is None:
            one = _build_pass(self.shared, effective, blocks=keep)
            if keep:
                self._kept[effective] = one
            elif local is not None:
                local[effective] = one
        return one

    def run_many(self, weights: np.ndarray, precision_for: tuple[int, ...] | None = None, chunk: int = 32):
        """(precision, recall) for each row of ``weights`` (resamples x images), in order.

        ``precision_for`` lists the maxDets whose precision is needed (None: all); the others get only recall
        (their precision stays -1), which is all a summary reads at maxDets 1 and 10.  The false-positive counts
        of never-matched detections, the bulk of the work, are one sparse product per chunk of resamples.
        """
        weights = np.asarray(weights, dtype=np.int64)
        for start in range(0, len(weights), chunk):
            block = weights[start:start + chunk]
            fp = [self._fp_counts(self._pass_for(m, keep=True), block)
                  if precision_for is None or m in precision_for else None
                  for m in self.max_dets]  # per pass: (queries, b)
            for b in range(len(block)):
                yield self.run(block[b], [None if values is None else values[:, b] for values in fp], precision_for)

    def run(self, weights: np.ndarray | None = None, fp: list | None = None,
            precision_for: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(precision, recall) of the images taken ``weights[i]`` times each (None: once each)."""
        num_t, num_a, num_k = self.num_t, self.num_a, self.num_k
        num_r, num_m = len(self.recall_thresholds), len(self.max_dets)
        if weights is None and kernels.ENABLED:
            return self._run_compiled()
        if weights is None:
            num_positives = self.num_positives
        else:
            weights = np.asarray(weights, dtype=np.int64)
            num_positives = np.stack(
                [np.bincount(key, weights=weights[image], minlength=num_k).astype(np.int64)
                 for key, image in zip(self.positive_key, self.positive_image)], axis=1)
        precision = -np.ones((num_t, num_r, num_k, num_a, num_m))
        recall = -np.ones((num_t, num_k, num_a, num_m))
        has_gt = num_positives > 0  # (K, A)
        positives = num_positives.T[None, :, :].astype(np.float64)  # (1, A, K)
        with np.errstate(divide="ignore", invalid="ignore"):
            local: dict = {}  # a plain run holds a pass only while a later maxDets can share it
            for m, max_det in enumerate(self.max_dets):
                if min(max_det, self.shared.max_rank + 1) not in local:
                    local.clear()
                one = self._pass_for(max_det, keep=weights is not None, local=local)
                if weights is None:
                    q, rec = self._pass(one, weights, num_positives, positives, has_gt)
                else:
                    wanted = precision_for is None or max_det in precision_for
                    q, rec = self._weighted_pass(one, weights, num_positives, positives, has_gt,
                                                 None if fp is None else fp[m], wanted)
                recall[:, :, :, m] = rec
                if q is not None:
                    precision[:, :, :, :, m] = q
                del one
        return precision, recall

    def _run_compiled(self) -> tuple[np.ndarray, np.ndarray]:
        """``run()`` for every image once, by the compiled walk (``kernels.accumulate``); the same arithmetic."""
        shared = self.shared
        num_r, num_m = len(self.recall_thresholds), len(self.max_dets)
        precision = -np.ones((self.num_t, num_r, self.num_k, self.num_a, num_m))
        recall = -np.ones((self.num_t, self.num_k, self.num_a, num_m))
        kernels.accumulate(
            shared.order, np.searchsorted(shared.o_cat, np.arange(self.num_k + 1)), shared.dt_rank, shared.slot_of,
            shared.plain_inside, shared.cand_tp, shared.cand_counted, self.num_positives, self.recall_thresholds,
            self.max_dets, precision, recall,
        )
        return precision, recall

    def _weighted_pass(self, one: _Pass, weights, num_positives, positives, has_gt, fp_at, wanted: bool):
        """``_pass`` for images taken ``weights`` times; see the module docstring for the copies of a block.

        Work per resample is proportional to the true-positive entries: true positives before a block are a
        cumulative sum over the entries themselves, and counted false positives before it come from
        ``fp_at``, the sparse product done for a chunk of resamples at once (``_fp_counts``).
        """
        num_t, num_a, num_k = self.num_t, self.num_a, self.num_k
        if one.e_group is None:
            one.e_group = (one.e_t * num_a + one.e_a) * num_k + one.e_k
        e_w = weights[one.cand_image][one.e_c]
        total_tp = np.bincount(one.e_group, weights=e_w, minlength=num_t * num_a * num_k)
        total_tp = total_tp.reshape(num_t, num_a, num_k)
        rec = np.where(has_gt.T[None], total_tp / positives, -1).transpose(0, 2, 1)
        if not wanted:
            return None, rec
        if one.fp_increments is None:
            _index_weighted(one, num_a, self.num_images, self.recall_thresholds)
        if fp_at is None:
            fp_at = self._fp_counts(one, weights[None, :])[:, 0]
        tp_cum = np.zeros(len(e_w) + 1, dtype=np.int64)
        np.cumsum(e_w, out=tp_cum[1:])
        tp_before = tp_cum[one.e_first_in_block] - tp_cum[one.e_first_in_cat]
        fp_before = (fp_at[one.e_fp_block] - fp_at[one.e_fp_cat]).sum(axis=0).astype(np.int64)  # cand. + plain
        present = e_w > 0
        last = e_w - 1  # the last copy: j = w
        tp_count = tp_before + last * one.e_block_tp + one.e_tp_in
        fp_count = fp_before + last * one.e_block_fp + one.e_fp_in
        npig = num_positives.reshape(-1)[one.e_positive]
        prec, reached = self._precision(tp_count, fp_count, npig)
        # entries of images not drawn: precision 0 in the bucket of the entry before (changes no maximum, keeps
        # the keys sorted for reduceat)
        key = np.maximum.accumulate(np.where(present, one.e_key + reached, 0))
        prec = np.where(present, prec, 0.0)
        best = np.zeros(num_t * num_a * num_k * (len(self.recall_thresholds) + 1))
        if len(key):
            run_start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
            best[key[run_start]] = np.maximum.reduceat(prec, run_start)

        every = np.flatnonzero((one.e_block_fp > 0) & (e_w > 1))  # blocks whose earlier copies may matter
        if len(every):
            copies = e_w[every] - 1  # j = 1 .. w-1
            entry = np.repeat(every, copies)
            start = np.cumsum(copies) - copies
            j = np.arange(len(entry)) - np.repeat(start, copies) + 1
            extra_tp = tp_before[entry] + (j - 1) * one.e_block_tp[entry] + one.e_tp_in[entry]
            extra_fp = fp_before[entry] + (j - 1) * one.e_block_fp[entry] + one.e_fp_in[entry]
            extra_prec, extra_reached = self._precision(extra_tp, extra_fp, npig[entry])
            assert one.e_key is not None  # set by _index_weighted before any weighted pass
            np.maximum.at(best, one.e_key[entry] + extra_reached, extra_prec)
        return self._envelope(best, has_gt), rec

    def _fp_counts(self, one: _Pass, block: np.ndarray) -> np.ndarray:
        """Counted false positives before every query point, for each resample of ``block``: (queries, b)."""
        if one.fp_increments is None:
            _index_weighted(one, self.num_a, self.num_images, self.recall_thresholds)
        values = np.asarray(one.fp_increments @ np.ascontiguousarray(block.T, dtype=np.float64))
        return np.cumsum(values, axis=0)  # float64 holding integers far below 2**53: exact

    def _precision(self, tp_count: np.ndarray, fp_count: np.ndarray, npig: np.ndarray):
        """pycocotools' arithmetic: precision tp / (fp + tp + eps) and the recall thresholds tp / npig reaches."""
        tp_f = tp_count.astype(np.float64)
        fp_f = fp_count.astype(np.float64)
        prec = tp_f / (fp_f + tp_f + np.spacing(1))
        reached = np.searchsorted(self.recall_thresholds, tp_f / npig, side="right")
        return prec, reached

    def _envelope(self, best: np.ndarray, has_gt: np.ndarray) -> np.ndarray:
        num_r = len(self.recall_thresholds)
        best = best.reshape(self.num_t, self.num_a, self.num_k, num_r + 1)
        envelope = np.maximum.accumulate(best[..., ::-1], axis=-1)[..., ::-1]
        q = envelope[..., 1:]  # precision at threshold r = best over entries reaching more than r thresholds
        q = np.where(has_gt.T[None, :, :, None], q, -1)  # (T, A, K, R)
        return q.transpose(0, 3, 2, 1)

    def _pass(self, one: _Pass, weights, num_positives, positives, has_gt) -> tuple[np.ndarray, np.ndarray]:
        """Every image once: counts straight from the unweighted prefix sums, one IoU threshold at a time (the
        true positives of all thresholds at once would be tens of millions of entries on Objects365)."""
        total_tp = one.tp_before[:, :, one.c_start[1:]] - one.tp_before[:, :, one.c_start[:-1]]  # (T, A, K)
        rec = np.where(has_gt.T[None], total_tp / positives, -1).transpose(0, 2, 1)
        nc = one.tp.shape[2]
        num_r = len(self.recall_thresholds)
        best = np.zeros((self.num_t, self.num_a * self.num_k * (num_r + 1)))
        plain_flat = one.plain_before.reshape(-1)
        plain_stride = one.plain_before.shape[1]
        for t in range(self.num_t):
            a_idx, c_idx = np.nonzero(one.tp[t])
            k_idx = one.ccat[c_idx]
            row = a_idx * (nc + 1)
            tp_flat, counted_flat = one.tp_before[t].reshape(-1), one.counted_before[t].reshape(-1)
            first = row + one.c_start[k_idx]
            here = row + c_idx + 1
            tp_count = tp_flat[here] - tp_flat[first]
            plain_row = a_idx * plain_stride
            plain_between = plain_flat[plain_row + one.cpos[c_idx]] - plain_flat[plain_row + one.cat_start[k_idx]]
            fp_count = (counted_flat[here] - counted_flat[first]) - tp_count + plain_between
            prec, reached = self._precision(tp_count, fp_count, num_positives[k_idx, a_idx])
            # max precision per (a, k, reached); entries are already sorted by that key
            key = (a_idx * self.num_k + k_idx) * (num_r + 1) + reached
            if len(key):
                run_start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
                best[t, key[run_start]] = np.maximum.reduceat(prec, run_start)
        return self._envelope(best.reshape(-1), has_gt), rec


def plan_accumulation(
    *,
    dt_category: np.ndarray,
    dt_score: np.ndarray,
    dt_rank: np.ndarray,
    dt_image: np.ndarray,
    dt_outside: np.ndarray,
    matches: Matches,
    gt_ignored: np.ndarray,
    gt_id_is_zero: np.ndarray,
    gt_category: np.ndarray,
    gt_image: np.ndarray,
    num_categories: int,
    num_images: int,
    recall_thresholds: np.ndarray,
    max_dets: tuple[int, ...],
) -> AccumulationPlan:
    """Detections are in the sorted view (image, category, rank); ``dt_outside`` (A, D) flags areas outside each
    range, ``gt_ignored`` (A, G) the ignored ground truths; ``*_category`` are indices into the K categories."""
    num_t, num_a, _ = matches.gt.shape
    num_k = num_categories
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
    if kernels.ENABLED:
        order, _ = kernels.group_order(dt_category, dt_score, num_k)
    else:
        order = stable_lexsort(-dt_score, dt_category)
    o_cat = dt_category[order]
    shared = _Shared(order=order, o_cat=o_cat, dt_score=dt_score, dt_rank=dt_rank, dt_image=dt_image,
                     plain_inside=plain_inside, slot_of=slot_of, cand_tp=cand_tp, cand_counted=cand_counted,
                     num_t=num_t, num_a=num_a, num_k=num_k, max_rank=int(dt_rank.max(initial=0)))
    positive_key, positive_image = [], []
    for a in range(num_a):
        kept = ~gt_ignored[a]
        positive_key.append(gt_category[kept])
        positive_image.append(gt_image[kept])
    num_positives = np.stack([np.bincount(key, minlength=num_k) for key in positive_key], axis=1)
    return AccumulationPlan(
        num_t=num_t, num_a=num_a, num_k=num_k, num_images=num_images, recall_thresholds=recall_thresholds,
        max_dets=tuple(max_dets), positive_key=positive_key, positive_image=positive_image,
        num_positives=num_positives, shared=shared,
    )


def _build_pass(shared: "_Shared", max_det: int, blocks: bool) -> _Pass:
    """The pass of one maxDets setting: detections with rank < max_det in accumulation order, their candidates
    and the true-positive entries; with ``blocks`` also what weighted runs need (block counts, images)."""
    order, o_cat, dt_rank, dt_image = shared.order, shared.o_cat, shared.dt_rank, shared.dt_image
    slot_of, num_t, num_a, num_k = shared.slot_of, shared.num_t, shared.num_a, shared.num_k
    keep = dt_rank[order] < max_det
    seq = order[keep]
    n = len(seq)
    seq_cat = o_cat[keep]

    plain = shared.plain_inside[:, seq]
    plain_before = np.zeros((num_a, n + 1), dtype=np.int32)
    np.cumsum(plain, axis=1, out=plain_before[:, 1:])

    seq_slot = slot_of[seq]
    cpos = np.flatnonzero(seq_slot >= 0)  # positions of candidates in the pass
    cslot = seq_slot[cpos]
    ccat = seq_cat[cpos]
    c_start = np.searchsorted(ccat, np.arange(num_k + 1))
    tp = shared.cand_tp[:, :, cslot]  # (T, A, nc)
    counted = shared.cand_counted[:, :, cslot]
    tp_before = np.zeros((num_t, num_a, len(cpos) + 1), dtype=np.int32)
    np.cumsum(tp, axis=2, out=tp_before[:, :, 1:])
    counted_before = np.zeros((num_t, num_a, len(cpos) + 1), dtype=np.int32)
    np.cumsum(counted, axis=2, out=counted_before[:, :, 1:])
    later = cast(np.ndarray, None)  # fields filled in below once the blocks are known
    one = _Pass(
        max_det=max_det, seq_image=later, plain=later, plain_before=plain_before,
        cat_start=np.searchsorted(seq_cat, np.arange(num_k + 1)), cand_image=later, tp=tp,
        counted=later, tp_before=tp_before, counted_before=counted_before, c_start=c_start, cpos=cpos, ccat=ccat,
        e_t=later, e_a=later, e_c=later, e_k=later,
        e_block_cand=later, e_block_pos=later, e_block_tp=later, e_block_fp=later, e_tp_in=later, e_fp_in=later,
    )
    if not blocks:
        return one

    t_idx, a_idx, c_idx = np.nonzero(tp)
    one.e_t, one.e_a, one.e_c, one.e_k = t_idx, a_idx, c_idx, ccat[c_idx]

    seq_block = shared.block_of()[keep]
    block_first = np.ones(n, dtype=bool)
    block_first[1:] = seq_block[1:] != seq_block[:-1]
    block_starts = np.flatnonzero(block_first)
    block_index = np.cumsum(block_first) - 1  # block of each position, 0-based in the pass
    block_ends = np.r_[block_starts[1:], n]
    # block of each candidate, as positions and as candidate indices
    c_block = block_index[cpos]
    c_block_pos, c_block_end = block_starts[c_block], block_ends[c_block]
    c_block_cand = np.searchsorted(cpos, c_block_pos)
    c_block_cend = np.searchsorted(cpos, c_block_end)
    row = (t_idx * num_a + a_idx) * (len(cpos) + 1)
    tpf, cnf = tp_before.reshape(-1), counted_before.reshape(-1)
    b0, b1 = row + c_block_cand[c_idx], row + c_block_cend[c_idx]
    block_tp = tpf[b1] - tpf[b0]
    plain_row = a_idx * (n + 1)
    pf = plain_before.reshape(-1)
    block_plain = pf[plain_row + c_block_end[c_idx]] - pf[plain_row + c_block_pos[c_idx]]
    block_fp = (cnf[b1] - cnf[b0]) - block_tp + block_plain
    here = row + c_idx + 1
    tp_in = tpf[here] - tpf[b0]
    fp_in = (cnf[here] - cnf[b0]) - tp_in + (pf[plain_row + cpos[c_idx]] - pf[plain_row + c_block_pos[c_idx]])
    one.seq_image, one.plain, one.cand_image, one.counted = dt_image[seq], plain, dt_image[seq[cpos]], counted
    one.e_block_cand, one.e_block_pos = c_block_cand[c_idx], c_block_pos[c_idx]
    one.e_block_tp, one.e_block_fp, one.e_tp_in, one.e_fp_in = block_tp, block_fp, tp_in, fp_in
    return one


@dataclass
class _Shared:
    """What every pass is cut from: the accumulation order and the candidates' status at every (t, a)."""

    order: np.ndarray
    o_cat: np.ndarray
    dt_score: np.ndarray
    dt_rank: np.ndarray
    dt_image: np.ndarray
    plain_inside: np.ndarray
    slot_of: np.ndarray
    cand_tp: np.ndarray
    cand_counted: np.ndarray
    num_t: int
    num_a: int
    num_k: int
    max_rank: int = 0  # highest rank of any detection in its group

    def block_of(self) -> np.ndarray:
        """Block id of each detection in accumulation order: runs of equal (category, score, image)."""
        o_score, o_image = self.dt_score[self.order], self.dt_image[self.order]
        new_block = np.ones(len(self.order), dtype=bool)
        new_block[1:] = ((self.o_cat[1:] != self.o_cat[:-1]) | (o_score[1:] != o_score[:-1])
                         | (o_image[1:] != o_image[:-1]))
        return np.cumsum(new_block) - 1


def _index_weighted(one: _Pass, num_a: int, num_images: int, recall_thresholds: np.ndarray) -> None:
    """Index a pass for weighted runs.

    Counted false positives (never-matched detections inside the area range, and candidates that are counted
    but not true positives) are needed only at the start of each entry's block and of its category.  Those
    points are the rows of one sparse (query x image) matrix of the false positives between consecutive
    queries, so the counts of many resamples are a single sparse product and a cumulative sum.  The queries of
    all (t, a) and area ranges sit in one sorted key space, so the cumulative sum can run across them: only
    differences of two queries of the same segment are ever read.
    """
    nc = one.tp.shape[2]
    n = one.plain.shape[1]
    num_t = one.tp.shape[0]
    num_k = len(one.c_start) - 1
    num_r = len(recall_thresholds)
    ta = one.e_t * num_a + one.e_a
    one.e_group = ta * num_k + one.e_k
    one.e_positive = one.e_k * num_a + one.e_a
    one.e_key = one.e_group * (num_r + 1)
    entry_flat = ta * (nc + 1) + one.e_c  # sorted: entries are in (t, a, candidate) order
    one.e_first_in_block = np.searchsorted(entry_flat, ta * (nc + 1) + one.e_block_cand)
    one.e_first_in_cat = np.searchsorted(entry_flat, ta * (nc + 1) + one.c_start[one.e_k])

    # candidate false positives, keyed (t, a, candidate); plain ones keyed (area, position), after them
    cand_block, cand_cat = ta * (nc + 1) + one.e_block_cand, ta * (nc + 1) + one.c_start[one.e_k]
    plain_base = num_t * num_a * (nc + 1)
    plain_block = plain_base + one.e_a * (n + 1) + one.e_block_pos
    plain_cat = plain_base + one.e_a * (n + 1) + one.cat_start[one.e_k]
    # np.unique: sorted and deduplicated, and empty when nothing is counted (no entry, e.g. a --limit subset)
    queries = np.unique(np.concatenate([cand_block, cand_cat, plain_block, plain_cat]))
    one.e_fp_block = np.searchsorted(queries, cand_block)
    one.e_fp_cat = np.searchsorted(queries, cand_cat)
    plain_block_q = np.searchsorted(queries, plain_block)
    plain_cat_q = np.searchsorted(queries, plain_cat)

    t_f, a_f, c_f = np.nonzero(one.counted & ~one.tp)
    cand_key = (t_f * num_a + a_f) * (nc + 1) + c_f
    cand_image = one.cand_image[c_f]
    a_p, pos_p = np.nonzero(one.plain)
    plain_key = plain_base + a_p * (n + 1) + pos_p
    keys = np.concatenate([cand_key, plain_key])
    images = np.concatenate([cand_image, one.seq_image[pos_p]])
    row = np.searchsorted(queries, keys, side="right")  # a false positive counts for every later query
    inside = row < len(queries)
    one.fp_increments = _sparse_counts(row[inside], images[inside], len(queries), num_images)
    # two query rows per entry: the candidate and the plain false positives are read as one difference each
    one.e_fp_block = np.stack([one.e_fp_block, plain_block_q])
    one.e_fp_cat = np.stack([one.e_fp_cat, plain_cat_q])


def _sparse_counts(rows: np.ndarray, columns: np.ndarray, num_rows: int, num_columns: int):
    """A (rows x columns) CSR matrix counting each (row, column) pair; scipy only when a bootstrap runs."""
    from scipy import sparse

    data = np.ones(len(rows), dtype=np.float64)
    return sparse.csr_matrix((data, (rows, columns)), shape=(num_rows, num_columns))
