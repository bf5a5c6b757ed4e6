"""Shape scenes in the COCO instances layout: ``annotations/instances_{train,val}.json`` + ``{train,val}/*.jpg``.

Five classes (circle, square, triangle, cross, ring), 2-6 objects of 12-80 px per 128-192 px image, partial
occlusion, unlabelled clutter and a few crowd clusters (``iscrowd=1``, RLE).  Segmentations are polygons when a
polygon reproduces the visible mask exactly under pycocotools' rasteriser, RLE otherwise (rings, objects with a
hole cut by an occluder), so mask AP of a perfect prediction is exactly 1.  ``area`` and ``bbox`` are computed
from the stored segmentation, as COCO's own tools would.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_codec

from harness.embedded.shapes import ObjectClass, Region, render_scene
from harness.labels.shapes import SHAPE_CLASSES

VERSION = 2
SPLITS = {"train": (400, 11), "val": (100, 12)}  # images, seed
CLASSES = [
    ObjectClass("circle", "circle", 1, hue=0),
    ObjectClass("square", "square", 2, hue=72),
    ObjectClass("triangle", "triangle", 3, hue=144),
    ObjectClass("cross", "cross", 4, hue=216),
    ObjectClass("ring", "ring", 5, size=(16.0, 80.0), hue=288),
]
assert [c.name for c in CLASSES] == SHAPE_CLASSES  # the names models read from harness.labels.shapes
SIZES = (128, 144, 160, 176, 192)


def encode_rle(mask: np.ndarray) -> dict:
    rle = mask_codec.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def exact_polygons(mask: np.ndarray) -> list[list[float]] | None:
    """Polygons whose pycocotools rasterisation equals ``mask`` exactly, or None (holes, thin parts)."""
    height, width = mask.shape
    upsampled = cv2.resize(mask.astype(np.uint8), None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(upsampled, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = []
    for contour in contours:
        contour = cv2.approxPolyDP(contour, 1.0, True)
        if len(contour) >= 3:
            polygons.append([round(float(v), 3) for v in (contour.reshape(-1).astype(np.float64) + 0.5) / 4])
    if not polygons:
        return None
    decoded = mask_codec.decode(mask_codec.merge(mask_codec.frPyObjects(polygons, height, width)))
    return polygons if np.array_equal(decoded.astype(bool), mask) else None


def annotate(mask: np.ndarray, crowd: bool) -> dict:
    """segmentation, area and bbox of one object, all derived from the segmentation that is stored."""
    height, width = mask.shape
    polygons = None if crowd else exact_polygons(mask)
    segmentation = polygons if polygons is not None else encode_rle(mask)
    rle = (mask_codec.merge(mask_codec.frPyObjects(polygons, height, width)) if polygons is not None
           else mask_codec.encode(np.asfortranarray(mask.astype(np.uint8))))
    return {
        "segmentation": segmentation,
        "area": float(mask_codec.area(rle)),
        "bbox": [float(v) for v in mask_codec.toBbox(rle)],
        "iscrowd": int(crowd),
    }


def write_split(root: Path, split: str, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    (root / split).mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for index in range(count):
        width, height = (int(v) for v in rng.choice(SIZES, 2))
        scene = render_scene(rng, width, height, CLASSES, [Region(0, (0.0, 0.0))], crowd_probability=0.08)
        image_id = index + 1
        file_name = f"{image_id:012d}.jpg"
        cv2.imwrite(str(root / split / file_name), cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 92])
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        for obj in scene.objects:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": obj.cls.label,
                                **annotate(obj.shown, obj.crowd)})
    data = {
        "info": {"description": f"bench embedded shape scenes v{VERSION}, split {split}, seed {seed}"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"supercategory": "shape", "id": c.label, "name": c.name} for c in CLASSES],
    }
    (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))


def build_split(root: Path, split: str) -> None:
    write_split(root, split, *SPLITS[split])
