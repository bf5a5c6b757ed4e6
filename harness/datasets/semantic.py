"""What the semantic-segmentation readers share: an image and a label PNG per sample, mapped to class indices.

Each reader supplies a lookup table from the values stored in its PNGs to evaluation indices (0..C-1, or the
ignore index), with -1 marking values that the dataset's encoding does not define.  A label map holding such a
value is refused with the file and the values named, because a stray value silently becoming a class (or
ignore) is exactly the "wrong mIoU from a label-map mistake" users report.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from harness.core.dataset import Dataset
from harness.core.errors import BenchError, DataError
from harness.io.imageio import read_label_png, read_rgb
from harness.core.structures import Sample, SemanticTarget

IGNORE = 255


@dataclass
class SemanticItem:
    sample_id: str
    image_path: Path
    label_path: Path
    meta: dict[str, Any] = field(default_factory=dict)


def lookup_table(mapping: dict[int, int], size: int = 256) -> np.ndarray:
    """(size,) int32 table: stored value -> evaluation index; -1 for values the encoding does not define."""
    table = np.full(size, -1, np.int32)
    for stored, index in mapping.items():
        table[stored] = index
    return table


def apply_table(values: np.ndarray, table: np.ndarray, path: Path, describe: str) -> np.ndarray:
    """Map stored label values through ``table``; refuse values outside it (naming them and the file)."""
    if values.dtype.kind not in "iu":
        raise DataError(f"label map has dtype {values.dtype}, expected integers", path)
    present = np.unique(values)
    bad = [int(v) for v in present if v < 0 or v >= len(table) or table[v] < 0]
    if bad:
        shown = ", ".join(map(str, bad[:8])) + (", ..." if len(bad) > 8 else "")
        raise DataError(f"label values {shown} outside the class range ({describe})", path)
    return table[values].astype(np.uint8)


class SemanticDataset(Dataset):
    """A list of (image, label PNG) items; subclasses set ``items``, ``info`` and ``read_target``."""

    items: list[SemanticItem]

    def read_target(self, item: SemanticItem) -> SemanticTarget:
        """Decode and validate the label map(s) of one item."""
        raise NotImplementedError

    def read_label(self, path: Path) -> np.ndarray:
        return read_label_png(path)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Sample:
        item = self.items[index]
        return Sample(sample_id=item.sample_id, image_path=item.image_path, target=self.read_target(item),
                      meta=dict(item.meta, label_path=str(item.label_path)))

    def check_sample(self, index: int) -> list[str]:
        """The image and the label map are checked apart, and against each other's size."""
        item = self.items[index]
        problems: list[str] = []
        image = target = None
        try:
            image = read_rgb(item.image_path)
        except BenchError as exc:
            problems.append(str(exc))
        try:
            target = self.read_target(item)
        except BenchError as exc:
            problems.append(str(exc))
        if image is not None and target is not None and image.shape[:2] != target.label_map.shape:
            problems.append(str(DataError(
                f"label map is {target.label_map.shape[1]}x{target.label_map.shape[0]} but the image "
                f"{item.image_path.name} is {image.shape[1]}x{image.shape[0]}", item.label_path)))
        return problems

    def source_files(self) -> Iterable[Path]:
        return [item.label_path for item in self.items]

    def counts(self) -> dict[str, int]:
        return {"images": len(self), "classes": len(self.info.classes)}
