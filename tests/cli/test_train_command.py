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


def test_train_refuses_a_model_of_another_task_in_one_line():
    result = CliRunner().invoke(main, ["train", "--task", "detection", "--model", "heatmap"])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "'heatmap' is a keypoints model, not detection" in result.output


def test_train_names_the_trainable_tasks_when_a_task_has_no_trainer(monkeypatch):
    from harness.run.trainers import TRAINERS

    TRAINERS.names()  # discover first, then hide one
    monkeypatch.delitem(TRAINERS._entries, "detection")
    result = CliRunner().invoke(main, ["train", "--task", "detection", "--model", "centernet"])
    assert result.exit_code == 2 and "no in-repo trainer for task 'detection'" in result.output
    assert "keypoints" in result.output


def test_train_a_detector_for_a_few_steps_through_the_same_command(tmp_path):
    out = tmp_path / "prior.pt"
    result = CliRunner().invoke(main, ["train", "--task", "detection", "--model", "prior-boxes", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "prior-boxes on coco-mini val" in result.output and "AP50" in result.output and out.is_file()


def test_train_refuses_a_model_that_is_not_in_repo_keypoints(tmp_path):
    arguments = ["train", "--task", "keypoints", "--model", "heatmapp", "--out", str(tmp_path / "x.pt")]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 2
    assert "did you mean 'heatmap'" in result.output


def test_train_on_mpii_reproduces_the_committed_mpii_mean_pose(tmp_path):
    from adapters.inrepo.keypoints.skeletons import MPII16, skeleton_weights

    out = tmp_path / "mean_mpii.pt"
    arguments = ["train", "--task", "keypoints", "--model", "mean-pose", "--dataset", "mpii", "--out", str(out),
                 "--val-split", ""]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    state, committed = torch.load(out, weights_only=True), torch.load(skeleton_weights("mean-pose", MPII16),
                                                                      weights_only=True)
    assert state["mean"].shape == (16, 2) and set(state) == set(committed)
    assert all(torch.equal(state[key], committed[key]) for key in state)


def test_steps_and_batch_size_set_the_length_of_either_kind_of_schedule(tmp_path):
    """--steps overrides a schedule counted in epochs (keypoints) and one counted in steps (segmentation) alike."""
    for task, model in (("keypoints", "regression"), ("semantic", "fcn")):
        out = tmp_path / f"{model}.pt"
        arguments = ["train", "--task", task, "--model", model, "--steps", "2", "--batch-size", "2", "--epochs", "9",
                     "--val-split", "", "--out", str(out)]
        result = CliRunner().invoke(main, arguments)
        assert result.exit_code == 0, result.output
        assert "(2 steps," in result.output and out.is_file(), result.output
    result = CliRunner().invoke(main, ["train", "--task", "semantic", "--model", "fcn", "--steps", "0"])
    assert result.exit_code == 2 and "--steps" in result.output
