"""Type checks of COCO annotation entries that the reader would otherwise trust (issue 11, findings 6 and 7).

Each function returns a one-line problem or None, so ``CocoIndex.load`` can report it (or collect it for
``bench datasets check``) and skip the entry.  What they catch: a ``width`` of ``"abc"`` (a traceback from
``int()`` later), keypoints given as strings, ``iscrowd: "no"`` (truthy, so silently a crowd), NaN ground-truth
joints (silently dropped by the metric), a skeleton that is not a list of joint pairs, sigmas that are not
positive numbers.
"""
from __future__ import annotations

import math
from typing import Any


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integral(value: Any) -> bool:
    return _number(value) and float(value) == int(value)


def _id(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63) or isinstance(value, str)


def image_problem(image: dict[str, Any]) -> str | None:
    if not _id(image["id"]):
        return f"id must be an integer within 64 bits or a string, got {image['id']!r}"
    if not isinstance(image["file_name"], str) or not image["file_name"]:
        return f"file_name must be a non-empty string, got {image['file_name']!r}"
    for key in ("width", "height"):
        if not _integral(image[key]) or not 1 <= image[key] <= 1 << 16:
            return f"{key} must be a positive integer, got {image[key]!r}"
    return None


def annotation_problem(ann: dict[str, Any], require_keypoints: bool) -> str | None:
    if not _id(ann["id"]):
        return f"id must be an integer within 64 bits or a string, got {ann['id']!r}"
    if ann["iscrowd"] not in (0, 1) or isinstance(ann["iscrowd"], float):
        return f"iscrowd must be 0 or 1, got {ann['iscrowd']!r}"
    if require_keypoints and "keypoints" in ann:
        keypoints = ann["keypoints"]
        if not isinstance(keypoints, list) or not all(_number(v) for v in keypoints):
            shown = keypoints if not isinstance(keypoints, list) else next(
                (v for v in keypoints if not _number(v)), None)
            return f"keypoints must be finite numbers, got {shown!r}"
        flags = keypoints[2::3]
        if any(v not in (0, 1, 2) for v in flags):
            return f"keypoint visibility flags must be 0, 1 or 2, got {next(v for v in flags if v not in (0, 1, 2))!r}"
        num = ann.get("num_keypoints")
        if not isinstance(num, int) or isinstance(num, bool) or num < 0:
            return f"num_keypoints must be a non-negative integer, got {num!r}"
    return None


def category_problem(category: dict[str, Any]) -> str | None:
    if not _id(category["id"]) or isinstance(category["id"], str):
        return f"id must be an integer, got {category['id']!r}"
    if not isinstance(category["name"], str):
        return f"name must be a string, got {category['name']!r}"
    names = category.get("keypoints")
    if names is None:
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return f"keypoints must be a list of joint names, got {names!r}"[:160]
    skeleton = category.get("skeleton", [])
    if not isinstance(skeleton, list) or not all(
            isinstance(pair, list) and len(pair) == 2 and all(_integral(j) and 1 <= j <= len(names) for j in pair)
            for pair in skeleton):
        return f"skeleton must be a list of [a, b] joint numbers in 1..{len(names)}, got {skeleton!r}"[:160]
    sigmas = category.get("sigmas")
    if sigmas is not None and (not isinstance(sigmas, list) or not all(_number(s) and s > 0 for s in sigmas)):
        return f"sigmas must be positive numbers, got {sigmas!r}"[:160]
    return None
