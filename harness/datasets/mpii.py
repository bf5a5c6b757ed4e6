"""``--dataset mpii``: MPII Human Pose in the layout mmpose and most PCKh tools use.

Layout: ``images/*.jpg``, ``annotations/mpii_<split>.json`` (a list of people: ``image``, ``center`` (2),
``scale``, ``joints`` (16 x 2, 0-based pixels), ``joints_vis`` (16)), and, for PCKh, ``annotations/mpii_gt_<split>.mat``
(the official ground truth: ``dataset_joints``, ``jnt_missing`` 16 x N, ``pos_gt_src`` 16 x 2 x N,
``headboxes_src`` 2 x 2 x N, 1-based, one column per person of the json in the same order).  Splits ``val``
(default) and ``train``.  The json is required: the .mat names no images, it only adds head boxes (without it,
``head_boxes`` is None and PCKh cannot be computed).

One sample per image (in order of first appearance in the json), holding all its people; ``ann_ids`` are the
people's json indices = the .mat columns, so a metric can reproduce the official evaluation order.
Coordinates are the json's 0-based pixels; head boxes come from the .mat and are shifted to 0-based
``[x1 - 1, y1 - 1, x2 - x1, y2 - y1]`` (the PCKh head size, 0.6 x the diagonal, is unchanged).  Unlabelled
joints get ``(0, 0, 0)``, labelled ones ``v = 2`` (MPII has no occluded-but-labelled flag here).
Person boxes (the top-down prompts) are MPII's ``scale * 200`` pixel squares around ``center``, without the
enlargement or centre shift individual models apply.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from harness.datasets import DATASETS
from harness.datasets.base import Dataset, DatasetInfo, report, supports
from harness.errors import BenchError, DataError
from harness.jsonio import read_json
from harness.keypoint_meta import MPII_JOINT_CODES, MPII_KEYPOINT_NAMES, MPII_SKELETON
from harness.structures import KeypointsTarget, PersonBoxes, Sample

NUM_JOINTS = len(MPII_KEYPOINT_NAMES)
PERSON_KEYS = ("image", "center", "scale", "joints", "joints_vis")
MAT_FIELDS = ("dataset_joints", "jnt_missing", "pos_gt_src", "headboxes_src")


@DATASETS.register("mpii")
@supports("keypoints")
def open_mpii(data_root: Path | None, split: str | None, task: str) -> Dataset:
    if task != "keypoints":
        raise BenchError(f"dataset 'mpii' serves task keypoints, not {task!r}")
    if data_root is None:
        from harness.embedded import materialise_split, mpii_figures

        return Mpii(materialise_split("mpii-figures", mpii_figures, split or "val"), split or "val", name="mpii-mini")
    return Mpii(Path(data_root), split or "val")


def _person_problem(person: Any) -> str | None:
    if not isinstance(person, dict):
        return f"expected an object, got {type(person).__name__}"
    for key in PERSON_KEYS:
        if key not in person:
            return f"missing key {key!r}"
    joints, vis = np.asarray(person["joints"], dtype=object), np.asarray(person["joints_vis"], dtype=object)
    if joints.shape != (NUM_JOINTS, 2) or vis.shape != (NUM_JOINTS,):
        return f"joints must be {NUM_JOINTS} x 2 and joints_vis {NUM_JOINTS} values, got {joints.shape} and {vis.shape}"
    center = np.asarray(person["center"], dtype=object)
    if center.shape != (2,):
        return f"center must be 2 numbers, got {person['center']!r}"
    try:
        values = np.concatenate([joints.astype(np.float64).ravel(), center.astype(np.float64), [float(person["scale"])]])
    except (TypeError, ValueError):
        return "joints, center and scale must be numbers"
    if not np.isfinite(values).all() or float(person["scale"]) <= 0:
        return "joints, center and scale must be finite, scale > 0"
    return None


def read_gt_mat(path: Path, count: int) -> np.ndarray:
    """Head boxes (count, 4) xywh, 0-based, from an official ``mpii_gt_*.mat``; validates the other fields too."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises assorted ValueError/TypeError/OSError on damaged files
        raise DataError(f"cannot read MATLAB file ({exc.__class__.__name__}: {exc})", path) from None
    for key in MAT_FIELDS:
        if key not in mat:
            raise DataError(f"missing field {key!r}", path)
    codes = [str(np.asarray(v).ravel()[0]) if np.asarray(v).size else "" for v in np.asarray(mat["dataset_joints"]).ravel()]
    if codes != MPII_JOINT_CODES:
        raise DataError(f"dataset_joints {codes} differ from MPII's {MPII_JOINT_CODES}", path)
    shapes = {"jnt_missing": (NUM_JOINTS, count), "pos_gt_src": (NUM_JOINTS, 2, count), "headboxes_src": (2, 2, count)}
    for key, shape in shapes.items():
        if mat[key].shape != shape:
            raise DataError(f"{key} has shape {mat[key].shape}, expected {shape} for {count} people in the json", path)
    boxes = np.asarray(mat["headboxes_src"], np.float64)  # [[x1, y1], [x2, y2]] x N, 1-based
    x1, y1, x2, y2 = boxes[0, 0], boxes[0, 1], boxes[1, 0], boxes[1, 1]
    return np.stack([x1 - 1, y1 - 1, x2 - x1, y2 - y1], axis=1)


class Mpii(Dataset):
    def __init__(self, root: Path, split: str = "val", *, name: str = "mpii") -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError("data root does not exist or is not a folder", self.root)
        self.annotation_file = self.root / "annotations" / f"mpii_{split}.json"
        self.image_dir = self.root / "images"
        if not self.annotation_file.is_file():
            raise DataError(f"no annotations/mpii_{split}.json (is this an MPII root? is the split right?)", self.root)
        self.missing_folders: set[Path] = set()
        if not self.image_dir.is_dir():
            report(DataError("folder images/ is missing", self.root))
            self.missing_folders.add(self.image_dir)
        people = read_json(self.annotation_file)
        if not isinstance(people, list):
            raise DataError("expected a JSON list of people", self.annotation_file)
        self.people = people
        self.gt_mat = self.root / "annotations" / f"mpii_gt_{split}.mat"
        self.head_boxes = read_gt_mat(self.gt_mat, len(people)) if self.gt_mat.is_file() else None
        groups: OrderedDict[str, list[int]] = OrderedDict()
        for index, person in enumerate(people):
            problem = _person_problem(person)
            if problem is not None:
                report(DataError(f"[{index}]: {problem}", self.annotation_file))
                continue
            groups.setdefault(str(person["image"]), []).append(index)
        self.images = list(groups.items())
        self.info = DatasetInfo(
            name=name, task="keypoints", split=split, root=self.root, classes=["person"], category_ids=[1],
            keypoint_names=list(MPII_KEYPOINT_NAMES), skeleton=list(MPII_SKELETON),
            extra={"gt_mat": str(self.gt_mat) if self.head_boxes is not None else None,
                   "coordinates": "0-based pixels (the .mat is 1-based)"},
        )

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Sample:
        file_name, person_ids = self.images[index]
        image_path = self.image_dir / file_name
        width, height = _image_size(image_path)
        people = [self.people[i] for i in person_ids]
        joints = np.array([p["joints"] for p in people], np.float64).reshape(-1, NUM_JOINTS, 2)
        labelled = np.array([p["joints_vis"] for p in people], np.float64).reshape(-1, NUM_JOINTS) > 0
        keypoints = np.concatenate([joints * labelled[..., None], 2.0 * labelled[..., None]], axis=2)
        centers = np.array([p["center"] for p in people], np.float64).reshape(-1, 2)
        scales = np.array([float(p["scale"]) for p in people], np.float64)
        side = scales * 200.0
        boxes = np.stack([centers[:, 0] - side / 2, centers[:, 1] - side / 2, side, side], axis=1)
        ids = np.array(person_ids, np.int64)
        target = KeypointsTarget(
            image_id=index + 1, width=width, height=height, boxes=boxes, keypoints=keypoints, areas=side * side,
            iscrowd=np.zeros(len(people), bool), num_keypoints=labelled.sum(axis=1).astype(np.int64), ann_ids=ids,
            head_boxes=self.head_boxes[ids] if self.head_boxes is not None else None,
        )
        return Sample(sample_id=index + 1, image_path=image_path, target=target,
                      prompts=PersonBoxes(boxes=boxes.copy(), scores=np.ones(len(people))),
                      meta={"file_name": file_name, "center": centers, "scale": scales})

    def source_files(self) -> Iterable[Path]:
        return [self.annotation_file] + ([self.gt_mat] if self.head_boxes is not None else [])

    def counts(self) -> dict[str, int]:
        people = sum(len(ids) for _, ids in self.images)
        joints = sum(int(np.count_nonzero(self.people[i]["joints_vis"])) for _, ids in self.images for i in ids)
        return {"images": len(self), "people": people, "labelled joints": joints,
                "head boxes": people if self.head_boxes is not None else 0}


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the image header, without decoding the pixels."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise DataError("image file is missing", path)
    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"cannot read image header ({exc.__class__.__name__}: {exc})", path) from None
