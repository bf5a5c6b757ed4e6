"""Image reading with errors that name the file, instead of a traceback from inside Pillow or numpy."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from harness.errors import DataError


def _open(path: Path) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise DataError("image file is missing", path)
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"cannot decode image ({exc.__class__.__name__}: {exc})", path) from None
    return image


def read_rgb(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB."""
    return np.asarray(_open(Path(path)).convert("RGB"))


def read_label_png(path: str | Path) -> np.ndarray:
    """A label map as stored: palette indices for palette PNGs, raw values for L / I;16 PNGs."""
    image = _open(Path(path))
    if image.mode in ("RGB", "RGBA"):
        raise DataError(f"expected a single-channel or palette label PNG, got mode {image.mode}", path)
    return np.asarray(image)
