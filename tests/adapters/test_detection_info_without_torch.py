"""The in-repo detection and instance adapters answer ``info()`` and ``check_compatible`` from facts remembered per
weights file (issue 15): read from the checkpoint once, then without loading it (so without torch), and read again
whenever the file changes."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from adapters.inrepo.detection import classics
from adapters.inrepo.detection.adapter import network_class
from adapters.inrepo.detection.detector_weights import PREFIX, Checkpoint
from adapters.inrepo.parameter_count import FOLDER, count_parameters
from adapters.inrepo.weights import default_weights
from harness.core.catalog import ADAPTERS
from harness.core.dataset import DatasetInfo
from harness.core.errors import BenchError

MODELS = ["centernet", "centernet-mask", "prior-boxes", "prior-boxes-mask", "yolo", "ssd", "retinanet", "detr",
          "mask-rcnn"]
SHAPES = ["circle", "square", "triangle", "cross", "ring"]


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / FOLDER


def refuse_loading(monkeypatch):
    """From here on, reading a detection checkpoint fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the checkpoint was loaded")

    monkeypatch.setattr(Checkpoint, "load", refuse)


def coco_shapes(task: str) -> DatasetInfo:
    return DatasetInfo(name="coco-mini", task=task, split="val", root=Path("."), classes=list(SHAPES),
                       category_ids=[1, 2, 3, 4, 5])


@pytest.mark.parametrize("name", sorted(set(classics.MODELS) & set(MODELS)))
def test_a_classic_adapter_names_the_network_its_trainer_builds(name):
    assert type(classics.build(name, 5)) is network_class(ADAPTERS.get(name).network_path)


@pytest.mark.parametrize("name", MODELS)
def test_info_is_read_once_then_remembered_without_loading_the_checkpoint(name, fresh_cache, monkeypatch):
    first = ADAPTERS.get(name)(name)
    info = first.info()  # nothing stored yet: reads the checkpoint, builds and counts the network
    assert info.classes == SHAPES and info.extra["category_ids"] == [1, 2, 3, 4, 5]
    network = first.network
    assert info.parameters == (count_parameters(network) if first.network_path else 0)
    assert type(network).__name__ == (first.network_path.partition(":")[2] or "dict")

    refuse_loading(monkeypatch)
    again = ADAPTERS.get(name)(name)
    again.check_compatible(coco_shapes(again.task))
    assert again.info() == info
    assert again._network is None  # nothing built
    with pytest.raises(BenchError, match="category ids"):  # the remembered ids still refuse another numbering
        again.check_compatible(dataclasses.replace(coco_shapes(again.task), category_ids=[1, 2, 3, 4, 7]))
    with pytest.raises(BenchError, match="classes differ"):
        again.check_compatible(dataclasses.replace(coco_shapes(again.task), classes=[*SHAPES[:4], "star"]))


def test_a_changed_weights_file_is_read_again(fresh_cache, tmp_path, monkeypatch):
    """Same path, new bytes (a retrain into the same file): its new label space is reported, not the stored one."""
    path = tmp_path / "mine.pt"
    shutil.copyfile(default_weights(PREFIX, "centernet"), path)
    assert ADAPTERS.get("centernet")("centernet", checkpoint=path).info().classes == SHAPES

    checkpoint = Checkpoint.load(path, "centernet")
    renamed = [*SHAPES[:4], "star"]
    Checkpoint("centernet", checkpoint.network, renamed, [1, 2, 3, 4, 7]).save(path)
    reread = ADAPTERS.get("centernet")("centernet", checkpoint=path)
    info = reread.info()
    assert info.classes == renamed and info.extra["category_ids"] == [1, 2, 3, 4, 7]
    assert reread._checkpoint is not None  # read from the new file

    refuse_loading(monkeypatch)  # and remembered for the new bytes too
    assert ADAPTERS.get("centernet")("centernet", checkpoint=path).info() == info


def test_corrupt_stored_facts_are_not_trusted(fresh_cache):
    expected = ADAPTERS.get("yolo")("yolo").info()
    for stored in fresh_cache.glob("*.json"):
        stored.write_text('{"kind": "yolo", "classes": "many", "category_ids": [1], "parameters": -3}')
    again = ADAPTERS.get("yolo")("yolo")
    assert again.info() == expected
    assert again._checkpoint is not None and again._network is not None  # read and counted again


def test_a_checkpoint_of_another_kind_is_refused_and_nothing_is_remembered(fresh_cache):
    adapter = ADAPTERS.get("centernet")("centernet", checkpoint=default_weights(PREFIX, "prior-boxes"))
    with pytest.raises(BenchError, match="holds a 'prior-boxes' model, expected 'centernet'"):
        adapter.info()
    assert not list(fresh_cache.glob("*.json"))
