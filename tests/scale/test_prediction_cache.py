"""Prediction cache: the codec never unpickles, interrupted runs resume without recomputing, --no-cache works."""
from __future__ import annotations

import io
import json
import struct
import zlib
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import toyplugin
from harness.io import safecodec
from harness.run.bench_run import RunConfig, run_models
from harness.run.prediction_cache import MISSING, PredictionCache
from harness.core.structures import DetectionPrediction, FlowPrediction, KeypointsPrediction, SemanticPrediction


def toy_config(tmp_path, **changes) -> RunConfig:
    base = RunConfig(task="toy", models=("toy-linear",), batch_size=8, reports_dir=tmp_path / "reports",
                     leaderboards_dir=tmp_path / "lb", cache_dir=tmp_path / "cache", bootstrap=20)
    return replace(base, **changes)


@pytest.fixture
def calls(monkeypatch):
    monkeypatch.setattr(toyplugin.ToyLinear, "calls", [])
    monkeypatch.setattr(toyplugin.ToyLinear, "fail_after", None)
    return toyplugin.ToyLinear.calls


floats = hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
                    elements=st.floats(allow_nan=True, allow_infinity=True, width=64))


@settings(max_examples=40, deadline=None)
@given(keypoints=floats, scores=floats, labels=hnp.arrays(np.int64, st.integers(0, 5)),
       counts=st.binary(max_size=40), flow=hnp.arrays(np.float32, (2, 3, 2)))
def test_every_prediction_type_round_trips_bit_for_bit(keypoints, scores, labels, counts, flow):
    values = [
        KeypointsPrediction(keypoints=keypoints, scores=scores, boxes=np.zeros((0, 4))),
        DetectionPrediction(boxes=np.ones((len(labels), 4)), scores=labels.astype(np.float32), labels=labels,
                            masks=[{"size": [4, 5], "counts": counts}] * len(labels)),
        DetectionPrediction(boxes=np.zeros((0, 4)), scores=np.zeros(0), labels=np.zeros(0, np.int64)),
        SemanticPrediction(label_map=labels.reshape(-1, 1).astype(np.uint8)),
        FlowPrediction(flow=flow),
        toyplugin.ToyPrediction(scores=np.array([0.5, 0.25, 0.25])),
        {"nested": (1, "two", None, [np.int64(3), float("nan")])},
    ]
    header, back = safecodec.loads(io.BytesIO(safecodec.dumps({"ids": [1]}, values)))
    assert header == {"ids": [1]}
    for original, restored in zip(values, back):
        assert type(restored) is type(original)
        if isinstance(original, dict):
            assert restored["nested"][:3] == (1, "two", None) and restored["nested"][3][0] == 3
            assert np.isnan(restored["nested"][3][1])
            continue
        for name, value in vars(original).items():
            got = getattr(restored, name)
            if isinstance(value, np.ndarray):
                assert got.dtype == value.dtype and got.shape == value.shape
                assert np.array_equal(got, value, equal_nan=True)
            else:
                assert got == value


def test_codec_refuses_unregistered_types_and_object_arrays():
    class Secret:
        pass

    with pytest.raises(safecodec.CodecError, match="cannot store a value of type Secret"):
        safecodec.dumps({}, [Secret()])
    with pytest.raises(safecodec.CodecError, match="objects"):
        safecodec.dumps({}, [np.array([{}], dtype=object)])
    with pytest.raises(safecodec.CodecError, match="records"):
        safecodec.dumps({}, [np.zeros(2, dtype=[("a", "i4"), ("b", "O")])])
    forged = json.dumps({"header": {}, "values": [{"__dataclass__": "os._wrap_close", "fields": {}}], "arrays": []}).encode()
    blob = safecodec.MAGIC + struct.pack("<Q", len(forged)) + forged + zlib.compress(b"")
    with pytest.raises(safecodec.CodecError, match="not a registered prediction type"):
        safecodec.loads(io.BytesIO(blob))
    with pytest.raises(safecodec.CodecError, match="not a bench prediction file"):
        safecodec.loads(io.BytesIO(b"\x80\x04pickle"))


def test_a_forged_object_array_in_the_cache_is_refused_and_recomputed(tmp_path):
    cache = PredictionCache(tmp_path, "model", "data", "cpu")
    chunk = cache.put([1, 2], [toyplugin.ToyPrediction(np.ones(3)), toyplugin.ToyPrediction(np.zeros(3))], 0.01)
    blob = chunk.read_bytes()
    forged = blob.replace(b'"dtype": "<f8"', b'"dtype": "|O8"', 1)
    assert forged != blob
    chunk.write_bytes(forged)
    fresh = PredictionCache(tmp_path, "model", "data", "cpu")
    assert fresh.chunk_of(1) == chunk  # the header is fine; the arrays are what is refused
    with pytest.warns(UserWarning, match="unreadable prediction cache chunk.*refusing stored dtype"):
        assert fresh.get(1, MISSING) is MISSING
    assert fresh.get(2, MISSING) is MISSING  # the whole chunk is dropped, so it is recomputed
    chunk.write_bytes(blob[:-5])  # truncated
    with pytest.warns(UserWarning, match="damaged array data"):
        assert PredictionCache(tmp_path, "model", "data", "cpu").get(1, MISSING) is MISSING


def test_int_and_str_ids_do_not_collide(tmp_path):
    cache = PredictionCache(tmp_path, "m", "d", "cuda:1")
    cache.put([7], [toyplugin.ToyPrediction(np.ones(3))], 0.0)
    assert cache.get("7", MISSING) is MISSING and cache.get(7) is not None
    assert PredictionCache(tmp_path, "m", "d", "cuda:0").get(7) is not None  # device kind, not index
    assert PredictionCache(tmp_path, "m", "d", "cpu").get(7, MISSING) is MISSING


def test_interrupted_run_resumes_with_only_the_missing_samples(tmp_path, calls):
    config = toy_config(tmp_path, limit=45)
    toyplugin.ToyLinear.fail_after = 2
    with pytest.raises(KeyboardInterrupt):
        run_models(config)
    assert calls == [8, 8] and not list(config.reports_dir.glob("*/metrics.json"))
    toyplugin.ToyLinear.fail_after = None
    resumed = run_models(config)[0]
    assert calls == [8, 8, 8, 8, 8, 5]  # 45 - 16 samples, nothing twice
    assert resumed["throughput"]["cached_samples"] == 16 and resumed["throughput"]["predicted_samples"] == 29

    calls.clear()
    uninterrupted = run_models(replace(config, cache=False, reports_dir=tmp_path / "other"))[0]
    assert calls == [8, 8, 8, 8, 8, 5]
    for key in ("metrics", "per_class", "curves", "confidence"):
        assert resumed[key] == uninterrupted[key]
    assert (read_predictions(resumed) == read_predictions(uninterrupted))


def test_rescoring_from_the_cache_calls_nothing_and_keeps_the_measured_throughput(tmp_path, calls):
    config = toy_config(tmp_path)
    first = run_models(config)[0]
    calls.clear()
    again = run_models(config)[0]
    assert calls == []
    assert again["metrics"] == first["metrics"] and read_predictions(again) == read_predictions(first)
    assert again["throughput"]["images_per_s"] == first["throughput"]["images_per_s"]
    assert again["throughput"]["cached_samples"] == 60


def test_another_batch_size_never_reuses_cached_predictions(tmp_path, calls, monkeypatch):
    """A batch-sensitive model's predictions (and every model's timings) belong to their batch size."""
    monkeypatch.setattr(toyplugin.ToyLinear, "batch_invariant", False)
    run_models(toy_config(tmp_path))
    calls.clear()
    other = run_models(toy_config(tmp_path, batch_size=5))[0]
    assert calls == [5] * 12 and other["throughput"]["cached_samples"] == 0
    calls.clear()
    run_models(toy_config(tmp_path, batch_size=5))
    run_models(toy_config(tmp_path))
    assert calls == []  # each batch size keeps its own entry
    [model_dir] = (tmp_path / "cache").iterdir()
    assert sorted(path.name.rsplit("-", 1)[1] for path in model_dir.iterdir()) == ["b5w1", "b8w1"]


def test_batching_key_names_processes_only_for_batch_sensitive_models():
    from harness.run.prediction_cache import batching_key

    class Sensitive:
        pass

    class Invariant:
        batch_invariant = True

    assert batching_key(Sensitive(), 16, 2) == "b16w2" != batching_key(Sensitive(), 16, 1)
    assert batching_key(Invariant(), 16, 2) == batching_key(Invariant(), 16, 1) == "b16"
    assert batching_key(Invariant(), 4) != batching_key(Invariant(), 16)


def test_a_different_checkpoint_is_a_different_cache_entry(tmp_path, calls):
    run_models(toy_config(tmp_path))
    calls.clear()
    worse = toyplugin.save_weights(tmp_path / "worse.pt", noise=2.0)
    run_models(toy_config(tmp_path, checkpoint=worse))
    assert sum(calls) == 60


def read_predictions(record):
    from pathlib import Path

    return json.loads((Path(record["run_dir"]) / "predictions.json").read_text())


def test_an_unregistered_prediction_type_runs_uncached_with_a_warning(tmp_path, calls, monkeypatch):
    from dataclasses import dataclass

    @dataclass
    class Unregistered:
        scores: np.ndarray

    original = toyplugin.ToyLinear.predict
    monkeypatch.setattr(toyplugin.ToyLinear, "predict",
                        lambda self, samples: [Unregistered(p.scores) for p in original(self, samples)])
    with pytest.warns(UserWarning, match="prediction cache disabled for 'toy-linear': .*Unregistered is not a registered"):
        record = run_models(toy_config(tmp_path, limit=20))[0]
    assert record["samples"] == 20 and sum(calls) == 20
    assert not list((tmp_path / "cache").rglob("chunk-*"))


def test_changing_the_adapter_code_changes_the_cache_key(tmp_path, monkeypatch):
    import importlib
    import sys

    from harness.run.prediction_cache import code_fingerprint

    package = tmp_path / "myadapters"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text("class M:\n    scale = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("myadapters.model")
    before = code_fingerprint(module.M())
    assert code_fingerprint(module.M()) == before
    (package / "model.py").write_text("class M:\n    scale = 2  # a preprocessing fix\n")
    assert code_fingerprint(module.M()) != before
    for name in ("myadapters.model", "myadapters"):
        sys.modules.pop(name, None)


def test_the_cache_key_does_not_depend_on_which_modules_were_imported_first(tmp_path, monkeypatch):
    import importlib
    import sys

    from harness.run.prediction_cache import code_fingerprint

    package = tmp_path / "lazyadapters"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text("class M:\n    pass\n")
    (package / "postprocess.py").write_text("STEP = 1\n")  # imported lazily, inside predict
    monkeypatch.syspath_prepend(str(tmp_path))
    model = importlib.import_module("lazyadapters.model").M()
    before = code_fingerprint(model)
    importlib.import_module("lazyadapters.postprocess")
    assert code_fingerprint(model) == before
    (package / "postprocess.py").write_text("STEP = 2\n")
    assert code_fingerprint(model) != before
    for name in ("lazyadapters.postprocess", "lazyadapters.model", "lazyadapters"):
        sys.modules.pop(name, None)
