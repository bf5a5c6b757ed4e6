"""``--dataset cityscapes``: Cityscapes fine annotations, for semantic and instance segmentation.

Layout: ``leftImg8bit/<split>/<city>/<frame>_leftImg8bit.png`` with ``gtFine/<split>/<city>/<frame>_gtFine_labelIds.png``
(uint8 labelIds 0..33) and ``<frame>_gtFine_instanceIds.png`` (uint16: a labelId for stuff and groups, or
labelId * 1000 + k for instance k).  Splits ``train``, ``val`` (default); ``--data-root`` is the folder that
holds ``leftImg8bit/`` and ``gtFine/``.

Semantic: ``label_map`` is in trainId space (the 19 evaluated classes 0..18, 255 for ignoreInEval labels) and
``instance_map`` holds the instanceIds for iIoU.  The labelIds file stays in ``meta['label_ids_path']`` so a
metric can evaluate in labelId space exactly as cityscapesscripts does.

Instance: the 8 instance classes evaluated by cityscapesscripts (labelIds 24-28, 31-33 as category ids); every
instance id >= 1000 of those classes is an object (class = id // 1000) with an RLE mask; pixels of those classes
that carry only a labelId (groups such as "cars" too crowded to separate) become ``iscrowd`` regions.  Its protocol
is the official instance-level AP (``cityscapes_instance``, results in the ``cityscapes-instance`` format) with
COCO mask AP as the extra ``coco/`` metrics.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, NamedTuple

import numpy as np

from harness.datasets import DATASETS
from harness.core.protocol import MetricSpec, ProtocolOverride
from harness.core.dataset import Dataset, DatasetInfo, report, supports
from harness.datasets.semantic import IGNORE, SemanticDataset, SemanticItem, apply_table, lookup_table
from harness.core.errors import BenchError, DataError
from harness.io.imageio import read_label_png
from harness.core.structures import DetectionTarget, Sample, SemanticTarget


class Label(NamedTuple):
    name: str
    id: int
    train_id: int  # 255 = ignored in evaluation
    category: str
    has_instances: bool


#: the Cityscapes label definitions (labelId order), as in cityscapesscripts' labels.py
LABELS: list[Label] = [
    Label("unlabeled", 0, 255, "void", False),
    Label("ego vehicle", 1, 255, "void", False),
    Label("rectification border", 2, 255, "void", False),
    Label("out of roi", 3, 255, "void", False),
    Label("static", 4, 255, "void", False),
    Label("dynamic", 5, 255, "void", False),
    Label("ground", 6, 255, "void", False),
    Label("road", 7, 0, "flat", False),
    Label("sidewalk", 8, 1, "flat", False),
    Label("parking", 9, 255, "flat", False),
    Label("rail track", 10, 255, "flat", False),
    Label("building", 11, 2, "construction", False),
    Label("wall", 12, 3, "construction", False),
    Label("fence", 13, 4, "construction", False),
    Label("guard rail", 14, 255, "construction", False),
    Label("bridge", 15, 255, "construction", False),
    Label("tunnel", 16, 255, "construction", False),
    Label("pole", 17, 5, "object", False),
    Label("polegroup", 18, 255, "object", False),
    Label("traffic light", 19, 6, "object", False),
    Label("traffic sign", 20, 7, "object", False),
    Label("vegetation", 21, 8, "nature", False),
    Label("terrain", 22, 9, "nature", False),
    Label("sky", 23, 10, "sky", False),
    Label("person", 24, 11, "human", True),
    Label("rider", 25, 12, "human", True),
    Label("car", 26, 13, "vehicle", True),
    Label("truck", 27, 14, "vehicle", True),
    Label("bus", 28, 15, "vehicle", True),
    Label("caravan", 29, 255, "vehicle", True),
    Label("trailer", 30, 255, "vehicle", True),
    Label("train", 31, 16, "vehicle", True),
    Label("motorcycle", 32, 17, "vehicle", True),
    Label("bicycle", 33, 18, "vehicle", True),
]
#: the labelId of each trainId 0..18
TRAIN_ID_LABEL_IDS: list[int] = [label.id for label in sorted(LABELS, key=lambda l: l.train_id) if label.train_id != 255]
TRAIN_CLASSES: list[str] = [label.name for label in sorted(LABELS, key=lambda l: l.train_id) if label.train_id != 255]
#: labelIds of the instance classes cityscapesscripts evaluates (hasInstances and not ignoreInEval)
INSTANCE_LABEL_IDS: list[int] = [label.id for label in LABELS if label.has_instances and label.train_id != 255]
LABEL_ID_TO_TRAIN_ID = lookup_table({label.id: label.train_id for label in LABELS})
MAX_LABEL_ID = max(label.id for label in LABELS)
TASKS = ("semantic", "instance")


@DATASETS.register("cityscapes")
@supports(*TASKS)
def open_cityscapes(data_root: Path | None, split: str | None, task: str) -> Dataset:
    name = "cityscapes"
    if data_root is None:
        from harness.embedded import materialise_split, shapes_cityscapes

        data_root, name = materialise_split("cityscapes-shapes", shapes_cityscapes, split or "val"), "cityscapes-mini"
    if task == "semantic":
        return CityscapesSemantic(Path(data_root), split or "val", name=name)
    if task == "instance":
        return CityscapesInstances(Path(data_root), split or "val", name=name)
    raise BenchError(f"dataset 'cityscapes' serves tasks {', '.join(TASKS)}, not {task!r}")


def list_frames(root: Path, split: str, *, require_instances: bool) -> tuple[list[SemanticItem], set[Path]]:
    """Every ``leftImg8bit`` frame of the split with its gtFine files, in (city, frame) order."""
    if not root.is_dir():
        raise DataError("data root does not exist or is not a folder", root)
    image_root, gt_root = root / "leftImg8bit" / split, root / "gtFine" / split
    if not image_root.is_dir():
        raise DataError(f"no leftImg8bit/{split}/ folder (is this a Cityscapes root? is the split right?)", root)
    missing: set[Path] = set()
    if not gt_root.is_dir():
        report(DataError(f"no gtFine/{split}/ folder", root))
        missing.add(gt_root)
    items = []
    suffix = "_leftImg8bit.png"
    for image_path in sorted(image_root.glob(f"*/*{suffix}")):
        city, frame = image_path.parent.name, image_path.name[: -len(suffix)]
        label_path = gt_root / city / f"{frame}_gtFine_labelIds.png"
        instance_path = gt_root / city / f"{frame}_gtFine_instanceIds.png"
        if gt_root not in missing:
            needed = [label_path, instance_path] if require_instances else [label_path]
            absent = [p for p in needed if not p.is_file()]
            if absent:
                for path in absent:
                    report(DataError(f"ground truth of {image_path.name} is missing", path))
                continue
        items.append(SemanticItem(f"{city}/{frame}", image_path, label_path,
                                  {"label_ids_path": str(label_path), "instance_ids_path": str(instance_path),
                                   "city": city}))
    if not items and not missing:
        report(DataError(f"no *{suffix} images under leftImg8bit/{split}/<city>/", root))
    return items, missing


def read_instance_ids(path: Path) -> np.ndarray:
    """instanceIds as int32, refusing values that encode no Cityscapes label."""
    values = read_label_png(path).astype(np.int32)
    classes = np.where(values >= 1000, values // 1000, values)
    bad = np.unique(values[(classes < 0) | (classes > MAX_LABEL_ID)])
    if bad.size:
        shown = ", ".join(map(str, bad[:8].tolist()))
        raise DataError(f"instance ids {shown} encode no Cityscapes labelId (0..{MAX_LABEL_ID}, or labelId*1000+k)",
                        path)
    return values


def split_instance_values(values: np.ndarray) -> tuple[list[int], list[int]]:
    """(instance ids >= 1000 of the evaluated instance classes, bare labelIds of those classes = crowd groups)."""
    present = np.unique(values)
    objects = [int(v) for v in present if v >= 1000 and v // 1000 in INSTANCE_LABEL_IDS]
    groups = [int(v) for v in present if v in INSTANCE_LABEL_IDS]
    return objects, groups


class CityscapesSemantic(SemanticDataset):
    def __init__(self, root: Path, split: str = "val", *, name: str = "cityscapes") -> None:
        self.root = Path(root)
        self.items, self.missing_folders = list_frames(self.root, split, require_instances=False)
        self.info = DatasetInfo(
            name=name, task="semantic", split=split, root=self.root, classes=list(TRAIN_CLASSES),
            category_ids=list(range(len(TRAIN_CLASSES))), ignore_index=IGNORE,
            extra={"label_space": "trainId", "train_id_label_ids": TRAIN_ID_LABEL_IDS,
                   # official result PNGs hold labelIds; a pixel of no class is 'unlabeled' (0)
                   "label_png": {"values": TRAIN_ID_LABEL_IDS, "none": 0}},
            protocol=ProtocolOverride(
                name="cityscapes-pixel",
                metrics=(MetricSpec("cityscapes_semantic", {"target_ids": "train_id", "prediction_ids": "train_id"}),),
                columns=("mIoU", "iIoU", "IoU_category", "iIoU_category", "mAcc", "aAcc", "mDice"),
                reference="cityscapesscripts evalPixelLevelSemanticLabeling"),
        )

    def read_target(self, item: SemanticItem) -> SemanticTarget:
        label_ids = self.read_label(item.label_path)
        label_map = apply_table(label_ids, LABEL_ID_TO_TRAIN_ID, item.label_path, f"labelIds 0..{MAX_LABEL_ID}")
        instance_path = Path(item.meta["instance_ids_path"])
        instance_map = read_instance_ids(instance_path) if instance_path.is_file() else None
        if instance_map is not None and instance_map.shape != label_map.shape:
            raise DataError(f"instanceIds size {instance_map.shape} differs from labelIds {label_map.shape}",
                            instance_path)
        return SemanticTarget(label_map=label_map, instance_map=instance_map)

    def source_files(self) -> Iterable[Path]:
        files = [item.label_path for item in self.items]
        files += [Path(i.meta["instance_ids_path"]) for i in self.items if Path(i.meta["instance_ids_path"]).is_file()]
        return files


class CityscapesInstances(Dataset):
    """One sample per frame; objects from ``instanceIds`` with COCO RLE masks, in instance-id order."""

    def __init__(self, root: Path, split: str = "val", *, name: str = "cityscapes") -> None:
        self.root = Path(root)
        self.items, self.missing_folders = list_frames(self.root, split, require_instances=True)
        by_id = {label.id: label for label in LABELS}
        self.info = DatasetInfo(
            name=name, task="instance", split=split, root=self.root,
            classes=[by_id[i].name for i in INSTANCE_LABEL_IDS], category_ids=list(INSTANCE_LABEL_IDS),
        )
        # the official instance-level AP leads; COCO mask AP on the same instances is kept as a named extra
        self.info.protocol = ProtocolOverride(
            name="cityscapes-instance", metrics=(MetricSpec("cityscapes_instance"),),
            extra_metrics=(MetricSpec("coco_segm", {"key_prefix": "coco/"}),), headline="AP",
            columns=("AP", "AP50", "coco/AP"), submission="cityscapes-instance",
            reference="cityscapesscripts evalInstanceLevelSemanticLabeling",
        )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Sample:
        item = self.items[index]
        return Sample(sample_id=item.sample_id, image_path=item.image_path, target=self.read_target(item),
                      meta=dict(item.meta))

    def read_target(self, item: SemanticItem) -> DetectionTarget:
        from pycocotools import mask as mask_codec

        instance_path = Path(item.meta["instance_ids_path"])
        values = read_instance_ids(instance_path)
        height, width = values.shape
        objects, groups = split_instance_values(values)
        masks, labels, crowd, ids = [], [], [], []
        for value in objects + groups:
            mask = np.asfortranarray((values == value).astype(np.uint8))
            rle = mask_codec.encode(mask)
            rle["counts"] = rle["counts"].decode("ascii")
            masks.append(rle)
            labels.append(value // 1000 if value >= 1000 else value)
            crowd.append(value < 1000)
            ids.append(value)
        encoded = [{"size": m["size"], "counts": m["counts"].encode("ascii")} for m in masks]
        boxes = mask_codec.toBbox(encoded).reshape(-1, 4) if masks else np.zeros((0, 4))
        areas = mask_codec.area(encoded).astype(np.float64) if masks else np.zeros(0)
        return DetectionTarget(
            image_id=item.sample_id, width=width, height=height, boxes=np.asarray(boxes, np.float64),
            labels=np.array(labels, np.int64), areas=areas, iscrowd=np.array(crowd, bool),
            ignore=np.zeros(len(labels), bool), masks=masks, ann_ids=np.array(ids, np.int64),
        )

    def check_sample(self, index: int) -> list[str]:
        problems = super().check_sample(index)
        item = self.items[index]
        try:  # labelIds are not needed for the instance target, but cityscapesscripts reads them too
            apply_table(read_label_png(item.label_path), LABEL_ID_TO_TRAIN_ID, item.label_path,
                        f"labelIds 0..{MAX_LABEL_ID}")
        except BenchError as exc:
            problems.append(str(exc))
        return problems

    def source_files(self) -> Iterable[Path]:
        return [Path(item.meta["instance_ids_path"]) for item in self.items]

    def counts(self) -> dict[str, int]:
        instances = crowd = 0
        for item in self.items:
            try:
                objects, groups = split_instance_values(read_instance_ids(Path(item.meta["instance_ids_path"])))
            except BenchError:
                continue
            instances += len(objects)
            crowd += len(groups)
        return {"images": len(self), "instances": instances, "crowd regions": crowd, "classes": len(self.info.classes)}
