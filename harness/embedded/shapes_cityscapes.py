"""Street-like shape scenes in the Cityscapes layout and encodings (labelIds, instanceIds), 192 x 96 pixels.

Regions sky / building / sidewalk / road top to bottom, then shapes standing in for street classes (cars are
squares, people upright crosses, bicycles rings, traffic signs upright triangles, poles bars, vegetation circles),
and in half the frames an ego-vehicle band at the bottom (labelId 1, ignored in evaluation).  Cars, people and
bicycles get instance ids ``labelId * 1000 + k``; occasional clusters of tiny cars or people carry only their
labelId, like Cityscapes' group regions.  Cities: ``train/{aachen,bochum}``, ``val/frankfurt`` (names only).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from harness.embedded.shapes import ObjectClass, Region, render_scene

VERSION = 2
WIDTH, HEIGHT = 192, 96
SPLITS = {"train": (("aachen", "bochum"), 200, 31), "val": (("frankfurt",), 100, 32)}  # cities, frames per city, seed

# labelIds (see harness.datasets.cityscapes.LABELS)
EGO_VEHICLE, ROAD, SIDEWALK, BUILDING, POLE, TRAFFIC_SIGN, VEGETATION, SKY = 1, 7, 8, 11, 17, 20, 21, 23
PERSON, CAR, BICYCLE = 24, 26, 33
REGIONS = [Region(SKY, (0.0, 0.0), (120, 170, 230)), Region(BUILDING, (0.12, 0.3)),
           Region(SIDEWALK, (0.5, 0.6)), Region(ROAD, (0.62, 0.72), (90, 90, 95))]
CLASSES = [
    ObjectClass("car", "square", CAR, size=(14, 44), rows=(0.6, 0.95), weight=2.0, hue=0),
    ObjectClass("person", "cross", PERSON, size=(12, 30), rows=(0.5, 0.9), upright=True, weight=1.5, hue=60),
    ObjectClass("bicycle", "ring", BICYCLE, size=(12, 24), rows=(0.6, 0.95), hue=300),
    ObjectClass("traffic sign", "triangle", TRAFFIC_SIGN, size=(10, 20), rows=(0.15, 0.45), upright=True, hue=240),
    ObjectClass("pole", "bar", POLE, size=(30, 60), rows=(0.3, 0.55), upright=True, hue=180),
    ObjectClass("vegetation", "circle", VEGETATION, size=(16, 48), rows=(0.15, 0.5), hue=120),
]
INSTANCE_CLASSES = {PERSON, CAR, BICYCLE}


def render_frame(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image RGB, labelIds uint8, instanceIds uint16) of one frame."""
    scene = render_scene(rng, WIDTH, HEIGHT, CLASSES, REGIONS, objects=(3, 8), crowd_probability=0.15,
                         min_visible_area=24)
    image, label_ids = scene.image, scene.label_map().astype(np.uint8)
    instance_ids = label_ids.astype(np.uint16)
    counters: dict[int, int] = {}
    for obj in scene.objects:
        if obj.cls.label in INSTANCE_CLASSES and not obj.crowd:
            k = counters.get(obj.cls.label, 0)
            counters[obj.cls.label] = k + 1
            instance_ids[obj.visible] = obj.cls.label * 1000 + k
    if rng.random() < 0.5:
        xs = np.arange(WIDTH)
        top = HEIGHT * rng.uniform(0.86, 0.93) + 3 * ((xs - WIDTH / 2) / (WIDTH / 2)) ** 2
        ego = np.arange(HEIGHT)[:, None] >= top[None, :]
        image[ego] = np.clip(rng.normal(45, 6, size=(int(ego.sum()), 3)), 0, 255).astype(np.uint8)
        label_ids[ego] = EGO_VEHICLE
        instance_ids[ego] = EGO_VEHICLE
    return image, label_ids, instance_ids


def build_split(root: Path, split: str) -> None:
    cities, frames, seed = SPLITS[split]
    rng = np.random.default_rng(seed)
    for city in cities:
        images = root / "leftImg8bit" / split / city
        labels = root / "gtFine" / split / city
        images.mkdir(parents=True)
        labels.mkdir(parents=True)
        for index in range(frames):
            stem = f"{city}_000000_{index:06d}"
            image, label_ids, instance_ids = render_frame(rng)
            cv2.imwrite(str(images / f"{stem}_leftImg8bit.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(labels / f"{stem}_gtFine_labelIds.png"), label_ids)
            cv2.imwrite(str(labels / f"{stem}_gtFine_instanceIds.png"), instance_ids)
