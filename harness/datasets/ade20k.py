"""``--dataset ade20k``: the ADE20K SceneParsing benchmark (MIT Scene Parsing, ADEChallengeData2016).

Layout: ``ADEChallengeData2016/{images,annotations}/{training,validation}/``, images ``*.jpg`` and annotation
PNGs of the same stem holding 0 ("other", not scored) and 1..150.  ``--data-root`` is the
``ADEChallengeData2016`` folder or its parent.  Splits ``validation`` (default) and ``training``; ``val`` and
``train`` are accepted as aliases.

Targets use ``reduce_zero_label``: 0 becomes 255 (ignored) and class k becomes k - 1, so the 150 classes are
0..149 in objectInfo150 order.  Whether a mean runs over all 150 classes (the devkit) or only over classes
present (mmsegmentation) is the metric's dialect, not the reader's.
"""
from __future__ import annotations

from pathlib import Path

from harness.datasets import DATASETS
from harness.labels.ade20k import ADE20K_CLASSES, OBJECT_INFO_150
from harness.core.protocol import MetricSpec, ProtocolOverride
from harness.core.dataset import Dataset, DatasetInfo, report, supports
from harness.datasets.semantic import IGNORE, SemanticDataset, SemanticItem, apply_table, lookup_table
from harness.core.errors import BenchError, DataError
from harness.core.structures import SemanticTarget

FOLDER = "ADEChallengeData2016"
SPLIT_ALIASES = {"val": "validation", "train": "training"}
REDUCE_ZERO_LABEL = lookup_table({0: IGNORE, **{k: k - 1 for k in range(1, len(ADE20K_CLASSES) + 1)}})


@DATASETS.register("ade20k")
@supports("semantic")
def open_ade20k(data_root: Path | None, split: str | None, task: str) -> Dataset:
    if task != "semantic":
        raise BenchError(f"dataset 'ade20k' serves task semantic, not {task!r}")
    if data_root is None:
        from harness.embedded import materialise_split, shapes_ade

        split = SPLIT_ALIASES.get(split or "validation", split or "validation")
        return Ade20k(materialise_split("ade20k-shapes", shapes_ade, split), split, name="ade20k-mini")
    return Ade20k(Path(data_root), split or "validation")


class Ade20k(SemanticDataset):
    def __init__(self, data_root: Path, split: str = "validation", *, name: str = "ade20k") -> None:
        data_root = Path(data_root)
        if not data_root.is_dir():
            raise DataError("data root does not exist or is not a folder", data_root)
        self.root = data_root / FOLDER if (data_root / FOLDER).is_dir() else data_root
        split = SPLIT_ALIASES.get(split, split)
        image_dir, label_dir = self.root / "images" / split, self.root / "annotations" / split
        if not image_dir.is_dir():
            raise DataError(f"no images/{split}/ folder (is this {FOLDER}? splits: training, validation)", self.root)
        self.missing_folders: set[Path] = set()
        if not label_dir.is_dir():
            report(DataError(f"no annotations/{split}/ folder", self.root))
            self.missing_folders.add(label_dir)
        self.items = []
        for image_path in sorted(image_dir.glob("*.jpg")):
            label_path = label_dir / f"{image_path.stem}.png"
            if label_dir.is_dir() and not label_path.is_file():
                report(DataError(f"annotation of {image_path.name} is missing", label_path))
                continue
            self.items.append(SemanticItem(image_path.stem, image_path, label_path))
        if not self.items and label_dir.is_dir():
            report(DataError(f"no .jpg images in images/{split}/", self.root))
        self.info = DatasetInfo(
            name=name, task="semantic", split=split, root=self.root, classes=list(ADE20K_CLASSES),
            category_ids=list(range(len(ADE20K_CLASSES))), ignore_index=IGNORE,
            extra={"reduce_zero_label": True, "full_names": list(OBJECT_INFO_150),
                   # objectInfo150's synonyms: mmseg names class 89 'television receiver', the devkit 'television'
                   "class_synonyms": [[name.strip() for name in full.split(",")] for full in OBJECT_INFO_150],
                   # the challenge's submission PNGs hold 1..150 (0 = other), as its annotations do
                   "label_png": {"values": list(range(1, len(ADE20K_CLASSES) + 1)), "none": 0}},
            # the official devkit averages over all 150 classes (absent ones count 0); mmseg's nanmean is a dialect
            protocol=ProtocolOverride(
                name="ade20k-devkit", metrics=(MetricSpec("semantic", {"dialect": "ade20k-devkit"}),),
                reference="ADE20K SceneParsing devkit (mean IoU over all 150 classes)"),
        )

    def read_target(self, item: SemanticItem) -> SemanticTarget:
        label_map = apply_table(self.read_label(item.label_path), REDUCE_ZERO_LABEL, item.label_path,
                                f"0 = other, 1..{len(ADE20K_CLASSES)}")
        return SemanticTarget(label_map=label_map)
