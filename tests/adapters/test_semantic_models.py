"""In-repo segmentation models: committed weights load safely, predictions have the dataset's shape and index
space, each dataset family (VOC shapes, Cityscapes, ADE20K) binds its own weights, the learned models beat the
majority-class baseline on validation images of every family, and training lowers the loss."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from harness.core.catalog import ADAPTERS
from adapters.inrepo.weights import default_weights, family_weights
from adapters.inrepo.semantic.adapter import CLASSES
from adapters.inrepo.semantic.data import SegmentationSet
from adapters.inrepo.semantic.train import train
from adapters.inrepo.train_loop import FirstSamples
from harness.run.bench_run import default_models
from harness.tasks import get_task
from harness.datasets import DATASETS
from harness.core.dataset import DatasetInfo
from harness.core.errors import BenchError
from harness.run.runner import evaluate
from harness.core.structures import Sample, SemanticPrediction, SemanticTarget

NETWORKS = ("fcn", "unet", "aspp")
MODELS = (*NETWORKS, "majority-class")
VAL_IMAGES = 10
#: the dataset families with committed weights besides the default (VOC shapes)
FAMILIES = ("cityscapes", "ade20k")


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


@pytest.fixture(scope="module")
def family_val_sets():
    return {family: DATASETS.get(family)(None, "val", "semantic") for family in FAMILIES}


@pytest.mark.parametrize("family", ("voc", *FAMILIES))
@pytest.mark.parametrize("name", MODELS)
def test_committed_weights_are_small_and_load_without_unpickling(name, family):
    path = family_weights("semantic", name, family)
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
    adapter = ADAPTERS.get("unet")("unet", checkpoint=default_weights("semantic", "fcn"))
    with pytest.raises(BenchError, match="does not fit UNet") as error:
        adapter.info()
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", MODELS)
def test_each_dataset_family_binds_its_own_weights(name, family, family_val_sets):
    """check_compatible swaps in the family's file before the runner fingerprints the model or predicts."""
    info = family_val_sets[family].info
    adapter = ADAPTERS.get(name)(name)
    default_fingerprint = adapter.fingerprint()
    assert adapter.weights_file() == default_weights("semantic", name)
    adapter.check_compatible(info)
    assert adapter.weights_file() == family_weights("semantic", name, family)
    assert adapter.weights_file().name == f"semantic_{name}_{family}.pt"
    assert adapter.fingerprint() != default_fingerprint
    assert adapter.info().classes == info.classes
    sample = family_val_sets[family][0]
    label_map = adapter.predict([sample])[0].label_map
    assert label_map.shape == sample.target.label_map.shape and label_map.max() < len(info.classes)
    # and back: the same adapter on the default dataset predicts with the default weights again
    adapter.check_compatible(DATASETS.get("voc")(None, None, "semantic").info)
    assert adapter.fingerprint() == default_fingerprint and adapter.info().classes == CLASSES


def test_a_dataset_of_another_name_with_a_known_label_space_gets_those_weights(family_val_sets):
    import dataclasses

    streets = dataclasses.replace(family_val_sets["cityscapes"].info, name="streets-mini")
    adapter = ADAPTERS.get("aspp")("aspp")
    adapter.check_compatible(streets)
    assert adapter.weights_file() == family_weights("semantic", "aspp", "cityscapes")
    shapes = DatasetInfo(name="shapes", task="semantic", split="val", root=Path("."), classes=list(CLASSES))
    adapter.check_compatible(shapes)
    assert adapter.weights_file() == default_weights("semantic", "aspp") and adapter.info().classes == CLASSES


def test_a_dataset_without_weights_is_refused_in_one_line():
    other = DatasetInfo(name="mapillary-mini", task="semantic", split="val", root=Path("."), classes=["road"])
    for name in MODELS:
        with pytest.raises(BenchError) as error:
            ADAPTERS.get(name)(name).check_compatible(other)
        message = str(error.value)
        assert "\n" not in message
        assert f"model {name!r} has no weights for dataset 'mapillary-mini' (it has weights for voc, ade20k, " \
               "cityscapes)" in message


def test_the_users_checkpoint_wins_and_keeps_the_datasets_label_space(family_val_sets):
    info = family_val_sets["cityscapes"].info
    mine = family_weights("semantic", "fcn", "cityscapes")
    adapter = ADAPTERS.get("fcn")("fcn", checkpoint=mine)
    adapter.check_compatible(info)
    assert adapter.weights_file() == mine and adapter.info().classes == info.classes
    # VOC-shapes weights given for Cityscapes: the file wins, and does not fit 19 classes
    wrong = ADAPTERS.get("fcn")("fcn", checkpoint=default_weights("semantic", "fcn"))
    with pytest.raises(BenchError, match=r"classifier.weight.*\(6, 64, 1, 1\).*\(19, 64, 1, 1\)") as error:
        wrong.check_compatible(info)
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


@pytest.mark.parametrize("family", FAMILIES)
def test_learned_models_beat_the_majority_class_baseline_on_every_family(family, family_val_sets):
    dataset = family_val_sets[family]
    task = get_task("semantic")
    indices = list(range(VAL_IMAGES))
    scores = {}
    for name in MODELS:
        adapter = ADAPTERS.get(name)(name)
        adapter.check_compatible(dataset.info)
        scores[name] = evaluate(task, dataset, adapter, indices=indices, batch_size=8).result.metrics
    baseline = scores["majority-class"]
    # ADE20K's official mean runs over all 150 classes, of which the mini shows 8: its mIoU stays small, so the
    # margin is a ratio (Cityscapes: ~0.57 vs 0.03; ADE20K: ~0.025 vs 0.003 on the whole val split)
    for name in NETWORKS:
        assert scores[name]["mIoU"] > 4 * baseline["mIoU"], (name, scores[name]["mIoU"], baseline["mIoU"])
        assert scores[name]["aAcc"] > baseline["aAcc"] + 0.3, (name, scores[name]["aAcc"], baseline["aAcc"])


def test_upright_batches_keep_the_scene_up(family_val_sets):
    """Cityscapes frames train unrotated: the sky (trainId 10) stays above the road (0) in every window."""
    data = SegmentationSet.load(FirstSamples(family_val_sets["cityscapes"], 6))
    _, labels = data.batch(np.arange(6), np.random.default_rng(0), (96, 192), upright=True)
    assert labels.shape == (6, 96, 192)
    for label_map in labels.numpy():
        rows = np.arange(96)[:, None].repeat(192, axis=1)
        assert rows[label_map == 10].mean() < rows[label_map == 0].mean()
    with pytest.raises(ValueError, match="square"):
        data.batch(np.arange(2), np.random.default_rng(0), (96, 192), upright=False)


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


def test_a_short_cityscapes_run_is_reproducible_and_lands_in_the_cityscapes_label_space(family_val_sets, tmp_path):
    subset = FirstSamples(family_val_sets["cityscapes"], 4)
    runs = [train("fcn", subset, out=tmp_path / f"run{run}.pt", steps=3, batch_size=2, seed=7) for run in range(2)]
    assert runs[0].losses == runs[1].losses and len(runs[0].losses) == 3
    state = torch.load(runs[0].weights, weights_only=True)
    assert state["classifier.weight"].shape[0] == 19
    adapter = ADAPTERS.get("fcn")("fcn", checkpoint=runs[0].weights)
    adapter.check_compatible(family_val_sets["cityscapes"].info)


def test_bench_train_writes_the_dataset_familys_weights_by_default():
    from harness.run.trainers import TRAINERS

    info = DATASETS.get("ade20k")(None, "val", "semantic").info
    trainer = TRAINERS.get("semantic")
    assert trainer.weights_file("unet", info) == family_weights("semantic", "unet", "ade20k")
    assert trainer.weights_file("unet", DATASETS.get("voc")(None, None, "semantic").info) == default_weights(
        "semantic", "unet")


def test_bench_train_trains_on_cityscapes(tmp_path):
    from click.testing import CliRunner

    from harness.cli import main

    out = tmp_path / "fcn.pt"
    arguments = ["train", "--task", "semantic", "--model", "fcn", "--dataset", "cityscapes", "--epochs", "1",
                 "--split", "val", "--out", str(out)]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    assert "fcn on cityscapes-mini val" in result.output and "mIoU" in result.output
    assert torch.load(out, weights_only=True)["classifier.weight"].shape[0] == 19


def test_training_refuses_a_dataset_outside_the_known_label_spaces(val_set):
    import dataclasses

    other = FirstSamples(val_set, 2)
    other.info = dataclasses.replace(val_set.info, name="mapillary")
    with pytest.raises(BenchError, match="label spaces of voc, cityscapes and ade20k"):
        train("fcn", other)
    other.info = dataclasses.replace(val_set.info, name="cityscapes")  # a Cityscapes name, VOC-shapes classes
    with pytest.raises(BenchError, match="trained for 'cityscapes' predict 19 classes"):
        train("fcn", other)


def test_training_refuses_an_unknown_model(val_set):
    with pytest.raises(BenchError, match="no trainer"):
        train("segformer", val_set)


# ------------------------------------------------------------------------------------------ multi-scale test
def test_multi_scale_probabilities_average_the_resized_outputs_of_each_scale():
    """Each scale sees the image resized by its factor; its logits come back at the image's size; the result is
    the mean of the per-scale softmaxes (a single scale 1 is the plain prediction's softmax)."""
    from torch.nn import functional as F

    from adapters.inrepo.semantic.adapter import multi_scale_probabilities

    torch.manual_seed(0)
    image = torch.randn(1, 3, 20, 30)
    weights = torch.randn(4, 3, 1, 1)
    seen = []

    def logits_of(batch):
        seen.append(tuple(batch.shape[-2:]))
        return F.conv2d(batch, weights)

    plain = multi_scale_probabilities(logits_of, image, [1.0])
    torch.testing.assert_close(plain, F.conv2d(image, weights)[0].softmax(dim=0))
    seen.clear()
    mixed = multi_scale_probabilities(logits_of, image, [0.5, 1.0, 1.5])
    assert seen == [(10, 15), (20, 30), (30, 45)]
    expected = sum(F.interpolate(F.conv2d(F.interpolate(image, size=size, mode="bilinear", align_corners=False),
                                          weights), size=(20, 30), mode="bilinear", align_corners=False)[0].softmax(0)
                   for size in [(10, 15), (30, 45)]) + plain
    torch.testing.assert_close(mixed, expected / 3)
    torch.testing.assert_close(mixed.sum(dim=0), torch.ones(20, 30))


def test_multi_scale_run_is_recorded_as_its_own_model(tmp_path):
    """``--multi-scale`` renames the model, changes its fingerprint (cache and run identity), records the scales
    in provenance, and a plain run of the same model stays as it was."""
    from dataclasses import replace

    from harness.run.bench_run import RunConfig, run_models

    base = RunConfig(task="semantic", models=("fcn",), limit=3, bootstrap=0, gallery=0, cache=False,
                     reports_dir=tmp_path / "reports", leaderboards_dir=tmp_path / "lb")
    plain, = run_models(base)
    scaled, = run_models(replace(base, multi_scale=(0.5, 1.0, 1.5)))
    assert plain["model"]["name"] == "fcn" and "test_time" not in plain["provenance"]
    assert scaled["model"]["name"] == "fcn+ms0.5,1,1.5"
    assert scaled["provenance"]["test_time"] == {"scales": [0.5, 1.0, 1.5]}
    assert scaled["model"]["fingerprint"] != plain["model"]["fingerprint"]
    assert scaled["metrics"] != plain["metrics"]  # it averaged something
