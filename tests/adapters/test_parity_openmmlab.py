"""Parity of the OpenMMLab adapters with the libraries' own high-level inference.

The oracles are the libraries' functions, called as their demos call them, on the image *files* (so they
decode with OpenCV, in BGR, through the config's ``LoadImageFromFile`` / ``LoadImage``):

- mmdet: ``mmdet.apis.init_detector`` + ``inference_detector``;
- mmseg: ``mmseg.apis.init_model`` + ``inference_model``;
- mmpose: ``init_model`` + ``inference_topdown`` of ``mmpose/apis/inference.py``.  ``import mmpose.apis`` runs
  the package ``__init__``, whose inferencers import ``pkg_resources`` (absent from the venv: setuptools >= 81
  dropped it), so the test loads ``inference.py`` from its file under a private module name; that file imports
  only mmengine and mmpose internals, so the functions run unchanged.

Weights: a seeded random model built by the library, its BatchNorm statistics calibrated on a real image (see
``tests/adapters/parity.py``), saved as an mmengine-style checkpoint with ``meta.dataset_meta``; bench reads it
through ``--checkpoint``, the library through its own ``load_checkpoint``.  Score thresholds are 0 and the
detectors keep 30 boxes per image; test scales are shrunk with ``cfg_options`` (the same overrides on both
sides).  Everything is compared at one image per forward pass: the data preprocessor pads a batch to its
largest image, which changes a padding-sensitive model's outputs.
"""
from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

from harness.core.catalog import ADAPTERS
from harness.core.adapter import Adapter
from harness.datasets import DATASETS
from harness.datasets.coco_keypoints import CocoKeypoints
from harness.core.structures import PersonBoxes, Sample
from tests.adapters.parity import (
    COCO_IMAGES,
    IMAGES,
    MATERIAL,
    assert_close,
    calibrate,
    colour_swapped,
    decode_rles,
    discrepancy,
    sample,
    xyxy_to_xywh,
)
from tests.adapters.samples import coco80_info
from tests.conftest import DATA

RTMDET = {"test_dataloader.dataset.pipeline.1.scale": (256, 256), "test_dataloader.dataset.pipeline.2.size": (256, 256),
          "model.test_cfg.nms_pre": 1000, "model.test_cfg.score_thr": 0.0, "model.test_cfg.max_per_img": 30}
MASK_RCNN = {"test_dataloader.dataset.pipeline.1.scale": (320, 224), "model.test_cfg.rpn.nms_pre": 300,
             "model.test_cfg.rpn.max_per_img": 100, "model.test_cfg.rcnn.score_thr": 0.0,
             "model.test_cfg.rcnn.max_per_img": 30}
DETECTORS = {
    "mmdet:rtmdet_tiny_8xb32-300e_coco": RTMDET,
    "mmdet-ins:rtmdet-ins_tiny_8xb32-300e_coco": RTMDET,
    "mmdet-ins:mask-rcnn_r50_fpn_1x_coco": MASK_RCNN,
}
DETECTION_IMAGES = ("coco-785", "coco-40083", "voc-000001")
MIN_OUTPUTS = 20
#: mmseg's inference_model reads the top-level test_pipeline, tools/test.py the test_dataloader's: shrink both
SEGMENTERS = {
    "mmseg:fcn_r18-d8_4xb2-80k_cityscapes-512x1024": ("cityscapes", ("cityscapes", "voc-000001"), (256, 128)),
    "mmseg:segformer_mit-b0_8xb2-160k_ade20k-512x512": ("ade20k", ("ade-1", "ade-3"), (512, 128)),
}
POSE_MODELS = (
    "mmpose:rtmpose-t_8xb256-420e_aic-coco-256x192",  # SimCC
    "mmpose:td-hm_mobilenetv2_8xb64-210e_coco-256x192",  # MSRA heatmaps, flip test with shifted heatmaps
    "mmpose:cspnext-tiny_udp_8xb256-210e_coco-256x192",  # UDP heatmaps
)


# --------------------------------------------------------------------------------------------- helpers
def config_of(name: str) -> tuple[str, str]:
    """(package, shipped config file path) of an adapter name."""
    from adapters.openmmlab._common import resolve_config
    from adapters.openmmlab._ext_shim import install_ext_shim

    prefix, _, stem = name.partition(":")
    package = {"mmdet": "mmdet", "mmdet-ins": "mmdet", "mmseg": "mmseg", "mmpose": "mmpose"}[prefix]
    install_ext_shim()  # the mmcv._ext stand-in, before anything imports mmcv.ops
    pytest.importorskip(package)  # a guard only: CI installs OpenMMLab (scripts/install_openmmlab.sh)
    return package, str(resolve_config(package, stem))


def adapter_for(name: str, checkpoint: Path | None, cfg_options: dict[str, Any] | None, **extra: Any) -> Adapter:
    options = {"config": name.partition(":")[2], **extra}
    if cfg_options:
        options["cfg_options"] = copy.deepcopy(cfg_options)
    return ADAPTERS.get(name)(name, checkpoint=checkpoint, options=options)


def save_checkpoint(model: torch.nn.Module, dataset_meta: dict[str, Any], path: Path) -> Path:
    """What mmengine's runner writes, minus the optimiser and message hub."""
    torch.save({"meta": {"dataset_meta": dataset_meta, "mmengine_version": "0.10.7"}, "state_dict": model.state_dict()},
               path)
    return path


def numpy_allowed() -> Any:
    """mmengine's ``load_checkpoint`` calls ``torch.load`` with torch's default ``weights_only=True``; mmpose's
    metadata holds numpy arrays, which the real mmpose checkpoints do too."""
    from numpy._core.multiarray import _reconstruct, scalar

    dtypes = [getattr(np.dtypes, n) for n in np.dtypes.__all__]
    return torch.serialization.safe_globals([np.ndarray, np.dtype, _reconstruct, scalar, *[t for t in dtypes if isinstance(t, type)]])


def mmpose_inference() -> ModuleType:
    """``mmpose/apis/inference.py`` loaded from its file (see the module docstring for why)."""
    spec = importlib.util.find_spec("mmpose")
    path = Path(spec.origin).parent / "apis" / "inference.py"
    loader = importlib.util.spec_from_file_location("_mmpose_apis_inference_oracle", path)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------- mmdet
@pytest.mark.parametrize("name", list(DETECTORS))
def test_mmdet_adapter_matches_inference_detector(name: str, tmp_path: Path) -> None:
    package, config = config_of(name)
    from mmdet.apis import inference_detector, init_detector
    from mmdet.datasets import CocoDataset

    options = DETECTORS[name]
    torch.manual_seed(0)
    model = init_detector(config, None, device="cpu", cfg_options=copy.deepcopy(options))
    calibrate(model, lambda: inference_detector(model, str(IMAGES["coco-196141"])))
    meta = {"classes": CocoDataset.METAINFO["classes"], "palette": CocoDataset.METAINFO["palette"]}
    checkpoint = save_checkpoint(model, meta, tmp_path / "detector.pth")
    library = init_detector(config, str(checkpoint), device="cpu", cfg_options=copy.deepcopy(options))

    adapter = adapter_for(name, checkpoint, options)
    adapter.check_compatible(coco80_info(adapter.task))
    samples = [sample(key, index) for index, key in enumerate(DETECTION_IMAGES)]
    ours = adapter.predict(samples)

    # label index -> COCO category id, by name through the annotation file (mmdet's CocoDataset does the same)
    ids_by_name = {c["name"]: c["id"] for c in json.loads((DATA / "adapters" / "coco_categories.json").read_text())["categories"]}
    classes = library.dataset_meta["classes"]
    references = []
    for item, prediction in zip(samples, ours):
        reference = inference_detector(library, str(item.image_path)).pred_instances
        references.append(reference)
        count = len(reference.scores)
        assert count >= MIN_OUTPUTS
        assert_close("boxes", prediction.boxes, xyxy_to_xywh(reference.bboxes.numpy()))
        assert_close("scores", prediction.scores, reference.scores.numpy())
        expected_ids = [ids_by_name[classes[label]] for label in reference.labels.tolist()]
        np.testing.assert_array_equal(prediction.labels, expected_ids)
        if adapter.task == "instance":
            height, width = item.load_image().shape[:2]
            ours_masks = decode_rles(prediction.masks, height, width)
            theirs = reference.masks.numpy().astype(bool)
            assert ours_masks.shape == theirs.shape and (ours_masks != theirs).sum() == 0
            assert 0 < theirs.sum() < theirs.size  # masks with content, not all empty or full
        else:
            assert prediction.masks is None
    assert len({int(l) for r in references for l in r.labels}) >= 10  # a varied label set tests the mapping
    assert any(cid > len(classes) for p in ours for cid in p.labels)  # ids beyond 80: COCO's gaps were applied

    swapped = adapter.predict([colour_swapped(samples[0])])[0]
    reference = references[0]
    miss = max(discrepancy(swapped.boxes, xyxy_to_xywh(reference.bboxes.numpy())),
               discrepancy(swapped.scores, reference.scores.numpy()))
    assert miss > MATERIAL, f"colour-swapped input still matches the library (difference {miss:g})"


# ---------------------------------------------------------------------------------------------- mmseg
@pytest.mark.parametrize("name", list(SEGMENTERS))
def test_mmseg_adapter_matches_inference_model(name: str, tmp_path: Path) -> None:
    package, config = config_of(name)
    from mmseg.apis import inference_model, init_model
    from mmseg.registry import DATASETS as MMSEG_DATASETS

    dataset_name, keys, scale = SEGMENTERS[name]
    options = {"test_pipeline.1.scale": scale, "test_dataloader.dataset.pipeline.1.scale": scale}
    torch.manual_seed(0)
    model = init_model(config, None, device="cpu", cfg_options=copy.deepcopy(options))
    calibrate(model, lambda: inference_model(model, str(IMAGES[keys[0]])))
    import mmseg.datasets  # noqa: F401  (registers the dataset classes)

    metainfo = MMSEG_DATASETS.get(model.cfg.train_dataloader.dataset.type).METAINFO
    checkpoint = save_checkpoint(model, {"classes": metainfo["classes"], "palette": metainfo["palette"]},
                                 tmp_path / "segmentor.pth")
    library = init_model(config, str(checkpoint), device="cpu", cfg_options=copy.deepcopy(options))

    dataset = DATASETS.get(dataset_name)(DATA / dataset_name, None, "semantic")
    adapter = adapter_for(name, checkpoint, options)
    adapter.check_compatible(dataset.info)  # the model's class indices are the dataset's evaluation indices
    samples = [sample(key, index) for index, key in enumerate(keys)]
    ours = adapter.predict(samples)
    references = []
    for item, prediction in zip(samples, ours):
        reference = inference_model(library, str(item.image_path)).pred_sem_seg.data[0].numpy()
        references.append(reference)
        assert reference.shape == item.load_image().shape[:2]
        assert len(np.unique(reference)) >= 3  # a label map with structure, not one class everywhere
        assert_close("label map", prediction.label_map, reference)

    swapped = adapter.predict([colour_swapped(samples[0])])[0]
    changed = float((swapped.label_map != references[0]).mean())
    assert changed > MATERIAL, f"colour-swapped input changes only {changed:.2%} of the pixels"


# --------------------------------------------------------------------------------------------- mmpose
@pytest.mark.parametrize("name", POSE_MODELS)
def test_mmpose_adapter_matches_inference_topdown(name: str, tmp_path: Path) -> None:
    package, config = config_of(name)
    inference = mmpose_inference()
    dataset = CocoKeypoints(COCO_IMAGES / "test_coco.json", COCO_IMAGES)
    samples = [dataset[i] for i in range(len(dataset))]  # 4 images, 12 prompted people, one greyscale image
    for item in samples:  # person scores other than 1, so the instance score's box factor is tested too
        count = len(item.prompts.boxes)
        item.prompts = PersonBoxes(item.prompts.boxes, np.linspace(0.95, 0.55, count))

    def topdown(model: torch.nn.Module, item: Sample) -> list[Any]:
        """The library's call on the image file, one person box per call (batch 1, as the adapter is run
        below), the box as a dataset gives it: float32 xywh."""
        boxes = item.prompts.boxes.astype(np.float32)
        return [person for box in boxes
                for person in inference.inference_topdown(model, str(item.image_path), box[None], "xywh")]

    torch.manual_seed(0)
    model = inference.init_model(config, None, device="cpu")
    calibrate(model, lambda: topdown(model, samples[2]))
    meta = inference.dataset_meta_from_config(model.cfg, dataset_mode="train")  # holds numpy arrays, as mmpose's do
    checkpoint = save_checkpoint(model, meta, tmp_path / "pose.pth")
    with numpy_allowed():
        library = inference.init_model(config, str(checkpoint), device="cpu")

    adapter = adapter_for(name, checkpoint, None, max_batch=1)  # default 64 crops: equal up to float rounding
    adapter.check_compatible(dataset.info)
    ours = adapter.predict(samples)
    all_scores = []
    for item, prediction in zip(samples, ours):
        people = topdown(library, item)
        assert len(people) == len(item.prompts.boxes) == len(prediction.keypoints)
        points = np.stack([p.pred_instances.keypoints[0] for p in people])
        confidences = np.stack([p.pred_instances.keypoint_scores[0] for p in people])
        assert_close("keypoints", prediction.keypoints[..., :2], points)
        assert_close("keypoint scores", prediction.keypoints[..., 2], confidences)
        # mmpose CocoMetric's instance score (score_mode 'bbox_keypoint', keypoint_score_thr 0.2)
        confident = confidences > 0.2
        means = np.array([c[m].mean() if m.any() else 0.0 for c, m in zip(confidences, confident)])
        assert_close("instance scores", prediction.scores, item.prompts.scores * means)
        np.testing.assert_array_equal(prediction.boxes, item.prompts.boxes)
        all_scores.append(confidences)
    assert np.concatenate(all_scores).std() > 1e-3  # confidences that vary: the comparison has something to compare

    colour = samples[2]
    reference = np.stack([p.pred_instances.keypoints[0] for p in topdown(library, colour)])
    swapped = adapter.predict([colour_swapped(colour)])[0]
    miss = discrepancy(swapped.keypoints[..., :2], reference)
    assert miss > MATERIAL, f"colour-swapped input still matches the library (difference {miss:g} px)"


# ------------------------------------------------------------------------------------ published scores
def test_published_scores_come_from_the_metafiles_the_packages_ship(tmp_path: Path) -> None:
    """Numbers as the metafiles print them (mmdet/mmseg in percent, mmpose's COCO AP as ratios), as ratios."""
    from adapters.openmmlab.published import published_scores

    _, rtmdet = config_of("mmdet:rtmdet_tiny_8xb32-300e_coco")
    published = published_scores("mmdet", "detection", Path(rtmdet))
    assert published == {  # configs/rtmdet/metafile.yml: "box AP: 40.9"
        "dataset": "coco", "metrics": {"AP": 0.409}, "source_dataset": "COCO", "metafile": "configs/rtmdet/metafile.yml",
        "weights": "https://download.openmmlab.com/mmdetection/v3.0/rtmdet/rtmdet_tiny_8xb32-300e_coco/"
                   "rtmdet_tiny_8xb32-300e_coco_20220902_112414-78e30dcc.pth"}
    _, mask_rcnn = config_of("mmdet-ins:mask-rcnn_r50_fpn_1x_coco")  # "box AP: 38.2", "mask AP: 34.7"
    assert published_scores("mmdet", "instance", Path(mask_rcnn))["metrics"] == {"AP": 0.347, "bbox/AP": 0.382}
    assert published_scores("mmdet", "detection", Path(mask_rcnn))["metrics"] == {"AP": 0.382}
    _, segformer = config_of("mmseg:segformer_mit-b0_8xb2-160k_ade20k-512x512")  # "mIoU: 37.41", ms+flip dropped
    assert published_scores("mmseg", "semantic", Path(segformer))["metrics"] == {"mIoU": 0.3741}
    assert published_scores("mmseg", "semantic", Path(segformer))["dataset"] == "ade20k"
    _, rtmpose = config_of("mmpose:rtmpose-t_8xb256-420e_aic-coco-256x192")  # "AP: 0.685", ...
    assert published_scores("mmpose", "keypoints", Path(rtmpose))["metrics"] == {
        "AP": 0.685, "AP50": 0.88, "AP75": 0.761, "AR": 0.738, "AR50": 0.918}

    own = tmp_path / "my_rtmdet.py"  # a user's config, even one built on a shipped config, has no zoo number
    own.write_text(f"_base_ = [{rtmdet!r}]\n")
    assert published_scores("mmdet", "detection", own) is None

    detector = ADAPTERS.get("mmdet:")("mmdet:rtmdet_tiny_8xb32-300e_coco", options={"config": "rtmdet_tiny_8xb32-300e_coco"})
    assert detector.info().extra["published"] == published
    shrunk = adapter_for("mmdet:rtmdet_tiny_8xb32-300e_coco", None, RTMDET)
    assert shrunk.info().extra["published"]["cfg_options"] == sorted(RTMDET)  # the zoo ran the config as shipped
    heatmap = ADAPTERS.get("mmpose:")("mmpose:td-hm_mobilenetv2_8xb64-210e_coco-256x192",
                                      options={"config": "td-hm_mobilenetv2_8xb64-210e_coco-256x192"})
    assert heatmap.info().extra["published"]["person_boxes"] == "detections (COCO_val2017_detections_AP_H_56_person.json)"
