"""The in-repo top-down keypoint models: committed weights, prediction geometry, crops, training, flip augmentation."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.core.catalog import ADAPTERS
from adapters.inrepo.keypoints.skeletons import skeleton_weights as default_weights
from adapters.inrepo.keypoints.crop import CropJitter, crop_matrix, flip_joints, invert, transform_points, warp
from adapters.inrepo.keypoints.data import Augmentation, PersonCrops
from adapters.inrepo.keypoints.skeletons import COCO17, MPII16
from adapters.inrepo.keypoints.train import train
from adapters.inrepo.train_loop import FirstSamples
from harness.datasets import DATASETS
from harness.core.dataset import Dataset, DatasetInfo
from harness.core.errors import BenchError
from harness.labels.keypoints import COCO_FLIP_PAIRS, COCO_KEYPOINT_NAMES, MPII_FLIP_PAIRS, MPII_KEYPOINT_NAMES
from harness.run.trainers import TRAINERS
from harness.core.structures import KeypointsTarget, PersonBoxes, Sample

MODELS = ["mean-pose", "regression", "heatmap", "soft-argmax"]
IMAGE_MODELS = ["regression", "heatmap", "soft-argmax"]


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    """A stick-figure-like image on disk: two people drawn in the embedded dataset's colour code."""
    image = np.full((192, 256, 3), 90, np.uint8)
    for x0 in (40, 150):
        cv2.circle(image, (x0 + 25, 30), 9, (200, 160, 120), -1)
        cv2.rectangle(image, (x0 + 12, 42), (x0 + 38, 95), (60, 160, 60), -1)
        cv2.line(image, (x0 + 38, 45), (x0 + 55, 85), (230, 80, 20), 4)
        cv2.line(image, (x0 + 12, 45), (x0 - 5, 85), (20, 100, 230), 4)
        cv2.line(image, (x0 + 32, 95), (x0 + 40, 160), (230, 80, 20), 4)
        cv2.line(image, (x0 + 18, 95), (x0 + 10, 160), (20, 100, 230), 4)
    path = tmp_path_factory.mktemp("scene") / "scene.png"
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


def make_sample(path: Path, boxes: list[list[float]] | None, sample_id: int = 1) -> Sample:
    prompts = None
    if boxes is not None:
        prompts = PersonBoxes(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.ones(len(boxes)))
    return Sample(sample_id=sample_id, image_path=path, target=None, prompts=prompts)


BOXES = [[35.0, 20.0, 60.0, 145.0], [140.0, 18.0, 62.0, 148.0], [60.0, 60.0, 30.0, 40.0]]


@pytest.fixture(scope="module", params=MODELS)
def adapter(request):
    return ADAPTERS.get(request.param)(request.param)


# ----------------------------------------------------------------------------------------- committed weights
@pytest.mark.parametrize("name", MODELS)
def test_committed_weights_load_with_weights_only(name):
    path = default_weights(name)
    assert path.is_file(), f"committed weights missing: {path}"
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert state and all(isinstance(value, torch.Tensor) for value in state.values())
    adapter = ADAPTERS.get(name)(name)
    assert adapter.weights_file() == path
    info = adapter.info()
    assert info.task == "keypoints" and info.keypoint_names == COCO_KEYPOINT_NAMES
    if name != "mean-pose":
        assert info.input_size == tuple(adapter.network.input_hw) and info.parameters > 10_000


def test_total_committed_weights_stay_small():
    assert sum(default_weights(name, skeleton).stat().st_size for name in MODELS for skeleton in (COCO17, MPII16)
               ) < 8 * 1024 * 1024


# --------------------------------------------------------------------------------------- MPII-16 weights
@pytest.fixture(scope="module")
def mpii_val(bench_cache):
    return DATASETS.get("mpii")(None, None, "keypoints")


@pytest.mark.parametrize("name", MODELS)
def test_binding_to_mpii_picks_the_mpii_weights(name, mpii_val):
    coco_adapter = ADAPTERS.get(name)(name)
    adapter = ADAPTERS.get(name)(name)
    adapter.info()  # COCO-17 loaded first: binding must replace it, not keep it
    adapter.check_compatible(mpii_val.info)
    path = default_weights(name, MPII16)
    assert adapter.weights_file() == path and path.name == f"keypoints_{name}_mpii.pt"
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert state and all(isinstance(value, torch.Tensor) for value in state.values())
    if name != "mean-pose":  # learned weights are stored in half precision, like the COCO ones
        assert {value.dtype for value in state.values()} >= {torch.float16}
    info = adapter.info()
    assert info.keypoint_names == MPII_KEYPOINT_NAMES and info.extra["skeleton"] == "MPII-16"
    assert adapter.fingerprint() != coco_adapter.fingerprint()
    samples = [mpii_val[0], mpii_val[1]]
    predictions = adapter.predict(samples)
    for sample, prediction in zip(samples, predictions):
        assert prediction.keypoints.shape == (len(sample.target.ann_ids), 16, 3)
        assert np.isfinite(prediction.keypoints).all()


def test_a_skeleton_without_weights_is_refused_in_one_line():
    adapter = ADAPTERS.get("heatmap")("heatmap")
    other = DatasetInfo(name="crowdpose", task="keypoints", split="val", root=Path("."),
                        keypoint_names=[f"joint{i}" for i in range(14)])
    with pytest.raises(BenchError, match="trained for COCO-17 and MPII-16 keypoints; dataset 'crowdpose' uses 14"):
        adapter.check_compatible(other)
    coco = DatasetInfo(name="coco", task="keypoints", split="val", root=Path("."), keypoint_names=COCO_KEYPOINT_NAMES)
    adapter.check_compatible(coco)
    assert adapter.weights_file() == default_weights("heatmap")


def test_the_committed_mpii_models_beat_the_mean_pose(mpii_val):
    """PCKh@0.5 on the embedded MPII val split (the numbers in the README); mean-pose is the floor."""
    from harness.tasks import get_task

    scores = {}
    for name in MODELS:
        adapter = ADAPTERS.get(name)(name)
        adapter.check_compatible(mpii_val.info)
        (metric,) = get_task("keypoints").metrics(mpii_val.info)
        samples = list(mpii_val)
        metric.update(samples, adapter.predict(samples))
        scores[name] = metric.compute().metrics["PCKh@0.5"]
    assert scores["mean-pose"] < 0.45
    for name in IMAGE_MODELS:
        assert scores[name] > scores["mean-pose"] + 0.3, scores


def test_training_on_mpii_builds_sixteen_joints_and_flips_mpii_pairs(mpii_val, tmp_path):
    train_set = FirstSamples(mpii_val, 6)
    out = tmp_path / "heatmap_mpii.pt"
    outcome = train("heatmap", train_set, out=out, epochs=1, max_steps=2, seed=3)
    assert outcome.steps == 1  # 6 images, fewer than one batch of 32 people: one step per epoch
    state = torch.load(out, weights_only=True)
    assert state["head.weight"].shape[0] == 16
    adapter = ADAPTERS.get("heatmap")("heatmap", checkpoint=out)
    adapter.check_compatible(mpii_val.info)
    assert adapter.predict([mpii_val[0]])[0].keypoints.shape[1] == 16
    people = PersonCrops.from_dataset(train_set)
    assert people.flip_pairs == list(MPII_FLIP_PAIRS)
    trainer = TRAINERS.get("keypoints")
    assert trainer.weights_file("heatmap", mpii_val.info) == default_weights("heatmap", MPII16)
    assert trainer.weights_file("heatmap", TinyDataset(Path(".")).info) == default_weights("heatmap")
    with pytest.raises(BenchError, match="do not fit the 'heatmap' network for MPII-16"):
        bound = ADAPTERS.get("heatmap")("heatmap", checkpoint=default_weights("heatmap"))
        bound.check_compatible(mpii_val.info)


def test_checkpoint_argument_overrides_default(tmp_path):
    path = tmp_path / "other.pt"
    shutil.copyfile(default_weights("heatmap"), path)
    adapter = ADAPTERS.get("heatmap")("heatmap", checkpoint=path)
    assert adapter.weights_file() == path
    assert adapter.fingerprint() == ADAPTERS.get("heatmap")("heatmap").fingerprint()  # same bytes, same model


def test_weights_of_another_model_are_refused_in_one_line(tmp_path):
    from harness.core.errors import BenchError

    adapter = ADAPTERS.get("heatmap")("heatmap", checkpoint=default_weights("regression"))
    with pytest.raises(BenchError, match="do not fit"):
        adapter.info()


# -------------------------------------------------------------------------------------------------- predict
@pytest.mark.parametrize("boxes", [None, [], BOXES[:1], BOXES], ids=["no-prompts", "zero", "one", "several"])
def test_prediction_shapes(adapter, scene, boxes):
    (prediction,) = adapter.predict([make_sample(scene, boxes)])
    count = 0 if not boxes else len(boxes)
    assert prediction.keypoints.shape == (count, 17, 3)
    assert prediction.scores.shape == (count,)
    np.testing.assert_array_equal(prediction.boxes, np.asarray(boxes or [], dtype=np.float64).reshape(-1, 4))
    assert np.isfinite(prediction.keypoints).all()
    confidence = prediction.keypoints[..., 2]
    assert ((confidence >= 0) & (confidence <= 1)).all()
    np.testing.assert_allclose(prediction.scores, confidence.mean(axis=1))


def test_batch_equals_one_by_one(adapter, scene):
    samples = [make_sample(scene, BOXES, 1), make_sample(scene, [], 2), make_sample(scene, BOXES[1:2], 3)]
    batched = adapter.predict(samples)
    for sample, together in zip(samples, batched):
        (alone,) = adapter.predict([sample])
        np.testing.assert_allclose(together.keypoints, alone.keypoints, rtol=0, atol=1e-4)
    np.testing.assert_allclose(batched[0].keypoints[1], batched[2].keypoints[0], rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_keypoints_follow_a_translated_person(name, scene, tmp_path):
    """The same pixels under a shifted box give the same pose, shifted: the uncrop uses the right inverse."""
    image = cv2.imread(str(scene))
    shift = (23, 11)
    moved = cv2.copyMakeBorder(image, shift[1], 0, shift[0], 0, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    moved_path = tmp_path / "moved.png"
    cv2.imwrite(str(moved_path), moved)
    box = np.asarray(BOXES[0])
    adapter = ADAPTERS.get(name)(name)
    (original,) = adapter.predict([make_sample(scene, [box.tolist()])])
    (translated,) = adapter.predict([make_sample(moved_path, [(box + [shift[0], shift[1], 0, 0]).tolist()])])
    np.testing.assert_allclose(translated.keypoints[..., :2], original.keypoints[..., :2] + shift, atol=1e-3)
    np.testing.assert_allclose(translated.keypoints[..., 2], original.keypoints[..., 2], atol=1e-5)


def test_mean_pose_lies_in_its_box(scene):
    adapter = ADAPTERS.get("mean-pose")("mean-pose")
    boxes = np.asarray(BOXES)
    (prediction,) = adapter.predict([make_sample(scene, BOXES)])
    xy = prediction.keypoints[..., :2]
    low, high = boxes[:, None, :2], boxes[:, None, :2] + boxes[:, None, 2:]
    margin = 0.1 * boxes[:, None, 2:]
    assert ((xy >= low - margin) & (xy <= high + margin)).all()
    head, ankles = xy[:, 0, 1], xy[:, 15:17, 1].mean(axis=1)
    assert (head < ankles).all()  # people stand upright in the training data
    # the same normalised pose in every box
    normalised = (xy - low) / boxes[:, None, 2:]
    np.testing.assert_allclose(normalised, np.broadcast_to(normalised[0], normalised.shape), atol=1e-9)


# ----------------------------------------------------------------------------------------------------- crops
boxes_strategy = st.tuples(
    st.floats(-50, 300), st.floats(-50, 300), st.floats(1, 400), st.floats(1, 400)
).map(np.array)
jitter_strategy = st.builds(
    CropJitter,
    scale=st.floats(0.5, 2.0),
    rotation_deg=st.floats(-45, 45),
    shift=st.tuples(st.floats(-0.3, 0.3), st.floats(-0.3, 0.3)),
    flip=st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(
    box=boxes_strategy,
    jitter=jitter_strategy,
    points=st.lists(st.tuples(st.floats(-500, 500), st.floats(-500, 500)), min_size=1, max_size=17),
)
def test_crop_uncrop_round_trip_is_exact(box, jitter, points):
    points = np.asarray(points)
    matrix = crop_matrix(box, (64, 48), jitter=jitter)
    back = transform_points(transform_points(points, matrix), invert(matrix))
    np.testing.assert_allclose(back, points, rtol=0, atol=1e-6)


@settings(max_examples=100, deadline=None)
@given(box=boxes_strategy)
def test_crop_keeps_the_whole_box_and_its_aspect(box):
    height, width = 64, 48
    matrix = crop_matrix(box, (height, width))
    x, y, w, h = box
    low, high = transform_points(np.array([[x, y], [x + w, y + h]]), matrix)
    assert (low >= -0.5 - 1e-9).all() and (high <= [width - 0.5 + 1e-9, height - 0.5 + 1e-9]).all()
    # the limiting side fills 1 / 1.25 of the input: padding, but no more than asked for
    fill = max((high[0] - low[0]) / width, (high[1] - low[1]) / height)
    if min(w, h) >= 1:
        assert fill == pytest.approx(1 / 1.25)
    assert matrix[0, 0] == pytest.approx(matrix[1, 1]) and matrix[0, 1] == 0  # no squashing, no rotation
    centre = transform_points(np.array([x + w / 2, y + h / 2]), matrix)
    np.testing.assert_allclose(centre, [(width - 1) / 2, (height - 1) / 2], atol=1e-9)


@pytest.mark.parametrize(
    "jitter", [CropJitter(), CropJitter(scale=0.7, rotation_deg=17, shift=(0.1, -0.05), flip=True)]
)
def test_warp_puts_pixels_where_transform_points_puts_points(jitter):
    image = np.zeros((192, 256, 3), np.uint8)
    point = np.array([131.0, 77.0])
    image[int(point[1]), int(point[0])] = 255
    matrix = crop_matrix(np.array([100.0, 40.0, 60.0, 90.0]), (96, 72), jitter=jitter)
    crop = warp(image, matrix, (96, 72))[..., 0].astype(np.float64)
    ys, xs = np.mgrid[: crop.shape[0], : crop.shape[1]]
    centroid = np.array([(crop * xs).sum(), (crop * ys).sum()]) / crop.sum()
    np.testing.assert_allclose(centroid, transform_points(point, matrix), atol=0.15)


# ------------------------------------------------------------------------------------------------ flipping
def test_flip_joints_swaps_every_left_right_pair():
    keypoints = np.arange(17 * 3, dtype=np.float64).reshape(17, 3)
    flipped = flip_joints(keypoints, COCO_FLIP_PAIRS)
    names = COCO_KEYPOINT_NAMES
    for index, name in enumerate(names):
        partner = name.replace("left", "right") if "left" in name else name.replace("right", "left")
        np.testing.assert_array_equal(flipped[index], keypoints[names.index(partner)])
    np.testing.assert_array_equal(flip_joints(flipped, COCO_FLIP_PAIRS), keypoints)


def test_flip_augmentation_mirrors_pixels_and_swaps_left_and_right():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    keypoints = np.column_stack([rng.uniform(50, 110, 17), rng.uniform(20, 100, 17), np.full(17, 2.0)])
    keypoints[4, 2] = 0  # right ear unlabelled: after the flip the *left* ear is unlabelled
    people = PersonCrops([image], np.array([0]), np.array([[50.0, 20.0, 60.0, 80.0]]), keypoints[None])
    plain = people.batch(np.array([0]), (64, 48))
    only_flip = Augmentation(scale_range=(1.0, 1.0), shift_fraction=0.0, rotation_probability=0.0, flip_probability=1.0)
    mirrored = people.batch(np.array([0]), (64, 48), np.random.default_rng(0), only_flip)
    assert np.abs(mirrored.images[0].astype(int) - plain.images[0, :, ::-1].astype(int)).max() <= 1
    left_wrist, right_wrist = COCO_KEYPOINT_NAMES.index("left_wrist"), COCO_KEYPOINT_NAMES.index("right_wrist")
    expected = plain.keypoints[0, right_wrist] * [-1, 1] + [47, 0]
    np.testing.assert_allclose(mirrored.keypoints[0, left_wrist], expected, atol=1e-4)
    assert not mirrored.labelled[0, COCO_KEYPOINT_NAMES.index("left_ear")]
    assert mirrored.labelled[0, COCO_KEYPOINT_NAMES.index("right_ear")]


# ------------------------------------------------------------------------------------------------- training
class TinyDataset(Dataset):
    """Eight images with one person each: the scene image, its left or right figure annotated."""

    def __init__(self, scene: Path) -> None:
        self.scene = scene
        self.info = DatasetInfo(name="tiny", task="keypoints", split="train", root=scene.parent,
                                keypoint_names=COCO_KEYPOINT_NAMES)

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> Sample:
        keypoints = np.zeros((1, 17, 3))
        x0 = 40 + 110 * (index % 2)
        keypoints[0, 0] = [x0 + 25, 30, 2]
        arms = [[38, 45], [12, 45], [46, 65], [3, 65], [55, 85], [-5, 85]]  # shoulders, elbows, wrists
        legs = [[32, 95], [18, 95], [36, 128], [14, 128], [40, 160], [10, 160]]  # hips, knees, ankles
        keypoints[0, 5:17, :2] = np.asarray(arms + legs) + [x0, 0]
        keypoints[0, 5:17, 2] = 2
        keypoints[0, 13, 2] = 1  # an occluded knee
        box = np.array([[x0 - 8.0, 20, 66, 144]])
        target = KeypointsTarget(
            image_id=index, width=256, height=192, boxes=box, keypoints=keypoints, areas=np.array([2000.0]),
            iscrowd=np.array([False]), num_keypoints=np.array([13]), ann_ids=np.array([index]),
        )
        return Sample(sample_id=index, image_path=self.scene, target=target, prompts=PersonBoxes(box, np.ones(1)))

    def source_files(self):
        return [self.scene]


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_short_training_lowers_the_loss_and_saves_safe_weights(name, scene, tmp_path):
    losses: list[float] = []
    out = tmp_path / f"{name}.pt"
    outcome = train(
        name, TinyDataset(scene), out=out, epochs=60, max_steps=40, seed=1,
        on_step=lambda step, total, loss: losses.append(loss),
    )
    assert outcome.steps == 40 and len(losses) == 40
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    state = torch.load(out, map_location="cpu", weights_only=True)
    assert set(state) == set(ADAPTERS.get(name).build_network().state_dict())
    (prediction,) = ADAPTERS.get(name)(name, checkpoint=out).predict([make_sample(scene, BOXES[:1])])
    assert prediction.keypoints.shape == (1, 17, 3)


def test_mean_pose_training_is_the_box_normalised_mean(scene, tmp_path):
    dataset = TinyDataset(scene)
    out = tmp_path / "mean.pt"
    train("mean-pose", dataset, out=out)
    adapter = ADAPTERS.get("mean-pose")("mean-pose", checkpoint=out)
    sample = dataset[0]
    (prediction,) = adapter.predict([sample])
    keypoints = sample.target.keypoints[0]
    labelled = keypoints[:, 2] > 0
    # every training person has the same normalised pose, so the mean is that pose
    np.testing.assert_allclose(prediction.keypoints[0, labelled, :2], keypoints[labelled, :2], atol=1e-9)
    np.testing.assert_allclose(prediction.keypoints[0, :, 2], labelled.astype(float))


def test_training_is_reproducible_for_a_seed(scene, tmp_path):
    first, second = tmp_path / "a.pt", tmp_path / "b.pt"
    for out in (first, second):
        train("regression", TinyDataset(scene), out=out, epochs=1, max_steps=3, seed=7)
    a, b = torch.load(first, weights_only=True), torch.load(second, weights_only=True)
    assert all(torch.equal(a[key], b[key]) for key in a)
