"""Explicit size limits when opening images and label maps, checked from the header before any decoding.

A 10-kB PNG can declare 50000 x 50000 pixels and decode to gigabytes (a decompression bomb).  Pillow only
warns below twice its ``MAX_IMAGE_PIXELS`` and raises its own exception type above, which the readers did
not catch (a traceback).  Here every image bench decodes is refused in one line naming the file when its
header declares more than ``max_pixels()`` pixels (``$BENCH_MAX_IMAGE_PIXELS``, default 89.5 megapixels,
Pillow's warning threshold; the largest images of the supported datasets are around 12 megapixels).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harness.core.errors import BenchError, DataError

DEFAULT_MAX_PIXELS = 89_478_485
#: modes a label map may have: palette indices, 8-bit grey, 16/32-bit integer ids
LABEL_MODES = ("P", "L", "I;16", "I;16B", "I;16L", "I")


def max_pixels() -> int:
    value = os.environ.get("BENCH_MAX_IMAGE_PIXELS")
    return int(value) if value else DEFAULT_MAX_PIXELS


def check_header(image: Any, path: str | Path, error: type[BenchError] = DataError) -> None:
    """Refuse an image whose declared size is zero or beyond the limit, before its pixels are decoded."""
    width, height = image.size
    if width < 1 or height < 1:
        raise error(f"image declares an empty size {width}x{height}", path)
    if width * height > max_pixels():
        raise error(f"image declares {width}x{height} pixels, beyond the limit of {max_pixels()} "
                    "(a decompression bomb?; raise $BENCH_MAX_IMAGE_PIXELS if it is genuine)", path)


def check_label_image(image: Any, path: str | Path, error: type[BenchError] = DataError) -> None:
    """A label map must be a real PNG of integer labels: not a JPEG renamed .png (lossy: labels blur into
    neighbours), not a 1-bit image (labels would read as booleans)."""
    if image.format != "PNG":
        raise error(f"label map is not a PNG file (its content is {image.format or 'unknown'}); label maps "
                    "must be lossless PNGs", path)
    if image.mode == "1":
        raise error("label map is a 1-bit PNG; save it as 8-bit grey (mode L) or palette (mode P)", path)
    if image.mode not in LABEL_MODES and image.mode not in ("RGB", "RGBA"):
        raise error(f"label map has mode {image.mode}; expected one of {', '.join(LABEL_MODES)}", path)
