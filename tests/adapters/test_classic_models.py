"""The classic families: PSPNet (semantic), YOLO, SSD, RetinaNet, DETR (detection), Mask R-CNN (instance).

Per model: the defining mechanism against an independent oracle or a hand-derived case (pyramid pooling's global
context, YOLO's responsible predictor, SSD's 3:1 hard negative mining, the focal loss against
``torchvision.ops.sigmoid_focal_loss``, DETR's Hungarian matching under permuted queries, RoIAlign against
``torchvision.ops.roi_align``), committed weights that load and predict valid outputs, and a few training steps
from the committed seed that reproduce the recorded losses (the full retrain is ``make retrain-classics``,
checked by the weights' hashes).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.core.catalog import ADAPTERS
from adapters.inrepo.detection.detector_weights import PREFIX
from adapters.inrepo.weights import default_weights
from adapters.inrepo.train_loop import FirstSamples
from harness.run.bench_run import default_models
from harness.datasets import DATASETS
from harness.run.trainers import torch_threads

DETECTORS = {"yolo": "detection", "ssd": "detection", "retinanet": "detection", "detr": "detection",
             "mask-rcnn": "instance"}


# ------------------------------------------------------------------------------------------ PSPNet
def test_pyramid_pooling_gives_every_pixel_global_context():
    """A change in one corner of the feature map reaches the opposite corner through the pooled bins (a 3x3 conv
    would not), and the concatenation keeps the input itself as its first channels."""
    from adapters.inrepo.semantic.pspnet import PyramidPooling

    torch.manual_seed(0)
    module = PyramidPooling(8).eval()
    x = torch.randn(1, 8, 24, 24)
    y = x.clone()
    y[0, :, 0, 0] += 5.0
    out_x, out_y = module(x), module(y)
    assert out_x.shape == (1, 8 + 4 * 2, 24, 24)
    assert torch.equal(out_x[:, :8], x)
    assert not torch.allclose(out_x[0, 8:, 23, 23], out_y[0, 8:, 23, 23])
    # the 1x1 bin is the global average: its branch is constant over the map
    global_branch = out_x[0, 8:10]
    assert torch.allclose(global_branch, global_branch[:, :1, :1].expand_as(global_branch))


def test_pspnet_trains_with_an_auxiliary_loss_and_predicts_without_it():
    from adapters.inrepo.semantic.pspnet import AUX_WEIGHT, PSPNet
    from adapters.inrepo.semantic.train import segmentation_loss

    torch.manual_seed(0)
    network = PSPNet(6)
    images, labels = torch.randn(2, 3, 64, 64), torch.randint(0, 6, (2, 64, 64))
    logits, aux = network.train()(images)
    expected = (torch.nn.functional.cross_entropy(logits, labels)
                + AUX_WEIGHT * torch.nn.functional.cross_entropy(aux, labels))
    assert torch.allclose(segmentation_loss((logits, aux), labels), expected)
    assert network.eval()(images).shape == (2, 6, 64, 64)


def test_pspnet_runs_by_default_and_beats_half_the_best_semantic_model():
    from harness.run.trainers import validate

    assert "pspnet" in default_models("semantic")
    dataset = DATASETS.get("voc")(None, None, "semantic")
    numbers = validate(ADAPTERS.get("pspnet")("pspnet"), dataset, indices=range(12))
    assert numbers["mIoU"] > 0.5, numbers["mIoU"]


# ------------------------------------------------------------------------------------------ YOLO
def test_yolo_the_best_overlapping_box_of_the_centre_cell_is_responsible():
    """One object centred in cell (row 1, col 2) of a 3 x 4 grid; of that cell's two boxes the second overlaps it
    more, so only the second gets a coordinate gradient and confidence target IoU, the first is pushed to
    confidence 0 with weight lambda_noobj, and every other cell's boxes too."""
    from adapters.inrepo.detection.targets_classic import ImageTargets
    from adapters.inrepo.detection.yolo import LAMBDA_NOOBJ, STRIDE, UNIT, yolo_loss

    boxes = torch.full((1, 3, 4, 2, 5), 0.5)
    side = (16.0 / UNIT) ** 0.5  # a 16 px box
    boxes[0, 1, 2, 0, :4] = torch.tensor([0.1, 0.1, side / 4, side / 4])  # small, off-centre
    boxes[0, 1, 2, 1, :4] = torch.tensor([0.5, 0.5, side, side])  # exactly the object
    boxes.requires_grad_(True)
    probabilities = torch.full((1, 3, 4, 3), 1 / 3)
    centre = torch.tensor([2.5 * STRIDE, 1.5 * STRIDE])
    target = ImageTargets(boxes=torch.cat([centre - 8, centre + 8])[None], labels=torch.tensor([1]),
                          ignored=torch.zeros((0, 4)))
    yolo_loss(boxes, probabilities, [target]).backward()
    grad = boxes.grad[0]
    assert torch.all(grad[1, 2, 0, :4] == 0) and torch.all(grad[1, 2, 1, :4] == 0)  # the responsible box is exact
    # confidence: responsible box -> IoU 1 (d/dc (c - 1)^2 = 2 (0.5 - 1)); the other -> 0 with lambda_noobj
    assert grad[1, 2, 1, 4].item() == pytest.approx(2 * (0.5 - 1.0))
    assert grad[1, 2, 0, 4].item() == pytest.approx(LAMBDA_NOOBJ * 2 * 0.5)
    assert grad[0, 0, 0, 4].item() == pytest.approx(LAMBDA_NOOBJ * 2 * 0.5)
    assert torch.all(grad[0, 0, :, :4] == 0)
    # moving the responsible box's centre gets a coordinate gradient of lambda_coord * 2 * error
    boxes2 = boxes.detach().clone()
    boxes2[0, 1, 2, 1, 0] = 0.7
    boxes2.requires_grad_(True)
    yolo_loss(boxes2, probabilities, [target]).backward()
    assert boxes2.grad[0, 1, 2, 1, 0].item() == pytest.approx(5.0 * 2 * 0.2, rel=1e-5)
    assert boxes2.grad[0, 1, 2, 0, 0].item() == 0


# ------------------------------------------------------------------------------------------ SSD
@pytest.mark.parametrize("seed", range(5))
def test_ssd_hard_negative_mining_keeps_the_three_hardest_negatives_per_positive(seed):
    from adapters.inrepo.detection.ssd import hard_negatives

    rng = np.random.default_rng(seed)
    batch, anchors = 4, 60
    loss = torch.from_numpy(rng.random((batch, anchors)))
    state = rng.choice([0, 1, 2], size=(batch, anchors), p=[0.8, 0.1, 0.1])  # 0 negative, 1 positive, 2 ignored
    state[0, :] = 0
    state[0, :3] = 1  # 3 positives, 57 negatives: 9 kept
    state[1, :] = 1
    state[1, :5] = 0  # 55 positives, 5 negatives: all 5 kept
    state[2, :] = 0  # no positive: no negative
    negative, positive = torch.from_numpy(state == 0), torch.from_numpy(state == 1)
    kept = hard_negatives(loss, negative, positive.sum(dim=1))
    for image in range(batch):
        negatives = np.flatnonzero(state[image] == 0)
        want = min(3 * int((state[image] == 1).sum()), len(negatives))
        hardest = negatives[np.argsort(-loss[image, negatives].numpy(), kind="stable")[:want]]
        assert sorted(np.flatnonzero(kept[image].numpy())) == sorted(hardest.tolist()), image
    assert kept[0].sum() == 9 and kept[1].sum() == 5 and kept[2].sum() == 0


def test_ssd_default_boxes_follow_the_papers_rule():
    from adapters.inrepo.detection.ssd import default_box_shapes

    shapes = default_box_shapes(0).numpy()  # s = 16, next 32: 16 at ratios 1, 2, 1/2 and sqrt(16 * 32) at 1
    np.testing.assert_allclose(shapes, [[16, 16], [16 * 2**0.5, 16 / 2**0.5], [16 / 2**0.5, 16 * 2**0.5],
                                        [512**0.5, 512**0.5]], rtol=1e-6)


# ------------------------------------------------------------------------------------------ RetinaNet
@pytest.mark.parametrize("alpha", [0.25, 0.5, -1.0])
@pytest.mark.parametrize("gamma", [0.0, 2.0, 3.5])
def test_focal_loss_equals_torchvision(alpha, gamma):
    from torchvision.ops import sigmoid_focal_loss as reference

    from adapters.inrepo.detection.retinanet import sigmoid_focal_loss

    generator = torch.Generator().manual_seed(int(gamma * 10) + int(alpha * 100))
    logits = torch.randn(500, 5, generator=generator, dtype=torch.float64) * 6
    logits[0, :] = torch.tensor([-60.0, -20.0, 0.0, 20.0, 60.0], dtype=torch.float64)  # saturated sigmoids
    hard = (torch.rand(500, 5, generator=generator) < 0.2).double()
    soft = torch.rand(500, 5, generator=generator, dtype=torch.float64)
    for targets in (hard, soft):
        ours = sigmoid_focal_loss(logits, targets, alpha=alpha if alpha >= 0 else None, gamma=gamma)
        theirs = reference(logits, targets, alpha=alpha, gamma=gamma, reduction="none")
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


def test_focal_loss_down_weights_easy_negatives():
    from adapters.inrepo.detection.retinanet import sigmoid_focal_loss

    easy, hard = torch.tensor([-4.0]), torch.tensor([2.0])
    zero = torch.zeros(1)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    ratio_easy = sigmoid_focal_loss(easy, zero) / ((1 - 0.25) * bce(easy, zero))
    ratio_hard = sigmoid_focal_loss(hard, zero) / ((1 - 0.25) * bce(hard, zero))
    assert ratio_easy.item() < 1e-3 < 0.5 < ratio_hard.item()


# ------------------------------------------------------------------------------------------ DETR
@pytest.mark.parametrize("seed", range(5))
def test_detr_matching_is_unchanged_by_permuting_the_queries(seed):
    """Permuting the queries permutes the assignment with them: every object is matched to the same query
    (content), and the set loss is the same number."""
    from adapters.inrepo.detection.detr import hungarian_match, matching_cost, set_loss

    generator = torch.Generator().manual_seed(seed)
    queries, classes, objects = 16, 6, 5
    logits = torch.randn(queries, classes, generator=generator, dtype=torch.float64)
    boxes = torch.rand(queries, 4, generator=generator, dtype=torch.float64) * 0.4 + 0.1
    labels = torch.randint(0, classes - 1, (objects,), generator=generator)
    goals = torch.rand(objects, 4, generator=generator, dtype=torch.float64) * 0.4 + 0.1
    permutation = torch.randperm(queries, generator=generator)
    chosen, matched = hungarian_match(matching_cost(logits, boxes, labels, goals))
    chosen_p, matched_p = hungarian_match(matching_cost(logits[permutation], boxes[permutation], labels, goals))
    assert len(chosen) == objects
    original = {int(o): int(q) for q, o in zip(chosen, matched)}
    permuted = {int(o): int(permutation[q]) for q, o in zip(chosen_p, matched_p)}
    assert original == permuted
    loss = set_loss(logits[None].float(), boxes[None].float(), [(labels, goals.float())])
    loss_p = set_loss(logits[permutation][None].float(), boxes[permutation][None].float(), [(labels, goals.float())])
    assert loss.item() == pytest.approx(loss_p.item(), rel=1e-6)


def test_detr_cross_attention_reads_only_around_each_querys_box():
    """The deformable cross-attention samples the memory inside the reference box (at initialisation: along
    each head's direction, out to the box's edge): changing the memory far from the box leaves the query's
    output unchanged, changing it inside the box does not (full attention would read every token)."""
    from adapters.inrepo.detection.detr import DeformableCrossAttention

    torch.manual_seed(0)
    attention = DeformableCrossAttention(16, 4).eval()
    query = torch.randn(1, 2, 16)
    boxes = torch.tensor([[[0.25, 0.25, 0.2, 0.2], [0.75, 0.75, 0.1, 0.1]]])
    memory = torch.randn(1, 12 * 12, 16)
    with torch.no_grad():
        before = attention(query, boxes, memory, 12, 12)
        far = memory.reshape(1, 12, 12, 16).clone()
        far[:, 6:, :6] += 5.0  # bottom-left quadrant: outside both boxes
        near = memory.reshape(1, 12, 12, 16).clone()
        near[:, 2:4, 2:4] += 5.0  # inside the first box only
        torch.testing.assert_close(attention(query, boxes, far.reshape(1, -1, 16), 12, 12), before)
        after = attention(query, boxes, near.reshape(1, -1, 16), 12, 12)
    assert not torch.allclose(after[0, 0], before[0, 0])
    torch.testing.assert_close(after[0, 1], before[0, 1])


def test_detr_matching_is_the_minimum_cost_assignment():
    from itertools import permutations

    from adapters.inrepo.detection.detr import hungarian_match

    rng = np.random.default_rng(0)
    cost = torch.from_numpy(rng.random((5, 3)))
    queries, objects = hungarian_match(cost)
    best = min(sum(cost[q, o].item() for o, q in enumerate(p)) for p in permutations(range(5), 3))
    assert sum(cost[q, o].item() for q, o in zip(queries, objects)) == pytest.approx(best)


# ------------------------------------------------------------------------------------------ Mask R-CNN
@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling_ratio", [1, 2, 3])
def test_roi_align_equals_torchvision(aligned, sampling_ratio):
    from torchvision.ops import roi_align as reference

    from adapters.inrepo.detection.roi_align import roi_align

    generator = torch.Generator().manual_seed(sampling_ratio)
    features = torch.randn(3, 5, 20, 24, generator=generator, dtype=torch.float64, requires_grad=True)
    corner = torch.rand(40, 2, generator=generator, dtype=torch.float64) * 120 - 10
    size = torch.rand(40, 2, generator=generator, dtype=torch.float64) * 60
    rois = torch.cat([torch.randint(0, 3, (40, 1), generator=generator).double(), corner, corner + size], dim=1)
    rois[0, 1:] = torch.tensor([-30.0, -30.0, -20.0, -20.0])  # wholly outside: zeros
    rois[1, 1:] = torch.tensor([5.0, 5.0, 5.0, 5.0])  # empty box
    rois[2, 1:] = torch.tensor([90.0, 70.0, 200.0, 200.0])  # past the bottom-right border
    for output in (7, 14):
        ours = roi_align(features, rois, output, 0.25, sampling_ratio, aligned)
        theirs = reference(features, rois, output, 0.25, sampling_ratio, aligned)
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
        weights = torch.randn(ours.shape, generator=generator, dtype=torch.float64)
        ours_grad, = torch.autograd.grad((ours * weights).sum(), features)
        theirs_grad, = torch.autograd.grad((theirs * weights).sum(), features)
        torch.testing.assert_close(ours_grad, theirs_grad, rtol=1e-12, atol=1e-12)


def test_second_stage_targets_sample_a_quarter_foreground_with_their_objects_masks():
    from adapters.inrepo.detection.targets_classic import ImageTargets
    from adapters.inrepo.detection.two_stage import MASK_SIZE, ROI_SAMPLES, sample_rois

    torch.manual_seed(0)
    mask = torch.zeros(1, 64, 64)
    mask[0, 10:30, 20:40] = 1.0  # the object fills its box
    target = ImageTargets(boxes=torch.tensor([[20.0, 10.0, 40.0, 30.0]]), labels=torch.tensor([2]),
                          ignored=torch.zeros((0, 4)), masks=mask)
    proposals = torch.cat([torch.tensor([[20.0, 10.0, 40.0, 30.0]]).repeat(20, 1) + torch.randn(20, 4) * 0.5,
                           torch.tensor([[40.0, 40.0, 60.0, 60.0]]).repeat(50, 1)])
    rois, labels, box_targets, masks, fg_rois, fg_labels = sample_rois([proposals], [target])
    assert len(rois) == ROI_SAMPLES and (labels > 0).sum() == ROI_SAMPLES // 4
    assert set(labels[labels > 0].tolist()) == {3}  # class index 2 -> label 3 (0 is background)
    assert (rois[labels == 0, 1:] == torch.tensor([40.0, 40.0, 60.0, 60.0])).all()
    assert box_targets.abs().max() < 2.0  # foreground RoIs lie on the object: small corrections
    assert masks.shape[1:] == (2 * MASK_SIZE, 2 * MASK_SIZE) and masks.mean() > 0.8


# ------------------------------------------------------------------------------------------ every detector
@pytest.fixture(scope="module")
def val_sets():
    return {task: DATASETS.get("coco")(None, "val", task) for task in ("detection", "instance")}


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_registered_run_by_default_with_small_weights(name):
    entry = ADAPTERS.get(name)
    assert entry.task == DETECTORS[name] and entry.runs_by_default and entry.batch_invariant
    assert name in default_models(DETECTORS[name])
    path = default_weights(PREFIX, name)
    assert path.stat().st_size < 5_000_000  # float32 state dicts of 0.6-1.1 M parameters
    content = torch.load(path, map_location="cpu", weights_only=True)
    assert content["kind"] == name and content["category_ids"] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_predictions_are_valid_and_do_not_depend_on_the_batch(name, val_sets):
    dataset = val_sets[DETECTORS[name]]
    adapter = ADAPTERS.get(name)(name)
    adapter.check_compatible(dataset.info)
    samples = [dataset[i] for i in range(3)]
    together = adapter.predict(samples)
    alone = adapter.predict(samples[2:])
    np.testing.assert_array_equal(together[2].boxes, alone[0].boxes)
    np.testing.assert_array_equal(together[2].scores, alone[0].scores)
    for sample, prediction in zip(samples, together):
        height, width = sample.load_image().shape[:2]
        count = len(prediction.scores)
        assert 0 < count <= 100 and prediction.boxes.shape == (count, 4)
        assert (prediction.scores > 0).all() and (prediction.scores <= 1).all()
        assert (np.diff(prediction.scores) <= 0).all()
        assert (prediction.boxes[:, :2] >= 0).all() and (prediction.boxes[:, 2:] > 0).all()
        assert (prediction.boxes[:, 0] + prediction.boxes[:, 2] <= width + 1e-6).all()
        assert (prediction.boxes[:, 1] + prediction.boxes[:, 3] <= height + 1e-6).all()
        assert set(prediction.labels.tolist()) <= {1, 2, 3, 4, 5}
        assert (prediction.masks is not None) == (DETECTORS[name] == "instance")
        if prediction.masks is not None:
            assert len(prediction.masks) == count and all(list(m["size"]) == [height, width]
                                                          for m in prediction.masks)


#: losses of the first two training steps from seed 0 on the first 32 train images (batch 16), on CPU with one
#: thread; a change to a model, its loss, its targets or the data pipeline changes them.  The second step follows an
#: optimiser update whose float rounding depends on the CPU's vector unit (AVX2 vs AVX-512 kernels differ by ~1e-5
#: relative), so it is compared at 1e-4: a change to the model or its loss moves it by far more.
REPLAY_RTOL = [1e-6, 1e-4]
RECORDED_LOSSES: dict[str, list[float]] = {
    "pspnet": [2.2122714519500732, 2.2066903114318848],
    "ssd": [15.154269218444824, 13.925517082214355],
    "yolo": [19.480792999267578, 17.560726165771484],
    "retinanet": [4.020926475524902, 3.8106253147125244],
    "mask-rcnn": [3.454944133758545, 2.1186375617980957],
    "detr": [22.194345474243164, 22.277122497558594],
}


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_training_steps_from_the_seed_reproduce_the_recorded_losses(name, tmp_path):
    from adapters.inrepo.detection.train import train

    train_set = FirstSamples(DATASETS.get("coco")(None, "train", DETECTORS[name]), 32)
    losses: list[float] = []
    train(name, train_set, out=tmp_path / "model.pt", epochs=1, seed=0, threads=1,
          on_step=lambda step, total, loss: losses.append(loss))
    assert len(losses) == 2
    for loss, recorded, rtol in zip(losses, RECORDED_LOSSES[name], REPLAY_RTOL):
        assert loss == pytest.approx(recorded, rel=rtol)


def test_pspnet_training_steps_from_the_seed_reproduce_the_recorded_losses(tmp_path):
    from adapters.inrepo.semantic.train import train

    train_set = FirstSamples(DATASETS.get("voc")(None, "train", "semantic"), 32)
    outcome = train("pspnet", train_set, out=tmp_path / "pspnet.pt", steps=2, seed=0, threads=1)
    for loss, recorded, rtol in zip(outcome.losses, RECORDED_LOSSES["pspnet"], REPLAY_RTOL):
        assert loss == pytest.approx(recorded, rel=rtol)


def test_weights_digest_covers_a_checkpoints_content_not_its_file_bytes(tmp_path):
    """``make retrain-classics`` checks content digests: two saves of one checkpoint differ in bytes (torch.save
    writes a random id) but not in digest; a changed weight or class list changes it."""
    from adapters.inrepo.weights_digest import state_digest

    def save(name, network, classes):
        path = tmp_path / name
        torch.save({"kind": "detr", "network": network, "classes": classes, "category_ids": [1, 2]}, path)
        return path

    network = {"a.weight": torch.arange(6.0).reshape(2, 3), "a.bias": torch.zeros(2)}
    first, second = save("1.pt", network, ["x", "y"]), save("2.pt", network, ["x", "y"])
    assert first.read_bytes() != second.read_bytes()
    assert state_digest(first) == state_digest(second)
    changed = {**network, "a.bias": torch.tensor([0.0, 1e-7])}
    assert state_digest(save("3.pt", changed, ["x", "y"])) != state_digest(first)
    assert state_digest(save("4.pt", network, ["y", "x"])) != state_digest(first)
