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
* .mat: ``pos_pred_src`` (16x2xN, the ``mpii-mat`` submission ``bench run`` writes), or ``preds`` as the
  toolkit takes it: MATLAB size 2x16xN (x/y first; the toolkit permutes it), Nx16x2 (what the Python ports save
  from a (N, 16, 2) array), or 16x2xN (the layout of ``pos_gt_src``).

Ground-truth files are read by ``harness.datasets.mpii`` (the dataset reader's own functions, one set of rules).
Coordinates are compared as the files hold them: ``official`` takes the predictions as 1-based like the ground
truth; ``mmpose`` adds 1 to them first (``MpiiPCKAccuracy`` on its 0-based outputs).

NaN or infinite coordinates are refused; ``--allow-missing`` instead counts them (and people without a
prediction) as wrong, which is what the official toolkit does with NaN predictions.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import cast

import numpy as np

from harness.datasets.mpii import MpiiGroundTruth, load_ground_truth
from harness.core.errors import PredictionError
from harness.file_eval import FILE_EVALUATORS
from harness.file_eval.base import EvalRequest, FileEvaluator, require_file
from harness.io.jsonio import read_json
from harness.core.metric import MetricResult
from harness.metrics.pose import (
    PckhDialect,
    MPII_JOINTS,
    PCKH_DIALECTS,
    TOOL_PREDICTION_OFFSET,
    head_sizes,
    pckh_counts,
    pckh_result,
)
from harness.submissions.mpii_mat import FIELD as POS_PRED_SRC
from harness.submissions.mpii_mat import MISSING_HINT, first_missing, read_pos_pred_src

NUM_JOINTS = len(MPII_JOINTS)


# ------------------------------------------------------------------------------------------- predictions
def _finite_array(value, shape: tuple[int, ...], what: str, path: Path, allow_nonfinite: bool = False) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise PredictionError(f"{what} must hold numbers", path) from None
    if array.shape != shape:
        raise PredictionError(f"{what} must have shape {shape}, got {array.shape}", path)
    bad = ~np.isfinite(array)
    if bad.any() and not allow_nonfinite:
        raise PredictionError(f"{what} holds a non-finite value {array[bad][0]}", path)
    return array


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
    from scipy.io import loadmat, whosmat

    try:
        names = {name for name, _, _ in whosmat(str(path))}
    except Exception as exc:  # scipy raises assorted ValueError/TypeError/OSError/MatReadError on damaged files
        raise PredictionError(f"not a readable .mat file ({exc.__class__.__name__}: {exc})", path) from None
    if POS_PRED_SRC in names:
        preds, layout = read_pos_pred_src(path, count), POS_PRED_SRC
    else:
        mat = loadmat(str(path))
        if "preds" not in mat:
            raise PredictionError(f"no {POS_PRED_SRC!r} or 'preds' array in the .mat", path)
        preds = mat["preds"]
        mat_layout = _mat_layout(preds.shape, count)
        if mat_layout is None:
            raise PredictionError(f"'preds' has size {'x'.join(map(str, preds.shape))}; expected 2x16x{count}, "
                                  f"{count}x16x2 or 16x2x{count} for the {count} ground-truth people", path)
        layout = mat_layout
        try:
            preds = np.asarray(preds, dtype=np.float64)
        except (TypeError, ValueError):
            raise PredictionError("'preds' must hold numbers", path) from None
        people = {"2x16xN": (2, 1, 0), "Nx16x2": (0, 1, 2), "16x2xN": (2, 0, 1)}[layout]
        preds = np.transpose(preds, people)
    _check_finite(preds, allow_missing, path)
    return preds, layout


def _check_finite(preds: np.ndarray, allow_missing: bool, path: Path) -> None:
    missing = first_missing(preds)
    if missing is None:
        return
    if allow_missing:
        preds[~np.isfinite(preds).all(axis=-1)] = np.nan  # counted wrong, as the toolkit does with NaN
        return
    n, j = missing
    raise PredictionError(f"person #{n}, joint {MPII_JOINTS[j]}: non-finite coordinate {preds[n, j].tolist()} "
                          f"({MISSING_HINT})", path)


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
        preds[index] = _finite_array(joints, (NUM_JOINTS, 2), f"prediction #{i}: joints", path,
                                     allow_nonfinite=allow_missing)
    if not allow_missing and len(owner) < count:
        missing = min(set(range(count)) - set(owner))
        image = f" (image {gt.images[missing]})" if gt.images else ""
        raise PredictionError(f"ground-truth person #{missing}{image} has no prediction", path)
    _check_finite(preds, allow_missing, path)
    return preds


# ---------------------------------------------------------------------------------------------- scoring
def evaluate_mpii_files(request: EvalRequest) -> MetricResult:
    dialect = cast(PckhDialect, request.dialect or "official")  # the evaluator checked it against PCKH_DIALECTS
    headboxes = request.option("headboxes")
    gt = load_ground_truth(request.gt, Path(headboxes) if headboxes is not None else None)
    require_file(request.pred, "prediction", PredictionError)
    allow_missing = bool(request.option("allow_missing", False))
    layout = "json"
    if request.pred.suffix.lower() == ".mat":
        preds, layout = load_mat_predictions(request.pred, len(gt), allow_missing)
    else:
        preds = load_json_predictions(request.pred, gt, allow_missing)
    offset = TOOL_PREDICTION_OFFSET[dialect]
    assert gt.head_boxes is not None  # load_ground_truth refuses a file without head boxes
    correct, scored = pckh_counts(preds + offset, gt.joints, gt.present, head_sizes(gt.head_boxes), dialect)
    return pckh_result(correct, scored, dialect, {
        "prediction_offset": offset,
        "people": len(gt), "ground_truth": str(request.gt), "ground_truth_source": gt.source,
        "predictions": str(request.pred), "prediction_layout": layout,
        "missing_predictions": "counted wrong" if allow_missing else "refused",
    })


FILE_EVALUATORS.register("mpii")(
    FileEvaluator(
        run=evaluate_mpii_files,
        options=frozenset({"headboxes", "allow_missing"}),
        dialects=PCKH_DIALECTS,
        summary="MPII PCKh: mpii_gt_val.mat or mmpose json + head boxes; predictions json or .mat "
                "'pos_pred_src'/'preds'",
    )
)
