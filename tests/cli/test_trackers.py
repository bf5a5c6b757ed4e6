"""Issue 12 item 7: `bench run --log wandb|mlflow|tensorboard`, each tracker offline, read back with its own reader.

One detection run (a few images, a gallery of 3) is logged to all three trackers in a subprocess (wandb starts
its own service process and captures the console; keeping it out of pytest's process keeps both sane).  Then:
wandb's offline transaction log (``run-*.wandb``) parsed into wandb's own protobuf ``Record`` messages (wandb no
longer ships a Python reader for the file; the frame layout is LevelDB's log format, read below); MLflow's file
store through ``MlflowClient``; TensorBoard's event files through its ``EventAccumulator``.
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
GALLERY = 3

pytest.importorskip("wandb")
pytest.importorskip("mlflow")
pytest.importorskip("tensorboard")


@pytest.fixture(scope="module")
def logged(tmp_path_factory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("trackers")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "WANDB_MODE": "offline", "WANDB_DIR": str(tmp / "wandb"), "WANDB_SILENT": "true",
           "WANDB_PROJECT": "bench-test",
           "MLFLOW_TRACKING_URI": (tmp / "mlruns").as_uri(), "MLFLOW_ALLOW_FILE_STORE": "true",
           "BENCH_TENSORBOARD_DIR": str(tmp / "tb")}
    (tmp / "wandb").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--task", "detection", "--model", "centernet", "--limit", "6",
         "--bootstrap", "0", "--gallery", str(GALLERY), "--no-cache", "--reports-dir", str(tmp / "reports"),
         "--leaderboards-dir", str(tmp / "boards"), "--log", "wandb", "--log", "mlflow", "--log", "tensorboard"],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(next((tmp / "reports").glob("*/metrics.json")).read_text())
    assert len(list((tmp / "reports").glob("*/pictures/gallery/*"))) == GALLERY
    return tmp, record


def wandb_records(path: Path) -> list:
    """Every record of a ``.wandb`` file as wandb's protobuf ``Record`` (LevelDB log framing: 32 KiB blocks of
    chunks with a 7-byte header crc32c, length, type 1 full / 2 first / 3 middle / 4 last; the file starts with a
    7-byte ``:W&B`` header)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, position, pending, out = 32768, 7, b"", []
    while position + 7 <= len(data):
        left = block - position % block
        if left < 7:  # a block's tail too short for a header is padding
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + 7])
        if kind == 0:
            position += left
            continue
        chunk = data[position + 7:position + 7 + length]
        position += 7 + length
        if kind == 1:
            out.append(chunk)
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            out.append(pending + chunk)
    records = []
    for payload in out:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        records.append(record)
    return records


def test_wandb_offline_run_holds_metrics_tables_and_gallery(logged):
    tmp, record = logged
    files = list((tmp / "wandb").glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 1
    records = wandb_records(files[0])
    history: dict[str, str] = {}
    config: dict[str, str] = {}
    for item in records:
        kind = item.WhichOneof("record_type")
        if kind == "history":
            for entry in item.history.item:
                history[".".join(entry.nested_key) or entry.key] = entry.value_json
        elif kind == "config":
            for entry in item.config.update:
                config[entry.key] = entry.value_json
        elif kind == "run":
            assert item.run.display_name == record["run_id"] and item.run.project == "bench-test"
            for entry in item.run.config.update:
                config[entry.key] = entry.value_json
    assert json.loads(history["AP"]) == pytest.approx(record["metrics"]["AP"], abs=1e-12)
    assert json.loads(history["AP50"]) == pytest.approx(record["metrics"]["AP50"], abs=1e-12)
    assert json.loads(config["model"]) == "centernet" and json.loads(config["dataset"]) == "coco-mini"
    assert json.loads(config["checkpoint"]).startswith("detection_centernet.pt@")
    run_dir = files[0].parent
    tables = list(run_dir.glob("files/media/table/*.table.json"))
    assert tables, "no per-class table"
    table = json.loads(tables[0].read_text())
    classes = {row[0] for row in table["data"]}
    assert classes == set(record["per_class"]["AP"]) and "AP" in table["columns"]
    assert len(list(run_dir.glob("files/media/images/*.png"))) == GALLERY


def test_mlflow_file_store_run_read_back_with_the_client(logged, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the file store behind an opt-in

    tmp, record = logged
    client = MlflowClient(tracking_uri=(tmp / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("bench")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.run_name == record["run_id"]
    assert run.data.metrics["AP"] == pytest.approx(record["metrics"]["AP"], abs=1e-12)
    assert run.data.params["model"] == "centernet" and run.data.params["dataset"] == "coco-mini"
    assert run.data.params["checkpoint"].startswith("detection_centernet.pt@")
    gallery = client.list_artifacts(run.info.run_id, "gallery")
    assert len(gallery) == GALLERY
    tables = [a.path for a in client.list_artifacts(run.info.run_id, "tables")]
    assert tables
    local = client.download_artifacts(run.info.run_id, tables[0], str(tmp / "download"))
    table = json.loads(Path(local).read_text())
    assert "AP" in table["columns"] and {row[0] for row in table["data"]} == set(record["per_class"]["AP"])


def test_tensorboard_events_read_back_with_event_accumulator(logged):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tmp, record = logged
    folder = tmp / "tb" / record["run_id"]
    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    assert accumulator.Scalars("metrics/AP")[0].value == pytest.approx(record["metrics"]["AP"], abs=1e-6)
    some_class, value = next((k, v) for k, v in record["per_class"]["AP"].items() if v is not None and v >= 0)
    assert accumulator.Scalars(f"per_class/AP/{some_class}")[0].value == pytest.approx(value, abs=1e-6)
    images = [tag for tag in tags["images"] if tag.startswith("gallery/")]
    assert len(images) == GALLERY
    picture = accumulator.Images(images[0])[0]
    assert picture.width > 100 and picture.height > 100 and picture.encoded_image_string[:4] == b"\x89PNG"
    assert any(tag.startswith("per_class_") for tag in tags["tensors"])  # the tables as text


def test_a_missing_tracker_package_is_one_line_before_the_run(tmp_path, monkeypatch):
    import importlib.util

    from harness.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    result = CliRunner().invoke(main, ["run", "--task", "detection", "--model", "centernet", "--log", "wandb",
                                       "--reports-dir", str(tmp_path / "r")], catch_exceptions=False)
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "--log wandb" in result.output and "not installed" in result.output and "pip install" in result.output
    assert not (tmp_path / "r").exists()
    unknown = CliRunner().invoke(main, ["run", "--task", "detection", "--log", "neptune"], catch_exceptions=False)
    assert unknown.exit_code == 2 and "unknown tracker" in unknown.output and "mlflow" in unknown.output


def test_an_mlflow_store_that_refuses_is_one_line_before_the_run(tmp_path, monkeypatch):
    from harness.cli import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    result = CliRunner().invoke(main, ["run", "--task", "detection", "--model", "centernet", "--log", "mlflow",
                                       "--reports-dir", str(tmp_path / "r")], catch_exceptions=False)
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "--log mlflow" in result.output and "MLFLOW_ALLOW_FILE_STORE=true" in result.output
    assert not (tmp_path / "r").exists()


def test_adding_a_tracker_is_one_module():
    from harness.publish import trackers

    assert trackers.names() == ["mlflow", "tensorboard", "wandb"]
    for name in trackers.names():
        module = trackers.tracker(name)
        assert module.PACKAGE and module.INSTALL and callable(module.log)
