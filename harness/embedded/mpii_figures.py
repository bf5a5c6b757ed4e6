"""Stick-figure people in the MPII layout: ``images/``, ``annotations/mpii_{train,val}.json`` (mmpose's format)
and ``annotations/mpii_gt_{train,val}.mat`` (the official ground-truth fields, with head boxes).

The figures are ``stick_figures``' poses and drawing; the COCO-17 joints map onto MPII's 16 (pelvis = mid-hips,
thorax = mid-shoulders, upper neck and head top where the drawn head circle meets the neck axis), and the head
box is the square around the drawn head, so PCKh's head size follows the figure's scale.  Joints outside the
image are unlabelled (``joints_vis`` 0, ``jnt_missing`` 1), as in MPII.

Both files use MPII's 1-based (MATLAB) pixel coordinates, as the real ones do: the json's joints and centres and
the .mat's ``pos_gt_src`` and ``headboxes_src`` are the drawn (0-based) positions plus 1, and the json's joints
equal ``pos_gt_src`` (unlabelled joints are ``[-1, -1]`` in the json and 0 in the .mat).  Version 1 wrote the
json in 0-based coordinates.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import scipy.io

from harness.embedded.shapes import textured_background
from harness.embedded.stick_figures import draw_person, random_pose
from harness.labels.keypoints import MPII_JOINT_CODES

VERSION = 2
IMAGE_SIZE = 192
SPLITS = {"train": (800, 51, 1), "val": (100, 52, 100001)}  # images, seed, first image number
# MPII joint <- COCO-17 joint (None: derived)
FROM_COCO = [16, 14, 12, 11, 13, 15, None, None, None, None, 10, 8, 6, 5, 7, 9]


def mpii_joints(coco: np.ndarray, height: float) -> tuple[np.ndarray, np.ndarray]:
    """(16, 2) MPII joints and the head box (x1, y1, x2, y2) of a figure drawn by ``draw_person``."""
    joints = np.zeros((16, 2))
    for mpii, source in enumerate(FROM_COCO):
        if source is not None:
            joints[mpii] = coco[source]
    joints[6] = (coco[11] + coco[12]) / 2
    joints[7] = (coco[5] + coco[6]) / 2
    head = (coco[1] + coco[2]) / 2  # where draw_person centres the head circle
    radius = max(3, int(round(0.075 * height)))
    up = head - joints[7]
    up /= max(float(np.linalg.norm(up)), 1e-6)
    joints[8] = head - up * radius
    joints[9] = head + up * radius
    return joints, np.array([head[0] - radius, head[1] - radius, head[0] + radius, head[1] + radius])


def generate_image(rng: np.random.Generator) -> tuple[np.ndarray, list[dict]]:
    image = textured_background(rng, IMAGE_SIZE, IMAGE_SIZE)
    people = []
    for _ in range(int(rng.choice([1, 1, 1, 2]))):
        height = rng.uniform(90, 170)
        hip = np.array([rng.uniform(0.2, 0.8) * IMAGE_SIZE, rng.uniform(0.45, 0.65) * IMAGE_SIZE])
        coco = random_pose(rng, height, hip)
        draw_person(image, coco, height, rng)
        joints, head_box = mpii_joints(coco, height)
        inside = (joints[:, 0] >= 0) & (joints[:, 0] < IMAGE_SIZE) & (joints[:, 1] >= 0) & (joints[:, 1] < IMAGE_SIZE)
        extent = np.concatenate([joints, head_box.reshape(2, 2)])
        low, high = extent.min(axis=0), extent.max(axis=0)
        people.append({
            "joints": joints, "visible": inside, "head_box": head_box,
            "center": (low + high) / 2, "scale": float(max(high - low)) * 1.15 / 200.0,
        })
    return image, people


def write_split(root: Path, split: str, count: int, seed: int, first: int) -> None:
    rng = np.random.default_rng(seed)
    entries, joints, missing, head_boxes = [], [], [], []
    for index in range(count):
        image, people = generate_image(rng)
        name = f"{first + index:09d}.jpg"
        cv2.imwrite(str(root / "images" / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        for person in people:
            vis = person["visible"]
            one_based = person["joints"] + 1.0
            entries.append({
                "joints_vis": vis.astype(int).tolist(),
                "joints": [[round(float(x), 4), round(float(y), 4)] if v else [-1.0, -1.0]
                           for (x, y), v in zip(one_based, vis)],
                "image": name,
                "scale": round(person["scale"], 6),
                "center": [round(float(v) + 1.0, 2) for v in person["center"]],
            })
            joints.append(np.where(vis[:, None], np.array(entries[-1]["joints"]), 0.0))  # the json's values
            missing.append(~vis)
            head_boxes.append(person["head_box"].reshape(2, 2) + 1.0)
    (root / "annotations" / f"mpii_{split}.json").write_text(json.dumps(entries))
    scipy.io.savemat(str(root / "annotations" / f"mpii_gt_{split}.mat"), {
        "dataset_joints": np.array([[np.array([code]) for code in MPII_JOINT_CODES]], dtype=object),
        "jnt_missing": np.stack(missing, axis=1).astype(np.uint8),  # 16 x N
        "pos_gt_src": np.stack(joints, axis=2),  # 16 x 2 x N
        "headboxes_src": np.stack(head_boxes, axis=2),  # 2 x 2 x N
    })


def build_split(root: Path, split: str) -> None:
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir(parents=True)
    write_split(root, split, *SPLITS[split])
