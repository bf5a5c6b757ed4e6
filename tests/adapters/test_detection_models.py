"""The in-repo detection and instance models: committed weights, valid predictions, weights per dataset family
(COCO shapes, Cityscapes), NMS, learning, training."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_codec

from harness.core.catalog import ADAPTERS
from adapters.inrepo.detection.detector_weights import PREFIX, Checkpoint, family_weights
from adapters.inrepo.weights import default_weights
from adapters.inrepo.detection.postprocess import paste_masks, suppress
from adapters.inrepo.detection.train import train
from harness.run.trainers import validate as evaluate_adapter
from harness.datasets import DATASETS
from harness.core.dataset import DatasetInfo
from harness.core.errors import BenchError

MODELS = {"centernet": "detection", "centernet-mask": "instance", "prior-boxes": "detection",
          "prior-boxes-mask": "instance"}
BASELINE_OF = {"centernet": "prior-boxes", "centernet-mask": "prior-boxes-mask"}
FEW = 12  # val images used where a whole split is not needed
#: instance models with weights for the embedded Cityscapes streets too (labelIds as category ids)
CITYSCAPES_MODELS = ("centernet-mask", "prior-boxes-mask")
CITYSCAPES_IDS = [24, 25, 26, 27, 28, 31, 32, 33]


@pytest.fixture(scope="module")
def val_sets():
    return {task: DATASETS.get("coco")(None, "val", task) for task in ("detection", "instance")}


@pytest.fixture(scope="module")
def adapters():
    return {name: ADAPTERS.get(name)(name) for name in MODELS}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_registered_for_its_task_and_run_by_default(name):
    entry = ADAPTERS.get(name)
    assert entry.task == MODELS[name]
    assert entry.runs_by_default


@pytest.mark.parametrize("name", sorted(MODELS))
def test_committed_weights_are_small_and_load_without_unpickling(name):
    path = default_weights(PREFIX, name)
    assert path.is_file() and path.stat().st_size < 3_000_000
    content = torch.load(path, map_location="cpu", weights_only=True)
    assert content["classes"] == ["circle", "square", "triangle", "cross", "ring"]
    assert content["category_ids"] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_predictions_are_valid(name, adapters, val_sets):
    adapter, dataset = adapters[name], val_sets[MODELS[name]]
    adapter.check_compatible(dataset.info)
    samples = [dataset[i] for i in range(6)]
    predictions = adapter.predict(samples)
    assert len(predictions) == len(samples)
    found = 0
    for sample, prediction in zip(samples, predictions):
        height, width = sample.load_image().shape[:2]
        boxes, scores, labels = prediction.boxes, prediction.scores, prediction.labels
        count = len(scores)
        found += count
        assert boxes.shape == (count, 4) and labels.shape == (count,) and count <= 100
        assert np.isfinite(boxes).all() and np.isfinite(scores).all()
        assert (scores > 0).all() and (scores <= 1).all()
        assert (boxes[:, 2:] > 0).all()
        assert (boxes[:, :2] >= 0).all()
        assert (boxes[:, 0] + boxes[:, 2] <= width + 1e-6).all() and (boxes[:, 1] + boxes[:, 3] <= height + 1e-6).all()
        assert set(labels.tolist()) <= set(dataset.info.category_ids)
        if MODELS[name] == "instance":
            assert len(prediction.masks) == count
            for rle in prediction.masks:
                assert list(rle["size"]) == [height, width]
                assert mask_codec.decode(rle).shape == (height, width)
        else:
            assert prediction.masks is None
    assert found > 0


@pytest.mark.parametrize("name", sorted(BASELINE_OF))
def test_learned_model_beats_its_baseline(name, adapters, val_sets):
    dataset = val_sets[MODELS[name]]
    learned = evaluate_adapter(adapters[name], dataset, indices=range(FEW))
    baseline = evaluate_adapter(adapters[BASELINE_OF[name]], dataset, indices=range(FEW))
    assert learned["AP"] > baseline["AP"] + 0.2
    assert learned["AP50"] > baseline["AP50"] + 0.3


def test_instance_masks_are_better_than_their_boxes(adapters, val_sets):
    """Mask AP of a filled box is poor on circles, triangles and rings; a mask head must do better."""
    numbers = evaluate_adapter(adapters["centernet-mask"], val_sets["instance"], indices=range(FEW))
    baseline = evaluate_adapter(adapters["prior-boxes-mask"], val_sets["instance"], indices=range(FEW))
    assert numbers["AP"] > 0.3 and numbers["AP"] > baseline["AP"]


def test_a_dataset_with_other_classes_or_ids_is_refused(adapters, val_sets):
    info = val_sets["detection"].info
    renamed = dataclasses.replace(info, classes=["circle", "square", "triangle", "cross", "star"])
    with pytest.raises(BenchError, match="classes differ"):
        adapters["centernet"].check_compatible(renamed)
    renumbered = dataclasses.replace(info, category_ids=[1, 2, 3, 4, 7])
    with pytest.raises(BenchError, match="category ids"):
        adapters["centernet"].check_compatible(renumbered)


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    with pytest.raises(BenchError, match="expected 'centernet-mask'"):
        Checkpoint.load(default_weights(PREFIX, "centernet"), "centernet-mask")
    adapter = ADAPTERS.get("centernet")("centernet", checkpoint=default_weights(PREFIX, "prior-boxes"))
    with pytest.raises(BenchError, match="prior-boxes"):
        adapter.info()


# ------------------------------------------------------------------------------------- per dataset family
@pytest.fixture(scope="module")
def cityscapes_val():
    return DATASETS.get("cityscapes")(None, "val", "instance")


@pytest.mark.parametrize("name", CITYSCAPES_MODELS)
def test_cityscapes_weights_are_small_and_hold_the_cityscapes_label_space(name, cityscapes_val):
    path = family_weights(name, cityscapes_val.info)
    assert path.name == f"detection_{name}_cityscapes.pt" and path.stat().st_size < 3_000_000
    content = torch.load(path, map_location="cpu", weights_only=True)
    assert content["classes"] == cityscapes_val.info.classes
    assert content["category_ids"] == CITYSCAPES_IDS == cityscapes_val.info.category_ids


@pytest.mark.parametrize("name", CITYSCAPES_MODELS)
def test_check_compatible_binds_the_datasets_weights_before_the_fingerprint(name, cityscapes_val, val_sets):
    adapter = ADAPTERS.get(name)(name)
    coco_fingerprint = adapter.fingerprint()
    assert adapter.info().classes == val_sets["instance"].info.classes  # the default weights until bound
    adapter.check_compatible(cityscapes_val.info)
    assert adapter.weights_file() == family_weights(name, cityscapes_val.info)
    assert adapter.fingerprint() != coco_fingerprint
    assert adapter.info().classes == cityscapes_val.info.classes
    assert adapter.info().extra["category_ids"] == CITYSCAPES_IDS
    prediction = adapter.predict([cityscapes_val[0]])[0]
    assert len(prediction.scores) and set(prediction.labels.tolist()) <= set(CITYSCAPES_IDS)
    adapter.check_compatible(val_sets["instance"].info)
    assert adapter.fingerprint() == coco_fingerprint and adapter.info().extra["category_ids"] == [1, 2, 3, 4, 5]


def test_voc_mini_boxes_share_the_coco_shapes_label_space_and_weights():
    voc = DATASETS.get("voc")(None, None, "detection").info
    adapter = ADAPTERS.get("centernet")("centernet")
    adapter.check_compatible(voc)
    assert adapter.weights_file() == default_weights(PREFIX, "centernet")


def test_a_dataset_without_weights_is_refused_in_one_line():
    other = DatasetInfo(name="lvis", task="instance", split="val", root=Path("."), classes=["a"], category_ids=[1])
    for name in CITYSCAPES_MODELS:
        with pytest.raises(BenchError) as error:
            ADAPTERS.get(name)(name).check_compatible(other)
        assert "\n" not in str(error.value)
        assert f"model {name!r} has no weights for dataset 'lvis' (it has weights for coco, cityscapes)" in \
            str(error.value)
    with pytest.raises(BenchError, match=r"'centernet' has no weights for dataset 'lvis' \(it has weights for coco\)"):
        ADAPTERS.get("centernet")("centernet").check_compatible(dataclasses.replace(other, task="detection"))


def test_the_users_checkpoint_is_never_swapped_for_the_datasets(cityscapes_val):
    adapter = ADAPTERS.get("centernet-mask")("centernet-mask", checkpoint=default_weights(PREFIX, "centernet-mask"))
    with pytest.raises(BenchError, match="classes differ"):
        adapter.check_compatible(cityscapes_val.info)
    assert adapter.weights_file() == default_weights(PREFIX, "centernet-mask")


def test_the_cityscapes_model_beats_its_baseline(cityscapes_val):
    numbers = {}
    for name in CITYSCAPES_MODELS:
        numbers[name] = evaluate_adapter(ADAPTERS.get(name)(name), cityscapes_val, indices=range(FEW))
    learned, baseline = numbers["centernet-mask"], numbers["prior-boxes-mask"]
    assert learned["AP"] > baseline["AP"] + 0.15, (learned["AP"], baseline["AP"])
    assert learned["AP50"] > baseline["AP50"] + 0.3, (learned["AP50"], baseline["AP50"])


def test_street_scenes_train_without_vertical_flips(cityscapes_val):
    """At scale 1 an upright augmentation only translates boxes vertically; a free one sometimes mirrors them."""
    from adapters.inrepo.detection.data import TrainingScenes, augment

    scene = next(scene for scene in TrainingScenes.from_dataset(cityscapes_val, with_masks=False, limit=8).scenes
                 if len(scene.boxes) >= 2 and np.ptp(scene.boxes[:, 1] + scene.boxes[:, 3]) > 2)
    mirrored = 0
    for seed in range(20):
        upright = augment(scene, 192, np.random.default_rng(seed), (1.0, 1.0), vertical_flips=False)
        assert len(upright.boxes) == len(scene.boxes)
        assert np.ptp(upright.boxes[:, 1] - scene.boxes[:, 1]) < 1e-3
        free = augment(scene, 192, np.random.default_rng(seed), (1.0, 1.0), vertical_flips=True)
        mirrored += np.ptp(free.boxes[:, 1] - scene.boxes[:, 1]) > 1
    assert mirrored > 0


# ------------------------------------------------------------------------------------------------ NMS
def test_nms_removes_a_duplicate_of_the_same_class_only():
    boxes = torch.tensor([[10.0, 10.0, 30.0, 30.0], [11.0, 10.0, 31.0, 30.0], [10.0, 10.0, 30.0, 30.0],
                          [60.0, 60.0, 70.0, 70.0]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    classes = torch.tensor([0, 0, 1, 0])
    kept = suppress(boxes, scores, classes)
    assert kept.scores.tolist() == pytest.approx([0.9, 0.7, 0.6])
    assert kept.classes.tolist() == [0, 1, 0]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.prod(np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None))
    union = np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter
    return float(inter / union)


boxes_strategy = st.lists(
    st.tuples(st.floats(0, 50), st.floats(0, 50), st.floats(2, 30), st.floats(2, 30), st.floats(0.01, 1.0),
              st.integers(0, 2)),
    min_size=1, max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(boxes_strategy)
def test_nms_keeps_no_overlapping_pair_and_drops_only_covered_boxes(items):
    array = np.array(items, dtype=np.float64)
    xyxy = np.concatenate([array[:, :2], array[:, :2] + array[:, 2:4]], axis=1)
    scores, classes = array[:, 4], array[:, 5].astype(np.int64)
    kept = suppress(torch.from_numpy(xyxy).float(), torch.from_numpy(scores).float(), torch.from_numpy(classes),
                    nms_iou=0.5)
    kept_boxes, kept_classes = kept.boxes.double().numpy(), kept.classes.numpy()
    assert (np.diff(kept.scores.numpy()) <= 0).all()
    for i in range(len(kept_boxes)):
        for j in range(i + 1, len(kept_boxes)):
            if kept_classes[i] == kept_classes[j]:
                assert _iou(kept_boxes[i], kept_boxes[j]) <= 0.5 + 1e-4
    kept_set = {tuple(np.round(b, 3)) + (c,) for b, c in zip(kept_boxes, kept_classes)}
    for box, score, label in zip(xyxy.astype(np.float32).astype(np.float64), scores, classes):
        if tuple(np.round(box, 3)) + (label,) in kept_set:
            continue
        covering = [_iou(box, k) for k, c in zip(kept_boxes, kept_classes) if c == label]
        assert covering and max(covering) > 0.5 - 1e-4


def test_pasted_mask_covers_the_pixels_whose_centres_lie_in_the_roi():
    logits = torch.full((1, 1, 24, 24), 5.0)
    masks = paste_masks(logits, torch.tensor([[2.2, 3.7, 10.4, 8.0]]), 12, 16)
    ys, xs = np.nonzero(masks[:, :, 0])
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (2, 10, 3, 7)
    assert masks.shape == (12, 16, 1)


# ------------------------------------------------------------------------------------------- training
@pytest.mark.parametrize("name", ["centernet", "centernet-mask"])
def test_short_training_run_decreases_the_loss(name, tmp_path: Path, val_sets):
    losses: list[float] = []
    outcome = train(name, val_sets[MODELS[name]], out=tmp_path / "model.pt", epochs=2, max_steps=10, seed=0,
                    on_step=lambda step, total, loss: losses.append(loss))
    assert outcome.steps == 10 and len(losses) == 10
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])
    checkpoint = Checkpoint.load(outcome.weights, name)
    assert checkpoint.category_ids == val_sets[MODELS[name]].info.category_ids


def test_prior_boxes_fit_is_seeded_and_stays_within_100_detections(tmp_path: Path, val_sets):
    first = train("prior-boxes", val_sets["detection"], out=tmp_path / "a.pt", seed=3)
    second = train("prior-boxes", val_sets["detection"], out=tmp_path / "b.pt", seed=3)
    a, b = (torch.load(o.weights, weights_only=True)["network"] for o in (first, second))
    assert all(torch.equal(a[key], b[key]) for key in a)
    adapter = ADAPTERS.get("prior-boxes")("prior-boxes", checkpoint=first.weights)
    prediction = adapter.predict([val_sets["detection"][0]])[0]
    assert 0 < len(prediction.scores) <= 100


def test_a_short_cityscapes_run_is_reproducible_and_keeps_its_label_space(tmp_path: Path, cityscapes_val):
    runs = [train("centernet-mask", cityscapes_val, out=tmp_path / f"{i}.pt", max_steps=2, seed=4) for i in range(2)]
    assert runs[0].losses == runs[1].losses
    checkpoint = Checkpoint.load(runs[0].weights, "centernet-mask")
    assert checkpoint.classes == cityscapes_val.info.classes and checkpoint.category_ids == CITYSCAPES_IDS


def test_bench_train_writes_the_dataset_familys_weights_by_default(cityscapes_val, val_sets):
    from harness.run.trainers import TRAINERS

    trainer = TRAINERS.get("instance")
    assert trainer.weights_file("centernet-mask", cityscapes_val.info).name == "detection_centernet-mask_cityscapes.pt"
    assert trainer.weights_file("centernet-mask", val_sets["instance"].info) == default_weights(PREFIX, "centernet-mask")


def test_training_is_reproducible_from_the_seed(tmp_path: Path, val_sets):
    runs = [train("centernet", val_sets["detection"], out=tmp_path / f"{seed}-{i}.pt", max_steps=2, seed=seed)
            for i, seed in enumerate((5, 5, 6))]
    first, again, other = (torch.load(run.weights, weights_only=True)["network"] for run in runs)
    assert all(torch.equal(first[key], again[key]) for key in first)
    assert not all(torch.equal(first[key], other[key]) for key in first)
