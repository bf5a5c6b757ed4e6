"""Room-like shape scenes in the ADE20K SceneParsing layout (``ADEChallengeData2016``), in ADE's 150-class space.

Regions ceiling / wall / floor, then shapes standing in for indoor classes (paintings are squares, clocks circles,
lamps triangles, plants crosses, vases rings) and unlabelled clutter objects written as 0 ("other"), which the
reader turns into the ignore label.  Annotation values are ADE's own (1..150 = objectInfo150 index + 1).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from harness.labels.ade20k import ADE20K_CLASSES
from harness.embedded.shapes import ObjectClass, Region, render_scene

VERSION = 2
SPLITS = {"training": (400, 41, "ADE_train"), "validation": (100, 42, "ADE_val")}  # images, seed, file prefix
SIZES = (128, 144, 160, 176, 192)


def ade_value(name: str) -> int:
    """The annotation value of a class (its objectInfo150 index, 1-based)."""
    return ADE20K_CLASSES.index(name) + 1


REGIONS = [Region(ade_value("ceiling"), (0.0, 0.0)), Region(ade_value("wall"), (0.12, 0.25)),
           Region(ade_value("floor"), (0.65, 0.8))]
CLASSES = [
    ObjectClass("painting", "square", ade_value("painting"), size=(16, 60), rows=(0.2, 0.6), upright=True, hue=0),
    ObjectClass("clock", "circle", ade_value("clock"), size=(12, 32), rows=(0.15, 0.5), hue=72),
    ObjectClass("lamp", "triangle", ade_value("lamp"), size=(14, 40), rows=(0.2, 0.9), upright=True, hue=144),
    ObjectClass("plant", "cross", ade_value("plant"), size=(16, 56), rows=(0.55, 0.95), hue=216),
    ObjectClass("vase", "ring", ade_value("vase"), size=(16, 36), rows=(0.5, 0.95), hue=288),
    ObjectClass("other", "bar", 0, size=(20, 60), weight=0.5),
]


def build_split(root: Path, split: str) -> None:
    base = root / "ADEChallengeData2016"
    count, seed, prefix = SPLITS[split]
    rng = np.random.default_rng(seed)
    images, annotations = base / "images" / split, base / "annotations" / split
    images.mkdir(parents=True)
    annotations.mkdir(parents=True)
    for index in range(count):
        width, height = (int(v) for v in rng.choice(SIZES, 2))
        scene = render_scene(rng, width, height, CLASSES, REGIONS, objects=(2, 7))
        stem = f"{prefix}_{index + 1:08d}"
        cv2.imwrite(str(images / f"{stem}.jpg"), cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 92])
        cv2.imwrite(str(annotations / f"{stem}.png"), scene.label_map().astype(np.uint8))
