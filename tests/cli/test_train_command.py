"""``bench train``: trains by name, saves loadable weights, prints pycocotools numbers, refuses what it cannot do."""
from __future__ import annotations

import torch
from click.testing import CliRunner

from harness.cli import main


def test_train_mean_pose_saves_weights_and_prints_validation_numbers(tmp_path):
    out = tmp_path / "mean.pt"
    result = CliRunner().invoke(main, ["train", "--task", "keypoints", "--model", "mean-pose", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "AP50" in result.output and "coco-mini val" in result.output
    state = torch.load(out, weights_only=True)
    assert state["mean"].shape == (17, 2)


def test_train_refuses_other_tasks_in_one_line():
    result = CliRunner().invoke(main, ["train", "--task", "detection", "--model", "heatmap"])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "keypoints" in result.output


def test_train_refuses_a_model_that_is_not_in_repo_keypoints(tmp_path):
    arguments = ["train", "--task", "keypoints", "--model", "heatmapp", "--out", str(tmp_path / "x.pt")]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 2
    assert "did you mean 'heatmap'" in result.output
