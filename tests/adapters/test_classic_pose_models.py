"""The classic pose families: stacked hourglass (intermediate supervision) and OpenPose (PAF grouping)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adapters.inrepo.keypoints.hourglass import StackedHourglassNet
from adapters.inrepo.keypoints.openpose import OpenPoseNet, decode_people
from adapters.inrepo.keypoints.paf_grouping import COCO_LIMBS, Peaks, find_peaks, group_people


# ------------------------------------------------------------------------------------------ hourglass
def test_hourglass_loss_supervises_every_stack():
    torch.manual_seed(0)
    net = StackedHourglassNet(num_joints=17)
    images = torch.rand(2, 3, 64, 48) * 255
    keypoints = torch.rand(2, 17, 2) * torch.tensor([47.0, 63.0])
    inside = torch.ones(2, 17, dtype=torch.bool)
    output = net(images)
    assert output.shape == (2, 2, 17, 32, 24)
    output.retain_grad()
    loss = net.loss(output, keypoints, inside, inside)
    # each stack's loss by hand: BCE of its logits against Gaussians (sigma 2 px) at the keypoints
    ys = torch.arange(32.0) * 2 + 0.5
    xs = torch.arange(24.0) * 2 + 0.5
    target = torch.exp(-((ys[None, None, :, None] - keypoints[..., 1, None, None]) ** 2
                         + (xs[None, None, None, :] - keypoints[..., 0, None, None]) ** 2) / (2 * 2.0**2))
    by_hand = [F.binary_cross_entropy_with_logits(output[:, s], target).item() * 100 for s in range(2)]
    assert loss.item() == pytest.approx(sum(by_hand), rel=1e-5)
    loss.backward()
    for stack in range(2):
        assert output.grad[:, stack].abs().sum() > 0, f"stack {stack} gets no gradient"
        assert net.heads[stack].weight.grad.abs().sum() > 0
    # dropping stack 1's term changes the loss: the intermediate prediction is itself supervised
    assert net.stage_losses(output.detach(), keypoints, inside, inside)[0].item() == pytest.approx(by_hand[0], rel=1e-5)


def test_openpose_loss_supervises_both_stages_and_ignores_masked_cells():
    torch.manual_seed(0)
    net = OpenPoseNet(17)
    output = net(torch.rand(1, 3, 64, 64) * 255)
    assert output.shape == (1, 2, 17 + 2 * len(COCO_LIMBS), 16, 16)
    output.retain_grad()
    heatmaps, pafs = torch.zeros(1, 17, 16, 16), torch.zeros(1, 2 * len(COCO_LIMBS), 16, 16)
    mask = torch.ones(1, 16, 16)
    mask[0, :8] = 0  # a crowd region: its cells must not be trained
    net.loss(output, heatmaps, pafs, mask).backward()
    assert output.grad[0, 0].abs().sum() > 0 and output.grad[0, 1].abs().sum() > 0
    assert output.grad[0, :, :, :8].abs().sum() == 0


# ------------------------------------------------------------------------------------------ PAF grouping
def _draw_paf(people: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Hand-drawn PAFs: each limb's unit vector painted on a 3-cell-wide line between its two joints."""
    fields = np.zeros((2 * len(COCO_LIMBS), *shape))
    for limb, (a, b) in enumerate(COCO_LIMBS):
        for person in people:
            on = np.zeros(shape, np.uint8)
            cv2.line(on, tuple(int(v) for v in person[a]), tuple(int(v) for v in person[b]), 1, 3)
            unit = (person[b] - person[a]) / np.linalg.norm(person[b] - person[a])
            fields[2 * limb][on > 0] = unit[0]
            fields[2 * limb + 1][on > 0] = unit[1]
    return fields


def _person(x: float, y: float, wrist_dx: float) -> np.ndarray:
    """A 17-joint standing person in map cells: head at (x, y), arms reaching sideways by ``wrist_dx``."""
    joints = np.zeros((17, 2))
    joints[0] = (x, y)
    joints[1], joints[2] = (x + 1, y - 1), (x - 1, y - 1)
    joints[3], joints[4] = (x + 2, y), (x - 2, y)
    joints[5], joints[6] = (x + 4, y + 5), (x - 4, y + 5)
    joints[7], joints[8] = (x + 4 + wrist_dx / 2, y + 11), (x - 4 - wrist_dx / 2, y + 11)
    joints[9], joints[10] = (x + 4 + wrist_dx, y + 17), (x - 4 - wrist_dx, y + 17)
    joints[11], joints[12] = (x + 3, y + 20), (x - 3, y + 20)
    joints[13], joints[14] = (x + 3, y + 30), (x - 3, y + 30)
    joints[15], joints[16] = (x + 3, y + 40), (x - 3, y + 40)
    return joints


def test_paf_grouping_on_hand_built_maps_gives_the_right_people():
    """Two people whose reaching arms cross: A's left wrist lies nearer B's left elbow than A's own.  Grouping
    by distance would swap them; the PAF line integrals keep each wrist with its own forearm."""
    a = _person(15.0, 5.0, 14.0)  # reaches right, into B
    b = _person(38.0, 8.0, -2.0)
    assert np.linalg.norm(a[9] - b[7]) < np.linalg.norm(a[9] - a[7])
    shape = (52, 60)
    pafs = _draw_paf([a, b], shape)
    order = [1, 0]  # peaks listed B first: indices must not decide who is who
    peaks = Peaks(coords=[np.stack([[a, b][i][joint] for i in order]) for joint in range(17)],
                  scores=[np.array([0.9, 0.8]) for _ in range(17)])
    people = group_people(peaks, pafs)
    assert len(people) == 2
    found = sorted((coords for coords, _, _ in people), key=lambda c: c[0, 0])
    np.testing.assert_array_equal(found[0], a)
    np.testing.assert_array_equal(found[1], b)


def test_paf_grouping_refuses_limbs_the_field_does_not_support():
    """Same peaks, no fields: nobody is assembled (a person needs supported connections, not proximity)."""
    a = _person(15.0, 5.0, 4.0)
    peaks = Peaks(coords=[a[joint][None] for joint in range(17)], scores=[np.ones(1) for _ in range(17)])
    assert group_people(peaks, np.zeros((2 * len(COCO_LIMBS), 52, 60))) == []


def test_peaks_and_decoding_return_input_pixels():
    """A Gaussian at input pixel (x, y) on the stride-4 maps decodes to (x, y): cell c is pixel 4c + 1.5."""
    person = _person(20.0, 4.0, 4.0)
    cells = np.zeros((17, 52, 60))
    ys, xs = np.mgrid[0:52, 0:60]
    for joint, (x, y) in enumerate(person):
        cells[joint] = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / 2.0) * 0.95
    peaks = find_peaks(cells)
    assert [len(c) for c in peaks.coords] == [1] * 17
    logits = np.log(np.clip(cells, 1e-9, None) / np.clip(1 - cells, 1e-9, None))
    output = np.concatenate([logits, _draw_paf([person], (52, 60))])
    keypoints, scores, boxes = decode_people(output, 17)
    assert keypoints.shape == (1, 17, 3)
    np.testing.assert_allclose(keypoints[0, :, :2], person * 4 + 1.5, atol=1e-6)
    assert scores[0] == pytest.approx(0.95, abs=1e-6)


# ------------------------------------------------------------------------------------------ training
#: the first three step losses from seed 0 on the first 8 training images (one torch thread), as recorded when
#: the committed weights were trained; the full retrain is `make retrain-pose` (checked against the weights hash)
RECORDED_LOSSES = {
    "hourglass": ("coco", [9.61556625366211, 9.13414192199707, 8.790105819702148]),
    "openpose": ("coco-multi", [155.20968627929688, 118.68739318847656, 82.75550842285156]),
}


@pytest.mark.parametrize("name", sorted(RECORDED_LOSSES))
def test_first_training_steps_reproduce_the_recorded_losses(name, tmp_path):
    from adapters.inrepo.keypoints.train import train
    from adapters.inrepo.train_loop import FirstSamples
    from harness.datasets import DATASETS

    dataset_name, recorded = RECORDED_LOSSES[name]
    data = FirstSamples(DATASETS.get(dataset_name)(None, "train", "keypoints"), 8)
    steps: list[float] = []
    outcome = train(name, data, out=tmp_path / "w.pt", max_steps=3, seed=0, threads=1,
                          on_step=lambda step, total, loss: steps.append(loss))
    assert outcome.steps == 3 and outcome.weights.is_file()
    assert steps == pytest.approx(recorded, rel=1e-5)


# ------------------------------------------------------------------------------------------ flip test
@pytest.mark.parametrize("network_class", ["heatmap", "hourglass"])
def test_flip_test_output_is_mirror_symmetric(network_class):
    """Flip-test maps of a crop equal the mirrored, left/right-swapped flip-test maps of the mirrored crop: the
    symmetry a wrong mirror axis, a missing joint swap or a cell shift would break."""
    from adapters.inrepo.keypoints.adapter import flip_test_output
    from adapters.inrepo.keypoints.heatmap import HeatmapNet
    from adapters.inrepo.keypoints.skeletons import COCO17

    torch.manual_seed(0)
    net = (HeatmapNet() if network_class == "heatmap" else StackedHourglassNet()).eval()
    batch = torch.rand(2, 3, 64, 48) * 255
    order = list(range(17))
    for left, right in COCO17.flip_pairs:
        order[left], order[right] = right, left
    with torch.no_grad():
        plain = flip_test_output(net, net(batch), batch, COCO17.flip_pairs)
        mirrored = flip_test_output(net, net(batch.flip(-1)), batch.flip(-1), COCO17.flip_pairs)
        assert torch.allclose(plain, net.flip_output(mirrored, order), atol=1e-5)
        assert not torch.allclose(plain, net(batch), atol=1e-3)  # it did average something


def test_flip_test_run_is_its_own_model_and_recorded(tmp_path):
    """``bench run --flip-test``: heatmap models ranked as ``<name>+flip`` with the flip in provenance; a model
    named explicitly without a flip test is refused in one line."""
    from dataclasses import replace

    from harness.core.errors import BenchError
    from harness.run.bench_run import RunConfig, run_models

    config = RunConfig(task="keypoints", models=("heatmap",), limit=2, bootstrap=0, gallery=0, cache=False,
                       reports_dir=tmp_path / "reports", leaderboards_dir=tmp_path / "lb", flip_test=True)
    record, = run_models(config)
    assert record["model"]["name"] == "heatmap+flip" and record["provenance"]["test_time"] == {"flip": True}
    with pytest.raises(BenchError, match=r"model 'regression' has no flip test \(heatmap models have\)"):
        run_models(replace(config, models=("regression",)))
