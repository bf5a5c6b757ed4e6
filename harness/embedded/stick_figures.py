"""Stick-figure people with COCO-17 keypoints, written in the COCO person_keypoints layout.

The figures are simple enough for a small model to learn on a CPU in minutes, but keep what makes pose
evaluation non-trivial: varied scale and posture, truncation at the image border (v=0), occlusion by objects and
by other people (v=1), distractor clutter, and a few crowd regions (iscrowd=1, RLE) that must be ignored.
Left limbs are drawn in warm colours and right limbs in cool ones so the left/right assignment is learnable.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from harness.embedded.shapes import visible_box
from harness.embedded.shapes_coco import encode_rle
from harness.labels.keypoints import COCO_KEYPOINT_NAMES, COCO_SKELETON_1BASED

IMAGE_SIZE = (256, 192)  # width, height
SPLITS = {"train": (700, 1), "val": (160, 2)}  # images, seed
VERSION = 1

LIMBS_LEFT = [(5, 7), (7, 9), (11, 13), (13, 15)]
LIMBS_RIGHT = [(6, 8), (8, 10), (12, 14), (14, 16)]


def _rotate(vector: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([c * vector[0] - s * vector[1], s * vector[0] + c * vector[1]])


def random_pose(rng: np.random.Generator, height: float, hip_center: np.ndarray) -> np.ndarray:
    """(17, 2) joint positions of a person ``height`` pixels tall standing around ``hip_center``."""
    tilt = rng.normal(0.0, 0.18)
    up = _rotate(np.array([0.0, -1.0]), tilt)
    side = _rotate(np.array([1.0, 0.0]), tilt)  # towards the person's left = image right (facing the camera)
    yaw = np.cos(rng.uniform(-1.0, 1.0))
    neck = hip_center + up * 0.30 * height
    joints = np.zeros((17, 2))
    head = neck + up * 0.10 * height
    joints[0] = head + side * rng.normal(0, 0.015) * height
    joints[1] = joints[0] + (side * 0.030 * yaw + up * 0.025) * height
    joints[2] = joints[0] + (-side * 0.030 * yaw + up * 0.025) * height
    joints[3] = joints[0] + (side * 0.060 * yaw + up * 0.005) * height
    joints[4] = joints[0] + (-side * 0.060 * yaw + up * 0.005) * height
    joints[5] = neck + side * 0.11 * height * yaw
    joints[6] = neck - side * 0.11 * height * yaw
    joints[11] = hip_center + side * 0.08 * height * yaw
    joints[12] = hip_center - side * 0.08 * height * yaw
    down = -up
    for shoulder, elbow, wrist, sign in ((5, 7, 9, 1.0), (6, 8, 10, -1.0)):
        upper = _rotate(down, sign * rng.uniform(-0.4, 2.6))
        joints[elbow] = joints[shoulder] + upper * 0.17 * height
        joints[wrist] = joints[elbow] + _rotate(upper, sign * rng.uniform(-0.3, 2.2)) * 0.15 * height
    for hip, knee, ankle, sign in ((11, 13, 15, 1.0), (12, 14, 16, -1.0)):
        thigh = _rotate(down, sign * rng.uniform(-0.35, 0.9))
        joints[knee] = joints[hip] + thigh * 0.23 * height
        joints[ankle] = joints[knee] + _rotate(thigh, -sign * rng.uniform(-0.2, 1.4)) * 0.22 * height
    return joints


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    low = rng.uniform(40, 215, size=(4, 4, 3)).astype(np.float32)
    image = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    image += np.asarray(rng.normal(0, 8, size=image.shape), dtype=np.float32)
    image = np.clip(image, 0, 255).astype(np.uint8)
    for _ in range(rng.integers(2, 7)):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            x, y = rng.integers(0, width), rng.integers(0, height)
            cv2.rectangle(image, (int(x), int(y)), (int(x + rng.integers(8, 60)), int(y + rng.integers(8, 60))), color, -1)
        else:
            p1 = rng.integers(0, (width, height))
            p2 = p1 + rng.integers(-50, 50, size=2)
            cv2.line(image, tuple(int(v) for v in p1), tuple(int(v) for v in p2), color, int(rng.integers(2, 6)))
    return image


def draw_person(image: np.ndarray, joints: np.ndarray, height: float, rng: np.random.Generator) -> np.ndarray:
    """Draw the figure; returns its pixel mask (uint8)."""
    mask = np.zeros(image.shape[:2], np.uint8)
    thickness = max(2, int(round(0.045 * height)))
    pt = lambda i: tuple(int(round(v)) for v in joints[i] * 4)  # noqa: E731 - 2 fractional bits
    shirt = tuple(int(c) for c in rng.integers(30, 230, 3))
    torso = np.array([joints[5], joints[6], joints[12], joints[11]]) * 4
    for canvas, color in ((image, shirt), (mask, 1)):
        cv2.fillConvexPoly(canvas, np.round(torso).astype(np.int32), color, cv2.LINE_AA if canvas is image else 8, 2)
    warm = (int(rng.integers(190, 256)), int(rng.integers(40, 120)), int(rng.integers(0, 60)))
    cool = (int(rng.integers(0, 60)), int(rng.integers(60, 160)), int(rng.integers(190, 256)))
    for limbs, color in ((LIMBS_LEFT, warm), (LIMBS_RIGHT, cool)):
        for a, b in limbs:
            cv2.line(image, pt(a), pt(b), color, thickness, cv2.LINE_AA, 2)
            cv2.line(mask, pt(a), pt(b), 1, thickness, 8, 2)
    skin = (int(rng.integers(150, 240)), int(rng.integers(110, 190)), int(rng.integers(80, 150)))
    radius = max(3, int(round(0.075 * height)))
    center = tuple(int(round(v)) for v in (joints[0] + (joints[1] + joints[2]) / 2 - joints[0]) * 4)
    cv2.circle(image, center, radius * 4, skin, -1, cv2.LINE_AA, 2)
    cv2.circle(mask, center, radius * 4, 1, -1, 8, 2)
    for eye in (1, 2):
        cv2.circle(image, pt(eye), max(4, thickness), (20, 20, 20), -1, cv2.LINE_AA, 2)
    return mask


def _polygons(mask: np.ndarray) -> list[list[float]]:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


def generate_image(rng: np.random.Generator) -> tuple[np.ndarray, list[dict]]:
    """One image and its annotations (without ids)."""
    width, height = IMAGE_SIZE
    image = _background(rng, width, height)
    objects: list[tuple[str, np.ndarray, np.ndarray | None]] = []  # (kind, mask, joints)
    for _ in range(int(rng.choice([1, 1, 2, 2, 3]))):
        person_height = rng.uniform(70, 190)
        hip = np.array([rng.uniform(0.05, 0.95) * width, rng.uniform(0.35, 0.8) * height])
        joints = random_pose(rng, person_height, hip)
        objects.append(("person", draw_person(image, joints, person_height, rng), joints))
        if rng.random() < 0.3:  # an occluder over part of this person
            x, y = joints[rng.integers(0, 17)] + rng.normal(0, 10, 2)
            size = rng.uniform(0.15, 0.35) * person_height
            occluder = np.zeros((height, width), np.uint8)
            box = (int(x - size / 2), int(y - size / 2)), (int(x + size / 2), int(y + size / 2))
            cv2.rectangle(image, *box, tuple(int(c) for c in rng.integers(0, 256, 3)), -1)
            cv2.rectangle(occluder, *box, 1, -1)
            objects.append(("occluder", occluder, None))
    if rng.random() < 0.08:  # a crowd of small people, annotated as one iscrowd region
        crowd = np.zeros((height, width), np.uint8)
        cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.3, 0.7) * height
        for _ in range(int(rng.integers(4, 8))):
            small = rng.uniform(22, 36)
            joints = random_pose(rng, small, np.array([cx, cy]) + rng.normal(0, 18, 2))
            crowd |= draw_person(image, joints, small, rng)
        objects.append(("crowd", crowd, None))
    annotations = []
    for index, (kind, mask, person_joints) in enumerate(objects):
        if kind == "occluder":
            continue
        covered = np.zeros_like(mask)
        for _, later_mask, _ in objects[index + 1 :]:
            covered |= later_mask
        visible = mask & (1 - covered)
        if visible.sum() < 30:
            continue
        if kind == "crowd":
            annotations.append({
                "iscrowd": 1, "segmentation": encode_rle(visible), "area": float(visible.sum()), "bbox": list(visible_box(visible)),
                "keypoints": [0] * 51, "num_keypoints": 0,
            })
            continue
        keypoints: list[float] = []
        assert person_joints is not None  # a person: only crowds and occluders have no joints
        for x, y in person_joints:
            inside = 0 <= x < width and 0 <= y < height
            if not inside:
                keypoints += [0, 0, 0]
            else:
                flag = 1 if covered[int(y), int(x)] else 2
                keypoints += [round(float(x), 2), round(float(y), 2), flag]
        num = sum(1 for v in keypoints[2::3] if v > 0)
        annotations.append({
            "iscrowd": 0, "segmentation": _polygons(visible), "area": float(visible.sum()), "bbox": list(visible_box(visible)),
            "keypoints": keypoints, "num_keypoints": num,
        })
    return image, annotations


def write_split(root: Path, split: str, count: int, seed: int) -> None:
    write_people_split(root, split, count, seed, generate_image, f"bench embedded stick-figure people v{VERSION}")


def write_people_split(root: Path, split: str, count: int, seed: int,
                       generate: Callable[[np.random.Generator], tuple[np.ndarray, list[dict[str, Any]]]],
                       description: str) -> None:
    """A COCO person_keypoints split of ``count`` images drawn by ``generate`` (one person or a group per image):
    JPEGs under ``<split>/`` and ``annotations/person_keypoints_<split>.json``."""
    rng = np.random.default_rng(seed)
    (root / split).mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for index in range(count):
        image, anns = generate(rng)
        image_id = index + 1
        file_name = f"{image_id:012d}.jpg"
        cv2.imwrite(str(root / split / file_name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        images.append({"id": image_id, "file_name": file_name, "width": image.shape[1], "height": image.shape[0]})
        for ann in anns:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1, **ann})
    data = {
        "info": {"description": f"{description}, split {split}, seed {seed}"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{
            "supercategory": "person", "id": 1, "name": "person",
            "keypoints": list(COCO_KEYPOINT_NAMES), "skeleton": COCO_SKELETON_1BASED,
        }],
    }
    (root / "annotations" / f"person_keypoints_{split}.json").write_text(json.dumps(data))


def build(root: Path) -> None:
    for split, (count, seed) in SPLITS.items():
        write_split(root, split, count, seed)


def build_split(root: Path, split: str) -> None:
    write_split(root, split, *SPLITS[split])
