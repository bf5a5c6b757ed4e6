"""Middlebury ``.flo`` optical-flow files (MPI-Sintel, FlyingChairs, ...), with errors that name the file.

Format: float32 tag 202021.25, int32 width, int32 height, then height x width (u, v) float32 pairs, row-major,
little-endian.  A file whose size does not match its header is truncated or padded: refuse it rather than
reshape garbage into a flow field.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.errors import DataError

FLO_TAG = 202021.25
_HEADER_BYTES = 12
_MAX_SIDE = 1 << 15  # a bigger side means the header is garbage, not a real flow field


def read_flo(path: str | Path) -> np.ndarray:
    """(H, W, 2) float32 flow (u = x displacement, v = y displacement) in pixels."""
    path = Path(path)
    if not path.is_file():
        raise DataError("flow file is missing", path)
    raw = path.read_bytes()
    if len(raw) < _HEADER_BYTES:
        raise DataError(f"truncated .flo file: {len(raw)} bytes, shorter than the 12-byte header", path)
    tag = np.frombuffer(raw, "<f4", 1, 0)[0]
    if tag != np.float32(FLO_TAG):
        raise DataError(f"not a .flo file: tag {tag!r}, expected {FLO_TAG}", path)
    width, height = (int(v) for v in np.frombuffer(raw, "<i4", 2, 4))
    if not (0 < width < _MAX_SIDE and 0 < height < _MAX_SIDE):
        raise DataError(f"bad .flo header: width {width}, height {height}", path)
    expected = _HEADER_BYTES + 8 * width * height
    if len(raw) != expected:
        kind = "truncated" if len(raw) < expected else "oversized"
        raise DataError(
            f"{kind} .flo file: {len(raw)} bytes, header {width}x{height} needs {expected}", path
        )
    return np.frombuffer(raw, "<f4", 2 * width * height, _HEADER_BYTES).reshape(height, width, 2).astype(np.float32)


def write_flo(path: str | Path, flow: np.ndarray) -> None:
    """Write an (H, W, 2) flow field as a ``.flo`` file."""
    flow = np.asarray(flow, dtype="<f4")
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow must be (H, W, 2), got {flow.shape}")
    height, width = flow.shape[:2]
    with open(path, "wb") as handle:
        handle.write(np.array([FLO_TAG], "<f4").tobytes())
        handle.write(np.array([width, height], "<i4").tobytes())
        handle.write(np.ascontiguousarray(flow).tobytes())
