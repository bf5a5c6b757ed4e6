"""``--dataset voc``: PASCAL VOC in the devkit layout, for detection and semantic segmentation.

Layout: ``VOCdevkit/VOC<year>/{Annotations, JPEGImages, ImageSets/Main, ImageSets/Segmentation,
SegmentationClass, SegmentationObject}``.  ``--data-root`` may be the ``VOCdevkit`` folder, its parent, or one
``VOC<year>`` folder.

Splits are ``<year>-<image set>``, e.g. ``2007-test``, ``2007-trainval``, ``2012-val``; a bare image set (``val``)
is accepted when exactly one year has it.  Defaults: detection ``2007-test``, semantic ``2012-val`` (or ``val`` of
the only year present).

Classes: the 20 VOC classes, category ids 1..20 in the devkit's order; semantic index 0 is background, 255 is
the void/boundary label (ignored).  A ``class_names.txt`` beside ``JPEGImages`` (labelme's VOC export convention:
one name per line, background first) replaces the VOC list; the embedded mini dataset uses it.

Boxes: VOC stores 1-based inclusive pixel indices ``xmin..xmax``.  They become the harness's continuous boxes
``[xmin - 1, ymin - 1, xmax - xmin + 1, ymax - ymin + 1]``, i.e. pixel i (1-based) covers [i-1, i)
(``harness.core.boxes``, shared with the VOC metric and the devkit result files, so the devkit's "+1" is applied
exactly once).  The raw devkit boxes stay in ``meta['voc_boxes']`` (xmin, ymin, xmax, ymax).  ``difficult``
objects go to ``DetectionTarget.ignore`` (neither TP nor FP in VOC AP).  Annotation ids are
``image index * 10000 + k + 1`` (k = the object's position in its XML): unique over the split, the same however
the samples are read or sharded, and never 0 (pycocotools reads a GT id of 0 as "unmatched").

Protocol (detection): the devkit's VOC AP (``voc_ap``), scored as the devkit of the split's year does it: VOC2007
to VOC2009 with 11-point AP (``voc07-devkit``; mmdetection's voc0712 config also uses ``11points`` on VOC2007
test), VOC2010 and later with the area under the curve (``voc-devkit``).  Headline ``mAP``; predictions are
written as the devkit's ``comp4_det_<set>_<class>.txt`` files (``harness.submissions.voc_devkit``).
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Iterable

import numpy as np

from harness.datasets import DATASETS
from harness.core.dataset import Dataset, DatasetInfo, report, supports
from harness.datasets.semantic import IGNORE, SemanticDataset, SemanticItem, apply_table, lookup_table
from harness.core.errors import BenchError, DataError
from harness.io.imageio import read_rgb
from harness.core.protocol import MetricSpec, ProtocolOverride
from harness.core.structures import DetectionTarget, Sample, SemanticTarget
from harness.core.boxes import Boxes, BoxMode

VOC_CLASSES: list[str] = [
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable", "dog",
    "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
]
DEFAULT_SPLITS = {"detection": ("2007", "test"), "semantic": ("2012", "val")}
IMAGE_SET_FOLDER = {"detection": "Main", "semantic": "Segmentation"}
_YEAR = re.compile(r"^VOC(\d{4})$")
#: annotation id = image index * ANN_ID_STRIDE + k + 1, so an image may hold up to ANN_ID_STRIDE objects
ANN_ID_STRIDE = 10_000
#: the first devkit that scored AP as the area under the curve instead of 11 points
AREA_AP_SINCE = 2010
COLUMNS = ("mAP", "mAP_11point", "mAP_area")


@DATASETS.register("voc")
@supports("detection", "semantic")
def open_voc(data_root: Path | None, split: str | None, task: str) -> Dataset:
    if task not in IMAGE_SET_FOLDER:
        raise BenchError(f"dataset 'voc' serves tasks detection and semantic, not {task!r}")
    name = "voc"
    if data_root is None:
        from harness.embedded import materialise_split, shapes_voc

        subset = (split or "val").removeprefix(f"{shapes_voc.YEAR}-")
        data_root, split, name = materialise_split("voc-shapes", shapes_voc, subset), subset, "voc-mini"
    year_dir, image_set = resolve_split(Path(data_root), split, task)
    reader = VocDetection if task == "detection" else VocSegmentation
    return reader(year_dir, image_set, name=name)


def find_years(data_root: Path) -> dict[str, Path]:
    """``{year: VOC<year> folder}`` for a VOCdevkit, its parent, or a single VOC<year> folder."""
    if not data_root.is_dir():
        raise DataError("data root does not exist or is not a folder", data_root)
    match = _YEAR.match(data_root.name)
    if match:
        return {match.group(1): data_root}
    devkit = data_root / "VOCdevkit" if (data_root / "VOCdevkit").is_dir() else data_root
    years = {m.group(1): p for p in sorted(devkit.iterdir()) if p.is_dir() and (m := _YEAR.match(p.name))}
    if not years:
        raise DataError("no VOC<year> folder here or in VOCdevkit/ (is this a PASCAL VOC root?)", data_root)
    return years


def resolve_split(data_root: Path, split: str | None, task: str) -> tuple[Path, str]:
    years = find_years(data_root)
    folder = IMAGE_SET_FOLDER[task]
    if split is None:
        year, image_set = DEFAULT_SPLITS[task]
        if year not in years and len(years) == 1:
            year, image_set = next(iter(years)), "val"
    elif "-" in split:
        year, image_set = split.split("-", 1)
    else:
        image_set = split
        having = [y for y, p in years.items() if (p / "ImageSets" / folder / f"{split}.txt").is_file()]
        if len(having) != 1:
            found = ", ".join(having) or "none"
            raise DataError(f"split {split!r} is ambiguous or absent (years with it: {found}); "
                            f"name the year, e.g. --split {next(iter(years))}-{split}", data_root)
        year = having[0]
    if year not in years:
        raise DataError(f"no VOC{year} folder (found: {', '.join('VOC' + y for y in years)})", data_root)
    return years[year], image_set


def read_image_set(year_dir: Path, folder: str, image_set: str) -> list[str]:
    path = year_dir / "ImageSets" / folder / f"{image_set}.txt"
    if not path.is_file():
        raise DataError(f"no image set ImageSets/{folder}/{image_set}.txt", year_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path) from None
    ids = [line.split()[0] for line in text.splitlines() if line.strip()]
    unsafe = [i for i in ids if "/" in i or "\\" in i or i.startswith(".") or "\0" in i]
    for image_id in unsafe:  # ids become file names under JPEGImages/, Annotations/: never a path out of them
        report(DataError(f"image id {image_id!r} is not a plain file name", path))
    ids = [i for i in ids if i not in unsafe]
    if len(set(ids)) != len(ids):
        report(DataError("image set lists an image id twice", path))
        ids = list(dict.fromkeys(ids))
    return ids


def read_class_names(year_dir: Path) -> list[str]:
    """Semantic classes, background first: class_names.txt when present, else background + the 20 VOC classes."""
    path = year_dir / "class_names.txt"
    if not path.is_file():
        return ["background", *VOC_CLASSES]
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if len(names) < 2 or len(names) > 255:
        raise DataError(f"expected 2..255 class names (background first), found {len(names)}", path)
    return names


def detection_protocol(year: str) -> ProtocolOverride:
    """VOC AP as the devkit of ``year`` scores it: 11-point AP up to VOC2009 (VOC2007's rule, also mmdetection's
    ``VOCMetric`` default and its voc0712 config), the area under the PR curve from VOC2010 on."""
    eleven = int(year) < AREA_AP_SINCE
    return ProtocolOverride(
        name="voc07-devkit" if eleven else "voc-devkit",
        metrics=(MetricSpec("voc_ap", {"ap_mode": "11point" if eleven else "area"}),),
        headline="mAP", columns=COLUMNS, submission="voc-devkit", version=1,
        reference=f"PASCAL VOC devkit VOCevaldet.m ({'11-point' if eleven else 'area'} AP, IoU >= 0.5)",
    )


class _VocBase(Dataset):
    folder = ""

    def __init__(self, year_dir: Path, image_set: str, *, name: str, task: str) -> None:
        self.year_dir = Path(year_dir)
        self.image_set = image_set
        self.ids = read_image_set(self.year_dir, self.folder, image_set)
        self.class_names = read_class_names(self.year_dir)
        self.missing_folders: set[Path] = set()
        self._require_folder("JPEGImages")
        self.info = DatasetInfo(name=name, task=task, split=f"{self.year_dir.name[3:]}-{image_set}",
                                root=self.year_dir)

    def _require_folder(self, name: str) -> None:
        path = self.year_dir / name
        if not path.is_dir():
            self.missing_folders.add(path)
            report(DataError(f"folder {name}/ is missing", self.year_dir))

    def image_path(self, image_id: str) -> Path:
        return self.year_dir / "JPEGImages" / f"{image_id}.jpg"


class VocDetection(_VocBase):
    """One sample per image of ``ImageSets/Main/<set>.txt``; XML files are parsed when their sample is read."""

    folder = "Main"

    def __init__(self, year_dir: Path, image_set: str, *, name: str = "voc") -> None:
        super().__init__(year_dir, image_set, name=name, task="detection")
        self._require_folder("Annotations")
        self.info.classes = self.class_names[1:]
        self.info.category_ids = list(range(1, len(self.class_names)))
        self.info.extra["box_convention"] = "xywh = [xmin-1, ymin-1, xmax-xmin+1, ymax-ymin+1] of the 1-based VOC box"
        self.info.extra["image_set"] = image_set
        self.info.protocol = detection_protocol(self.year_dir.name[3:])
        self._category = {n: i for i, n in enumerate(self.class_names) if i > 0}
        self._parsed: dict[int, tuple[DetectionTarget, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def annotation_path(self, image_id: str) -> Path:
        return self.year_dir / "Annotations" / f"{image_id}.xml"

    def __getitem__(self, index: int) -> Sample:
        if index not in self._parsed:
            self._parsed[index] = self._parse(index)
        target, raw = self._parsed[index]
        image_id = self.ids[index]
        return Sample(sample_id=image_id, image_path=self.image_path(image_id), target=target,
                      meta={"voc_boxes": raw, "file_name": f"{image_id}.jpg"})

    def _parse(self, index: int) -> tuple[DetectionTarget, np.ndarray]:
        image_id = self.ids[index]
        path = self.annotation_path(image_id)
        if not path.is_file():
            raise DataError("annotation file is missing", path)
        try:
            root = ElementTree.parse(path).getroot()
        except ElementTree.ParseError as exc:
            raise DataError(f"malformed XML ({exc})", path) from None
        width, height = _number(root, "size/width", path), _number(root, "size/height", path)
        labels, raw, difficult = [], [], []
        objects = root.findall("object")
        if len(objects) > ANN_ID_STRIDE:
            raise DataError(f"{len(objects)} objects; at most {ANN_ID_STRIDE} per image keep annotation ids unique",
                            path)
        for k, obj in enumerate(objects):
            name = (obj.findtext("name") or "").strip()
            if name not in self._category:
                raise DataError(f"object {k}: unknown class {name!r} (known: {', '.join(self.class_names[1:])})", path)
            box = [_number(obj, f"bndbox/{key}", path, f"object {k}") for key in ("xmin", "ymin", "xmax", "ymax")]
            if box[2] < box[0] or box[3] < box[1]:
                raise DataError(f"object {k}: bndbox has xmax < xmin or ymax < ymin {box}", path)
            labels.append(self._category[name])
            raw.append(box)
            difficult.append(bool(int(_number(obj, "difficult", path, f"object {k}", default=0))))
        raw_boxes = np.array(raw, np.float64).reshape(-1, 4)
        boxes = Boxes(raw_boxes, BoxMode.VOC_DEVKIT).xywh()
        target = DetectionTarget(
            image_id=image_id, width=int(width), height=int(height), boxes=boxes,
            labels=np.array(labels, np.int64), areas=boxes[:, 2] * boxes[:, 3],
            iscrowd=np.zeros(len(labels), bool), ignore=np.array(difficult, bool),
            ann_ids=index * ANN_ID_STRIDE + 1 + np.arange(len(labels), dtype=np.int64),
        )
        return target, raw_boxes

    def check_sample(self, index: int) -> list[str]:
        """The XML and the image are checked apart, so a broken annotation does not hide a broken image."""
        problems = []
        for check in (lambda: self[index], lambda: read_rgb(self.image_path(self.ids[index]))):
            try:
                check()
            except BenchError as exc:
                problems.append(str(exc))
        return problems

    def source_files(self) -> Iterable[Path]:
        return [self.annotation_path(i) for i in self.ids]

    def counts(self) -> dict[str, int]:
        objects = difficult = 0
        present: set[int] = set()
        for index in range(len(self)):
            try:
                target = self[index].target
            except BenchError:
                continue
            objects += len(target.labels)
            difficult += int(target.ignore.sum())
            present.update(target.labels.tolist())
        return {"images": len(self), "objects": objects, "difficult": difficult, "classes": len(self.info.classes),
                "classes present": len(present)}


class VocSegmentation(_VocBase, SemanticDataset):
    """``ImageSets/Segmentation/<set>.txt`` images with ``SegmentationClass`` palette PNGs (palette index = class)."""

    folder = "Segmentation"

    def __init__(self, year_dir: Path, image_set: str, *, name: str = "voc") -> None:
        super().__init__(year_dir, image_set, name=name, task="semantic")
        self._require_folder("SegmentationClass")
        self.info.classes = list(self.class_names)
        self.info.category_ids = list(range(len(self.class_names)))
        self.info.ignore_index = IGNORE
        # official result files are palette PNGs whose index is the class, 255 the boundary
        self.info.extra["label_png"] = {"values": list(range(len(self.class_names))), "none": IGNORE, "palette": "voc"}
        self.table = lookup_table({**{i: i for i in range(len(self.class_names))}, IGNORE: IGNORE})
        self.items = [
            SemanticItem(i, self.image_path(i), self.year_dir / "SegmentationClass" / f"{i}.png",
                         {"object_path": str(self.year_dir / "SegmentationObject" / f"{i}.png")})
            for i in self.ids
        ]

    def read_target(self, item: SemanticItem) -> SemanticTarget:
        describe = f"0..{len(self.class_names) - 1}, {IGNORE} = void"
        return SemanticTarget(label_map=apply_table(self.read_label(item.label_path), self.table, item.label_path,
                                                    describe))


def _number(node: ElementTree.Element, tag: str, path: Path, where: str = "", default: float | None = None) -> float:
    text = node.findtext(tag)
    prefix = f"{where}: " if where else ""
    if text is None or not text.strip():
        if default is not None:
            return default
        raise DataError(f"{prefix}missing <{tag}>", path)
    try:
        return float(text)
    except ValueError:
        raise DataError(f"{prefix}<{tag}> is not a number: {text.strip()!r}", path) from None
