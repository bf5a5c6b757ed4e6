"""The Dataset contract: a deterministic, lazily loaded sequence of Samples plus what a metric needs to know.

Readers take the dataset exactly as it ships (``data_root`` as the user downloaded it); embedded datasets are
generated in the same native layouts and read by the same readers, so the code that scores the demo is the
code that scores the real thing.
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from harness.structures import Sample


@dataclass
class DatasetInfo:
    """Metadata an adapter must agree with and a metric must know (classes, skeleton, ignore label)."""

    name: str
    task: str
    split: str
    root: Path
    classes: list[str] = field(default_factory=list)
    category_ids: list[int] = field(default_factory=list)
    keypoint_names: list[str] = field(default_factory=list)
    sigmas: list[float] = field(default_factory=list)
    skeleton: list[tuple[int, int]] = field(default_factory=list)
    ignore_index: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def categories(self) -> list[dict[str, Any]]:
        return [{"id": cid, "name": name} for cid, name in zip(self.category_ids, self.classes)]


class Dataset(ABC):
    """A readable dataset.  Subclasses set ``info`` and implement ``__len__`` / ``__getitem__``.

    Construction must validate the layout enough to fail early with a one-line ``DataError`` (missing folder,
    unreadable annotation file); per-image problems surface when the sample is loaded, and ``check`` lists them all.
    """

    info: DatasetInfo

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __getitem__(self, index: int) -> Sample: ...

    def __iter__(self) -> Iterator[Sample]:
        for index in range(len(self)):
            yield self[index]

    @abstractmethod
    def source_files(self) -> Iterable[Path]:
        """Files whose content defines the evaluation (annotations, GT maps); hashed into the fingerprint."""

    def fingerprint(self) -> str:
        """Content hash of the ground truth, so results and caches know exactly what they were scored on."""
        digest = hashlib.sha256(f"{self.info.name}|{self.info.split}|{len(self)}".encode())
        for path in sorted(self.source_files()):
            digest.update(str(Path(path).name).encode())
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()[:16]

    def check(self) -> list[str]:
        """Every problem found by loading every sample (one line each); empty when the layout is clean."""
        from harness.errors import BenchError

        problems: list[str] = []
        for index in range(len(self)):
            try:
                sample = self[index]
                if sample.image_path is not None:
                    sample.load_image()
                if sample.image_path2 is not None:
                    sample.load_image2()
            except BenchError as exc:
                problems.append(str(exc))
        return problems

    def counts(self) -> dict[str, int]:
        """Numbers `bench datasets check` prints; readers extend this with instances, pairs, ..."""
        return {"images": len(self), "classes": len(self.info.classes)}
