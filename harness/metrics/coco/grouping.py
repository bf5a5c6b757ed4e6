"""Bucket ground truths and detections by (image, category) and enumerate the pairs that are compared.

pycocotools evaluates each (image, category) on its own, with detections sorted by descending score (stable,
so ties keep list order) and cut at the largest maxDet, and ground truths in file order.  With ``use_cats=False``
an image's ground truths (and detections) are concatenated by ascending category id first, which we reproduce
by sorting on (group, category, file position).  Everything here is one or two stable sorts over all rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.metrics.coco import kernels


@dataclass
class Groups:
    """Sorted views: ``gt_order``/``dt_order`` index the original tables; groups are contiguous in both."""

    num_groups: int
    gt_order: np.ndarray  # (G,) table rows of the ground truths, sorted by group then file order
    gt_bounds: np.ndarray  # (num_groups + 1,) group g owns sorted gts gt_bounds[g]:gt_bounds[g+1]
    dt_order: np.ndarray  # (D,) table rows of the kept detections, sorted by group then rank
    dt_bounds: np.ndarray  # (num_groups + 1,)
    dt_group: np.ndarray  # (D,) group of each kept detection
    dt_rank: np.ndarray  # (D,) position of each kept detection in its group's score order
    keys: np.ndarray  # (num_groups,) image * stride + category of each group present, ascending
    stride: int  # categories per image in ``keys`` (1 without use_cats)

    def image_starts(self, num_images: int) -> np.ndarray:
        """(num_images + 1,) first group of each image: image i owns groups image_starts[i]:image_starts[i+1]."""
        return np.searchsorted(self.keys, np.arange(num_images + 1) * self.stride)


def build_groups(
    gt_image: np.ndarray,
    gt_category: np.ndarray,
    dt_image: np.ndarray,
    dt_category: np.ndarray,
    dt_score: np.ndarray,
    num_images: int,
    num_categories: int,
    max_det: int,
    use_cats: bool,
    threads: int = 1,
) -> Groups:
    """The sorted views; ``threads`` 2 lets the compiled kernels sort the groups' scores in two threads (the
    order does not depend on it)."""
    stride = num_categories if use_cats else 1
    gt_full = gt_image * stride + gt_category if use_cats else gt_image
    dt_full = dt_image * stride + dt_category if use_cats else dt_image
    # only the (image, category) groups that occur: images x categories can be tens of millions (Objects365)
    space = num_images * stride
    dense = space <= 4 * (len(gt_full) + len(dt_full)) + 1024  # a flag per possible key is cheaper than a sort
    if dense and use_cats and kernels.ENABLED:
        return kernels.dense_groups(gt_full, dt_full, dt_score, space, max_det, stride, threads)
    if dense:
        seen = np.zeros(space, dtype=bool)
        seen[gt_full] = True
        seen[dt_full] = True
        group_keys = np.flatnonzero(seen)
        rank = np.cumsum(seen) - 1
        num_groups = len(group_keys)
        gt_key, dt_key = rank[gt_full], rank[dt_full]
    else:
        present = np.sort(np.concatenate([gt_full, dt_full]))
        group_keys = present[np.r_[True, present[1:] != present[:-1]]] if len(present) else present
        num_groups = len(group_keys)
        gt_key = np.searchsorted(group_keys, gt_full)
        dt_key = np.searchsorted(group_keys, dt_full)
    if use_cats and kernels.ENABLED:  # counting sort by group, then a stable sort by score inside each group
        gt_order, gt_bounds = kernels.group_order(gt_key, None, num_groups)
        dt_order, dt_bounds_all = kernels.group_order(dt_key, dt_score, num_groups)
    else:
        if use_cats:
            gt_order = np.argsort(gt_key, kind="stable")
            dt_order = stable_lexsort(-dt_score, dt_key)
        else:
            gt_order = stable_lexsort(gt_category, gt_key)
            # pycocotools concatenates by category, then sorts by score: ties fall back to (category, list order)
            dt_order = stable_lexsort(dt_category, -dt_score, dt_key)
        gt_bounds = _bounds(gt_key[gt_order], num_groups)
        dt_bounds_all = _bounds(dt_key[dt_order], num_groups)
    dt_sorted_key = dt_key[dt_order]
    rank = np.arange(len(dt_order)) - dt_bounds_all[dt_sorted_key]
    keep = rank < max_det
    dt_order = dt_order[keep]
    dt_group = dt_sorted_key[keep]
    # the first max_det of each group stay: its bounds follow from the counts, no search over the rows
    dt_bounds = np.zeros(num_groups + 1, dtype=np.int64)
    np.cumsum(np.minimum(np.diff(dt_bounds_all), max_det), out=dt_bounds[1:])
    return Groups(
        num_groups=num_groups,
        gt_order=gt_order,
        gt_bounds=gt_bounds,
        dt_order=dt_order,
        dt_bounds=dt_bounds,
        dt_group=dt_group,
        dt_rank=rank[keep],
        keys=group_keys,
        stride=stride,
    )


def stable_lexsort(*keys: np.ndarray) -> np.ndarray:
    """``np.lexsort(keys)`` (last key most significant, ties keep input order) as successive stable argsorts,
    which is several times faster: small integer keys go through numpy's radix sort."""
    order = np.arange(len(keys[0]))
    for key in keys:
        values = key[order]
        if values.dtype.kind in "iu" and len(values) and values.min() >= 0 and values.max() < 2**15:
            values = values.astype(np.int16)
        order = order[np.argsort(values, kind="stable")]
    return order


def _bounds(sorted_keys: np.ndarray, num_groups: int) -> np.ndarray:
    return np.searchsorted(sorted_keys, np.arange(num_groups + 1), side="left")


def all_pairs(groups: Groups) -> tuple[np.ndarray, np.ndarray]:
    """Every (kept detection, ground truth) pair of the same group, as positions in the sorted views.

    Ordered by detection (group, rank) then ground-truth position: the row-major layout of each group's IoU
    matrix, as pycocotools' ``computeIoU`` builds it.
    """
    gt_count = np.diff(groups.gt_bounds)
    per_det = gt_count[groups.dt_group]
    total = int(per_det.sum())
    det = np.repeat(np.arange(len(groups.dt_group)), per_det)
    first = np.repeat(groups.gt_bounds[groups.dt_group] - (np.cumsum(per_det) - per_det), per_det)
    gt = first + np.arange(total)
    return det, gt
