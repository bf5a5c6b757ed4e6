"""MPII PCKh from files: ground truth ``mpii_gt_val.mat`` (or mmpose's json plus head boxes), predictions
as json or as the ``preds`` array of a .mat.

Ground truth:

* ``mpii_gt_val.mat`` (``jnt_missing`` 16xN, ``pos_gt_src`` 16x2xN, ``headboxes_src`` 2x2xN), the file the
  official toolkit's Python ports and mmpose read.
* mmpose's json layout (a list of people with ``image``, ``joints`` 16x2, ``joints_vis`` 16): it has no head
  boxes (mmpose itself reads them from ``mpii_gt_val.mat``), so ``--headboxes`` must give them, as a .mat with
  ``headboxes_src`` or a json list of ``[x1, y1, x2, y2]``, one per person in the same order.

Predictions:

* json: a list of ``{"index": i, "joints": 16x[x, y]}`` (i = the person's position in the ground truth, from 0)
  or, with json ground truth, ``{"image": name, "joints": ...}`` (the k-th prediction of an image is its k-th
  person).  Every person needs exactly one prediction.
* .mat: ``preds`` as the toolkit takes it: MATLAB size 2x16xN (x/y first; the toolkit permutes it), Nx16x2
  (what the Python ports save from a (N, 16, 2) array), or 16x2xN (the layout of ``pos_gt_src``).

NaN or infinite coordinates are refused; ``--allow-missing`` instead counts them (and people without a
prediction) as wrong, which is what the official toolkit does with NaN predictions.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import BenchError, DataError, PredictionError
from harness.file_eval import FILE_EVALUATORS
from harness.file_eval.base import EvalRequest, FileEvaluator, require_file
from harness.jsonio import read_json
from harness.metrics.base import MetricResult
from harness.metrics.pose import MPII_JOINTS, PCKH_DIALECTS, head_sizes, pckh_counts, pckh_from_counts

NUM_JOINTS = len(MPII_JOINTS)
PART_ORDER = ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle")


class MpiiGroundTruth:
    """(N, 16, 2) positions, (N, 16) presence, (N, 2, 2) head boxes, image names when the source has them."""

    def __init__(self, joints: np.ndarray, present: np.ndarray, head_boxes: np.ndarray,
                 images: list[str] | None, source: str) -> None:
        self.joints, self.present, self.head_boxes = joints, present, head_boxes
        self.images, self.source = images, source

    def __len__(self) -> int:
        return len(self.joints)


# ------------------------------------------------------------------------------------------ ground truth
def _loadmat(path: Path, error: type[BenchError]) -> dict[str, Any]:
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        return loadmat(str(path))
    except (OSError, ValueError, TypeError, MatReadError) as exc:
        raise error(f"not a readable .mat file ({exc.__class__.__name__}: {exc})", path) from None


def _finite_array(value: Any, shape: tuple[int, ...], what: str, error: type[BenchError], path: Path,
                  allow_nonfinite: bool = False) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise error(f"{what} must hold numbers", path) from None
    if array.shape != shape:
        raise error(f"{what} must have shape {shape}, got {array.shape}", path)
    bad = ~np.isfinite(array)
    if bad.any() and not allow_nonfinite:
        raise error(f"{what} holds a non-finite value {array[bad][0]}", path)
    return array


def _load_head_boxes(path: Path, count: int) -> np.ndarray:
    require_file(path, "--headboxes")
    if path.suffix.lower() == ".mat":
        mat = _loadmat(path, DataError)
        if "headboxes_src" not in mat:
            raise DataError("no 'headboxes_src' array (expected mpii_gt_val.mat)", path)
        boxes = np.asarray(mat["headboxes_src"], dtype=np.float64)
        if boxes.ndim != 3 or boxes.shape[:2] != (2, 2):
            raise DataError(f"'headboxes_src' must be 2x2xN, got {boxes.shape}", path)
        boxes = np.transpose(boxes, (2, 0, 1))
    else:
        raw = read_json(path)
        if not isinstance(raw, list):
            raise DataError("expected a json list of head boxes [x1, y1, x2, y2]", path)
        boxes = np.stack([_finite_array(box, (4,), f"head box #{i}", DataError, path).reshape(2, 2)
                          for i, box in enumerate(raw)]) if raw else np.zeros((0, 2, 2))
    if len(boxes) != count:
        raise DataError(f"{len(boxes)} head boxes for {count} ground-truth people", path)
    if not np.all(np.isfinite(boxes)):
        raise DataError("head boxes hold non-finite values", path)
    return boxes


def load_ground_truth(path: Path, headboxes: Path | None) -> MpiiGroundTruth:
    from harness.metrics.pose import mpii_arrays_from_gt_mat

    require_file(path, "ground-truth")
    if path.suffix.lower() == ".mat":
        if headboxes is not None:
            raise BenchError("--headboxes is for json ground truth; the .mat carries 'headboxes_src'")
        arrays = mpii_arrays_from_gt_mat(str(path))
        return MpiiGroundTruth(arrays["gt"], arrays["present"], arrays["head_boxes"], None, "mpii_gt_val.mat")
    raw = read_json(path)
    if not isinstance(raw, list) or not raw:
        raise DataError("expected a non-empty json list of people (mmpose MPII layout)", path)
    if headboxes is None:
        raise DataError("the mmpose json has no head boxes, which PCKh needs: pass --headboxes mpii_gt_val.mat "
                        "or give mpii_gt_val.mat as --gt", path)
    joints, present, images = [], [], []
    for i, person in enumerate(raw):
        if not isinstance(person, dict) or not {"joints", "joints_vis", "image"} <= set(person):
            raise DataError(f"person #{i}: expected an object with 'image', 'joints' and 'joints_vis'", path)
        joints.append(_finite_array(person["joints"], (NUM_JOINTS, 2), f"person #{i}: joints", DataError, path))
        visible = _finite_array(person["joints_vis"], (NUM_JOINTS,), f"person #{i}: joints_vis", DataError, path)
        present.append(visible > 0)
        images.append(str(person["image"]))
    boxes = _load_head_boxes(headboxes, len(raw))
    return MpiiGroundTruth(np.stack(joints), np.stack(present), boxes, images, "mmpose json + head boxes")


# ------------------------------------------------------------------------------------------- predictions
def _mat_layout(shape: tuple[int, ...], count: int) -> str | None:
    """Which of the toolkit's layouts a ``preds`` array of this MATLAB size is (checked in the toolkit's order)."""
    if len(shape) != 3:
        return None
    if shape == (2, NUM_JOINTS, count):
        return "2x16xN"
    if shape == (count, NUM_JOINTS, 2):
        return "Nx16x2"
    if shape == (NUM_JOINTS, 2, count):
        return "16x2xN"
    return None


def load_mat_predictions(path: Path, count: int, allow_missing: bool) -> tuple[np.ndarray, str]:
    mat = _loadmat(path, PredictionError)
    if "preds" not in mat:
        raise PredictionError("no 'preds' array in the .mat", path)
    preds = mat["preds"]
    layout = _mat_layout(preds.shape, count)
    if layout is None:
        raise PredictionError(f"'preds' has size {'x'.join(map(str, preds.shape))}; expected 2x16x{count}, "
                              f"{count}x16x2 or 16x2x{count} for the {count} ground-truth people", path)
    try:
        preds = np.asarray(preds, dtype=np.float64)
    except (TypeError, ValueError):
        raise PredictionError("'preds' must hold numbers", path) from None
    people = {"2x16xN": (2, 1, 0), "Nx16x2": (0, 1, 2), "16x2xN": (2, 0, 1)}[layout]
    preds = np.transpose(preds, people)
    _check_finite(preds, allow_missing, path, lambda n, j: f"person #{n}, joint {MPII_JOINTS[j]}")
    return preds, layout


def _check_finite(preds: np.ndarray, allow_missing: bool, path: Path, where) -> None:
    bad = np.isinf(preds).any(axis=-1) | np.isnan(preds).any(axis=-1)
    if allow_missing:
        preds[bad] = np.nan  # counted wrong, as the toolkit does with NaN
        return
    if bad.any():
        n, j = (int(v) for v in np.argwhere(bad)[0])
        raise PredictionError(f"{where(n, j)}: non-finite coordinate {preds[n, j].tolist()} "
                              "(--allow-missing counts such joints as wrong, like the official toolkit)", path)


def load_json_predictions(path: Path, gt: MpiiGroundTruth, allow_missing: bool) -> np.ndarray:
    raw = read_json(path)
    if not isinstance(raw, list):
        raise PredictionError("expected a json list of {'index' or 'image', 'joints'}", path)
    count = len(gt)
    preds = np.full((count, NUM_JOINTS, 2), np.nan)
    owner: dict[int, int] = {}
    people_of_image: dict[str, list[int]] = defaultdict(list)
    for n, name in enumerate(gt.images or []):
        people_of_image[name].append(n)
    used_of_image: dict[str, int] = defaultdict(int)
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or "joints" not in entry or not ({"index", "image"} & set(entry)):
            raise PredictionError(f"prediction #{i}: expected an object with 'joints' and 'index' or 'image'", path)
        if "index" in entry:
            index = entry["index"]
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
                raise PredictionError(
                    f"prediction #{i}: index {index!r} is not a ground-truth person (0..{count - 1})", path)
        else:
            if gt.images is None:
                raise PredictionError(f"prediction #{i}: 'image' needs the json ground truth (the .mat has no "
                                      "image names); use 'index'", path)
            image = str(entry["image"])
            if image not in people_of_image:
                raise PredictionError(f"prediction #{i}: image {image!r} is not in the ground truth", path)
            slot = used_of_image[image]
            if slot >= len(people_of_image[image]):
                raise PredictionError(f"prediction #{i}: more predictions for image {image!r} than its "
                                      f"{len(people_of_image[image])} ground-truth people", path)
            used_of_image[image] += 1
            index = people_of_image[image][slot]
        if index in owner:
            raise PredictionError(f"prediction #{i}: person #{index} already has prediction #{owner[index]}", path)
        owner[index] = i
        joints = entry["joints"]
        if allow_missing and isinstance(joints, list):
            joints = [[np.nan if v is None else v for v in xy] if isinstance(xy, list) else xy for xy in joints]
        preds[index] = _finite_array(joints, (NUM_JOINTS, 2), f"prediction #{i}: joints", PredictionError, path,
                                     allow_nonfinite=allow_missing)
    if not allow_missing and len(owner) < count:
        missing = min(set(range(count)) - set(owner))
        image = f" (image {gt.images[missing]})" if gt.images else ""
        raise PredictionError(f"ground-truth person #{missing}{image} has no prediction", path)
    _check_finite(preds, allow_missing, path, lambda n, j: f"person #{n}, joint {MPII_JOINTS[j]}")
    return preds


# ---------------------------------------------------------------------------------------------- scoring
def evaluate_mpii_files(request: EvalRequest) -> MetricResult:
    dialect = request.dialect or "official"
    headboxes = request.option("headboxes")
    gt = load_ground_truth(request.gt, Path(headboxes) if headboxes is not None else None)
    require_file(request.pred, "prediction", PredictionError)
    allow_missing = bool(request.option("allow_missing", False))
    layout = "json"
    if request.pred.suffix.lower() == ".mat":
        preds, layout = load_mat_predictions(request.pred, len(gt), allow_missing)
    else:
        preds = load_json_predictions(request.pred, gt, allow_missing)
    correct, scored = pckh_counts(preds, gt.joints, gt.present, head_sizes(gt.head_boxes), dialect)
    table, per_joint, _ = pckh_from_counts(correct, scored, dialect)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_joint_01 = correct[-1] / scored
    metrics = {"PCKh@0.5": table["Mean"], "PCKh@0.1": table["Mean@0.1"], "AUC": table["AUC"]}
    metrics.update({part: table[part] for part in PART_ORDER})
    return MetricResult(
        metrics=metrics,
        per_class={"PCKh@0.5": per_joint, "PCKh@0.1": dict(zip(MPII_JOINTS, (float(v) for v in per_joint_01)))},
        settings={
            "dialect": dialect,
            "reference": "MPII toolkit evaluatePCKh.m" if dialect == "official" else "mmpose MpiiPCKAccuracy",
            "comparison": "<=" if dialect == "official" else "<",
            "prediction_offset": 0.0 if dialect == "official" else 1.0,
            "head": "mean of upper neck and head top" if dialect == "official" else "head top",
            "mean": "pooled over joints except pelvis and thorax", "head_size": "0.6 x head-box diagonal",
            "AUC": "area under the mean PCKh curve over thresholds 0..0.5 scaled to [0, 1]",
            "people": len(gt), "ground_truth": str(request.gt), "ground_truth_source": gt.source,
            "predictions": str(request.pred), "prediction_layout": layout,
            "missing_predictions": "counted wrong" if allow_missing else "refused",
        },
        higher_is_better={name: True for name in metrics},
    )


FILE_EVALUATORS.register("mpii")(
    FileEvaluator(
        run=evaluate_mpii_files,
        options=frozenset({"headboxes", "allow_missing"}),
        dialects=PCKH_DIALECTS,
        summary="MPII PCKh: mpii_gt_val.mat or mmpose json + head boxes; predictions json or .mat 'preds'",
    )
)
