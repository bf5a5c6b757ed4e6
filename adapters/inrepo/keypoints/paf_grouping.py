"""OpenPose's bottom-up grouping: peaks of part confidence maps joined into people along Part Affinity Fields.

A PAF is a 2-D vector field per limb that points from one joint to the other along the limb, on the limb's
pixels.  A candidate connection between a peak of joint a and a peak of joint b is scored by the line integral
of that limb's field along the segment between them (sampled at ``SAMPLES`` points, with a penalty for limbs
longer than half the image): a right wrist joins the right elbow its forearm field points to, not the nearer
one of the person standing next to it.  Each limb is then a bipartite matching problem (peaks of a x peaks of
b, at most one partner each), solved exactly with the Hungarian algorithm on the integral scores, and the
matched connections are assembled into people along a spanning tree of the skeleton, merging two partial people
when a connection links them and they share no joint type.

Everything here works in map cells and numpy, so it can be tested on hand-built maps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

#: a spanning tree of the COCO-17 skeleton (child after parent), one PAF per limb
COCO_LIMBS: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 2), (1, 3), (2, 4),  # nose-eyes, eyes-ears
    (0, 5), (0, 6),  # nose-shoulders
    (5, 7), (7, 9), (6, 8), (8, 10),  # arms
    (5, 11), (6, 12),  # torso sides
    (11, 13), (13, 15), (12, 14), (14, 16),  # legs
)
SAMPLES = 10
#: a sample point supports the connection when the field's projection on the segment exceeds this
SUPPORT_THRESHOLD = 0.05
#: ... and a connection needs this share of supporting points
SUPPORT_FRACTION = 0.8


@dataclass
class Peaks:
    """Per joint type: (n, 2) cell coordinates (x, y) and (n,) scores."""

    coords: list[np.ndarray]
    scores: list[np.ndarray]


def find_peaks(heatmaps: np.ndarray, threshold: float = 0.1) -> Peaks:
    """Local maxima (3x3, one per plateau) above ``threshold`` per map, refined below the cell size."""
    joints, height, width = heatmaps.shape
    padded = np.pad(heatmaps, ((0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    neighbours = np.stack([padded[:, 1 + dy: 1 + dy + height, 1 + dx: 1 + dx + width]
                           for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dx, dy) != (0, 0)])
    # strictly greater than the neighbours before it in raster order, >= the ones after: one peak per plateau
    before = neighbours[:4].max(axis=0)
    after = neighbours[4:].max(axis=0)
    is_peak = (heatmaps > threshold) & (heatmaps > before) & (heatmaps >= after)
    coords, scores = [], []
    for joint in range(joints):
        ys, xs = np.nonzero(is_peak[joint])
        points = np.zeros((0, 2))
        if len(xs):
            log = _smoothed_log(heatmaps[joint])
            points = np.array([np.array([x, y], np.float64) + _newton_offset(log, int(x), int(y))
                               for x, y in zip(xs, ys)])
        coords.append(points.reshape(-1, 2))
        scores.append(heatmaps[joint, ys, xs].astype(np.float64))
    return Peaks(coords, scores)


def _smoothed_log(heatmap: np.ndarray) -> np.ndarray:
    """log of the 3x3 box-smoothed map (edges replicated), padded by one more replicated cell."""
    padded = np.pad(heatmap, 1, mode="edge")
    height, width = heatmap.shape
    smooth = sum(padded[dy: dy + height, dx: dx + width] for dy in range(3) for dx in range(3)) / 9.0
    return np.pad(np.log(np.clip(smooth, 1e-10, None)), 1, mode="edge")


def _newton_offset(log: np.ndarray, x: int, y: int) -> np.ndarray:
    """Sub-cell offset of the maximum of the local quadratic fit of the log map at cell (x, y) (the
    "distribution-aware" refinement); the quarter-cell shift towards the higher neighbour where the fit is not a
    proper maximum."""
    at = lambda dx, dy: log[y + 1 + dy, x + 1 + dx]  # noqa: E731
    gx, gy = 0.5 * (at(1, 0) - at(-1, 0)), 0.5 * (at(0, 1) - at(0, -1))
    hxx = at(1, 0) - 2 * at(0, 0) + at(-1, 0)
    hyy = at(0, 1) - 2 * at(0, 0) + at(0, -1)
    hxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
    det = hxx * hyy - hxy**2
    if hxx < 0 and det > 1e-12:
        return np.clip([-(hyy * gx - hxy * gy) / det, -(hxx * gy - hxy * gx) / det], -0.5, 0.5)
    return 0.25 * np.sign([at(1, 0) - at(-1, 0), at(0, 1) - at(0, -1)])


def connection_scores(paf: np.ndarray, starts: np.ndarray, ends: np.ndarray, map_height: int) -> np.ndarray:
    """(len(starts), len(ends)) PAF line-integral scores; -inf where the field does not support the limb.

    ``paf`` is (2, h, w): the limb's unit-vector field.  Points are sampled evenly from start to end (nearest
    cell); the score is the mean projection plus ``min(0.5 * h / length - 1, 0)``.
    """
    scores = np.full((len(starts), len(ends)), -np.inf)
    height, width = paf.shape[1:]
    steps = np.linspace(0.0, 1.0, SAMPLES)
    for i, start in enumerate(starts):
        for j, end in enumerate(ends):
            vector = end - start
            length = float(np.hypot(*vector))
            if length < 1e-6:
                continue
            unit = vector / length
            points = start[None] + steps[:, None] * vector[None]
            xs = np.clip(np.round(points[:, 0]).astype(int), 0, width - 1)
            ys = np.clip(np.round(points[:, 1]).astype(int), 0, height - 1)
            projection = paf[0, ys, xs] * unit[0] + paf[1, ys, xs] * unit[1]
            if (projection > SUPPORT_THRESHOLD).mean() < SUPPORT_FRACTION:
                continue
            score = projection.mean() + min(0.5 * map_height / length - 1.0, 0.0)
            if score > 0:
                scores[i, j] = score
    return scores


def match_limb(scores: np.ndarray) -> list[tuple[int, int, float]]:
    """Maximum-weight bipartite matching on the finite scores (Hungarian); pairs (start, end, score)."""
    if scores.size == 0 or not np.isfinite(scores).any():
        return []
    cost = np.where(np.isfinite(scores), -scores, 1e6)
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c), float(scores[r, c])) for r, c in zip(rows, cols) if np.isfinite(scores[r, c])]


def group_people(peaks: Peaks, pafs: np.ndarray, limbs=COCO_LIMBS, min_joints: int = 3
                 ) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """People as (K, 2) cell coordinates (NaN where missing), (K,) joint scores (0 where missing) and the sum
    of their connection scores.  ``pafs`` is (2 * len(limbs), h, w), limb l's x and y at channels 2l, 2l + 1."""
    joints = len(peaks.coords)
    map_height = pafs.shape[1]
    people: list[np.ndarray] = []  # per person: (K,) peak index per joint type, -1 where missing
    links: list[float] = []
    for limb, (a, b) in enumerate(limbs):
        scores = connection_scores(pafs[2 * limb: 2 * limb + 2], peaks.coords[a], peaks.coords[b], map_height)
        for ia, ib, score in match_limb(scores):
            owner_a = next((p for p, person in enumerate(people) if person[a] == ia), None)
            owner_b = next((p for p, person in enumerate(people) if person[b] == ib), None)
            if owner_a is not None and owner_b is None and people[owner_a][b] < 0:
                people[owner_a][b] = ib
                links[owner_a] += score
            elif owner_b is not None and owner_a is None and people[owner_b][a] < 0:
                people[owner_b][a] = ia
                links[owner_b] += score
            elif owner_a is None and owner_b is None:
                person = np.full(joints, -1)
                person[a], person[b] = ia, ib
                people.append(person)
                links.append(score)
            elif owner_a is not None and owner_b is not None and owner_a != owner_b:
                first, second = people[owner_a], people[owner_b]
                if not ((first >= 0) & (second >= 0)).any():  # disjoint halves of one person
                    people[owner_a] = np.where(first >= 0, first, second)
                    links[owner_a] += links[owner_b] + score
                    del people[owner_b], links[owner_b]
    out = []
    for person, link in zip(people, links):
        if (person >= 0).sum() < min_joints:
            continue
        coords = np.full((joints, 2), np.nan)
        scores = np.zeros(joints)
        for joint, index in enumerate(person):
            if index >= 0:
                coords[joint] = peaks.coords[joint][index]
                scores[joint] = peaks.scores[joint][index]
        out.append((coords, scores, link))
    return out
