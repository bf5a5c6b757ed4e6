"""Builders of bad inputs for the table-driven suite: each returns a valid baseline that a case then breaks.

Files are built by the tests in ``tmp_path`` (nothing under tests/data is modified); the valid version of every
format is scored once in ``test_bad_inputs.py`` so that each failure is the mutation's doing.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

KEYPOINT_NAMES = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                  "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                  "right_knee", "left_ankle", "right_ankle"]


def keypoints(x: float, y: float) -> list[float]:
    return [v for k in range(17) for v in (x + k, y + k, 2)]


def coco_gt() -> dict[str, Any]:
    """Two 64x48 images, one person category with COCO-17 keypoints, boxes, polygons and keypoints."""
    return {
        "images": [{"id": 1, "width": 64, "height": 48, "file_name": "a.jpg"},
                   {"id": 2, "width": 64, "height": 48, "file_name": "b.jpg"}],
        "categories": [{"id": 1, "name": "person", "keypoints": list(KEYPOINT_NAMES),
                        "skeleton": [[1, 2], [2, 3]]}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "area": 400.0, "bbox": [10, 10, 20, 20], "iscrowd": 0,
             "segmentation": [[10, 10, 30, 10, 30, 30, 10, 30]], "keypoints": keypoints(10, 10),
             "num_keypoints": 17},
            {"id": 2, "image_id": 2, "category_id": 1, "area": 300.0, "bbox": [5, 5, 15, 20], "iscrowd": 0,
             "segmentation": [[5, 5, 20, 5, 20, 25, 5, 25]], "keypoints": keypoints(5, 5), "num_keypoints": 17},
        ],
    }


def box_results() -> list[dict[str, Any]]:
    return [{"image_id": 1, "category_id": 1, "bbox": [11, 10, 20, 20], "score": 0.9},
            {"image_id": 2, "category_id": 1, "bbox": [5, 6, 15, 20], "score": 0.8}]


def segm_results() -> list[dict[str, Any]]:
    return [{"image_id": 1, "category_id": 1, "score": 0.9, "segmentation": [[10, 10, 30, 10, 30, 30, 10, 30]]},
            {"image_id": 2, "category_id": 1, "score": 0.8, "segmentation": [[5, 5, 20, 5, 20, 25, 5, 25]]}]


def keypoint_results() -> list[dict[str, Any]]:
    return [{"image_id": 1, "category_id": 1, "keypoints": keypoints(10.5, 10), "score": 0.9},
            {"image_id": 2, "category_id": 1, "keypoints": keypoints(5, 5.5), "score": 0.8}]


def write_json(path: Path, value: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return path


def edited(value: Any, *where_and_new: Any) -> Any:
    """A deep copy with ``value[k1][k2]... = new`` for each (path tuple, new) pair; new=DELETE removes the key."""
    out = copy.deepcopy(value)
    for path, new in zip(where_and_new[::2], where_and_new[1::2]):
        target = out
        for key in path[:-1]:
            target = target[key]
        if new is DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = new
    return out


DELETE = object()


def coco_root(root: Path, gt: dict[str, Any] | None = None, split: str = "val") -> Path:
    """A COCO layout (annotations/person_keypoints_<split>.json + instances_<split>.json + <split>/ images)."""
    gt = coco_gt() if gt is None else gt
    (root / split).mkdir(parents=True, exist_ok=True)
    for image in gt["images"]:
        name = image.get("file_name")
        if isinstance(name, str) and "/" not in name and not name.startswith(".") and name:
            Image.fromarray(np.full((48, 64, 3), 128, np.uint8)).save(root / split / name)
    write_json(root / "annotations" / f"person_keypoints_{split}.json", gt)
    write_json(root / "annotations" / f"instances_{split}.json", gt)
    return root


def label_png(path: Path, labels: np.ndarray, mode: str = "L", fmt: str = "PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(np.asarray(labels, np.uint8)).convert(mode) if mode != "L" else Image.fromarray(
        np.asarray(labels, np.uint8), mode="L")
    image.save(path, format=fmt)
    return path


def semantic_pair(root: Path) -> tuple[Path, Path]:
    labels = (np.arange(48 * 64).reshape(48, 64) % 3).astype(np.uint8)
    for name in ("x1", "x2"):
        label_png(root / "gt" / f"{name}.png", labels)
        label_png(root / "pred" / f"{name}.png", labels)
    return root / "gt", root / "pred"


def flo(path: Path, flow: np.ndarray, tag: float = 202021.25, size: tuple[int, int] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = flow.shape[:2] if size is None else size
    header = np.array([tag], "<f4").tobytes() + np.array([width, height], "<i4").tobytes()
    path.write_bytes(header + np.asarray(flow, "<f4").tobytes())
    return path


def flow_pair(root: Path) -> tuple[Path, Path]:
    field = np.random.default_rng(0).normal(size=(8, 12, 2)).astype(np.float32)
    flo(root / "gt" / "s" / "frame_0001.flo", field)
    flo(root / "pred" / "s" / "frame_0001.flo", field + 0.5)
    return root / "gt", root / "pred"


def baselines_yaml(path: Path, entries: Any) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({"baselines": entries}) if not isinstance(entries, str) else entries)
    return path


BASELINE = {"task": "keypoints", "dataset": "coco-mini", "model": "heatmap", "metric": "AP", "expected": 0.6,
            "tolerance": 0.01, "direction": "higher"}
