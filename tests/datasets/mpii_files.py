"""Small MPII roots written by the tests: mmpose's json and the official ``mpii_gt_val.mat`` the toolkit reads.

The real fixture (``tests/data/mpii``, mmpose's test json) has no ``mpii_gt_val.mat``, so the tests build one in
the official layout: ``dataset_joints`` (1 x 16 MPII codes), ``jnt_missing`` (16 x N), ``pos_gt_src`` (16 x 2 x N)
and ``headboxes_src`` (2 x 2 x N, ``[[x1, y1], [x2, y2]]`` per person), all 1-based as in MATLAB.  The head boxes
are made up by each test (and documented there): the real ones come from the MPII annotation.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from harness.labels.keypoints import MPII_JOINT_CODES


def write_gt_mat(path: Path, joints: np.ndarray, present: np.ndarray, head_boxes: np.ndarray,
                 codes: list[str] = MPII_JOINT_CODES) -> Path:
    """``joints`` (N, 16, 2) and ``head_boxes`` (N, 2, 2) 1-based; ``present`` (N, 16) -> ``jnt_missing``."""
    scipy.io.savemat(str(path), {
        "dataset_joints": np.array([[np.array([code]) for code in codes]], dtype=object),
        "jnt_missing": (~np.asarray(present, bool)).T.astype(np.uint8),
        "pos_gt_src": np.transpose(np.where(present[..., None], joints, 0.0), (1, 2, 0)),
        "headboxes_src": np.transpose(np.asarray(head_boxes, np.float64), (1, 2, 0)),
    })
    return path


def write_root(root: Path, images: list[str], joints: np.ndarray, present: np.ndarray, head_boxes: np.ndarray,
               size: tuple[int, int] = (160, 120), split: str = "val") -> Path:
    """An MPII root with one blank image per name and person ``i`` in image ``images[i]`` (json + .mat)."""
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for name in dict.fromkeys(images):
        Image.new("RGB", size, (90, 90, 90)).save(root / "images" / name)
    people = []
    for name, person, labelled in zip(images, joints, present):
        labelled_xy = person[labelled]
        centre = (labelled_xy.min(axis=0) + labelled_xy.max(axis=0)) / 2
        people.append({"image": name, "center": centre.tolist(), "scale": 0.5,
                       "joints": np.where(labelled[:, None], person, -1.0).tolist(),
                       "joints_vis": labelled.astype(int).tolist()})
    (root / "annotations" / f"mpii_{split}.json").write_text(json.dumps(people))
    write_gt_mat(root / "annotations" / f"mpii_gt_{split}.mat", joints, present, head_boxes)
    return root
