"""Skeleton facts shared by datasets, models and metrics (COCO-17 names, OKS sigmas, limbs)."""
from __future__ import annotations

COCO_KEYPOINT_NAMES: list[str] = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
]

#: per-keypoint OKS sigmas of the COCO keypoint challenge (cocoapi), in COCO_KEYPOINT_NAMES order
COCO_SIGMAS: list[float] = [
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087,
    0.089, 0.089,
]

#: COCO's 1-based skeleton as shipped in person_keypoints_*.json
COCO_SKELETON_1BASED: list[list[int]] = [
    [16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9], [8, 10],
    [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7],
]

#: index pairs that swap under a horizontal flip
COCO_FLIP_PAIRS: list[tuple[int, int]] = [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)]
