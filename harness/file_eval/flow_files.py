"""Optical flow from folders of Middlebury ``.flo`` files, with the Sintel breakdowns when its masks exist.

Ground truth is either the MPI-Sintel layout (``--gt`` is the dataset root, ``training/`` or the folder that
holds ``flow/``): ``flow/<scene>/frame_XXXX.flo`` with optional ``occlusions/<scene>/frame_XXXX.png`` and
``invalid/<scene>/frame_XXXX.png`` (non-zero = occluded / out of frame), or a plain folder of ``.flo`` files.
A prediction sits at the same relative path under ``--pred`` (``<scene>/frame_XXXX.flo``).  Files are read
one pair at a time.

Dialects name the averaging unit: ``pixels`` (default; RAFT's Sintel numbers pool every pixel) or
``per-image`` (ptlflow).  ``--px-convention`` says whether 1px/3px/5px are accuracies (EPE < N, RAFT,
ptlflow) or error rates (EPE > N, GMFlow).
"""
from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np

from harness.core.errors import DataError, PredictionError
from harness.file_eval import FILE_EVALUATORS
from harness.file_eval.base import EvalRequest, FileEvaluator, index_files, pair_files, require_dir
from harness.io.flowio import read_flo
from harness.core.metric import MetricResult
from harness.core.structures import FlowTarget
from harness.metrics.flow import FlowAveraging

DIALECTS = ("pixels", "per-image")
MASK_FOLDERS = {"occluded": "occlusions", "out_of_frame": "invalid"}


def _layout(gt: Path) -> tuple[Path, Path | None]:
    """(folder of GT .flo files, Sintel root holding the mask folders or None for a plain folder)."""
    require_dir(gt, "ground-truth")
    for root in (gt / "training", gt):
        if (root / "flow").is_dir():
            return root / "flow", root
    return gt, None


def _relative_key(root: Path):
    return lambda path: path.relative_to(root).with_suffix("").as_posix()


def _read_prediction(path: Path) -> np.ndarray:
    try:
        return read_flo(path)
    except DataError as exc:  # the same message, blamed on the prediction
        raise PredictionError(str(exc).removeprefix(f"{path}: "), path) from None


def evaluate_flow_files(request: EvalRequest) -> MetricResult:
    from harness.metrics.flow import FlowMetric

    flow_root, sintel_root = _layout(request.gt)
    if request.dataset == "sintel" and sintel_root is None:
        raise DataError("--dataset sintel expects flow/<scene>/*.flo under the folder or under training/", request.gt)
    pred_root = require_dir(request.pred, "prediction", PredictionError)
    gt_files = index_files(flow_root.rglob("*.flo"), _relative_key(flow_root), "ground-truth", DataError)
    pred_files = index_files(pred_root.rglob("*.flo"), _relative_key(pred_root), "prediction", PredictionError)
    pairs = pair_files(gt_files, pred_files, flow_root, lambda key: f"{pred_root}/{key}.flo")
    masks = {}
    if sintel_root is not None:
        masks = {name: sintel_root / folder for name, folder in MASK_FOLDERS.items()
                 if (sintel_root / folder).is_dir()}

    averaging = cast(FlowAveraging, request.dialect or "pixels")  # the evaluator checked the dialect
    metric = FlowMetric(averaging=averaging, px_convention=request.option("px_convention", "accuracy"))
    for key, gt_path, pred_path in request.track(pairs, "flow files"):
        gt = read_flo(gt_path)
        pred = _read_prediction(pred_path)
        if pred.shape != gt.shape:
            raise PredictionError(f"flow is {pred.shape[1]}x{pred.shape[0]} (WxH), ground truth {gt_path.name} is "
                                  f"{gt.shape[1]}x{gt.shape[0]}", pred_path)
        from harness.datasets.sintel import read_mask  # Pillow and the dataset registry: only when flow runs

        fields = {name: read_mask(folder / f"{key}.png", gt.shape[:2]) for name, folder in masks.items()}
        try:
            metric.add_batch([(pred, FlowTarget(flow=gt, **fields), key)])
        except PredictionError as exc:
            raise PredictionError(str(exc), pred_path) from None
        except DataError as exc:
            raise DataError(str(exc), gt_path) from None
    result = metric.compute()
    if not masks:  # without occlusion/invalid masks there is no matched/unmatched split
        for name in ("EPE_matched", "EPE_unmatched"):
            result.metrics.pop(name, None)
            result.higher_is_better.pop(name, None)
    result.settings.update(
        dialect=averaging, items=len(pairs), layout="sintel" if sintel_root is not None else "flat",
        masks={name: str(folder) for name, folder in masks.items()}, ground_truth=str(flow_root),
        predictions=str(pred_root), matching="same relative path, .flo",
    )
    return result


FILE_EVALUATORS.register("flow")(
    FileEvaluator(
        run=evaluate_flow_files,
        options=frozenset({"px_convention"}),
        datasets=("sintel",),  # the layout is recognised anyway; naming it makes a flat folder an error
        dialects=DIALECTS,
        summary=".flo folders (Sintel layout or flat) matched by relative path",
    )
)
