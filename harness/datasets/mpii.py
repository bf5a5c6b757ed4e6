"""``--dataset mpii``: MPII Human Pose in the layout mmpose and most PCKh tools use, and the one reader of its files.

Layout: ``images/*.jpg``, ``annotations/mpii_<split>.json`` (a list of people: ``image``, ``center`` (2),
``scale``, ``joints`` (16 x 2), ``joints_vis`` (16)), and, for PCKh, ``annotations/mpii_gt_<split>.mat`` (the
official ground truth: ``dataset_joints``, ``jnt_missing`` 16 x N, ``pos_gt_src`` 16 x 2 x N, ``headboxes_src``
2 x 2 x N, one column per person of the json, in the same order).  Splits ``val`` (default) and ``train``.  The
json is required: the .mat names no images.  Without the .mat there are no head boxes and PCKh cannot be scored
(``bench datasets check`` and training still work).

Coordinates.  Both files hold MATLAB's 1-based pixel coordinates (the json is converted from the official
annotation; HRNet's and mmpose 0.x's loaders subtract 1 from its joints and centres, and the evaluators add 1
to the 0-based predictions before comparing them with ``pos_gt_src``).  Samples are in the harness's 0-based
evaluation space (pixel centres at integers, as in OpenCV and every model here): joints, centres and head boxes
are the files' values minus 1.  PCKh is translation-invariant, so this changes no number; the PCKh metric and
the ``mpii-mat`` submission add the 1 back exactly where the toolkit expects it.

Ground truth.  With the .mat, the evaluated joints and their presence are the .mat's (``pos_gt_src``,
``jnt_missing``), because that is what the toolkit scores; the json (known to lack some labels of the official
annotation) only gives the images and person boxes, and where both label a joint they must agree to within a
pixel, or the two files are from different splits or orders.  Without the .mat, the json's joints are used
(``joints_vis`` > 0 = labelled).

One sample per image (in order of first appearance in the json), holding all its people; ``ann_ids`` are the
people's json indices = the .mat columns, so a metric or a submission can reproduce the official order.
Labelled joints get ``v = 2`` (MPII's files here carry no occluded-but-labelled flag), unlabelled ones
``(0, 0, 0)``.  Head boxes go to ``KeypointsTarget.head_boxes`` as ``[x1 - 1, y1 - 1, x2 - x1, y2 - y1]``, so
the width and height are the very differences the toolkit takes.  Person boxes (the top-down prompts) are MPII's
``scale * 200`` pixel squares around ``center - 1``, without the enlargement or centre shift individual models
apply.

The same functions read the files for ``bench eval --task mpii`` (``load_ground_truth``): one set of rules.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from harness.datasets import DATASETS
from harness.core.dataset import Dataset, DatasetInfo, report, supports
from harness.core.errors import BenchError, DataError
from harness.io.jsonio import read_json
from harness.labels.keypoints import MPII_JOINT_CODES, MPII_KEYPOINT_NAMES, MPII_SKELETON
from harness.core.protocol import MetricSpec, ProtocolOverride
from harness.core.structures import KeypointsTarget, PersonBoxes, Sample
from harness.io.validation.paths import inside
from harness.io.validation.pose import check_head_boxes

NUM_JOINTS = len(MPII_KEYPOINT_NAMES)
PERSON_KEYS = ("image", "center", "scale", "joints", "joints_vis")
MAT_FIELDS = ("dataset_joints", "jnt_missing", "pos_gt_src", "headboxes_src")
#: MPII's files count pixels from 1 (MATLAB); the evaluation space counts from 0
MATLAB_ORIGIN = 1.0
#: json and .mat must agree to within this many pixels where both label a joint
AGREEMENT_PX = 1.0
#: the MPII table as reported (the headline first)
PCKH_COLUMNS = ("PCKh@0.5", "PCKh@0.1", "AUC", "Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle")

MPII_PROTOCOL = ProtocolOverride(
    name="mpii-pckh",
    metrics=(MetricSpec("mpii_pckh"),),
    headline="PCKh@0.5",
    columns=PCKH_COLUMNS,
    submission="mpii-mat",
    reference="MPII toolkit evaluatePCKh.m",
)


@DATASETS.register("mpii")
@supports("keypoints")
def open_mpii(data_root: Path | None, split: str | None, task: str) -> Dataset:
    if task != "keypoints":
        raise BenchError(f"dataset 'mpii' serves task keypoints, not {task!r}")
    if data_root is None:
        from harness.embedded import materialise_split, mpii_figures

        return Mpii(materialise_split("mpii-figures", mpii_figures, split or "val"), split or "val", name="mpii-mini")
    return Mpii(Path(data_root), split or "val")


# ------------------------------------------------------------------------------------------ the files
@dataclass
class MpiiGroundTruth:
    """People in the annotation order of the ground-truth files, in the files' own 1-based coordinates."""

    joints: np.ndarray  # (N, 16, 2)
    present: np.ndarray  # (N, 16) bool: labelled (not jnt_missing / joints_vis > 0)
    head_boxes: np.ndarray | None  # (N, 2, 2) [[x1, y1], [x2, y2]]
    images: list[str] | None  # per person, when the source names them (the json)
    source: str

    def __len__(self) -> int:
        return len(self.joints)


def _loadmat(path: Path) -> dict[str, Any]:
    import scipy.io

    try:
        return scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises assorted ValueError/TypeError/OSError/MatReadError on damaged files
        raise DataError(f"cannot read MATLAB file ({exc.__class__.__name__}: {exc})", path) from None


def _numbers(value: Any, shape: tuple[int, ...], what: str, path: Path) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{what} must hold numbers", path) from None
    if array.shape != shape:
        raise DataError(f"{what} has shape {array.shape}, expected {shape}", path)
    return array


def _joint_codes(value: Any) -> list[str]:
    """``dataset_joints`` as scipy loads it (a 1 x 16 object array of 1-element string arrays) -> names."""
    codes = []
    for item in np.asarray(value, dtype=object).ravel():
        item = np.asarray(item).ravel()
        codes.append(str(item[0]) if item.size else "")
    return codes


def read_gt_mat(path: Path, count: int | None = None) -> MpiiGroundTruth:
    """The official ``mpii_gt_<split>.mat``; ``count`` (people in the json) is enforced when given."""
    mat = _loadmat(path)
    for key in MAT_FIELDS:
        if key not in mat:
            raise DataError(f"missing field {key!r} (expected mpii_gt_val.mat: {', '.join(MAT_FIELDS)})", path)
    codes = _joint_codes(mat["dataset_joints"])
    if codes != MPII_JOINT_CODES:
        raise DataError(f"dataset_joints {codes} differ from MPII's {MPII_JOINT_CODES}", path)
    people = np.shape(mat["jnt_missing"])[-1] if np.ndim(mat["jnt_missing"]) == 2 else -1
    expected = count if count is not None else people
    if expected < 0:
        raise DataError(f"jnt_missing has shape {np.shape(mat['jnt_missing'])}, expected (16, N)", path)
    for key, shape in {"jnt_missing": (NUM_JOINTS, expected), "pos_gt_src": (NUM_JOINTS, 2, expected),
                       "headboxes_src": (2, 2, expected)}.items():
        if np.shape(mat[key]) != shape:
            suffix = f" for {count} people in the json" if count is not None else ""
            raise DataError(f"{key} has shape {np.shape(mat[key])}, expected {shape}{suffix}", path)
    missing = _numbers(mat["jnt_missing"], (NUM_JOINTS, expected), "jnt_missing", path)
    joints = np.transpose(_numbers(mat["pos_gt_src"], (NUM_JOINTS, 2, expected), "pos_gt_src", path), (2, 0, 1))
    boxes = np.transpose(_numbers(mat["headboxes_src"], (2, 2, expected), "headboxes_src", path), (2, 0, 1))
    present = np.transpose(missing) == 0
    _require_finite(joints, present, path, "pos_gt_src")
    if not np.isfinite(boxes).all():
        person = int(np.argwhere(~np.isfinite(boxes))[0][0])
        raise DataError(f"headboxes_src of person #{person} is not finite", path)
    check_head_boxes(boxes, present, path, "headboxes_src")
    return MpiiGroundTruth(joints, present, boxes, None, "mpii_gt .mat")


def _require_finite(joints: np.ndarray, present: np.ndarray, path: Path, what: str) -> None:
    bad = present & ~np.isfinite(joints).all(axis=-1)
    if bad.any():
        person, joint = (int(v) for v in np.argwhere(bad)[0])
        raise DataError(f"{what}: person #{person}, joint {MPII_KEYPOINT_NAMES[joint]} is labelled but not finite",
                        path)


def person_problem(person: Any, need_box: bool = True) -> str | None:
    """What is wrong with one json person (None: nothing); ``need_box``: also ``center`` and ``scale``."""
    if not isinstance(person, dict):
        return f"expected an object, got {type(person).__name__}"
    for key in PERSON_KEYS if need_box else ("image", "joints", "joints_vis"):
        if key not in person:
            return f"missing key {key!r}"
    joints, vis = np.asarray(person["joints"], dtype=object), np.asarray(person["joints_vis"], dtype=object)
    if joints.shape != (NUM_JOINTS, 2) or vis.shape != (NUM_JOINTS,):
        return f"joints must be {NUM_JOINTS} x 2 and joints_vis {NUM_JOINTS} values, got {joints.shape} and {vis.shape}"
    try:
        values = np.concatenate([joints.astype(np.float64).ravel(), vis.astype(np.float64)])
    except (TypeError, ValueError):
        return "joints and joints_vis must be numbers"
    if not np.isfinite(values).all():
        return "joints and joints_vis must be finite"
    if need_box:
        center = np.asarray(person["center"], dtype=object)
        if center.shape != (2,):
            return f"center must be 2 numbers, got {person['center']!r}"
        try:
            box = np.concatenate([center.astype(np.float64), [float(person["scale"])]])
        except (TypeError, ValueError):
            return "center and scale must be numbers"
        if not np.isfinite(box).all() or box[2] <= 0:
            return "center and scale must be finite, scale > 0"
    return None


def read_people(path: Path) -> list[Any]:
    """The json list of people (each checked by ``person_problem`` where it is used)."""
    people = read_json(path)
    if not isinstance(people, list):
        raise DataError("expected a JSON list of people (mmpose's MPII layout)", path)
    return people


def read_head_boxes(path: Path, count: int) -> np.ndarray:
    """(count, 2, 2) 1-based head boxes from a .mat with ``headboxes_src`` or a json list of [x1, y1, x2, y2]."""
    if not path.is_file():
        raise DataError("head-box file not found", path)
    if path.suffix.lower() == ".mat":
        mat = _loadmat(path)
        if "headboxes_src" not in mat:
            raise DataError("no 'headboxes_src' array (expected mpii_gt_val.mat)", path)
        boxes = np.asarray(mat["headboxes_src"])
        if boxes.ndim != 3 or boxes.shape[:2] != (2, 2):
            raise DataError(f"'headboxes_src' must be 2x2xN, got {boxes.shape}", path)
        boxes = np.transpose(_numbers(boxes, boxes.shape, "headboxes_src", path), (2, 0, 1))
    else:
        raw = read_json(path)
        if not isinstance(raw, list):
            raise DataError("expected a json list of head boxes [x1, y1, x2, y2]", path)
        boxes = np.stack([_numbers(box, (4,), f"head box #{i}", path).reshape(2, 2) for i, box in enumerate(raw)]
                         ) if raw else np.zeros((0, 2, 2))
    if len(boxes) != count:
        raise DataError(f"{len(boxes)} head boxes for {count} ground-truth people", path)
    if not np.isfinite(boxes).all():
        raise DataError("head boxes hold non-finite values", path)
    return boxes


def ground_truth_from_people(people: list[Any], path: Path, head_boxes: np.ndarray | None) -> MpiiGroundTruth:
    """The json's people as ground truth (1-based joints, ``joints_vis`` > 0 = labelled)."""
    for index, person in enumerate(people):
        problem = person_problem(person, need_box=False)
        if problem is not None:
            raise DataError(f"person #{index}: {problem}", path)
    joints = np.array([p["joints"] for p in people], np.float64).reshape(-1, NUM_JOINTS, 2)
    present = np.array([p["joints_vis"] for p in people], np.float64).reshape(-1, NUM_JOINTS) > 0
    if head_boxes is not None and len(head_boxes) == len(present):
        check_head_boxes(head_boxes, present, path)
    return MpiiGroundTruth(joints, present, head_boxes, [str(p["image"]) for p in people], "mmpose json")


def load_ground_truth(path: Path, headboxes: Path | None = None) -> MpiiGroundTruth:
    """Ground truth for scoring files: ``mpii_gt_val.mat``, or mmpose's json with head boxes from ``headboxes``."""
    if not path.is_file():
        raise DataError("ground-truth file not found", path)
    if path.suffix.lower() == ".mat":
        if headboxes is not None:
            raise BenchError("--headboxes is for json ground truth; the .mat carries 'headboxes_src'")
        return read_gt_mat(path)
    people = read_people(path)
    if not people:
        raise DataError("expected a non-empty json list of people (mmpose MPII layout)", path)
    if headboxes is None:
        raise DataError("the mmpose json has no head boxes, which PCKh needs: pass --headboxes mpii_gt_val.mat "
                        "or give mpii_gt_val.mat as --gt", path)
    gt = ground_truth_from_people(people, path, None)
    gt.head_boxes = read_head_boxes(headboxes, len(people))
    gt.source = "mmpose json + head boxes"
    return gt


# ------------------------------------------------------------------------------------------ the dataset
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
        self.people = read_people(self.annotation_file)
        self.gt_mat = self.root / "annotations" / f"mpii_gt_{split}.mat"
        official = read_gt_mat(self.gt_mat, len(self.people)) if self.gt_mat.is_file() else None
        groups: OrderedDict[str, list[int]] = OrderedDict()
        for index, person in enumerate(self.people):
            problem = person_problem(person)
            if problem is None and official is not None:
                problem = _disagreement(person, official, index)
            if problem is not None:
                report(DataError(f"[{index}]: {problem}", self.annotation_file))
                continue
            groups.setdefault(str(person["image"]), []).append(index)
        self.images = list(groups.items())
        # evaluated joints in the 0-based evaluation space, per json person (rows of skipped people unused)
        if official is not None:
            self.joints, self.present = official.joints - MATLAB_ORIGIN, official.present
            assert official.head_boxes is not None  # the official annotation file always has them
            x1, y1 = official.head_boxes[:, 0, 0], official.head_boxes[:, 0, 1]
            x2, y2 = official.head_boxes[:, 1, 0], official.head_boxes[:, 1, 1]
            self.head_boxes: np.ndarray | None = np.stack(
                [x1 - MATLAB_ORIGIN, y1 - MATLAB_ORIGIN, x2 - x1, y2 - y1], axis=1)
        else:
            self.joints, self.present = self._json_joints()
            self.head_boxes = None
        self.info = DatasetInfo(
            name=name, task="keypoints", split=split, root=self.root, classes=["person"], category_ids=[1],
            keypoint_names=list(MPII_KEYPOINT_NAMES), skeleton=list(MPII_SKELETON),
            extra={"gt_mat": str(self.gt_mat) if official is not None else None,
                   "head_boxes": official is not None,
                   "people": len(self.people),
                   "ground_truth": "mpii_gt .mat" if official is not None else "json (no head boxes: no PCKh)",
                   "coordinates": "0-based pixels (the json and .mat are 1-based)"},
            protocol=MPII_PROTOCOL,
        )

    def _json_joints(self) -> tuple[np.ndarray, np.ndarray]:
        joints = np.zeros((len(self.people), NUM_JOINTS, 2))
        present = np.zeros((len(self.people), NUM_JOINTS), bool)
        for _, ids in self.images:
            for i in ids:
                joints[i] = np.asarray(self.people[i]["joints"], np.float64) - MATLAB_ORIGIN
                present[i] = np.asarray(self.people[i]["joints_vis"], np.float64) > 0
        return joints, present

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Sample:
        file_name, person_ids = self.images[index]
        image_path = inside(self.image_dir, file_name, self.annotation_file, f"image #{index} ({file_name!r})")
        width, height = _image_size(image_path)
        ids = np.array(person_ids, np.int64)
        labelled = self.present[ids]
        keypoints = np.concatenate([np.where(labelled[..., None], self.joints[ids], 0.0), 2.0 * labelled[..., None]],
                                   axis=2)
        people = [self.people[i] for i in person_ids]
        centers = np.array([p["center"] for p in people], np.float64).reshape(-1, 2) - MATLAB_ORIGIN
        scales = np.array([float(p["scale"]) for p in people], np.float64)
        side = scales * 200.0
        boxes = np.stack([centers[:, 0] - side / 2, centers[:, 1] - side / 2, side, side], axis=1)
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
        joints = sum(int(self.present[i].sum()) for _, ids in self.images for i in ids)
        return {"images": len(self), "people": people, "labelled joints": joints,
                "head boxes": people if self.head_boxes is not None else 0}


def _disagreement(person: dict, official: MpiiGroundTruth, index: int) -> str | None:
    """Where the json and the .mat both label a joint of this person, they must name the same place."""
    joints = np.asarray(person["joints"], np.float64)
    both = official.present[index] & (np.asarray(person["joints_vis"], np.float64) > 0)
    distance = np.linalg.norm(joints - official.joints[index], axis=-1)
    far = both & ~(distance <= AGREEMENT_PX)
    if not far.any():
        return None
    joint = int(np.argmax(far))
    return (f"joint {MPII_KEYPOINT_NAMES[joint]} is at {joints[joint].tolist()} in the json but "
            f"{official.joints[index, joint].tolist()} in the .mat (column {index + 1}): are they the same split, "
            "in the same order?")


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
