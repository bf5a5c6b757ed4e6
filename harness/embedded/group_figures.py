"""Multi-person stick-figure scenes in the COCO person_keypoints layout: groups of people that overlap.

The single-person-ish ``stick_figures`` scenes (1-3 people, mostly apart) make ground-truth boxes nearly the whole
story; the detector-driven and bottom-up keypoint protocols only mean something when people stand together.  So
here every image holds 2-6 people, most of them in groups whose boxes overlap (a person placed next to another at
0.2-0.6 of its height), drawn back to front so that later people occlude earlier ones (their covered joints get
v=1), with occluders, joints outside the image (v=0) and, in about a third of the images, a crowd of small people
annotated as one ``iscrowd=1`` region (RLE, ``num_keypoints`` 0) that evaluation must ignore.

Same figure model, colours and file layout as ``stick_figures`` (whose output and version this module leaves
untouched), so a model trained on one reads the other.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from harness.embedded.shapes import visible_box
from harness.embedded.shapes_coco import encode_rle
from harness.embedded.stick_figures import (IMAGE_SIZE, _background, _polygons, draw_person, random_pose,
                                            write_people_split)

SPLITS = {"train": (600, 21), "val": (120, 22)}  # images, seed
VERSION = 1


def _place_people(rng: np.random.Generator, width: int, height: int) -> list[tuple[float, np.ndarray]]:
    """(height, hip centre) per person, back to front; about two thirds stand next to someone already placed."""
    people: list[tuple[float, np.ndarray]] = []
    for _ in range(int(rng.integers(2, 7))):
        person_height = float(rng.uniform(55, 150))
        if people and rng.random() < 0.65:
            other_height, other_hip = people[int(rng.integers(0, len(people)))]
            offset = rng.choice([-1.0, 1.0]) * rng.uniform(0.2, 0.6) * other_height
            hip = other_hip + np.array([offset, rng.normal(0, 0.08) * other_height])
            hip[1] = np.clip(hip[1], 0.3 * height, 0.85 * height)
        else:
            hip = np.array([rng.uniform(0.05, 0.95) * width, rng.uniform(0.35, 0.8) * height])
        people.append((person_height, hip))
    return people


def generate_image(rng: np.random.Generator) -> tuple[np.ndarray, list[dict]]:
    """One scene and its annotations (without ids)."""
    width, height = IMAGE_SIZE
    image = _background(rng, width, height)
    objects: list[tuple[str, np.ndarray, np.ndarray | None]] = []  # (kind, mask, joints), back to front
    if rng.random() < 0.35:  # a crowd of small people at the back, annotated as one iscrowd region
        crowd = np.zeros((height, width), np.uint8)
        cx, cy = rng.uniform(0.15, 0.85) * width, rng.uniform(0.25, 0.55) * height
        for _ in range(int(rng.integers(5, 10))):
            small = rng.uniform(18, 32)
            joints = random_pose(rng, small, np.array([cx, cy]) + rng.normal(0, 16, 2))
            crowd |= draw_person(image, joints, small, rng)
        objects.append(("crowd", crowd, None))
    for person_height, hip in _place_people(rng, width, height):
        joints = random_pose(rng, person_height, hip)
        objects.append(("person", draw_person(image, joints, person_height, rng), joints))
        if rng.random() < 0.15:
            x, y = joints[rng.integers(0, 17)] + rng.normal(0, 8, 2)
            size = rng.uniform(0.12, 0.3) * person_height
            occluder = np.zeros((height, width), np.uint8)
            box = (int(x - size / 2), int(y - size / 2)), (int(x + size / 2), int(y + size / 2))
            cv2.rectangle(image, *box, tuple(int(c) for c in rng.integers(0, 256, 3)), -1)
            cv2.rectangle(occluder, *box, 1, -1)
            objects.append(("occluder", occluder, None))
    annotations = []
    for index, (kind, mask, joints) in enumerate(objects):  # type: ignore[assignment]
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
                "iscrowd": 1, "segmentation": encode_rle(visible), "area": float(visible.sum()),
                "bbox": list(visible_box(visible)), "keypoints": [0] * 51, "num_keypoints": 0,
            })
            continue
        keypoints: list[float] = []
        for x, y in joints:
            if not (0 <= x < width and 0 <= y < height):
                keypoints += [0, 0, 0]
            else:
                keypoints += [round(float(x), 2), round(float(y), 2), 1 if covered[int(y), int(x)] else 2]
        num = sum(1 for v in keypoints[2::3] if v > 0)
        annotations.append({
            "iscrowd": 0, "segmentation": _polygons(visible), "area": float(visible.sum()),
            "bbox": list(visible_box(visible)), "keypoints": keypoints, "num_keypoints": num,
        })
    return image, annotations


def write_split(root: Path, split: str, count: int, seed: int) -> None:
    write_people_split(root, split, count, seed, generate_image,
                       f"bench embedded multi-person stick-figure scenes v{VERSION}")


def build_split(root: Path, split: str) -> None:
    write_split(root, split, *SPLITS[split])
