"""Top-down person crops: a box becomes an affine map into a fixed-size network input, and back.

Every coordinate follows OpenCV's convention (pixel ``i`` has its centre at ``i``), which is also how the
keypoints of the COCO files are read here, so a point survives crop -> network -> uncrop without a half-pixel
drift.  The box is widened or heightened to the input's aspect ratio before padding, so people are never
squashed and the network always sees the same body proportions.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: context kept around the box, as a factor on its (aspect-corrected) size
DEFAULT_PADDING = 1.25


@dataclass(frozen=True)
class CropJitter:
    """A perturbation of the crop for augmentation; the identity by default (inference)."""

    scale: float = 1.0  # >1 shows more context (the person looks smaller)
    rotation_deg: float = 0.0  # counter-clockwise in the image as displayed
    shift: tuple[float, float] = (0.0, 0.0)  # centre shift as a fraction of the crop size
    flip: bool = False  # mirror the crop horizontally


def crop_matrix(
    box_xywh: np.ndarray,
    input_hw: tuple[int, int],
    padding: float = DEFAULT_PADDING,
    jitter: CropJitter = CropJitter(),
) -> np.ndarray:
    """(2, 3) float64 affine map from image coordinates to input coordinates for one person box."""
    x, y, w, h = (float(v) for v in box_xywh)
    height, width = input_hw
    aspect = width / height
    w, h = max(w, 1.0), max(h, 1.0)
    if w > aspect * h:
        h = w / aspect
    else:
        w = h * aspect
    crop_w = w * padding * jitter.scale
    centre = np.array([x + 0.5 * float(box_xywh[2]), y + 0.5 * float(box_xywh[3])])
    centre = centre + np.asarray(jitter.shift, dtype=np.float64) * np.array([crop_w, crop_w / aspect])
    zoom = width / crop_w
    angle = np.deg2rad(jitter.rotation_deg)
    cos, sin = np.cos(angle) * zoom, np.sin(angle) * zoom
    # image y points down, so a counter-clockwise rotation on screen is a clockwise one in (x, y)
    linear = np.array([[cos, sin], [-sin, cos]])
    if jitter.flip:
        linear = np.array([[-1.0, 0.0], [0.0, 1.0]]) @ linear
    out_centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0])
    return np.hstack([linear, (out_centre - linear @ centre)[:, None]])


def invert(matrix: np.ndarray) -> np.ndarray:
    """The inverse affine map, in float64 (cv2.invertAffineTransform works in the input's precision)."""
    linear_inv = np.linalg.inv(matrix[:, :2])
    return np.hstack([linear_inv, (-linear_inv @ matrix[:, 2])[:, None]])


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) map to (..., 2) points, or a stack of (N, 2, 3) maps to (N, K, 2) points."""
    points = np.asarray(points, dtype=np.float64)
    if matrix.ndim == 3:
        return np.einsum("nij,nkj->nki", matrix[:, :, :2], points) + matrix[:, None, :, 2]
    return points @ matrix[:, :2].T + matrix[:, 2]


def warp(image: np.ndarray, matrix: np.ndarray, input_hw: tuple[int, int]) -> np.ndarray:
    """The crop itself; outside the image is black, as the padding the network was trained with."""
    height, width = input_hw
    return cv2.warpAffine(
        image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0)
    )


def flip_joints(keypoints: np.ndarray, flip_pairs: list[tuple[int, int]]) -> np.ndarray:
    """Swap left and right joints along axis -2 (after mirroring an image, the left wrist is the right one)."""
    order = np.arange(keypoints.shape[-2])
    for left, right in flip_pairs:
        order[left], order[right] = right, left
    return keypoints[..., order, :]
