import numpy as np
import pytest
from PIL import Image

from harness.datasets import DATASETS
from harness.labels.ade20k import ADE20K_CLASSES, OBJECT_INFO_150
from harness.core.errors import DataError

from tests.conftest import DATA
from tests.datasets.checking import assert_clean, assert_problems, copy_tree, run_check

FIXTURE = DATA / "ade20k"
ROOT = FIXTURE / "ADEChallengeData2016"


def test_class_list_is_the_devkits_object_info_150():
    rows = (ROOT / "objectInfo150.txt").read_text().splitlines()[1:]
    names = [row.split("\t")[4].strip() for row in rows]
    assert OBJECT_INFO_150 == names and len(ADE20K_CLASSES) == 150
    assert ADE20K_CLASSES[:4] == ["wall", "building", "sky", "floor"] and ADE20K_CLASSES[-1] == "flag"
    assert len(set(ADE20K_CLASSES)) == 150


@pytest.mark.parametrize("root, split", [(FIXTURE, None), (ROOT, "validation"), (ROOT, "val")])
def test_real_sample_data_with_reduce_zero_label(root, split):
    dataset = DATASETS.get("ade20k")(root, split, "semantic")
    assert dataset.info.split == "validation" and dataset.info.ignore_index == 255
    assert [s.sample_id for s in dataset] == ["ADE_val_00000001", "ADE_val_00000002", "ADE_val_00000003"]
    first = dataset[0]
    assert np.unique(first.target.label_map).tolist() == [0, 1, 2, 4, 6, 9, 17, 255]  # raw 0 1 2 3 5 7 10 18
    for sample in dataset:
        raw = np.asarray(Image.open(ROOT / "annotations" / "validation" / f"{sample.sample_id}.png")).astype(int)
        np.testing.assert_array_equal(sample.target.label_map, np.where(raw == 0, 255, raw - 1))
    assert first.load_image().shape == (512, 683, 3)


def test_check_is_clean_on_the_real_files_and_the_embedded_set(bench_cache):
    assert_clean(run_check("ade20k", FIXTURE))
    assert_clean(run_check("ade20k"))


def test_embedded_ade_like_scenes(bench_cache):
    dataset = DATASETS.get("ade20k")(None, "val", "semantic")
    assert dataset.info.name == "ade20k-mini" and dataset.info.split == "validation" and len(dataset) == 100
    present = set()
    for sample in dataset:
        present |= set(np.unique(sample.target.label_map).tolist())
    names = {ADE20K_CLASSES[i] for i in present if i != 255}
    assert names == {"wall", "floor", "ceiling", "painting", "clock", "lamp", "plant", "vase"}
    assert 255 in present  # "other" objects, ignored
    assert dataset.items[0].image_path.name == "ADE_val_00000001.jpg"


def test_check_lists_every_planted_fault(bench_cache, tmp_path):
    root = DATASETS.get("ade20k")(None, None, "semantic").root
    broken = copy_tree(root, tmp_path / "ADEChallengeData2016")
    labels, images = broken / "annotations" / "validation", broken / "images" / "validation"
    label = np.asarray(Image.open(labels / "ADE_val_00000002.png")).copy()
    label[10, 10:14] = [151, 200, 200, 7]
    Image.fromarray(label).save(labels / "ADE_val_00000002.png")
    (labels / "ADE_val_00000005.png").unlink()
    (images / "ADE_val_00000009.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(labels / "ADE_val_00000011.png")
    result = run_check("ade20k", tmp_path, "validation")
    assert_problems(result, "label values 151, 200 outside the class range (0 = other, 1..150)",
                    "ADE_val_00000005.png: annotation of ADE_val_00000005.jpg is missing",
                    "ADE_val_00000009.jpg: cannot decode image", "label map is 5x5 but the image")
    with pytest.raises(DataError, match="annotation of ADE_val_00000005.jpg is missing"):
        DATASETS.get("ade20k")(broken, None, "semantic")


def test_unknown_split_names_the_choices():
    with pytest.raises(DataError, match="no images/test/ folder .*splits: training, validation"):
        DATASETS.get("ade20k")(FIXTURE, "test", "semantic")


def test_class_synonyms_come_from_object_info_150():
    synonyms = DATASETS.get("ade20k")(None, None, "semantic").info.extra["class_synonyms"]
    assert len(synonyms) == len(ADE20K_CLASSES) == 150
    assert synonyms[89][:2] == ["television", "television receiver"] and synonyms[0] == ["wall"]
    assert all(names[0] == cls for names, cls in zip(synonyms, ADE20K_CLASSES))
