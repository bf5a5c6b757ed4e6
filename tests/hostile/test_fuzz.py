"""Hypothesis fuzzing (issue 11): every metric API and ``bench eval`` either score what they are given or refuse
it with a ``BenchError``; nothing else escapes (0 crashes).  Predictions are drawn around the real targets of
the embedded datasets: right and wrong shapes, NaN, inf, huge and negative numbers, unknown labels, empty sets,
random RLE strings."""
from __future__ import annotations

import json
import math
from functools import lru_cache

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from harness.run.bench_run import get_task, open_dataset
from harness.cli import main
from harness.core.errors import BenchError
from harness.core.metric import MetricResult
from harness.core.structures import (DetectionPrediction, DetectionTarget, FlowPrediction, KeypointsPrediction,
                                KeypointsTarget, SemanticPrediction, SemanticTarget)
from tests.hostile import cases as c

SETUPS = [("detection", "coco"), ("detection", "voc"), ("instance", "coco"), ("instance", "cityscapes"),
          ("keypoints", "coco"), ("keypoints", "mpii"), ("semantic", "voc"), ("semantic", "cityscapes"),
          ("flow", "sintel")]
EXAMPLES = 40

floats = st.one_of(st.floats(-1e3, 1e3), st.sampled_from([np.nan, np.inf, -np.inf, 1e300, -1e12, 0.0, -1.0]))


@lru_cache(maxsize=None)
def setup(task_name: str, dataset_name: str):
    task = get_task(task_name)
    dataset = open_dataset(task, dataset_name, None, None)
    return task, dataset, [dataset[i] for i in range(2)]


def rle_strategy(height: int, width: int):
    from pycocotools import mask as mask_utils

    valid = st.integers(0, 2**32 - 1).map(lambda seed: {k: (v.decode() if k == "counts" else v) for k, v in
                                                        mask_utils.encode(np.asfortranarray(
                                                            (np.random.default_rng(seed).random((height, width)) < 0.3)
                                                            .astype(np.uint8))).items()})
    junk = st.fixed_dictionaries({"size": st.sampled_from([[height, width], [height + 1, width], [0, 0]]),
                                  "counts": st.text(alphabet=[chr(i) for i in range(40, 115)], max_size=12)})
    return st.one_of(valid, junk)


@st.composite
def prediction_for(draw, target, info):
    if isinstance(target, DetectionTarget):
        n = draw(st.integers(0, 6))
        boxes = draw(hnp.arrays(np.float64, (n, 4), elements=floats))
        scores = draw(hnp.arrays(np.float64, (n,), elements=floats))
        ids = list(info.category_ids) or [1]
        labels = np.asarray(draw(st.lists(st.one_of(st.sampled_from(ids), st.integers(-5, 1000)), min_size=n,
                                          max_size=n)), dtype=np.int64)
        masks = None
        if info.task == "instance":
            masks = draw(st.lists(rle_strategy(int(target.height), int(target.width)), min_size=n, max_size=n))
        return DetectionPrediction(boxes=boxes, scores=scores, labels=labels, masks=masks)
    if isinstance(target, KeypointsTarget):
        people = len(target.keypoints) if draw(st.booleans()) else draw(st.integers(0, 3))
        k = target.keypoints.shape[1] if target.keypoints.ndim == 3 else 17
        return KeypointsPrediction(keypoints=draw(hnp.arrays(np.float64, (people, k, 3), elements=floats)),
                                   scores=draw(hnp.arrays(np.float64, (people,), elements=floats)),
                                   boxes=draw(hnp.arrays(np.float64, (people, 4), elements=floats)))
    if isinstance(target, SemanticTarget):
        h, w = target.label_map.shape
        shape = (h, w) if draw(st.booleans()) else draw(st.sampled_from([(h, w + 1), (1, 1), (h, w, 1)]))
        top = max(len(info.classes), 1)
        values = st.one_of(st.integers(0, top - 1), st.sampled_from([255, top, top + 7]))
        return SemanticPrediction(label_map=draw(hnp.arrays(np.int64, shape, elements=values)))
    shape = target.flow.shape if draw(st.booleans()) else draw(st.sampled_from([(2, 2, 2), target.flow.shape[:2]]))
    return FlowPrediction(flow=draw(hnp.arrays(np.float32, shape, elements=st.floats(-1e3, 1e3, width=32) |
                                               st.sampled_from([np.nan, np.inf]))))


def check_result(result: MetricResult) -> None:
    for name, value in result.metrics.items():
        assert isinstance(value, (int, float)) and (math.isfinite(value) or math.isnan(value)), (name, value)


@pytest.mark.parametrize("task_name, dataset_name", SETUPS, ids=[f"{t}-{d}" for t, d in SETUPS])
def test_metric_apis_never_crash(task_name, dataset_name):
    task, dataset, samples = setup(task_name, dataset_name)
    outcomes = {"scored": 0, "refused": 0}

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.data())
    def run(data):
        predictions = [data.draw(prediction_for(sample.target, dataset.info)) for sample in samples]
        metrics = task.metrics(dataset.info, None)
        try:
            for metric in metrics:
                metric.update(samples, predictions)
                check_result(metric.compute())
        except BenchError as exc:
            assert "\n" not in str(exc)
            outcomes["refused"] += 1
            return
        outcomes["scored"] += 1

    run()
    assert outcomes["scored"] + outcomes["refused"] >= EXAMPLES


record_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | floats | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


@st.composite
def result_record(draw, iou: str):
    record = {"image_id": draw(st.sampled_from([1, 2, 3, "1", 1.0, None])),
              "category_id": draw(st.sampled_from([1, 2, "1", None])),
              "score": draw(floats | st.sampled_from(["0.5", None, True]))}
    if iou == "bbox":
        record["bbox"] = draw(st.lists(floats, min_size=3, max_size=5) | record_values)
    elif iou == "segm":
        record["segmentation"] = draw(st.one_of(
            st.lists(st.lists(floats, min_size=4, max_size=10), min_size=1, max_size=2),
            rle_strategy(48, 64), st.fixed_dictionaries({"size": st.just([48, 64]),
                                                         "counts": st.lists(st.integers(-5, 4000), max_size=4)}),
            record_values))
    else:
        record["keypoints"] = draw(st.lists(floats, min_size=50, max_size=52) | record_values)
    for key in draw(st.lists(st.sampled_from(sorted(record)), max_size=1)):
        del record[key]
    return record


@pytest.mark.parametrize("task_name, iou", [("detection", "bbox"), ("instance", "segm"), ("keypoints", "keypoints")])
def test_bench_eval_never_crashes(tmp_path, task_name, iou):
    gt = c.write_json(tmp_path / "gt.json", c.coco_gt())
    pred = tmp_path / "pred.json"
    codes = []

    @settings(max_examples=EXAMPLES * 2, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.lists(result_record(iou), max_size=6))
    def run(results):
        pred.write_text(json.dumps(results, allow_nan=True))
        result = CliRunner().invoke(main, ["eval", "--task", task_name, "--gt", str(gt), "--pred", str(pred)])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code in (0, 2), result.output
        if result.exit_code == 2:
            assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1, result.stderr
        codes.append(result.exit_code)

    run()
    assert len(codes) >= EXAMPLES
