"""In-repo segmentation models: committed weights load safely, predictions have the dataset's shape and index
space, the learned models beat the majority-class baseline on validation images, and training lowers the loss."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from adapters import ADAPTERS
from adapters.inrepo.checkpoints import default_weights
from adapters.inrepo.semantic.adapter import CLASSES
from adapters.inrepo.semantic.train import train
from adapters.inrepo.training import FirstSamples
from harness.bench_run import default_models, get_task
from harness.datasets import DATASETS
from harness.datasets.base import DatasetInfo
from harness.errors import BenchError
from harness.runner import evaluate
from harness.structures import Sample, SemanticPrediction, SemanticTarget

NETWORKS = ("fcn", "unet", "aspp")
MODELS = (*NETWORKS, "majority-class")
VAL_IMAGES = 10


@pytest.fixture(scope="module")
def val_set():
    return DATASETS.get("voc")(None, None, "semantic")


@pytest.fixture(scope="module")
def adapters():
    return {name: ADAPTERS.get(name)(name) for name in MODELS}


def image_sample(height: int, width: int, seed: int) -> Sample:
    """A sample whose image is already decoded (no file), as the runner hands it to a model."""
    rng = np.random.default_rng(seed)
    sample = Sample(sample_id=f"s{seed}", image_path=Path(f"/nonexistent/{seed}.jpg"),
                    target=SemanticTarget(label_map=np.zeros((height, width), np.uint8)))
    sample._decoded[0] = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return sample


@pytest.mark.parametrize("name", MODELS)
def test_committed_weights_are_small_and_load_without_unpickling(name):
    path = default_weights("semantic", name)
    assert path.stat().st_size < 2_000_000
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert state and all(isinstance(value, torch.Tensor) for value in state.values())


def test_all_models_run_by_default():
    assert set(MODELS) <= set(default_models("semantic"))


@pytest.mark.parametrize("name", MODELS)
def test_predictions_are_label_maps_of_the_image_size(adapters, name):
    adapter = adapters[name]
    # sizes that are not multiples of the networks' strides, and two images of one size batched together
    samples = [image_sample(131, 150, 0), image_sample(128, 176, 1), image_sample(131, 150, 2)]
    predictions = adapter.predict(samples)
    assert len(predictions) == 3
    for sample, prediction in zip(samples, predictions):
        assert isinstance(prediction, SemanticPrediction)
        assert prediction.label_map.shape == sample.load_image().shape[:2]
        assert prediction.label_map.dtype.kind in "ui"
        assert prediction.label_map.max() < len(CLASSES)
    info = adapter.info()
    assert info.classes == CLASSES and info.task == "semantic"


@pytest.mark.parametrize("name", NETWORKS)
def test_batching_does_not_change_a_prediction(adapters, name):
    samples = [image_sample(131, 150, 3), image_sample(131, 150, 4)]
    together = adapters[name].predict(samples)
    alone = adapters[name].predict(samples[1:])
    np.testing.assert_array_equal(together[1].label_map, alone[0].label_map)


def test_models_declare_the_embedded_classes_and_refuse_others(adapters, val_set):
    for adapter in adapters.values():
        adapter.check_compatible(val_set.info)
    other = DatasetInfo(name="voc", task="semantic", split="val", root=Path("."),
                        classes=["background", "aeroplane", "bicycle", "bird", "boat", "bottle"])
    with pytest.raises(BenchError, match="classes differ"):
        adapters["fcn"].check_compatible(other)


def test_a_checkpoint_of_another_architecture_is_refused_in_one_line():
    with pytest.raises(BenchError, match="does not fit UNet") as error:
        ADAPTERS.get("unet")("unet", checkpoint=default_weights("semantic", "fcn"))
    assert "\n" not in str(error.value)


def test_majority_class_is_the_background_of_the_training_split(adapters):
    baseline = adapters["majority-class"]
    assert baseline.majority == 0
    assert baseline.class_frequencies.sum() == pytest.approx(1.0)
    assert baseline.class_frequencies[0] > 0.8


def test_learned_models_beat_the_majority_class_baseline(adapters, val_set):
    task = get_task("semantic")
    indices = list(range(VAL_IMAGES))
    scores = {name: evaluate(task, val_set, adapter, indices=indices, batch_size=8).result.metrics
              for name, adapter in adapters.items()}
    baseline = scores["majority-class"]
    assert baseline["mIoU"] < 0.2
    for name in NETWORKS:
        assert scores[name]["mIoU"] > baseline["mIoU"] + 0.35, (name, scores[name]["mIoU"])
        assert scores[name]["aAcc"] > baseline["aAcc"], name


def test_a_short_training_run_lowers_the_loss(val_set, tmp_path):
    outcome = train("fcn", FirstSamples(val_set, 8), out=tmp_path / "fcn.pt", steps=16, batch_size=4, seed=1)
    assert len(outcome.losses) == 16
    assert np.mean(outcome.losses[-4:]) < 0.8 * np.mean(outcome.losses[:4])
    reloaded = ADAPTERS.get("fcn")("fcn", checkpoint=outcome.weights)
    assert reloaded.predict([image_sample(128, 128, 5)])[0].label_map.shape == (128, 128)


def test_training_is_reproducible_from_its_seed(val_set, tmp_path):
    subset = FirstSamples(val_set, 4)
    states = []
    for run in range(2):
        outcome = train("aspp", subset, out=tmp_path / f"run{run}.pt", steps=3, batch_size=2, seed=7)
        states.append(torch.load(outcome.weights, weights_only=True))
    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key


def test_majority_class_training_counts_labelled_pixels(val_set, tmp_path):
    subset = FirstSamples(val_set, 4)
    outcome = train("majority-class", subset, out=tmp_path / "majority.pt")
    frequencies = torch.load(outcome.weights, weights_only=True)["class_frequencies"].numpy()
    counts = np.zeros(len(CLASSES))
    for sample in subset:
        labels = sample.target.label_map
        counts += np.bincount(labels[labels != 255], minlength=len(CLASSES))[: len(CLASSES)]
    np.testing.assert_allclose(frequencies, counts / counts.sum())


def test_bench_train_trains_and_scores_a_segmentation_model(tmp_path):
    from click.testing import CliRunner

    from harness.cli import main

    out = tmp_path / "fcn.pt"
    arguments = ["train", "--task", "semantic", "--model", "fcn", "--epochs", "1", "--split", "val", "--out", str(out)]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    assert "fcn on voc-mini 2012-val" in result.output and "mIoU" in result.output
    assert set(torch.load(out, weights_only=True)) == set(torch.load(default_weights("semantic", "fcn"),
                                                                      weights_only=True))


def test_training_refuses_an_unknown_model():
    with pytest.raises(BenchError, match="no trainer"):
        train("segformer")
