"""Compressed-RLE masks kept packed: every ``counts`` string back to back in one bytes object.

A million mask results as ``{"size": [h, w], "counts": str}`` dicts cost about 350 bytes of Python objects each
on top of their text; packed they cost 24 bytes (an offset and the size).  The compiled mask kernels read the
packed form directly; anything else indexing the column gets the usual dict for that mask.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

import numpy as np


class RleColumn(Sequence):
    """``blob[offsets[i]:offsets[i + 1]]`` is mask i's counts string (ASCII); ``sizes[i]`` its (height, width)."""

    def __init__(self, blob: bytes, offsets: np.ndarray, sizes: np.ndarray) -> None:
        self.blob, self.offsets, self.sizes = blob, offsets, sizes
        self.areas: np.ndarray | None = None  # pycocotools' mask areas, when the packer computed them

    @property
    def packed(self) -> tuple[bytes, np.ndarray]:
        """What the compiled kernels take instead of a list of dicts."""
        return self.blob, self.offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        start, stop = int(self.offsets[index]), int(self.offsets[index + 1])
        height, width = (int(v) for v in self.sizes[index])
        return {"size": [height, width], "counts": self.blob[start:stop].decode("ascii")}

    # like a list, a column is unhashable: defining __eq__ without __hash__ makes Python set __hash__ to None
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and len(other) == len(self) and all(a == b for a, b in zip(self, other))

