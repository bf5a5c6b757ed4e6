"""Image reading with errors that name the file, instead of a traceback from inside Pillow or numpy."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from harness.core.errors import DataError


def _open(path: Path, label: bool = False) -> Image.Image:
    from harness.io.validation.images import check_header, check_label_image

    path = Path(path)
    if not path.is_file():
        raise DataError("image file is missing", path)
    try:
        image = Image.open(path)
        check_header(image, path)  # explicit size limit, from the header, before decoding
        if label:
            check_label_image(image, path)
        image.load()
    except Image.DecompressionBombError as exc:  # beyond twice Pillow's own limit: refused in Image.open
        raise DataError(f"image declares more pixels than allowed, a decompression bomb? ({exc})", path) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"cannot decode image ({exc.__class__.__name__}: {exc})", path) from None
    return image


def read_rgb(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB."""
    return np.asarray(_open(Path(path)).convert("RGB"))


def read_label_png(path: str | Path) -> np.ndarray:
    """A label map as stored: palette indices for palette PNGs, raw values for L / I;16 PNGs."""
    image = _open(Path(path), label=True)
    if image.mode in ("RGB", "RGBA"):
        raise DataError(f"expected a single-channel or palette label PNG, got mode {image.mode}", path)
    return np.asarray(image)


def voc_palette() -> list[int]:
    """The VOC devkit's colour map (bit-interleaved), flattened for ``Image.putpalette``."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette += [r, g, b]
    return palette


def write_label_png(path: str | Path, labels: np.ndarray, palette: list[int] | None = None) -> None:
    """A uint8 label map as a single-channel PNG (a palette PNG when ``palette`` is given), written atomically."""
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(np.asarray(labels, dtype=np.uint8), mode="P" if palette is not None else "L")
    if palette is not None:
        image.putpalette(palette)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            image.save(handle, format="PNG")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
