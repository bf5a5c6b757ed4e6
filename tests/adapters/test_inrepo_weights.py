"""Weights per dataset family (adapters.inrepo.weights): file naming, discovery and the refusal message."""
from __future__ import annotations

from pathlib import Path

import pytest

from adapters.inrepo import weights
from harness.core.dataset import DatasetInfo
from harness.core.errors import BenchError


def info(name: str, task: str = "semantic") -> DatasetInfo:
    return DatasetInfo(name=name, task=task, split="val", root=Path("."))


@pytest.fixture
def weights_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path)
    for name in ("semantic_fcn.pt", "semantic_fcn_cityscapes.pt", "semantic_fcn_ade20k.pt", "semantic_fcn-x_kitti.pt",
                 "detection_prior-boxes.pt", "detection_prior-boxes-mask_cityscapes.pt"):
        (tmp_path / name).write_bytes(b"weights")
    return tmp_path


def test_an_embedded_dataset_and_its_download_share_a_family():
    assert weights.dataset_family(info("cityscapes-mini")) == "cityscapes"
    assert weights.dataset_family(info("cityscapes")) == "cityscapes"
    assert weights.dataset_family(info("ade20k-mini")) == "ade20k"


def test_the_default_family_keeps_the_unsuffixed_file(weights_dir):
    assert weights.family_weights("semantic", "fcn", "voc") == weights_dir / "semantic_fcn.pt"
    assert weights.family_weights("detection", "centernet", "coco") == weights_dir / "detection_centernet.pt"
    assert weights.family_weights("semantic", "fcn", "cityscapes") == weights_dir / "semantic_fcn_cityscapes.pt"


def test_families_are_listed_per_model_without_confusing_prefixes(weights_dir):
    assert weights.committed_families("semantic", "fcn") == ["voc", "ade20k", "cityscapes"]
    # 'prior-boxes_' must not match 'prior-boxes-mask_cityscapes', nor 'fcn_' match 'fcn-x_kitti'
    assert weights.committed_families("detection", "prior-boxes") == ["coco"]
    assert weights.committed_families("detection", "prior-boxes-mask") == ["cityscapes"]


def test_weights_for_binds_the_dataset_family(weights_dir):
    assert weights.weights_for("semantic", "fcn", info("voc-mini")) == weights_dir / "semantic_fcn.pt"
    assert weights.weights_for("semantic", "fcn", info("ade20k")) == weights_dir / "semantic_fcn_ade20k.pt"


def test_a_dataset_without_weights_is_refused_in_one_line_naming_those_with(weights_dir):
    with pytest.raises(BenchError) as error:
        weights.weights_for("semantic", "fcn", info("mapillary-mini"))
    message = str(error.value)
    assert "\n" not in message
    assert "model 'fcn' has no weights for dataset 'mapillary-mini' (it has weights for voc, ade20k, " \
           "cityscapes)" in message
    assert "--dataset mapillary" in message
    with pytest.raises(BenchError, match="it has weights for no dataset"):
        weights.weights_for("semantic", "unet", info("voc-mini"))


def test_a_family_that_cannot_name_a_file_is_refused(weights_dir):
    with pytest.raises(BenchError, match="has no weights"):
        weights.weights_for("semantic", "fcn", info("my_set"))
    with pytest.raises(BenchError, match="cannot name a weights file"):
        weights.family_weights("semantic", "fcn", "my_set")


def test_a_family_without_a_file_may_share_another_familys_label_space(weights_dir):
    asked = []

    def same_label_space(family: str, path: Path) -> bool:
        asked.append((family, path.name))
        return family == "cityscapes"

    chosen = weights.weights_for("semantic", "fcn", info("streets-mini"), same_label_space)
    assert chosen == weights_dir / "semantic_fcn_cityscapes.pt"
    assert asked == [("voc", "semantic_fcn.pt"), ("ade20k", "semantic_fcn_ade20k.pt"),
                     ("cityscapes", "semantic_fcn_cityscapes.pt")]
    assert weights.weights_family("semantic", "fcn", chosen) == "cityscapes"
    assert weights.weights_family("semantic", "fcn", weights_dir / "semantic_fcn.pt") == "voc"
    with pytest.raises(BenchError, match="has no weights for dataset 'streets-mini'"):
        weights.weights_for("semantic", "fcn", info("streets-mini"), lambda family, path: False)
    # the dataset's own family's file is taken without asking (the adapter then checks its classes as usual)
    asked.clear()
    assert weights.weights_for("semantic", "fcn", info("ade20k"), same_label_space).name == "semantic_fcn_ade20k.pt"
    assert asked == []
