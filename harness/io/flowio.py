"""Optical-flow files: Middlebury ``.flo`` (read and write) and ``.pfm`` (read), with errors naming the file.

``.flo``: little-endian float32 tag 202021.25 ("PIEH"), int32 width, int32 height, then height x width
row-major (u, v) float32 pairs.  ``.pfm``: a text header ``PF`` (3 channels) or ``Pf`` (1 channel), ``W H``,
and a scale whose sign gives the byte order (negative = little-endian), then float32 rows stored bottom-up.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.core.errors import DataError

FLO_TAG = 202021.25
FLO_HEADER_BYTES = 12
#: a side longer than this is a corrupt header, not a flow field
MAX_SIDE = 1 << 15


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise DataError("flow file is missing", path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read flow file ({exc})", path) from None


def _check_size(width: int, height: int, path: Path) -> None:
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise DataError(f"implausible size {width}x{height} in header", path)


def read_flo(path: str | Path) -> np.ndarray:
    """(H, W, 2) float32 flow from a Middlebury ``.flo`` file."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < FLO_HEADER_BYTES:
        raise DataError(f"truncated .flo header ({len(data)} bytes)", path)
    tag = float(np.frombuffer(data, dtype="<f4", count=1)[0])
    if tag != FLO_TAG:
        raise DataError(f"not a Middlebury .flo file (tag {tag!r}, expected {FLO_TAG})", path)
    width, height = (int(v) for v in np.frombuffer(data, dtype="<i4", count=2, offset=4))
    _check_size(width, height, path)
    expected = width * height * 2 * 4
    body = len(data) - FLO_HEADER_BYTES
    if body != expected:
        problem = "truncated" if body < expected else "trailing bytes after the"
        raise DataError(f"{problem} flow body: {body} bytes for {width}x{height} (expected {expected})", path)
    flow = np.frombuffer(data, dtype="<f4", offset=FLO_HEADER_BYTES).reshape(height, width, 2)
    return flow.astype(np.float32)


def write_flo(path: str | Path, flow: np.ndarray) -> None:
    """Write (H, W, 2) flow as a Middlebury ``.flo`` file."""
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow must be (H, W, 2), got {flow.shape}")
    height, width = flow.shape[:2]
    header = np.array([FLO_TAG], dtype="<f4").tobytes() + np.array([width, height], dtype="<i4").tobytes()
    Path(path).write_bytes(header + np.ascontiguousarray(flow, dtype="<f4").tobytes())


def read_pfm(path: str | Path) -> np.ndarray:
    """(H, W) or (H, W, 3) float32 image from a ``.pfm`` file, top row first."""
    path = Path(path)
    data = _read_bytes(path)
    lines = data.split(b"\n", 3)
    if len(lines) < 4:
        raise DataError("truncated .pfm header", path)
    kind, dims, scale_text, body = lines[0].strip(), lines[1].split(), lines[2].strip(), lines[3]
    channels = {b"PF": 3, b"Pf": 1}.get(kind)
    if channels is None:
        raise DataError(f"not a .pfm file (magic {kind[:8]!r}, expected PF or Pf)", path)
    try:
        width, height = (int(v) for v in dims)
        scale = float(scale_text)
    except ValueError:
        raise DataError(f"malformed .pfm header {lines[1][:40]!r} {scale_text[:20]!r}", path) from None
    _check_size(width, height, path)
    if scale == 0:
        raise DataError("malformed .pfm header: scale 0", path)
    expected = width * height * channels * 4
    if len(body) != expected:
        problem = "truncated" if len(body) < expected else "trailing bytes after the"
        raise DataError(f"{problem} .pfm body: {len(body)} bytes for {width}x{height}x{channels}", path)
    dtype = "<f4" if scale < 0 else ">f4"
    image = np.frombuffer(body, dtype=dtype).reshape((height, width, channels) if channels == 3 else (height, width))
    return np.flipud(image).astype(np.float32)
