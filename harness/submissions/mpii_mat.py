"""``mpii-mat``: MPII predictions as the official toolkit reads them, ``pos_pred_src`` in a MATLAB ``.mat``.

``pos_pred_src`` is 16 x 2 x N float64: joint x (x, y) x person, one column per ground-truth person in the
annotation order of ``mpii_gt_<split>.mat`` (= the json's order, ``KeypointsTarget.ann_ids``), in MPII's 1-based
pixel coordinates: the harness's 0-based predictions plus 1, as HRNet and mmpose 0.x add before writing.  The
toolkit compares it with ``pos_gt_src`` directly.  A person without a prediction (a run over part of the split)
is NaN, which the toolkit counts as wrong.

Reading back subtracts 1; the PCKh metric adds 1 before comparing, and for any value v = fl(p + 1) the round
trip fl(fl(v - 1) + 1) gives v back exactly, so scores of the read-back submission equal the run's to the bit.
Non-finite joints are refused with a one-line error unless ``allow_missing`` (``bench eval --allow-missing``),
which hands them on as NaN: counted wrong, as the official toolkit does.
"""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.errors import BenchError, PredictionError
from harness.labels.keypoints import MPII_KEYPOINT_NAMES
from harness.core.structures import KeypointsPrediction, KeypointsTarget, PersonBoxes, Sample
from harness.submissions import SUBMISSIONS
from harness.core.submission import PredictionSource, SubmissionFormat

NUM_JOINTS = len(MPII_KEYPOINT_NAMES)
FIELD = "pos_pred_src"
#: MPII's files count pixels from 1 (MATLAB); predictions and targets count from 0
MATLAB_ORIGIN = 1.0
MISSING_HINT = "--allow-missing counts such joints as wrong, like the official toolkit"


def people_count(info: Any) -> int:
    """Ground-truth people of the split (the .mat's N), which the MPII reader records in ``info.extra``."""
    count = (getattr(info, "extra", None) or {}).get("people")
    if not isinstance(count, int):
        raise BenchError(f"the mpii-mat submission needs an MPII dataset; {getattr(info, 'name', info)!r} does not "
                         "list its ground-truth people")
    return count


def read_pos_pred_src(path: Path, count: int) -> np.ndarray:
    """(count, 16, 2) float64 from the ``pos_pred_src`` (16 x 2 x count) of a .mat, non-finite values kept."""
    import scipy.io

    if not path.is_file():
        raise PredictionError("prediction file not found", path)
    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises assorted ValueError/TypeError/OSError/MatReadError on damaged files
        raise PredictionError(f"not a readable .mat file ({exc.__class__.__name__}: {exc})", path) from None
    if FIELD not in mat:
        raise PredictionError(f"no {FIELD!r} array in the .mat", path)
    values = mat[FIELD]
    if values.shape != (NUM_JOINTS, 2, count):
        size = "x".join(map(str, values.shape))
        raise PredictionError(f"{FIELD} has size {size}; expected {NUM_JOINTS}x2x{count} for the {count} "
                              "ground-truth people", path)
    try:
        return np.transpose(np.asarray(values, dtype=np.float64), (2, 0, 1))
    except (TypeError, ValueError):
        raise PredictionError(f"{FIELD} must hold numbers", path) from None


def first_missing(coords: np.ndarray) -> tuple[int, int] | None:
    """(person, joint) of the first joint without finite coordinates in (N, 16, 2), or None."""
    bad = ~np.isfinite(coords).all(axis=-1)
    if not bad.any():
        return None
    person, joint = np.argwhere(bad)[0]
    return int(person), int(joint)


def _atomic_savemat(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """scipy.io.savemat into a temporary file beside ``path``, renamed over it: never half a file."""
    import scipy.io

    buffer = io.BytesIO()
    scipy.io.savemat(buffer, arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@SUBMISSIONS.register("mpii-mat")
class MpiiMat(SubmissionFormat):
    name = "mpii-mat"
    entry = "predictions/pred.mat"
    reader_options = ("allow_missing",)

    def add(self, sample: Sample, prediction: Any) -> list[dict[str, Any]]:
        """One record per ground-truth person of the sample: its .mat column and 16 0-based (x, y) pairs
        (non-finite values as None, so the records are strict JSON)."""
        target = sample.target
        if not isinstance(target, KeypointsTarget):
            raise BenchError(f"sample {sample.sample_id!r}: mpii-mat needs keypoint targets")
        if not isinstance(prediction, KeypointsPrediction):
            raise PredictionError(f"sample {sample.sample_id!r}: expected a KeypointsPrediction, got "
                                  f"{type(prediction).__name__}")
        people = np.asarray(target.ann_ids, dtype=np.int64).reshape(-1)
        coords = np.asarray(prediction.keypoints, dtype=np.float64)
        if coords.ndim != 3 or coords.shape[:2] != (len(people), NUM_JOINTS) or coords.shape[2] < 2:
            raise PredictionError(
                f"sample {sample.sample_id!r}: predicted keypoints {coords.shape} do not give the {NUM_JOINTS} MPII "
                f"joints of its {len(people)} ground-truth people (prediction i belongs to person i)")
        return [
            {"person": int(person),
             "joints": [[float(v) if np.isfinite(v) else None for v in xy] for xy in joints[:, :2]]}
            for person, joints in zip(people, coords)
        ]

    def finish(self, records: list[dict[str, Any]]) -> None:
        count = people_count(self.info)
        coords = np.full((count, NUM_JOINTS, 2), np.nan)
        seen: set[int] = set()
        for record in records:
            person = int(record["person"])
            if not 0 <= person < count:
                raise BenchError(f"mpii-mat: person #{person} is not one of the {count} ground-truth people")
            if person in seen:
                raise BenchError(f"mpii-mat: person #{person} was predicted twice")
            seen.add(person)
            coords[person] = np.array([[np.nan if v is None else v for v in xy] for xy in record["joints"]],
                                      dtype=np.float64)
        _atomic_savemat(self.path, {FIELD: np.transpose(coords + MATLAB_ORIGIN, (1, 2, 0))})

    @classmethod
    def reader(cls, info: Any, path: Path, allow_missing: bool = False) -> PredictionSource:
        path = Path(path)
        if path.is_dir():
            path = path / Path(cls.entry).name
        return MpiiMatPredictions(info, path, allow_missing)


class MpiiMatPredictions(PredictionSource):
    """``pos_pred_src`` handed out per sample, back in the 0-based evaluation space."""

    def __init__(self, info: Any, path: Path, allow_missing: bool = False) -> None:
        self.path = path
        self.allow_missing = allow_missing
        self.coords = read_pos_pred_src(path, people_count(info))

    def predict(self, sample: Sample) -> KeypointsPrediction:
        target = sample.target
        people = np.asarray(target.ann_ids, dtype=np.int64).reshape(-1)
        coords = self.coords[people]
        missing = first_missing(coords)
        if missing is not None and not self.allow_missing:
            slot, joint = missing
            raise PredictionError(
                f"person #{int(people[slot])} (sample {sample.sample_id!r}), joint {MPII_KEYPOINT_NAMES[joint]}: "
                f"no finite prediction {coords[slot, joint].tolist()} ({MISSING_HINT})", self.path)
        finite = np.isfinite(coords).all(axis=-1)
        coords = np.where(finite[..., None], coords, np.nan) - MATLAB_ORIGIN
        boxes = sample.prompts.boxes if isinstance(sample.prompts, PersonBoxes) else target.boxes
        return KeypointsPrediction(
            keypoints=np.concatenate([coords, finite[..., None].astype(np.float64)], axis=-1),
            scores=np.ones(len(people)),
            boxes=np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        )
