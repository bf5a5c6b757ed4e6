"""``bench eval`` reads COCO results piece by piece; the pieces must make exactly the table (and so exactly the
precision/recall arrays) that the whole list makes, and the file path must score like pycocotools."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from coco_oracles import pycocotools_eval

from harness.file_eval.base import EvalRequest
from harness.io.jsonio import iter_json_array
from harness.metrics.coco import make_params
from harness.metrics.coco.evaluator import evaluate_tables
from harness.metrics.coco.tables import load_ground_truth, load_result_chunks, load_results

DATA = Path(__file__).resolve().parents[1] / "data"
GT = DATA / "coco" / "instances_val2014_100.json"
RESULTS = {"bbox": DATA / "coco" / "instances_val2014_fakebbox100_results.json",
           "segm": DATA / "coco" / "instances_val2014_fakesegm100_results.json"}


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_pieces_make_the_same_table_and_arrays(iou_type: str) -> None:
    gt = load_ground_truth(json.loads(GT.read_text()), iou_type)
    whole = load_results(json.loads(RESULTS[iou_type].read_text()), gt, iou_type)
    pieces = list(iter_json_array(RESULTS[iou_type], piece_bytes=2048))
    assert len(pieces) > 5
    streamed = load_result_chunks(pieces, gt, iou_type)
    for name in ("image", "category", "score", "area", "bbox"):
        a, b = getattr(whole, name), getattr(streamed, name)
        assert (a is None and b is None) or np.array_equal(a, b), name
    assert streamed.masks == whole.masks
    params = make_params(iou_type)
    ours, reference = evaluate_tables(gt, streamed, params), evaluate_tables(gt, whole, params)
    np.testing.assert_array_equal(ours.precision, reference.precision)
    np.testing.assert_array_equal(ours.recall, reference.recall)


@pytest.mark.parametrize("iou_type, task", [("bbox", "detection"), ("segm", "instance")])
def test_file_evaluation_in_small_pieces_equals_pycocotools(iou_type: str, task: str, monkeypatch) -> None:
    import harness.io.jsonio as jsonio
    from harness.file_eval.coco_results import evaluate_coco_files

    monkeypatch.setattr(jsonio, "ARRAY_PIECE_BYTES", 1500)
    monkeypatch.setattr(jsonio.iter_json_array, "__defaults__", (1500,))
    result = evaluate_coco_files(EvalRequest(task, GT, RESULTS[iou_type]))
    reference = pycocotools_eval(json.loads(GT.read_text()), json.loads(RESULTS[iou_type].read_text()), iou_type)
    np.testing.assert_allclose(list(result.metrics.values()), reference.stats, atol=1e-12, rtol=0)
    assert result.settings["results"] == len(json.loads(RESULTS[iou_type].read_text()))


def test_a_bad_result_is_named_by_its_index_in_the_file(tmp_path) -> None:
    from harness.core.errors import PredictionError
    from harness.file_eval.coco_results import evaluate_coco_files

    results = json.loads(RESULTS["bbox"].read_text())
    results[555]["score"] = "high"
    bad = tmp_path / "results.json"
    bad.write_text(json.dumps(results))
    import harness.io.jsonio as jsonio

    defaults = jsonio.iter_json_array.__defaults__
    jsonio.iter_json_array.__defaults__ = (1000,)  # many pieces: the index must still be the file's
    try:
        with pytest.raises(PredictionError, match=r"result #555: score must be a number"):
            evaluate_coco_files(EvalRequest("detection", GT, bad))
    finally:
        jsonio.iter_json_array.__defaults__ = defaults
