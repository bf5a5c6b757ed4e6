"""Scenes of coloured shapes, the raw material of the embedded detection, instance and semantic datasets.

A scene is a textured background split into labelled regions (one region for object datasets; sky/building/road
or ceiling/wall/floor bands for the semantic ones) with shapes painted on top.  Shape carries the class, helped by
colour: each class has a hue band (+-40 degrees, neighbouring bands overlap) from which an object's colour is
drawn to contrast with what lies under it, so a small CPU model learns the task in minutes but still needs shape
where bands overlap.  The things that make evaluation non-trivial are kept: partial occlusion between objects, small
objects (12 px), unlabelled clutter, and (optionally) crowd clusters that must be ignored.

The layout writers (``shapes_coco``, ``shapes_voc``, ``shapes_cityscapes``, ``shapes_ade``) turn scenes into
files; this module only paints.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np

#: drawing primitives a class can use
PRIMITIVES = ("circle", "square", "triangle", "cross", "ring", "bar")

_SUBPIXEL_BITS = 2
_SCALE = 1 << _SUBPIXEL_BITS


@dataclass(frozen=True)
class ObjectClass:
    """A class of object: its drawing primitive, the value written for it, where and how big it appears."""

    name: str
    shape: str
    label: int
    size: tuple[float, float] = (12.0, 80.0)  # extent in pixels, drawn log-uniformly
    rows: tuple[float, float] = (0.0, 1.0)  # allowed centre rows, as fractions of the height
    weight: float = 1.0
    upright: bool = False  # drawn unrotated (poles, signs) instead of at a random angle
    hue: float | None = None  # degrees: colours vary +-40 degrees around it (a cue besides shape); None = any


@dataclass(frozen=True)
class Region:
    """A background region: a horizontal band whose top edge is drawn in ``top`` (fractions of the height)."""

    label: int
    top: tuple[float, float]
    base_colour: tuple[int, int, int] | None = None  # None: random


@dataclass(eq=False)
class SceneObject:
    cls: ObjectClass
    mask: np.ndarray  # (H, W) bool, the whole shape as drawn
    crowd: bool = False
    visible: np.ndarray | None = None  # (H, W) bool, what later objects leave uncovered

    @property
    def shown(self) -> np.ndarray:
        """The visible part; ``render_scene`` sets it on every object it keeps."""
        assert self.visible is not None, "SceneObject.visible is set by render_scene"
        return self.visible

    @property
    def visible_area(self) -> int:
        return int(self.visible.sum()) if self.visible is not None else int(self.mask.sum())


@dataclass
class Scene:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    objects: list[SceneObject]  # drawing order (later objects on top)
    region_labels: np.ndarray  # (H, W) int32, the background region label of every pixel
    extra_labels: list[tuple[np.ndarray, int]] = field(default_factory=list)  # (mask, label) painted last

    def label_map(self) -> np.ndarray:
        """Region labels overwritten by the visible part of every object (crowds included)."""
        labels = self.region_labels.copy()
        for obj in self.objects:
            labels[obj.visible] = obj.cls.label
        for mask, label in self.extra_labels:
            labels[mask] = label
        return labels


def shape_mask(shape: str, center: tuple[float, float], size: float, angle: float, height: int, width: int) -> np.ndarray:
    """(H, W) bool mask of one primitive whose extent is about ``size`` pixels, rotated by ``angle`` radians."""
    canvas = np.zeros((height, width), np.uint8)
    cx, cy = center
    c = (int(round(cx * _SCALE)), int(round(cy * _SCALE)))

    def polygon(points: np.ndarray) -> None:
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        pts = points @ rot.T + np.array([cx, cy])
        cv2.fillPoly(canvas, [np.round(pts * _SCALE).astype(np.int32)], 1, cv2.LINE_8, _SUBPIXEL_BITS)

    if shape == "circle":
        cv2.circle(canvas, c, int(round(size / 2 * _SCALE)), 1, -1, cv2.LINE_8, _SUBPIXEL_BITS)
    elif shape == "ring":
        cv2.circle(canvas, c, int(round(size / 2 * _SCALE)), 1, -1, cv2.LINE_8, _SUBPIXEL_BITS)
        cv2.circle(canvas, c, int(round(size / 2 * 0.5 * _SCALE)), 0, -1, cv2.LINE_8, _SUBPIXEL_BITS)
    elif shape == "square":
        half = size / 2 / (abs(np.cos(angle)) + abs(np.sin(angle)))
        polygon(np.array([[-half, -half], [half, -half], [half, half], [-half, half]]))
    elif shape == "triangle":
        r = size / 2
        polygon(np.array([[r * np.cos(a), r * np.sin(a)] for a in (-np.pi / 2, np.pi / 6, 5 * np.pi / 6)]))
    elif shape == "cross":
        half, arm = size / 2, max(1.5, size * 0.16)
        polygon(np.array([[-half, -arm], [half, -arm], [half, arm], [-half, arm]]))
        polygon(np.array([[-arm, -half], [arm, -half], [arm, half], [-arm, half]]))
    elif shape == "bar":
        half_w, half_h = max(1.0, size * 0.07), size / 2
        polygon(np.array([[-half_w, -half_h], [half_w, -half_h], [half_w, half_h], [-half_w, half_h]]))
    else:
        raise ValueError(f"unknown primitive {shape!r}; known: {PRIMITIVES}")
    return canvas.astype(bool)


def _smooth_field(rng: np.random.Generator, height: int, width: int, cells: int, channels: int) -> np.ndarray:
    low = rng.uniform(-1.0, 1.0, size=(cells, cells, channels)).astype(np.float32)
    field_ = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    return field_.reshape(height, width, channels)


def _regions(rng: np.random.Generator, regions: Sequence[Region], height: int, width: int) -> np.ndarray:
    """Label map of horizontal bands with wavy boundaries (top to bottom in ``regions`` order)."""
    labels = np.full((height, width), regions[0].label, np.int32)
    rows = np.arange(height)[:, None]
    xs = np.arange(width)[None, :]
    for region in regions[1:]:
        top = rng.uniform(*region.top) * height
        wave = rng.uniform(1.0, 5.0) * np.sin(xs / width * rng.uniform(2, 9) + rng.uniform(0, 6.3))
        tilt = rng.uniform(-0.12, 0.12) * (xs - width / 2)
        labels[rows >= top + wave + tilt] = region.label
    return labels


def textured_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8: a smooth random colour field with grain, for scenes that need no labelled regions."""
    base = rng.integers(40, 216, 3).astype(np.float32)
    return np.clip(_texture(rng, height, width, base), 0, 255).astype(np.uint8)


def _texture(rng: np.random.Generator, height: int, width: int, base: np.ndarray,
             grain: np.ndarray | None = None) -> np.ndarray:
    """base colour + smooth shading + grain; ``grain`` (unit normal noise) can be shared to save time."""
    shade = _smooth_field(rng, height, width, 3, 3) * np.float32(rng.uniform(10, 35))
    if grain is None:
        grain = rng.standard_normal((height, width, 3), dtype=np.float32)
    return base[None, None, :].astype(np.float32) + shade + grain * np.float32(rng.uniform(2, 9))


def _hsv_to_rgb(hue: float, saturation: float, value: float) -> np.ndarray:
    pixel = np.array([[[hue % 360.0, saturation, value]]], np.float32)
    return cv2.cvtColor(pixel, cv2.COLOR_HSV2RGB)[0, 0] * np.float32(255)


def _contrasting_colour(rng: np.random.Generator, under: np.ndarray, hue: float | None) -> np.ndarray:
    """A colour far from what lies under the object; near ``hue`` (degrees, +-40) when the class has one."""
    mean = under.reshape(-1, 3).mean(axis=0) if under.size else np.full(3, 128.0)
    best: np.ndarray | None = None
    best_distance = -1.0
    for _ in range(8):
        if hue is None:
            colour = rng.integers(0, 256, 3).astype(np.float32)
        else:
            colour = _hsv_to_rgb(hue + rng.uniform(-40, 40), rng.uniform(0.45, 1.0), rng.uniform(0.3, 1.0))
        distance = float(np.linalg.norm(colour - mean))
        if distance > 90:
            return colour
        if distance > best_distance:
            best, best_distance = colour, distance
    assert best is not None  # the loop ran at least once
    return best


def _clutter(rng: np.random.Generator, image: np.ndarray, count: int) -> None:
    height, width = image.shape[:2]
    for _ in range(count):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        points = rng.uniform((0, 0), (width, height), size=(int(rng.integers(2, 4)), 2))
        cv2.polylines(image, [np.round(points).astype(np.int32)], False, colour, int(rng.integers(1, 3)), cv2.LINE_AA)


def render_scene(
    rng: np.random.Generator,
    width: int,
    height: int,
    classes: Sequence[ObjectClass],
    regions: Sequence[Region],
    objects: tuple[int, int] = (2, 6),
    crowd_probability: float = 0.0,
    clutter: tuple[int, int] = (1, 5),
    min_visible_fraction: float = 0.35,
    min_visible_area: int = 40,
) -> Scene:
    """One scene: regions, then unlabelled clutter, then objects in random order, then blur and noise."""
    region_labels = _regions(rng, regions, height, width)
    canvas = np.zeros((height, width, 3), np.float32)
    grain = rng.standard_normal((height, width, 3), dtype=np.float32)
    for region in regions:
        base = np.array(region.base_colour if region.base_colour else rng.integers(40, 216, 3), np.float32)
        inside = region_labels == region.label
        canvas[inside] = _texture(rng, height, width, base, grain)[inside]
    image = np.clip(canvas, 0, 255).astype(np.uint8)
    _clutter(rng, image, int(rng.integers(clutter[0], clutter[1] + 1)))

    weights = np.array([c.weight for c in classes], np.float64)
    drawn: list[SceneObject] = []
    for _ in range(int(rng.integers(objects[0], objects[1] + 1))):
        cls = classes[int(rng.choice(len(classes), p=weights / weights.sum()))]
        size = float(np.exp(rng.uniform(np.log(cls.size[0]), np.log(cls.size[1]))))
        margin = size * 0.3
        cx = rng.uniform(-margin, width + margin)
        cy = rng.uniform(cls.rows[0] * height, cls.rows[1] * height)
        angle = 0.0 if cls.upright else rng.uniform(0, np.pi)
        mask = shape_mask(cls.shape, (cx, cy), size, angle, height, width)
        if mask.sum() >= min_visible_area:
            drawn.append(SceneObject(cls, mask))
    if crowd_probability and rng.random() < crowd_probability:
        drawn.append(_crowd(rng, classes, height, width))

    kept = _keep_visible(drawn, min_visible_fraction, min_visible_area)
    for obj in kept:
        x, y, w, h = (int(v) for v in visible_box(obj.mask))
        window = (slice(y, y + h), slice(x, x + w))
        inside = obj.mask[window]
        colour = _contrasting_colour(rng, image[window][inside], obj.cls.hue)
        layer = np.clip(_texture(rng, h, w, colour, grain[window]) * 0.5 + colour * 0.5, 0, 255).astype(np.uint8)
        image[window][inside] = layer[inside]
    image = np.asarray(cv2.GaussianBlur(image, (0, 0), 0.6))
    noise = rng.standard_normal(image.shape, dtype=np.float32) * np.float32(3)
    image = np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    return Scene(image=image, objects=kept, region_labels=region_labels)


def _crowd(rng: np.random.Generator, classes: Sequence[ObjectClass], height: int, width: int) -> SceneObject:
    """A cluster of tiny shapes of one class: a region annotated once, as a crowd, not object by object."""
    cls = classes[int(rng.integers(len(classes)))]
    mask = np.zeros((height, width), bool)
    cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(max(0.2, cls.rows[0]), min(0.8, cls.rows[1])) * height
    for _ in range(int(rng.integers(6, 12))):
        x, y = cx + rng.normal(0, 10), cy + rng.normal(0, 7)
        mask |= shape_mask(cls.shape, (x, y), rng.uniform(6, 10), rng.uniform(0, np.pi), height, width)
    return SceneObject(cls, mask, crowd=True)


def _keep_visible(drawn: list[SceneObject], min_fraction: float, min_area: int) -> list[SceneObject]:
    """Drop objects that later ones hide (almost) entirely, so every kept object is recognisable."""
    kept = list(drawn)
    while True:
        if not kept:
            return kept
        covered = np.zeros_like(kept[0].mask)
        for obj in reversed(kept):
            obj.visible = obj.mask & ~covered
            covered |= obj.mask
        hidden = [i for i, o in enumerate(kept) if o.visible_area < max(min_area, min_fraction * o.mask.sum())]
        if not hidden:
            return kept
        del kept[hidden[0]]


def visible_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """COCO ``[x, y, w, h]`` of a mask's pixels (pixel i covers [i, i+1))."""
    ys, xs = np.nonzero(mask)
    return float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)
