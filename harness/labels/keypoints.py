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

#: the 16 MPII Human Pose joints in the dataset's (and mmpose's) index order
MPII_KEYPOINT_NAMES: list[str] = [
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis", "thorax",
    "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
    "left_wrist",
]

#: the short names MPII's evaluation files use in ``dataset_joints`` (same order)
MPII_JOINT_CODES: list[str] = [
    "rank", "rkne", "rhip", "lhip", "lkne", "lank", "pelv", "thor", "neck", "head", "rwri", "relb", "rsho", "lsho",
    "lelb", "lwri",
]

#: 0-based limbs of the MPII skeleton
MPII_SKELETON: list[tuple[int, int]] = [
    (0, 1), (1, 2), (2, 6), (3, 6), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9), (7, 12), (12, 11), (11, 10), (7, 13),
    (13, 14), (14, 15),
]

#: index pairs that swap under a horizontal flip
MPII_FLIP_PAIRS: list[tuple[int, int]] = [(0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)]
