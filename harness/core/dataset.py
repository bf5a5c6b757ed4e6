"""The Dataset contract: a deterministic, lazily loaded sequence of Samples plus what a metric needs to know.

Readers take the dataset exactly as it ships (``data_root`` as the user downloaded it); embedded datasets are
generated in the same native layouts and read by the same readers, so the code that scores the demo is the
code that scores the real thing.
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, Iterator

from harness.core.errors import BenchError
from harness.core.protocol import ProtocolOverride
from harness.core.structures import Sample

_PROBLEM_SINK: ContextVar[list[str] | None] = ContextVar("bench_dataset_problems", default=None)


@contextmanager
def collecting_problems() -> Iterator[list[str]]:
    """Inside this block readers record the layout problems they can step over instead of raising the first.

    Reading for real must stop at the first problem (a wrong AP from a half-read dataset is worse than no AP),
    but ``bench datasets check`` should list every problem at once; both go through ``report``.
    """
    sink: list[str] = []
    token = _PROBLEM_SINK.set(sink)
    try:
        yield sink
    finally:
        _PROBLEM_SINK.reset(token)


def report(problem: BenchError) -> None:
    """Raise ``problem``, or record it and return when a ``collecting_problems`` block is active.

    Callers must be able to carry on after it returns: skip the broken entry, treat a missing folder as absent.
    """
    sink = _PROBLEM_SINK.get()
    if sink is None:
        raise problem
    sink.append(str(problem))


def supports(*tasks: str) -> Callable[[Callable[..., "Dataset"]], Callable[..., "Dataset"]]:
    """Declare the tasks a registered dataset factory can open (first = default), for ``bench datasets``."""

    def mark(factory: Callable[..., "Dataset"]) -> Callable[..., "Dataset"]:
        factory.tasks = tuple(tasks)  # type: ignore[attr-defined]
        return factory

    return mark


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
    #: how this dataset's official evaluation differs from its task's default protocol (None: it does not)
    protocol: ProtocolOverride | None = None

    def categories(self) -> list[dict[str, Any]]:
        return [{"id": cid, "name": name} for cid, name in zip(self.category_ids, self.classes)]


class Dataset(ABC):
    """A readable dataset.  Subclasses set ``info`` and implement ``__len__`` / ``__getitem__``.

    Construction must validate the layout enough to fail early with a one-line ``DataError`` (missing folder,
    unreadable annotation file); per-image problems surface when the sample is loaded, and ``check`` lists them all.
    """

    info: DatasetInfo
    #: folders a reader found missing and reported once; ``check`` drops the per-file problems they cause
    missing_folders: Collection[Path] = frozenset()

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

    def check(self, progress: Callable[[int], None] | None = None) -> list[str]:
        """Every problem found by loading every sample (one line each); empty when the layout is clean.

        ``progress(n)`` is called after each sample, for a progress bar on big datasets.
        """
        problems: dict[str, None] = {}  # ordered and without repeats (a frame shared by two flow pairs)
        hidden = tuple(f"{folder}/" for folder in self.missing_folders)
        for index in range(len(self)):
            problems.update((p, None) for p in self.check_sample(index) if not (hidden and p.startswith(hidden)))
            if progress is not None:
                progress(1)
        return list(problems)

    def check_sample(self, index: int) -> list[str]:
        """Problems of one sample; readers with several files per sample override this to check each file."""
        problems: list[str] = []
        try:
            sample = self[index]
        except BenchError as exc:
            return [str(exc)]
        for path, load in ((sample.image_path, sample.load_image), (sample.image_path2, sample.load_image2)):
            if path is not None:
                try:
                    load()
                except BenchError as exc:
                    problems.append(str(exc))
        return problems

    def counts(self) -> dict[str, int]:
        """Numbers `bench datasets check` prints; readers extend this with instances, pairs, ..."""
        return {"images": len(self), "classes": len(self.info.classes)}
