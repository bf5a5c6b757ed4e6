"""`bench models list` / `metrics list` / `tasks list`: right facts, without building networks."""
from __future__ import annotations

import json

from click.testing import CliRunner

from harness.cli import main


def run(*args):
    result = CliRunner().invoke(main, list(args))
    return result


def test_models_list_describes_each_model_without_building_it(monkeypatch):
    from harness.core.adapter import Adapter

    def refuse(*args, **kwargs):
        raise AssertionError("listing built a model")

    monkeypatch.setattr(Adapter, "__init__", refuse)
    result = run("models", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    # the in-repo heatmap: weights committed for coco-mini and mpii, its parameter count read from the file
    heatmap = rows["heatmap"]
    assert heatmap["task"] == "keypoints" and heatmap["source"] == "in-repo" and heatmap["default"]
    assert heatmap["weights"] == "yes: default, mpii" and heatmap["parameters"] > 100_000
    assert rows["centernet-mask"]["task"] == "instance" and rows["centernet-mask"]["weights"].startswith("yes")
    assert rows["horn-schunck"]["weights"] == "none needed" and rows["horn-schunck"]["parameters"] == 0
    # torchvision: torchvision's own metadata (25.6M is ResNet-50 alone; Faster R-CNN R50-FPN v1 has 41,755,286)
    assert rows["tv-fasterrcnn_resnet50_fpn"]["parameters"] == 41_755_286
    assert rows["mmdet:CONFIG"]["source"] == "OpenMMLab" and rows["mmdet:CONFIG"]["parameters"] is None


def test_models_list_filters_by_task_and_refuses_unknown_tasks():
    result = run("models", "list", "--task", "flow", "--json")
    assert result.exit_code == 0
    assert {row["task"] for row in json.loads(result.output)} == {"flow"}
    assert "zero-flow" in {row["name"] for row in json.loads(result.output)}
    bad = run("models", "list", "--task", "flwo")
    assert bad.exit_code == 2 and "flow" in bad.output


def test_metrics_and_tasks_list():
    metrics = {row["name"]: row for row in json.loads(run("metrics", "list", "--json").output)}
    assert metrics["coco_bbox"]["dialects"][0] == "pycocotools" and "EPE" in metrics["flow"]["lower_is_better"]
    tasks = {row["name"]: row for row in json.loads(run("tasks", "list", "--json").output)}
    assert set(tasks) >= {"detection", "instance", "keypoints", "semantic", "flow"}
    assert tasks["semantic"]["headline"] == "mIoU" and "ade20k" in tasks["semantic"]["datasets"]
    table = run("tasks", "list")
    assert table.exit_code == 0 and "sintel" in table.output


def test_parameter_count_read_without_torch_equals_torch_load():
    from pathlib import Path

    import torch

    from harness.publish.discovery import _state_dict_parameters

    def count(value):
        if hasattr(value, "numel"):
            return value.numel()
        if isinstance(value, dict):
            return sum(count(v) for v in value.values())
        return sum(count(v) for v in value) if isinstance(value, (list, tuple)) else 0

    files = sorted((Path(__file__).resolve().parents[2] / "adapters" / "weights").glob("*.pt"))
    assert len(files) > 5
    for path in files:
        assert _state_dict_parameters(path) == count(torch.load(path, weights_only=True)), path.name
