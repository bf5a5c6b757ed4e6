import shutil

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_codec

from harness.datasets import DATASETS
from harness.datasets.cityscapes import INSTANCE_LABEL_IDS, LABELS, TRAIN_CLASSES
from harness.core.errors import DataError

from tests.conftest import DATA
from tests.datasets.checking import assert_clean, assert_problems, copy_tree, run_check

FIXTURE = DATA / "cityscapes"
FRAME = FIXTURE / "gtFine" / "val" / "frankfurt" / "frankfurt_000000_000294"


def test_label_table_matches_cityscapesscripts():
    from cityscapesscripts.helpers.labels import labels as reference

    official = {label.id: label for label in reference if label.id >= 0}
    assert sorted(official) == [label.id for label in LABELS]
    for label in LABELS:
        ref = official[label.id]
        assert (label.name, label.category, label.has_instances) == (ref.name, ref.category, ref.hasInstances)
        assert label.train_id == (255 if ref.ignoreInEval else ref.trainId)
    evaluated = [l for l in reference if not l.ignoreInEval]
    assert TRAIN_CLASSES == [l.name for l in sorted(evaluated, key=lambda l: l.trainId)]
    assert INSTANCE_LABEL_IDS == [l.id for l in evaluated if l.hasInstances]


def test_real_frame_semantic_target_in_train_id_space():
    from cityscapesscripts.helpers.labels import id2label

    dataset = DATASETS.get("cityscapes")(FIXTURE, None, "semantic")
    assert len(dataset) == 1 and dataset.info.split == "val" and dataset.info.ignore_index == 255
    assert dataset.info.classes == TRAIN_CLASSES and len(TRAIN_CLASSES) == 19
    sample = dataset[0]
    assert sample.sample_id == "frankfurt/frankfurt_000000_000294"
    label_ids = np.asarray(Image.open(f"{FRAME}_gtFine_labelIds.png"))
    expected = np.vectorize(lambda i: 255 if id2label[i].ignoreInEval else id2label[i].trainId)(label_ids)
    np.testing.assert_array_equal(sample.target.label_map, expected)
    assert np.unique(sample.target.label_map).tolist() == [0, 1, 2, 4, 5, 7, 8, 10, 11, 13, 255]
    np.testing.assert_array_equal(sample.target.instance_map,
                                  np.asarray(Image.open(f"{FRAME}_gtFine_instanceIds.png")).astype(np.int32))
    assert sample.meta["label_ids_path"] == f"{FRAME}_gtFine_labelIds.png"
    assert sample.load_image().shape == (128, 256, 3)
    assert_clean(run_check("cityscapes", FIXTURE, "val", "semantic"))


def test_real_frame_instances():
    dataset = DATASETS.get("cityscapes")(FIXTURE, "val", "instance")
    assert dataset.info.category_ids == [24, 25, 26, 27, 28, 31, 32, 33]
    assert dataset.info.classes == ["person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"]
    assert dataset.counts() == {"images": 1, "instances": 7, "crowd regions": 0, "classes": 8}
    target = dataset[0].target
    assert target.ann_ids.tolist() == [24000, 24001, 24002, 24003, 26000, 26001, 26002]
    assert target.labels.tolist() == [24, 24, 24, 24, 26, 26, 26] and not target.iscrowd.any()
    np.testing.assert_array_equal(target.areas, [6, 42, 27, 32, 6, 224, 1572])
    np.testing.assert_array_equal(target.boxes[-1], [156, 38, 65, 34])
    instance_ids = np.asarray(Image.open(f"{FRAME}_gtFine_instanceIds.png"))
    for value, rle in zip(target.ann_ids, target.masks):
        decoded = mask_codec.decode({"size": rle["size"], "counts": rle["counts"].encode()})
        np.testing.assert_array_equal(decoded.astype(bool), instance_ids == value)
    assert_clean(run_check("cityscapes", FIXTURE, "val", "instance"))


def test_embedded_cityscapes_like_scenes(bench_cache):
    dataset = DATASETS.get("cityscapes")(None, None, "semantic")
    assert dataset.info.name == "cityscapes-mini" and len(dataset) == 100
    present = set()
    for sample in dataset:
        assert sample.target.label_map.shape == (96, 192)
        present |= set(np.unique(sample.target.label_map).tolist())
        ids = sample.target.instance_map
        assert set(np.unique(ids[ids >= 1000] // 1000).tolist()) <= {24, 26, 33}
    names = {TRAIN_CLASSES[i] for i in present if i != 255}
    assert names == {"road", "sidewalk", "building", "pole", "traffic sign", "vegetation", "sky", "person", "car",
                     "bicycle"}
    assert 255 in present  # the ego vehicle
    instances = DATASETS.get("cityscapes")(None, "val", "instance").counts()
    assert instances["images"] == 100 and 100 <= instances["instances"] <= 500 and instances["crowd regions"] >= 1
    assert_clean(run_check("cityscapes", None, "val", "instance"))


def test_check_lists_every_planted_fault(bench_cache, tmp_path):
    root = DATASETS.get("cityscapes")(None, "val", "semantic").root
    broken = copy_tree(root, tmp_path / "cityscapes")
    gt = broken / "gtFine" / "val" / "frankfurt"
    frames = sorted(p.name[: -len("_gtFine_labelIds.png")] for p in gt.glob("*_labelIds.png"))
    label = np.asarray(Image.open(gt / f"{frames[0]}_gtFine_labelIds.png")).copy()
    label[0, :5] = 40
    Image.fromarray(label).save(gt / f"{frames[0]}_gtFine_labelIds.png")
    (gt / f"{frames[1]}_gtFine_instanceIds.png").unlink()
    (broken / "leftImg8bit" / "val" / "frankfurt" / f"{frames[2]}_leftImg8bit.png").write_bytes(b"junk")
    ids = np.asarray(Image.open(gt / f"{frames[3]}_gtFine_instanceIds.png")).astype(np.uint16)
    ids[5, 5] = 40001
    Image.fromarray(ids).save(gt / f"{frames[3]}_gtFine_instanceIds.png")
    result = run_check("cityscapes", broken, "val", "instance")
    assert_problems(result, "label values 40 outside the class range (labelIds 0..33)",
                    f"{frames[1]}_gtFine_instanceIds.png: ground truth of", f"{frames[2]}_leftImg8bit.png: cannot decode",
                    "instance ids 40001 encode no Cityscapes labelId")
    with pytest.raises(DataError, match="ground truth of .* is missing"):
        DATASETS.get("cityscapes")(broken, "val", "instance")


def test_missing_split_and_gt_folders(tmp_path):
    with pytest.raises(DataError, match="no leftImg8bit/train/ folder"):
        DATASETS.get("cityscapes")(FIXTURE, "train", "semantic")
    broken = copy_tree(FIXTURE, tmp_path / "cs")
    shutil.rmtree(broken / "gtFine")
    assert_problems(run_check("cityscapes", broken, "val", "semantic"), "no gtFine/val/ folder")
