"""RunRecord: metrics.json typed, checked when read back (errors name the file and the field), written back exactly."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.core.errors import DataError
from harness.core.run_record import RunRecord
from harness.publish.reports import iter_records, iter_run_records

RECORD = {
    "run_id": "20260101T000000000000Z_toy_toy-set_toy-linear", "task": "toy",
    "dataset": {"name": "toy-set", "split": "val", "root": "/tmp/x", "fingerprint": "ab12", "size": 60,
                "registry": "toy-set", "data_root": None, "requested_split": None},
    "model": {"name": "toy-linear", "fingerprint": "cd34", "checkpoint": None, "input_size": None, "parameters": 12,
              "published": None},
    "limit": None, "batch_size": 16,
    "protocol": {"name": "toy", "version": 1, "key": "toy@1[toy_accuracy:1]", "headline": "accuracy"},
    "predictions": {"format": "toy-json", "path": "predictions.json"}, "samples": 60,
    "metrics": {"accuracy": 0.75, "brier": 0.3, "undefined": float("nan")},
    "confidence": {"accuracy": [0.65, 0.85]}, "bootstrap": {"resamples": 200},
    "higher_is_better": {"accuracy": True, "brier": False, "undefined": True},
    "per_class": {}, "curves": {}, "settings": {}, "throughput": {"images_per_s": 100.0},
    "provenance": {"git_sha": "0123456789abcdef", "device": "cpu"},
    "started_utc": "2026-01-01T00:00:00Z", "finished_utc": "2026-01-01T00:00:01Z",
    "from_a_newer_version": {"kept": True},
}


def test_to_dict_inverts_from_dict_and_keeps_unknown_keys(tmp_path: Path) -> None:
    run = RunRecord.from_dict(RECORD)
    assert run.dataset.name == "toy-set" and run.model.parameters == 12 and run.protocol_key == "toy@1[toy_accuracy:1]"
    assert run.metric("accuracy") == 0.75 and run.metric("missing") is None and run.interval("accuracy") == (0.65, 0.85)
    assert json.dumps(run.to_dict(), sort_keys=True) == json.dumps(RECORD, sort_keys=True)
    assert list(run.to_dict())[:-1] == [k for k in RECORD if k != "from_a_newer_version"]  # the order bench writes
    run.dump(tmp_path / "metrics.json")
    assert RunRecord.load(tmp_path / "metrics.json").to_dict() == json.loads(json.dumps(run.to_dict()))


@pytest.mark.parametrize("change, field, problem", [
    ({"metrics": {"accuracy": "high"}}, "metrics.accuracy", "expected a number, got 'high'"),
    ({"metrics": {"accuracy": True}}, "metrics.accuracy", "expected a number"),
    ({"dataset": {"split": "val"}}, "dataset.name", "missing"),
    ({"model": "toy-linear"}, "model", "expected an object"),
    ({"confidence": {"accuracy": [0.1]}}, "confidence.accuracy", "expected [low, high]"),
    ({"higher_is_better": {"accuracy": "yes"}}, "higher_is_better.accuracy", "expected true or false"),
    ({"samples": 6.5}, "samples", "expected an integer"),
    ({"finished_utc": None}, "finished_utc", "missing"),
])
def test_a_malformed_field_is_one_error_naming_file_and_field(tmp_path: Path, change: dict, field: str,
                                                              problem: str) -> None:
    path = tmp_path / "reports" / "run" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({**RECORD, **change}))
    with pytest.raises(DataError) as caught:
        RunRecord.load(path)
    assert str(caught.value).startswith(f"{path}: field '{field}': {problem}")
    # every reader of reports goes through the same check
    with pytest.raises(DataError, match=f"field '{field}'"):
        list(iter_records(tmp_path / "reports"))


def test_not_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text("{\"run_id\": ")
    with pytest.raises(DataError, match=r"metrics\.json: not JSON \(line 1"):
        RunRecord.load(path)


def test_iter_run_records_types_what_it_reads(tmp_path: Path) -> None:
    RunRecord.from_dict(RECORD).dump(tmp_path / "a" / "metrics.json")
    (run,) = iter_run_records(tmp_path)
    assert run.model.name == "toy-linear" and run.extra["run_dir"] == str(tmp_path / "a")
