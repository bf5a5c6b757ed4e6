"""OpenMMLab adapters (mmdet, mmpose, mmseg) on mmcv-lite + our mmcv._ext stand-in.

Each adapter: build from a shipped config with random weights, save a checkpoint, load it through the adapter,
predict on real images, score with pycocotools / a confusion matrix; then the label plumbing is proven exact by
replacing the network with one that returns the ground truth (AP = 1, mIoU = 1).  Configs are shrunk through
the ``cfg_options`` option (smaller test scale, fewer proposals) so the file runs in well under a minute.
"""
from __future__ import annotations

import copy
import importlib
import importlib.util
import itertools
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from harness.core.catalog import ADAPTERS
from harness.core.adapter import Adapter, AdapterInfo
from adapters.openmmlab._common import resolve_config
from adapters.openmmlab._ext_shim import SERVED_OPS, UnsupportedOpError, install_ext_shim
from harness.core.dataset import DatasetInfo
from harness.core.errors import BenchError, UnknownNameError
from harness.labels.keypoints import COCO_KEYPOINT_NAMES
from harness.core.structures import DetectionPrediction, KeypointsPrediction, PersonBoxes, Sample, SemanticPrediction
from tests.adapters.samples import (
    IGNORE,
    coco80_info,
    coco_eval,
    detection_results,
    keypoint_results,
    mean_iou,
)

DET = "rtmdet_tiny_8xb32-300e_coco"
INS = "rtmdet-ins_tiny_8xb32-300e_coco"
MASK_RCNN = "mask-rcnn_r50_fpn_1x_coco"
POSE = "rtmpose-t_8xb256-420e_aic-coco-256x192"
SEGFORMER = "segformer_mit-b0_8xb2-160k_ade20k-512x512"
FCN = "fcn_r18-d8_4xb2-80k_cityscapes-512x1024"
RTMDET_SMALL = {"test_dataloader.dataset.pipeline.1.scale": (160, 160), "test_dataloader.dataset.pipeline.2.size": (160, 160),
                "model.test_cfg.nms_pre": 200, "model.test_cfg.max_per_img": 20}
OPTIONS = {
    f"mmdet:{DET}": {"cfg_options": RTMDET_SMALL},
    f"mmdet-ins:{INS}": {"cfg_options": RTMDET_SMALL},
    f"mmdet-ins:{MASK_RCNN}": {"cfg_options": {
        "test_dataloader.dataset.pipeline.1.scale": (160, 128), "model.test_cfg.rpn.nms_pre": 100,
        "model.test_cfg.rpn.max_per_img": 30, "model.test_cfg.rcnn.score_thr": 0.0, "model.test_cfg.rcnn.max_per_img": 10}},
    f"mmpose:{POSE}": {},
    f"mmseg:{SEGFORMER}": {"cfg_options": {"test_dataloader.dataset.pipeline.1.scale": (128, 64)}},
    f"mmseg:{FCN}": {"cfg_options": {"test_dataloader.dataset.pipeline.1.scale": (128, 64)}},
}


def build(name: str, checkpoint: Path | None = None, trust_checkpoint: bool = False, **options) -> Adapter:
    options = {"config": name.partition(":")[2], **OPTIONS.get(name, {}), **options}
    return ADAPTERS.get(name)(name, checkpoint=checkpoint, trust_checkpoint=trust_checkpoint, options=options)


_cache: dict[str, Adapter] = {}


def random_adapter(name: str) -> Adapter:
    """One random-weight adapter per name for the whole module (built under a fixed seed)."""
    if name not in _cache:
        torch.manual_seed(0)
        _cache[name] = build(name)
        _cache[name].info()
    return _cache[name]


def save_checkpoint(adapter: Adapter, path: Path, **extra) -> Path:
    """An mmengine-style checkpoint: ``meta.dataset_meta`` (numpy arrays included, as mmpose saves them)."""
    built = adapter.built()
    torch.save({"meta": {"dataset_meta": dict(built.metadata), "mmengine_version": "0.10.7"},
                "state_dict": built.model.state_dict(), **extra}, path)
    return path


def task_samples(adapter: Adapter, tiny_coco) -> tuple[list[Sample], DatasetInfo]:
    if adapter.task in ("detection", "instance"):
        return tiny_coco.detection_samples()[:2], coco80_info(adapter.task)
    if adapter.task == "keypoints":
        dataset = tiny_coco.keypoint_dataset()
        return [dataset[0], dataset[1]], dataset.info
    classes = adapter.info().classes
    info = DatasetInfo(name="seg", task="semantic", split="val", root=Path("."), classes=classes, ignore_index=IGNORE)
    return tiny_coco.person_label_maps(classes.index("person"), None)[:2], info


def assert_same_predictions(first: list, second: list) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second):
        for field, value in vars(a).items():
            if isinstance(value, np.ndarray):
                np.testing.assert_allclose(value, getattr(b, field), rtol=1e-5, atol=1e-4, err_msg=field)
            else:
                assert value == getattr(b, field), field


def check_and_score(adapter: Adapter, tiny_coco, samples: list[Sample], predictions: list) -> float:
    gt = tiny_coco.gt()
    for sample, prediction in zip(samples, predictions):
        height, width = sample.load_image().shape[:2]
        if adapter.task in ("detection", "instance"):
            assert isinstance(prediction, DetectionPrediction)
            count = len(prediction.scores)
            assert 0 < count <= 20 and prediction.boxes.shape == (count, 4)
            assert set(prediction.labels.tolist()) <= set(coco80_info("detection").category_ids)
            if adapter.task == "instance":
                assert len(prediction.masks) == count and all(m["size"] == [height, width] for m in prediction.masks)
            else:
                assert prediction.masks is None
        elif adapter.task == "keypoints":
            assert isinstance(prediction, KeypointsPrediction)
            people = len(sample.prompts.boxes)
            assert prediction.keypoints.shape == (people, 17, 3) and prediction.scores.shape == (people,)
            np.testing.assert_array_equal(prediction.boxes, sample.prompts.boxes)
        else:
            assert isinstance(prediction, SemanticPrediction)
            assert prediction.label_map.shape == (height, width)
    if adapter.task == "detection":
        return float(coco_eval(gt, detection_results(samples, predictions), "bbox")[0])
    if adapter.task == "instance":
        return float(coco_eval(gt, detection_results(samples, predictions), "segm")[0])
    if adapter.task == "keypoints":
        return float(coco_eval(gt, keypoint_results(samples, predictions), "keypoints")[0])
    return mean_iou(samples, predictions, len(adapter.info().classes))


@pytest.mark.parametrize("name", list(OPTIONS))
def test_random_init_predict_score_and_checkpoint_round_trip(name: str, tiny_coco, tmp_path: Path) -> None:
    fresh = random_adapter(name)
    info = fresh.info()
    assert "random weights" in info.extra["warning"] and info.parameters > 0
    samples, dataset = task_samples(fresh, tiny_coco)
    fresh.check_compatible(dataset)
    expected = fresh.predict(samples)
    value = check_and_score(fresh, tiny_coco, samples, expected)
    assert np.isfinite(value) and value >= -1
    if name == f"mmdet-ins:{MASK_RCNN}":
        return  # the RoIAlign stand-in is exercised; its ResNet-50 round trip adds nothing the others test

    checkpoint = save_checkpoint(fresh, tmp_path / "model.pth")
    torch.manual_seed(1)  # a different random init: equal outputs prove the weights were loaded
    loaded = build(name, checkpoint=checkpoint)
    assert "warning" not in loaded.info().extra
    loaded.check_compatible(dataset)
    assert_same_predictions(expected, loaded.predict(samples))
    assert loaded.fingerprint() != fresh.fingerprint()


# ------------------------------------------------------------------------ exactness of the label plumbing
def polygon_masks(target, height: int, width: int) -> np.ndarray:
    from pycocotools import mask as mask_utils

    return np.stack([mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(p, height, width))) for p in target.masks]).astype(bool)


def test_mmdet_outputs_become_exact_coco_results(tiny_coco, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    samples = tiny_coco.detection_samples()
    adapter = random_adapter(f"mmdet-ins:{INS}")
    adapter.check_compatible(coco80_info("instance"))
    truths = iter(samples)

    def ground_truth_step(batch):
        results = []
        for _ in batch["inputs"]:
            target = next(truths).target
            boxes = target.boxes.copy()
            boxes[:, 2:] += boxes[:, :2]
            result = DetDataSample()
            result.pred_instances = InstanceData(
                bboxes=torch.tensor(boxes, dtype=torch.float32), scores=torch.linspace(1, 0.5, len(boxes)),
                labels=torch.zeros(len(boxes), dtype=torch.int64),  # index 0 = 'person' in mmdet's COCO classes
                masks=torch.tensor(polygon_masks(target, target.height, target.width)))
            results.append(result)
        return results

    monkeypatch.setattr(adapter.built().model, "test_step", ground_truth_step)
    predictions = adapter.predict(samples)
    assert all(set(p.labels.tolist()) == {1} for p in predictions)
    results = detection_results(samples, predictions)
    assert coco_eval(tiny_coco.gt(), results, "bbox")[0] == pytest.approx(1.0)
    assert coco_eval(tiny_coco.gt(), results, "segm")[0] == pytest.approx(1.0)


def test_mmpose_outputs_become_exact_coco_results(tiny_coco, monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = tiny_coco.keypoint_dataset()
    samples = list(dataset)
    adapter = random_adapter(f"mmpose:{POSE}")
    adapter.check_compatible(dataset.info)
    people = iter([points for s in samples for points, box in zip(s.target.keypoints, s.target.boxes)
                   if any((box == prompt).all() for prompt in s.prompts.boxes)])

    def ground_truth_step(batch):
        results = []
        for _ in batch["inputs"]:
            points = next(people)
            results.append(SimpleNamespace(pred_instances=SimpleNamespace(
                keypoints=points[None, :, :2].astype(np.float32), keypoint_scores=np.full((1, 17), 0.9, np.float32))))
        return results

    monkeypatch.setattr(adapter.built().model, "test_step", ground_truth_step)
    predictions = adapter.predict(samples)
    assert np.allclose(np.concatenate([p.scores for p in predictions]), 0.9)  # box score 1 x mean keypoint score
    assert coco_eval(tiny_coco.gt(), keypoint_results(samples, predictions), "keypoints")[0] == pytest.approx(1.0)


def test_mmseg_outputs_are_the_dataset_label_maps(tiny_coco, monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = random_adapter(f"mmseg:{SEGFORMER}")
    samples, dataset = task_samples(adapter, tiny_coco)
    samples = tiny_coco.person_label_maps(dataset.classes.index("person"), 0)  # background -> 'wall', scored
    adapter.check_compatible(dataset)
    by_shape = {s.target.label_map.shape: s.target.label_map for s in samples}  # the four shapes differ

    def ground_truth_step(batch):
        return [SimpleNamespace(pred_sem_seg=SimpleNamespace(data=torch.tensor(by_shape[tuple(d.ori_shape)][None])))
                for d in batch["data_samples"]]

    monkeypatch.setattr(adapter.built().model, "test_step", ground_truth_step)
    assert mean_iou(samples, adapter.predict(samples), len(dataset.classes)) == 1.0


# ------------------------------------------------------------------------------------------ MPII (16 joints)
POSE_MPII = "td-hm_res50_8xb64-210e_mpii-256x256"
#: 64x64 crops (16x16 heatmaps) and no flip test: the same code path at a fraction of the CPU time
MPII_SMALL = {"test_dataloader.dataset.pipeline.2.input_size": (64, 64), "codec.input_size": (64, 64),
              "model.head.decoder.input_size": (64, 64), "model.head.decoder.heatmap_size": (16, 16),
              "model.test_cfg.flip_test": False}


def test_mmpose_mpii_config_runs_on_the_embedded_mpii_data(bench_cache, monkeypatch: pytest.MonkeyPatch) -> None:
    """A randomly initialised mmpose MPII top-down model: its keypoint order (mmpose's mpii dataset_info) is the
    MPII reader's, so it binds; its 16-joint outputs score with PCKh; and the label plumbing is exact (the
    ground truth handed back through ``test_step`` scores 1 everywhere)."""
    from harness.tasks import get_task
    from harness.datasets import DATASETS
    from harness.labels.keypoints import MPII_KEYPOINT_NAMES

    dataset = DATASETS.get("mpii")(None, None, "keypoints")
    samples = [dataset[i] for i in range(4)]
    torch.manual_seed(0)
    adapter = build(f"mmpose:{POSE_MPII}", cfg_options=MPII_SMALL)
    assert adapter.info().keypoint_names == MPII_KEYPOINT_NAMES and adapter.info().input_size == (64, 64)
    adapter.check_compatible(dataset.info)
    predictions = adapter.predict(samples)
    for sample, prediction in zip(samples, predictions):
        assert prediction.keypoints.shape == (len(sample.target.ann_ids), 16, 3)
        np.testing.assert_array_equal(prediction.boxes, sample.prompts.boxes)

    def pckh(predicted) -> dict[str, float]:
        (metric,) = get_task("keypoints").metrics(dataset.info)
        metric.update(samples, predicted)
        return metric.compute().metrics

    assert 0.0 <= pckh(predictions)["PCKh@0.5"] < 0.5  # random weights
    people = iter([points for sample in samples for points in sample.target.keypoints])

    def ground_truth_step(batch):
        return [SimpleNamespace(pred_instances=SimpleNamespace(
            keypoints=next(people)[None, :, :2].astype(np.float64),
            keypoint_scores=np.full((1, 16), 0.9, np.float32))) for _ in batch["inputs"]]

    monkeypatch.setattr(adapter.built().model, "test_step", ground_truth_step)
    assert set(pckh(adapter.predict(samples)).values()) == {1.0}
    reordered = copy.deepcopy(dataset.info)
    reordered.keypoint_names = MPII_KEYPOINT_NAMES[::-1]
    with pytest.raises(BenchError, match="predicts keypoints"):
        adapter.check_compatible(reordered)


# ------------------------------------------------------------------------------------------- refusals
def test_a_dataset_with_other_classes_or_keypoints_is_refused(tiny_coco) -> None:
    voc = DatasetInfo(name="voc", task="detection", split="val", root=Path("."), classes=["aeroplane", "bicycle"],
                      category_ids=[1, 2])
    with pytest.raises(BenchError, match="classes differ from dataset 'voc': 80 vs 2"):
        random_adapter(f"mmdet:{DET}").check_compatible(voc)
    renamed = coco80_info("detection")
    renamed.classes[0] = "human"
    with pytest.raises(BenchError, match="first difference: #0 'person' vs 'human'"):
        random_adapter(f"mmdet:{DET}").check_compatible(renamed)
    flipped = tiny_coco.keypoint_dataset().info
    flipped.keypoint_names = COCO_KEYPOINT_NAMES[::-1]
    with pytest.raises(BenchError, match="predicts keypoints"):
        random_adapter(f"mmpose:{POSE}").check_compatible(flipped)
    cityscapes = DatasetInfo(name="cityscapes", task="semantic", split="val", root=Path("."),
                             classes=random_adapter(f"mmseg:{FCN}").info().classes)
    with pytest.raises(BenchError, match="classes differ"):
        random_adapter(f"mmseg:{SEGFORMER}").check_compatible(cityscapes)
    with pytest.raises(BenchError, match="is a detection model"):
        random_adapter(f"mmdet:{DET}").check_compatible(coco80_info("instance"))


def test_class_spellings_the_dataset_lists_as_synonyms_are_accepted() -> None:
    """mmseg's ADE20K list says 'bed ' and 'television receiver'; the devkit's objectInfo150 says 'bed' and
    'television, television receiver, television set, ...'."""
    adapter = random_adapter(f"mmseg:{SEGFORMER}")
    devkit = list(adapter.info().classes)
    assert devkit[7] == "bed" and devkit[89] == "television receiver"  # trailing space dropped
    devkit[89] = "television"
    ade = DatasetInfo(name="ade20k", task="semantic", split="val", root=Path("."), classes=devkit)
    with pytest.raises(BenchError, match="first difference: #89 'television receiver' vs 'television'"):
        adapter.check_compatible(ade)
    ade.extra["class_synonyms"] = [[name] for name in devkit]
    ade.extra["class_synonyms"][89] = ["television", "television receiver", "television set", "tv"]
    adapter.check_compatible(ade)
    ade.extra["class_synonyms"][89] = ["television", "tv"]
    with pytest.raises(BenchError, match="#89"):
        adapter.check_compatible(ade)


def test_class_names_come_from_the_checkpoint_before_the_config(tmp_path: Path) -> None:
    fresh = random_adapter(f"mmdet:{DET}")
    renamed = coco80_info("detection")
    renamed.classes[0] = "human"
    path = tmp_path / "renamed.pth"
    torch.save({"meta": {"dataset_meta": {"classes": tuple(renamed.classes)}}, "state_dict": fresh.built().model.state_dict()}, path)
    adapter = build(f"mmdet:{DET}", checkpoint=path)
    adapter.check_compatible(renamed)
    with pytest.raises(BenchError, match="classes differ"):
        adapter.check_compatible(coco80_info("detection"))
    legacy = tmp_path / "legacy.pth"  # mmdet 2.x keeps the names in meta.CLASSES
    torch.save({"meta": {"CLASSES": tuple(renamed.classes)}, "state_dict": fresh.built().model.state_dict()}, legacy)
    assert build(f"mmdet:{DET}", checkpoint=legacy).info().classes[0] == "human"


def test_metadata_that_cannot_describe_the_model_is_refused(tmp_path: Path) -> None:
    fresh = random_adapter(f"mmdet:{DET}")
    path = tmp_path / "three.pth"
    torch.save({"meta": {"dataset_meta": {"classes": ("a", "b", "c")}}, "state_dict": fresh.built().model.state_dict()}, path)
    with pytest.raises(BenchError, match=r"heads predict \[80\] classes but its metadata names 3"):
        build(f"mmdet:{DET}", checkpoint=path).info()


def test_a_model_without_any_class_names_is_refused_with_instructions(tmp_path: Path, tiny_coco) -> None:
    base = resolve_config("mmdet", DET)
    config = tmp_path / "no_metadata.py"
    no_names = "dict(dataset=dict(type='BaseDetDataset'))"
    config.write_text(f"_base_ = [{str(base)!r}]\ntrain_dataloader = {no_names}\nval_dataloader = {no_names}\n"
                      f"test_dataloader = {no_names}\n")
    adapter = build(f"mmdet:{config}", cfg_options=RTMDET_SMALL)
    assert adapter.info().classes == []
    with pytest.raises(BenchError, match="carries no class names.*meta.dataset_meta.*never assumes COCO"):
        adapter.check_compatible(coco80_info("detection"))
    with pytest.raises(BenchError, match="check_compatible"):
        adapter.predict(tiny_coco.detection_samples()[:1])


class Unsafe:
    """Stands for mmengine's pickled MessageHub and any other object that is not plain data."""


def test_a_checkpoint_that_needs_unpickling_is_refused_unless_trusted(tmp_path: Path) -> None:
    path = save_checkpoint(random_adapter(f"mmdet:{DET}"), tmp_path / "training.pth", message_hub=Unsafe())
    with pytest.raises(BenchError, match="refusing to unpickle.*--trust-checkpoint"):
        build(f"mmdet:{DET}", checkpoint=path).info()
    assert "warning" not in build(f"mmdet:{DET}", checkpoint=path, trust_checkpoint=True).info().extra


def test_a_checkpoint_of_another_model_is_refused(tmp_path: Path) -> None:
    path = save_checkpoint(random_adapter(f"mmseg:{FCN}"), tmp_path / "fcn.pth")
    with pytest.raises(BenchError, match="does not fit the config"):
        build(f"mmseg:{SEGFORMER}", checkpoint=path).info()


def test_instance_segmentation_needs_a_mask_head(tiny_coco) -> None:
    adapter = build(f"mmdet-ins:{DET}", cfg_options=RTMDET_SMALL)
    adapter.check_compatible(coco80_info("instance"))
    with pytest.raises(BenchError, match="predicts no masks.*use mmdet:"):
        adapter.predict(tiny_coco.detection_samples()[:1])


# ------------------------------------------------------------------------------------- person boxes
class FixedDetector(Adapter):
    task = "detection"

    def info(self) -> AdapterInfo:
        return AdapterInfo(name=self.name, task=self.task)

    def predict(self, samples):
        return [DetectionPrediction(boxes=np.array([[10, 10, 30, 50], [5, 5, 20, 20], [0, 0, 8, 8]], float),
                                    scores=np.array([0.9, 0.2, 0.8]), labels=np.array([7, 7, 3])) for _ in samples]


def test_people_can_come_from_a_detector_instead_of_the_prompts(tiny_coco) -> None:
    pose = random_adapter(f"mmpose:{POSE}")
    samples = [tiny_coco.keypoint_dataset()[0]]
    with_detector = build(f"mmpose:{POSE}", person_detector=FixedDetector("fixed"), person_category_id=7,
                          person_score_threshold=0.5)
    with_detector._built = pose.built()  # same weights, no second build
    prediction = with_detector.predict(samples)[0]
    np.testing.assert_array_equal(prediction.boxes, [[10, 10, 30, 50]])  # person id 7, score >= 0.5 only
    assert prediction.keypoints.shape == (1, 17, 3) and with_detector.info().extra["boxes"] == "person_detector"
    without_id = build(f"mmpose:{POSE}", person_detector=FixedDetector("fixed"))
    without_id._built = pose.built()
    with pytest.raises(BenchError, match="person_category_id is required"):
        without_id.predict(samples)
    bare = Sample(1, samples[0].image_path, None)
    with pytest.raises(BenchError, match="sample 1 has no person boxes"):
        pose.predict([bare])
    empty = Sample(2, samples[0].image_path, None, prompts=PersonBoxes(np.zeros((0, 4)), np.zeros(0)))
    assert pose.predict([empty])[0].keypoints.shape == (0, 17, 3)


def test_instance_score_is_box_score_times_mean_confident_keypoint_score() -> None:
    from adapters.openmmlab.mmpose import instance_scores

    scores = instance_scores(np.array([0.5, 1.0]), np.array([[0.9, 0.1, 0.5], [0.1, 0.2, 0.0]]))
    np.testing.assert_allclose(scores, [0.5 * 0.7, 0.0])  # 0.2 itself is not above the threshold


# ------------------------------------------------------------------------------ configs and registry
def test_configs_resolve_by_shipped_name_or_path(tmp_path: Path) -> None:
    path = resolve_config("mmdet", DET)
    assert path.name == f"{DET}.py" and ".mim" in path.parts
    assert resolve_config("mmdet", f"{DET}.py") == path == resolve_config("mmdet", str(path))
    with pytest.raises(UnknownNameError, match="no config 'rtmdet_tiny_8xb32-300e_cocoo'.*did you mean rtmdet_tiny_8xb32-300e_coco"):
        resolve_config("mmdet", "rtmdet_tiny_8xb32-300e_cocoo")
    with pytest.raises(BenchError, match="ambiguous"):
        resolve_config("mmdet", "override_category")
    with pytest.raises(BenchError, match="config file not found"):
        resolve_config("mmdet", str(tmp_path / "missing" / "x.py"))
    with pytest.raises(BenchError, match="name a config"):
        build("mmseg:")


def test_registry_names_tasks_and_no_default_runs() -> None:
    expected = {"mmdet:": "detection", "mmdet-ins:": "instance", "mmpose:": "keypoints", "mmseg:": "semantic"}
    for prefix, task in expected.items():
        cls = ADAPTERS.get(prefix + "anything")
        assert cls.task == task and cls.runs_by_default is False


def test_fingerprint_follows_config_overrides() -> None:
    name = f"mmseg:{FCN}"
    assert build(name).fingerprint() == build(name).fingerprint()
    assert build(name).fingerprint() != build(name, cfg_options={"model.decode_head.dropout_ratio": 0.2}).fingerprint()


# ------------------------------------------------------------------------------------ the mmcv._ext shim
def reference_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, offset: int) -> list[int]:
    """Greedy NMS written out plainly, mmcv's definition (widths x2 - x1 + offset)."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    area = (boxes[:, 2] - boxes[:, 0] + offset) * (boxes[:, 3] - boxes[:, 1] + offset)
    keep: list[int] = []
    for i in order:
        suppressed = False
        for j in keep:
            w = max(0.0, min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]) + offset)
            h = max(0.0, min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]) + offset)
            if w * h / (area[i] + area[j] - w * h) > threshold:
                suppressed = True
                break
        if not suppressed:
            keep.append(i)
    return keep


@pytest.mark.parametrize(("seed", "offset"), list(itertools.product(range(4), (0, 1))))
def test_shim_nms_matches_greedy_nms(seed: int, offset: int) -> None:
    install_ext_shim()
    from mmcv.ops import nms

    rng = np.random.default_rng(seed)
    corners = rng.uniform(0, 50, (60, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(1, 30, (60, 2))], axis=1).astype(np.float32)
    scores = rng.permutation(60).astype(np.float32) / 60  # distinct scores: the order is defined
    _, kept = nms(torch.tensor(boxes), torch.tensor(scores), 0.4, offset=offset)
    assert kept.tolist() == reference_nms(boxes, scores, 0.4, offset)


def test_shim_roi_align_is_torchvisions_and_other_ops_fail_by_name() -> None:
    install_ext_shim()
    from mmcv.ops import RoIAlign
    from torchvision.ops import roi_align

    features = torch.randn(2, 3, 16, 16)
    rois = torch.tensor([[0, 1.0, 2.0, 9.5, 12.0], [1, 0.0, 0.0, 15.0, 15.0]])
    ours = RoIAlign((4, 4), spatial_scale=0.5, sampling_ratio=0, aligned=True)(features, rois)
    assert torch.allclose(ours, roi_align(features, rois, (4, 4), 0.5, 0, True))
    with pytest.raises(UnsupportedOpError, match="pool_mode='max'"):
        RoIAlign((4, 4), pool_mode="max")(features, rois)
    ext = sys.modules["mmcv._ext"]
    assert set(SERVED_OPS) == {"nms", "roi_align_forward", "deform_conv_forward"}
    assert importlib.util.find_spec("mmcv._ext") is not None
    with pytest.raises(UnsupportedOpError, match="mmcv op 'modulated_deform_conv_forward' needs the compiled mmcv"):
        ext.modulated_deform_conv_forward(None)
    assert importlib.import_module("mmcv.utils.ext_loader").load_ext("_ext", ["nms", "softnms"]) is ext


@pytest.mark.parametrize(("stride", "dilation", "groups", "deform_groups"), [(1, 1, 1, 1), (2, 1, 2, 2), (1, 2, 4, 2)])
def test_shim_deform_conv_is_torchvisions(stride: int, dilation: int, groups: int, deform_groups: int) -> None:
    """mmcv's DeformConv2d through the shim equals torchvision.ops.deform_conv2d called directly with the same
    weights and offsets (fractional offsets: bilinear sampling, some outside the map)."""
    install_ext_shim()
    from mmcv.ops import DeformConv2d
    from torchvision.ops import deform_conv2d

    torch.manual_seed(stride * 10 + groups)
    layer = DeformConv2d(8, 8, 3, stride=stride, padding=dilation, dilation=dilation, groups=groups,
                         deform_groups=deform_groups, bias=False).eval()
    features = torch.randn(2, 8, 11, 13)
    out_h, out_w = (11 - 1) // stride + 1, (13 - 1) // stride + 1
    offset = torch.randn(2, 2 * deform_groups * 9, out_h, out_w) * 2.5
    with torch.no_grad():
        ours = layer(features, offset)
        theirs = deform_conv2d(features, offset, layer.weight, stride=stride, padding=dilation, dilation=dilation)
    assert ours.shape == (2, 8, out_h, out_w)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_shim_deform_conv_reads_offsets_as_dy_dx() -> None:
    """Without torchvision as the oracle: zero offsets give the plain (grouped) convolution, and an offset of
    (dy, dx) = (1, 0) at every kernel tap gives the convolution of the map moved up one row (mmcv's layout; the
    top output row differs, as its upper taps then read the first image row instead of the padding)."""
    install_ext_shim()
    from mmcv.ops import DeformConv2d
    from torch.nn import functional as F

    torch.manual_seed(0)
    layer = DeformConv2d(4, 6, 3, padding=1, groups=2, bias=False).eval()
    features = torch.randn(1, 4, 9, 10)
    offset = torch.zeros(1, 18, 9, 10)
    with torch.no_grad():
        torch.testing.assert_close(layer(features, offset), F.conv2d(features, layer.weight, padding=1, groups=2))
        offset[:, 0::2] = 1.0  # every tap samples one row lower
        shifted = F.pad(features[:, :, 1:], (0, 0, 0, 1))
        moved = layer(features, offset)
        torch.testing.assert_close(moved[:, :, 1:], F.conv2d(shifted, layer.weight, padding=1, groups=2)[:, :, 1:])
