"""A COCO results json scored against a COCO annotation file: boxes, masks or keypoints (COCOeval semantics).

Tasks map to iou types (detection -> bbox, instance -> segm, keypoints -> keypoints; ``--iou-type`` overrides,
e.g. box AP of instance-segmentation results).  Dialects:

* ``pycocotools`` (default): the file as COCOeval sees it.  A segm result that carries ``bbox`` then gets the
  box area (``loadRes`` looks at ``bbox`` first), which moves APs/APm/APl.
* ``detectron2`` and ``mmdet``: both drop ``bbox`` from segm results before evaluating, so areas are mask areas;
  ``mmdet`` also sets maxDets to (100, 300, 1000), so its AP50/AP75/APs/m/l use up to 1000 detections.

``--max-dets`` overrides the limits (``coco``, ``mmdet`` or a list such as ``1,10,100``).  Validation (unknown
image or category ids, NaN scores, negative box sizes) is the evaluator's, and names the result.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

from harness.core.errors import BenchError, DataError, PredictionError
from harness.file_eval import FILE_EVALUATORS
from harness.file_eval.base import EvalRequest, FileEvaluator, require_file
from harness.io import prefetch
from harness.io.jsonio import gc_paused, iter_json_array, read_json
from harness.core.metric import MetricResult

IOU_TYPE_OF_TASK = {"detection": "bbox", "instance": "segm", "keypoints": "keypoints"}
#: the kinds under which ``harness.cli.early`` prefetches the two files (``harness.io.prefetch``)
RESULTS, GROUND_TRUTH = "coco-results", "coco-ground-truth"
DIALECTS = ("pycocotools", "detectron2", "mmdet")
DROPS_SEGM_BBOX = ("detectron2", "mmdet")


def parse_max_dets(text: str | None, dialect: str) -> tuple[int, ...] | None:
    """None means the evaluator's default for the iou type."""
    from harness.metrics.coco import MMDET_MAX_DETS

    if text is None:
        return MMDET_MAX_DETS if dialect == "mmdet" else None
    if text == "coco":
        return None
    if text == "mmdet":
        return MMDET_MAX_DETS
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise BenchError(f"--max-dets must be coco, mmdet or integers such as 1,10,100 (got {text!r})") from None
    if any(value < 1 for value in values):
        raise BenchError(f"--max-dets must be positive (got {text!r})")
    return values


def parse_sigmas(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise BenchError(f"--sigmas must be comma-separated numbers (got {text!r})") from None
    if not values or any(not (value > 0 and value < float("inf")) for value in values):
        raise BenchError(f"--sigmas must be positive finite numbers (got {text!r})")
    return values


def _keypoint_sigmas(gt: Any, text: str | None, path: Path) -> list[float] | None:
    """The sigmas for the keypoint categories, or None for COCO-17; refuses a skeleton without sigmas."""
    sigmas = parse_sigmas(text) if text is not None else None
    counts = set()
    for category in gt.get("categories", []) if isinstance(gt, dict) else []:
        if isinstance(category, dict) and isinstance(category.get("keypoints"), list):
            counts.add(len(category["keypoints"]))
    if len(counts) > 1:
        raise DataError(f"categories define different keypoint counts {sorted(counts)}", path)
    count = counts.pop() if counts else None
    if sigmas is None and count not in (None, 17):
        raise DataError(f"categories define {count} keypoints; COCO-17 sigmas do not fit, pass --sigmas "
                        f"with {count} values", path)
    if sigmas is not None and count is not None and len(sigmas) != count:
        raise BenchError(f"--sigmas has {len(sigmas)} values, the categories in {path} define {count} keypoints")
    return sigmas


class _Counted:
    """Passes pieces through and counts their items."""

    def __init__(self, pieces: Iterator[Any]) -> None:
        self.pieces, self.count = pieces, 0

    def __iter__(self) -> Iterator[Any]:
        for piece in self.pieces:
            self.count += len(piece) if isinstance(piece, list) else 0
            yield piece


class _SegmResults:
    """Which area a segm result gets, decided on the way through: pycocotools' ``loadRes`` uses w*h of ``bbox``
    when the first result has one; the detectron2 and mmdet dialects drop ``bbox`` from segm results."""

    def __init__(self, dialect: str) -> None:
        self.dialect, self.with_box = dialect, 0
        self.first_has_box: bool | None = None

    def pieces(self, pieces: Iterator[Any]) -> Iterator[Any]:
        for piece in pieces:
            if isinstance(piece, list):
                if self.first_has_box is None and piece:
                    self.first_has_box = isinstance(piece[0], dict) and piece[0].get("bbox", []) != []
                self.with_box += sum(1 for result in piece if isinstance(result, dict) and "bbox" in result)
                if self.dialect in DROPS_SEGM_BBOX:
                    piece = [{k: v for k, v in r.items() if k != "bbox"} if isinstance(r, dict) else r
                             for r in piece]
            yield piece

    def area(self, notes: list[str]) -> str:
        if self.dialect in DROPS_SEGM_BBOX:
            return "mask area ('bbox' dropped from results, as detectron2 and mmdet do)"
        if self.with_box and self.first_has_box:
            notes.append(f"{self.with_box} segm results carry 'bbox', so pycocotools uses box areas for "
                         "APs/APm/APl; --dialect detectron2 or mmdet drops them")
            return "w*h of each result's 'bbox' (pycocotools loadRes)"
        return "mask area"


def evaluate_coco_files(request: EvalRequest) -> MetricResult:
    """Score the files streaming: the ground truth is parsed whole, the results piece by piece
    (``iter_json_array``), each piece turned into columns at once, so no per-result object outlives its piece.

    The cyclic garbage collector stays paused throughout: nothing here forms reference cycles, and with it on,
    every piece's fresh dicts would be scanned again and again as they age through its generations.
    """
    with gc_paused():
        return _evaluate_coco_files(request)


def _evaluate_coco_files(request: EvalRequest) -> MetricResult:
    from harness.metrics.coco import make_params
    from harness.metrics.coco.evaluator import evaluate_tables
    from harness.metrics.coco.tables import (
        ground_truth_from_columns, load_ground_truth, load_result_bytes, load_result_chunks,
    )

    iou_type = request.option("iou_type") or IOU_TYPE_OF_TASK[request.task]
    dialect = request.dialect or "pycocotools"
    if iou_type == "keypoints" and dialect != "pycocotools":
        raise BenchError(f"--dialect {dialect} applies to boxes and masks; keypoints use pycocotools")
    if iou_type != "keypoints" and request.option("sigmas") is not None:
        raise BenchError("--sigmas applies to keypoints")
    # plain results: the compiled parser reads them on the other core while the ground truth loads
    parsed_results = _parse_in_background(request.pred)
    gt_path = require_file(request.gt, "ground-truth")
    # ground truth: annotations parsed straight into columns (None: the general reader)
    gt_parsed = _parse_ground_truth_file(gt_path, iou_type == "segm")
    gt = gt_parsed[4] if gt_parsed is not None else read_json(gt_path)
    pieces = iter_json_array(require_file(request.pred, "prediction", PredictionError))
    sigmas = _keypoint_sigmas(gt, request.option("sigmas"), request.gt) if iou_type == "keypoints" else None
    max_dets = parse_max_dets(request.option("max_dets"), dialect)
    try:
        params = make_params(iou_type, sigmas=sigmas, max_dets=max_dets)
    except ValueError as exc:  # parameter problems (e.g. fewer than three maxDets for boxes)
        raise BenchError(str(exc)) from None
    num_keypoints = len(params.sigmas) if params.sigmas is not None else None
    gt_table = ground_truth_from_columns(gt_parsed, iou_type, num_keypoints, request.gt) if gt_parsed else None
    if gt_table is None:
        if gt_parsed is not None:  # something the fast path does not decide: the general reader says what
            gt = read_json(gt_path)
        gt_table = load_ground_truth(gt, iou_type, num_keypoints, request.gt)
    images = len(gt.get("images", [])) if isinstance(gt, dict) else 0
    del gt  # the ground-truth objects are columns now

    notes: list[str] = []
    segm = _SegmResults(dialect) if iou_type == "segm" else None
    counted = _Counted(segm.pieces(pieces) if segm is not None else pieces)
    try:
        # plain box, RLE or keypoint results: parsed straight into columns; anything else (or any problem) streams
        parsed = parsed_results() if parsed_results is not None else None
        result_table = load_result_bytes(parsed, gt_table, iou_type, num_keypoints) if parsed is not None else None
        if result_table is not None:
            counted.count = len(result_table)
        else:
            result_table = load_result_chunks(counted, gt_table, iou_type, num_keypoints, request.pred)
        evaluation = evaluate_tables(gt_table, result_table, params)
    except ValueError as exc:  # e.g. keypoint-only results scored as boxes without a skeleton
        raise BenchError(str(exc)) from None
    segm_area = segm.area(notes) if segm is not None else None
    settings = evaluation.params.settings()
    settings["max_dets_dialect"] = settings.pop("dialect")
    settings.update(dialect=dialect, ground_truth=str(request.gt), predictions=str(request.pred),
                    images=images, results=counted.count)
    if segm_area is not None:
        settings["segm_area"] = segm_area
    if notes:
        settings["notes"] = notes
    return MetricResult(
        metrics=dict(evaluation.metrics),
        per_class=evaluation.per_category,
        settings=settings,
        higher_is_better={name: True for name in evaluation.metrics},
    )


def _parse_ground_truth_file(path: Path, segm: bool = False) -> Any:
    """``kernels.parse_ground_truth`` of the file, or None (no compiled kernels, or a file it does not take);
    the parse the command line started at start-up (``harness.cli.early``) when there is one for this file.
    ``segm``: with the segmentations (mask evaluation)."""
    from harness.metrics.coco import kernels

    if not kernels.ENABLED:
        return None
    with gc_paused():
        early = prefetch.take(GROUND_TRUTH, path)
        if early is not prefetch.MISSING:  # parsed for this command line's iou type (ground_truth_from_columns
            return kernels.ground_truth_from_raw(early)  # declines a parse without the segmentations)
        return kernels.parse_ground_truth(Path(path).read_bytes(), segm)


def _parse_in_background(path: Path) -> Callable[[], Any] | None:
    """Start ``kernels.parse_results_file`` on the file in a thread (the parser releases the GIL; a large file's
    two halves are parsed in two threads), unless the command line started it at start-up
    (``harness.cli.early``); the returned function waits for it.  Any failure (no compiled kernels, unreadable
    file) means None: the general path then reads the file and says what is wrong, in the order it always did."""
    from harness.metrics.coco import kernels

    if not kernels.ENABLED:
        return None
    if prefetch.started(RESULTS, path):
        def prefetched() -> Any:
            early = prefetch.take(RESULTS, path)
            if early is prefetch.MISSING:  # changed since, or unreadable: as if there had been no prefetch
                return kernels.parse_results(Path(path).read_bytes())
            return kernels.results_from_raw(early)

        return prefetched
    import threading

    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["parsed"] = kernels.parse_results_file(path)
        except Exception:  # noqa: BLE001 - the general path reports it
            box["parsed"] = None

    thread = threading.Thread(target=work, name="results-parser", daemon=True)
    thread.start()

    def result() -> Any:
        thread.join()
        return box.get("parsed")

    return result


_COCO = FileEvaluator(
    run=evaluate_coco_files,
    options=frozenset({"max_dets", "iou_type", "sigmas"}),
    dialects=DIALECTS,
    summary="COCO results json against a COCO annotation file",
)
# literal names (not a loop over IOU_TYPE_OF_TASK): the registry's source scan then finds them without
# importing every file evaluator or reading installed plugins' entry points
FILE_EVALUATORS.register("detection")(_COCO)
FILE_EVALUATORS.register("instance")(_COCO)
FILE_EVALUATORS.register("keypoints")(_COCO)
assert set(IOU_TYPE_OF_TASK) == {"detection", "instance", "keypoints"}
