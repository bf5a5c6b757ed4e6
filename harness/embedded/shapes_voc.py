"""Shape scenes in the PASCAL VOC devkit layout (``VOCdevkit/VOC2012``), for detection and semantic segmentation.

Same five shape classes as the COCO set, listed in ``class_names.txt`` (background first), which the VOC reader
reads instead of the 20 VOC classes.  Like VOC: 1-based inclusive XML boxes, ``difficult`` for objects more than
half hidden, palette PNGs with the VOC colour map, and a void band (255) along every object boundary.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from harness.embedded.shapes import Region, render_scene, visible_box
from harness.io.imageio import voc_palette
from harness.embedded.shapes_coco import CLASSES, SIZES

VERSION = 2
YEAR = "2012"
SPLITS = {"train": (400, 21, 1), "val": (100, 22, 5001)}  # images, seed, first image number


def with_void_boundaries(labels: np.ndarray, width: int = 3) -> np.ndarray:
    """Set a band of 255 where labels change, like VOC's hand-drawn void outlines."""
    kernel = np.ones((width, width), np.uint8)
    edges = cv2.dilate(labels, kernel) != cv2.erode(labels, kernel)
    out = labels.copy()
    out[edges] = 255
    return out


def save_palette_png(path: Path, labels: np.ndarray) -> None:
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette(voc_palette())
    image.save(path)


def annotation_xml(image_id: str, width: int, height: int, objects: list[tuple[str, list[int], int]]) -> str:
    parts = [
        "<annotation>", f"\t<folder>VOC{YEAR}</folder>", f"\t<filename>{image_id}.jpg</filename>",
        "\t<source><database>bench embedded shapes</database></source>",
        f"\t<size><width>{width}</width><height>{height}</height><depth>3</depth></size>",
        "\t<segmented>1</segmented>",
    ]
    for name, (xmin, ymin, xmax, ymax), difficult in objects:
        parts += [
            "\t<object>", f"\t\t<name>{name}</name>", "\t\t<pose>Unspecified</pose>", "\t\t<truncated>0</truncated>",
            f"\t\t<difficult>{difficult}</difficult>",
            f"\t\t<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox>",
            "\t</object>",
        ]
    return "\n".join(parts + ["</annotation>", ""])


def write_split(year_dir: Path, split: str, count: int, seed: int, first: int) -> None:
    rng = np.random.default_rng(seed)
    ids = []
    for index in range(count):
        image_id = f"{YEAR}_{first + index:06d}"
        width, height = (int(v) for v in rng.choice(SIZES, 2))
        scene = render_scene(rng, width, height, CLASSES, [Region(0, (0.0, 0.0))])
        cv2.imwrite(str(year_dir / "JPEGImages" / f"{image_id}.jpg"), cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 92])
        objects = []
        instances = np.zeros((height, width), np.uint8)
        for k, obj in enumerate(scene.objects):
            x, y, w, h = (int(v) for v in visible_box(obj.shown))
            difficult = int(obj.shown.sum() < 0.5 * obj.mask.sum())
            objects.append((obj.cls.name, [x + 1, y + 1, x + w, y + h], difficult))
            instances[obj.visible] = k + 1
        (year_dir / "Annotations" / f"{image_id}.xml").write_text(annotation_xml(image_id, width, height, objects))
        save_palette_png(year_dir / "SegmentationClass" / f"{image_id}.png",
                         with_void_boundaries(scene.label_map().astype(np.uint8)))
        save_palette_png(year_dir / "SegmentationObject" / f"{image_id}.png", with_void_boundaries(instances))
        ids.append(image_id)
    listing = "".join(f"{i}\n" for i in ids)
    for folder in ("Main", "Segmentation"):
        (year_dir / "ImageSets" / folder / f"{split}.txt").write_text(listing)


def build_split(root: Path, split: str) -> None:
    year_dir = root / "VOCdevkit" / f"VOC{YEAR}"
    for folder in ("JPEGImages", "Annotations", "SegmentationClass", "SegmentationObject", "ImageSets/Main",
                   "ImageSets/Segmentation"):
        (year_dir / folder).mkdir(parents=True, exist_ok=True)
    (year_dir / "class_names.txt").write_text("".join(f"{n}\n" for n in ["_background_", *(c.name for c in CLASSES)]))
    write_split(year_dir, split, *SPLITS[split])
