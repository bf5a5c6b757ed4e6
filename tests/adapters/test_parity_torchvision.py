"""Parity of the torchvision adapters with torchvision's own models, called the way their weights prescribe.

The oracle is what torchvision's documentation does: ``builder(weights=W)``, the image file decoded by
``torchvision.io.decode_image``, ``W.transforms()`` applied, the model called on one image (batch 1, as
torchvision's detection reference evaluates).  ``builder(weights=W)`` is not the same network as
``builder(weights=None)`` plus ``load_state_dict``: a trained build freezes the backbone's BatchNorm
(``FrozenBatchNorm2d``) and, for the legacy R-CNN / RetinaNet ``COCO_V1`` weights, sets its eps to 0.  So the
seeded random weights are put where ``W`` is looked for (``$TORCH_HOME/hub/checkpoints/<file of W.url>``; torch
loads a cached file without checking its hash) and both sides read that file: bench through
``--checkpoint weights:NAME``, the oracle through the builder.  A plain state-dict file (``--checkpoint FILE``)
is compared with ``builder(weights=None)`` + ``load_state_dict``, what a user would write for their own file.

Random weights get their BatchNorm statistics calibrated on a real image first (``tests/adapters/parity.py``).
Score thresholds are 0 and detectors keep 30 boxes per image; the R-CNN inputs are shrunk through the builder's
``min_size`` / ``max_size`` (the same arguments on both sides).
"""
from __future__ import annotations

import copy
import inspect
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from harness.core.catalog import ADAPTERS
from harness.core.adapter import Adapter
from adapters.torchvision.labels import COCO_LABELS
from harness.datasets import DATASETS
from harness.datasets.coco_keypoints import CocoKeypoints
from harness.core.errors import BenchError
from harness.core.structures import Sample
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
from tests.adapters.samples import CATEGORIES, coco80_info
from tests.conftest import DATA

RCNN = {"min_size": 160, "max_size": 240, "rpn_pre_nms_top_n_test": 300, "rpn_post_nms_top_n_test": 100,
        "box_detections_per_img": 30, "box_score_thresh": 0.0}
DENSE = {"min_size": 160, "max_size": 240, "topk_candidates": 300, "detections_per_img": 30, "score_thresh": 0.0}
#: adapter name -> (weights member, builder arguments)
#: legacy weights (frozen BN with eps 0); its own test compares a plain file, a release copy and weights:NAME
FASTER_RCNN = ("tv-fasterrcnn_resnet50_fpn", "COCO_V1", RCNN)
DETECTORS = {
    "tv-fasterrcnn_mobilenet_v3_large_320_fpn": ("COCO_V1", RCNN),  # frozen BN, eps 1e-5
    "tv-fcos_resnet50_fpn": ("COCO_V1", DENSE),
    "tv-ssdlite320_mobilenet_v3_large": ("COCO_V1", {"detections_per_img": 30, "score_thresh": 0.0, "topk_candidates": 300}),
    "tv-maskrcnn_resnet50_fpn": ("COCO_V1", RCNN),  # legacy weights
}
DETECTION_IMAGES = ("coco-785", "coco-40083", "voc-000001")
MIN_OUTPUTS = 20
#: adapter name -> (weights member, shorter side of the preset: torchvision's 520, or less for the heavier model)
SEGMENTERS = {"tv-lraspp_mobilenet_v3_large": ("COCO_WITH_VOC_LABELS_V1", 520),
              "tv-deeplabv3_mobilenet_v3_large": ("COCO_WITH_VOC_LABELS_V1", 160)}


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("something tried to download weights")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


@pytest.fixture()
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private torch hub cache: ``$TORCH_HOME/hub/checkpoints``."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # a folder pinned by torch.hub.set_dir would win over TORCH_HOME
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    assert Path(torch.hub.get_dir()) == folder.parent
    return folder


# --------------------------------------------------------------------------------------------- helpers
def weights_of(name: str, member: str) -> Any:
    from torchvision.models import get_model_weights

    return get_model_weights(name.removeprefix("tv-"))[member]


def random_release(name: str, member: str, kwargs: dict[str, Any], hub: Path, calibration: Any) -> Path:
    """Seeded random weights saved where torchvision looks for ``member``'s file.  The network is built as
    torchvision builds an untrained one (BatchNorm2d everywhere); its state dict loads into the trained build
    too (FrozenBatchNorm2d drops ``num_batches_tracked``)."""
    from torchvision.models import get_model_builder

    builder = get_model_builder(name.removeprefix("tv-"))
    weights = weights_of(name, member)
    extra = {"weights_backbone": None} if "weights_backbone" in inspect.signature(builder).parameters else {}
    if "categories" in weights.meta:
        extra["num_classes"] = len(weights.meta["categories"])
    torch.manual_seed(0)
    model = builder(weights=None, **extra, **trained_only(name, kwargs))
    calibrate(model, lambda: calibration(model))
    path = hub / Path(weights.url).name
    torch.save(model.state_dict(), path)
    return path


def trained_only(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The builders of the trained segmentation models add the auxiliary head; build the random one alike."""
    if name.startswith(("tv-fcn", "tv-deeplabv3")):
        return {**kwargs, "aux_loss": True}
    return dict(kwargs)


def library_model(name: str, member: str, kwargs: dict[str, Any]) -> torch.nn.Module:
    """``builder(weights=member)`` from the (private) hub cache, as torchvision's documentation builds it."""
    from torchvision.models import get_model_builder

    return get_model_builder(name.removeprefix("tv-"))(weights=weights_of(name, member), **kwargs).eval()


def read(path: Path) -> torch.Tensor:
    from torchvision.io import ImageReadMode, decode_image

    return decode_image(str(path), mode=ImageReadMode.RGB)


def calibration_pass(weights: Any) -> Any:
    """Two real images in one pass (SSD's last feature maps are 1x1: BatchNorm needs two values a channel)."""
    images = [weights.transforms()(read(IMAGES[key])) for key in ("coco-196141", "voc-2011_000006")]
    return lambda model: model(images)


def detect(model: torch.nn.Module, weights: Any, path: Path) -> dict[str, np.ndarray]:
    with torch.no_grad():
        output = model([weights.transforms()(read(path))])[0]
    return {key: value.numpy() for key, value in output.items()}


def adapter_for(name: str, checkpoint: str | Path, **options: Any) -> Adapter:
    return ADAPTERS.get(name)(name, checkpoint=checkpoint, options=copy.deepcopy(options))


def scoreable(reference: dict[str, np.ndarray]) -> np.ndarray:
    return np.isin(reference["labels"], [c["id"] for c in CATEGORIES])


def compare_boxes(reference: dict[str, np.ndarray]) -> np.ndarray:
    return xyxy_to_xywh(reference["boxes"][scoreable(reference)])


def compare_scores(reference: dict[str, np.ndarray]) -> np.ndarray:
    return reference["scores"][scoreable(reference)]


def compare_detections(prediction: Any, reference: dict[str, np.ndarray], item: Sample) -> None:
    """Boxes xywh in pixels, labels as COCO category ids, background and N/A slots dropped."""
    names = {c["id"]: c["name"] for c in CATEGORIES}
    keep = np.array([label in names for label in reference["labels"]], dtype=bool)
    assert keep.sum() >= MIN_OUTPUTS
    assert_close("boxes", prediction.boxes, xyxy_to_xywh(reference["boxes"][keep]))
    assert_close("scores", prediction.scores, reference["scores"][keep])
    # torchvision's label is the COCO category id; the annotation file names it as the model's table does
    assert all(names[label] == COCO_LABELS[label] for label in reference["labels"][keep])
    np.testing.assert_array_equal(prediction.labels, reference["labels"][keep])
    if "masks" in reference:
        height, width = item.load_image().shape[:2]
        ours = decode_rles(prediction.masks, height, width)
        theirs = reference["masks"][keep, 0] > 0.5  # torchvision's reference evaluation threshold
        assert ours.shape == theirs.shape and (ours != theirs).sum() == 0
        assert 0 < theirs.sum() < theirs.size


# ------------------------------------------------------------------------------------------ detection
@pytest.mark.parametrize("name", list(DETECTORS))
def test_detector_matches_torchvision_with_its_weights(name: str, hub: Path) -> None:
    member, kwargs = DETECTORS[name]
    weights = weights_of(name, member)
    random_release(name, member, kwargs, hub, calibration_pass(weights))
    library = library_model(name, member, kwargs)
    adapter = adapter_for(name, f"weights:{member}", model_kwargs=kwargs)
    adapter.check_compatible(coco80_info(adapter.task))
    samples = [sample(key, index) for index, key in enumerate(DETECTION_IMAGES)]
    ours = adapter.predict(samples)
    references = [detect(library, weights, item.image_path) for item in samples]
    for item, prediction, reference in zip(samples, ours, references):
        compare_detections(prediction, reference, item)
    assert len({int(l) for r in references for l in r["labels"]}) >= 5  # a varied label set

    swapped = adapter.predict([colour_swapped(samples[0])])[0]
    miss = max(discrepancy(swapped.boxes, compare_boxes(references[0])),
               discrepancy(swapped.scores, compare_scores(references[0])))
    assert miss > MATERIAL, f"colour-swapped input still matches torchvision (difference {miss:g})"


def test_checkpoint_files_plain_or_a_copy_of_a_release(hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Faster R-CNN R50-FPN ``COCO_V1`` (legacy weights).  ``--checkpoint FILE`` of any other name is a plain
    state dict, equal to torchvision's ``builder(weights=None)`` + ``load_state_dict``; a file under the
    release's published name (the sha256 digits it carries checked) and ``--checkpoint weights:COCO_V1`` are
    the release, equal to ``builder(weights=W)``, and show its published COCO score.  The two builds differ
    (frozen BatchNorm with eps 0)."""
    import adapters.torchvision._common as common
    from torchvision.models import get_model_builder
    from torchvision.ops import FrozenBatchNorm2d

    name, member, kwargs = FASTER_RCNN
    weights = weights_of(name, member)
    release = random_release(name, member, kwargs, hub, calibration_pass(weights))
    item = sample("voc-000001")

    own = tmp_path / "my_detector.pth"
    shutil.copyfile(release, own)
    plain = get_model_builder("fasterrcnn_resnet50_fpn")(weights=None, weights_backbone=None, **kwargs)
    plain.load_state_dict(torch.load(own, weights_only=True))
    plain.eval()
    adapter = adapter_for(name, own, model_kwargs=kwargs)
    adapter.check_compatible(coco80_info("detection"))
    plain_reference = detect(plain, weights, item.image_path)
    compare_detections(adapter.predict([item])[0], plain_reference, item)
    assert "weights" not in adapter.info().extra and "published" not in adapter.info().extra
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in adapter.model().modules())

    download = tmp_path / "downloads" / release.name
    download.parent.mkdir()
    shutil.copyfile(release, download)
    with pytest.raises(BenchError, match=rf"named like torchvision's {type(weights).__name__}.COCO_V1 but its sha256"):
        adapter_for(name, download, model_kwargs=kwargs).info()
    digits = common.HUB_HASH.search(release.name).group(1)
    monkeypatch.setattr(common, "file_digest", lambda path: digits + "0" * (64 - len(digits)))  # the genuine file
    adapter = adapter_for(name, download, model_kwargs=kwargs)
    adapter.check_compatible(coco80_info("detection"))
    release_reference = detect(library_model(name, member, kwargs), weights, item.image_path)
    compare_detections(adapter.predict([item])[0], release_reference, item)
    info = adapter.info()
    assert info.extra["weights"] == f"{type(weights).__name__}.COCO_V1"
    assert info.extra["published"] == {"dataset": "coco", "metrics": {"AP": 0.37}, "source_dataset": "COCO-val2017",
                                       "weights": weights.url}  # torchvision lists box mAP 37.0
    frozen = [m for m in adapter.model().modules() if isinstance(m, FrozenBatchNorm2d)]
    assert frozen and all(m.eps == 0.0 for m in frozen)
    assert discrepancy(plain_reference["scores"], release_reference["scores"]) > 0  # two different networks
    named = adapter_for(name, f"weights:{member}", model_kwargs=kwargs)  # the same file, from the hub cache
    named.check_compatible(coco80_info("detection"))
    compare_detections(named.predict([item])[0], release_reference, item)
    assert named.info().extra["published"] == info.extra["published"]
    assert "get_state_dict" not in type(weights).__dict__  # torchvision's enum is left as it was
    swapped = named.predict([colour_swapped(item)])[0]
    miss = max(discrepancy(swapped.boxes, compare_boxes(release_reference)),
               discrepancy(swapped.scores, compare_scores(release_reference)))
    assert miss > MATERIAL, f"colour-swapped input still matches torchvision (difference {miss:g})"


# ------------------------------------------------------------------------------------------ keypoints
def test_keypoint_rcnn_matches_torchvision_with_its_weights(hub: Path) -> None:
    """Own detections: the model's output as is.  Dataset boxes: torchvision's own forward with the box
    stage's output replaced by the prompts (moved into the resized image as its transform moves boxes), so
    the keypoint head, decoding and rescaling are torchvision's."""
    name, member = "tv-keypointrcnn_resnet50_fpn", "COCO_V1"
    kwargs = {**RCNN, "box_detections_per_img": 20}
    weights = weights_of(name, member)

    def calibration(model: torch.nn.Module) -> None:
        """The BatchNorm layers are all in the backbone: one box per image is enough to get through."""
        model.roi_heads.detections_per_img = 1
        calibration_pass(weights)(model)

    random_release(name, member, kwargs, hub, calibration)
    library = library_model(name, member, kwargs)
    dataset = CocoKeypoints(COCO_IMAGES / "test_coco.json", COCO_IMAGES)
    samples = [dataset[i] for i in range(len(dataset))]

    own = adapter_for(name, f"weights:{member}", model_kwargs=kwargs, use_prompts=False)
    own.check_compatible(dataset.info)
    for item, prediction in zip(samples[:1], own.predict(samples[:1])):  # the keypoint head is heavy: one image
        reference = detect(library, weights, item.image_path)
        people = reference["labels"] == 1
        assert people.sum() >= MIN_OUTPUTS
        assert_close("boxes", prediction.boxes, xyxy_to_xywh(reference["boxes"][people]))
        assert_close("scores", prediction.scores, reference["scores"][people])
        assert_close("keypoints", prediction.keypoints[..., :2], reference["keypoints"][people][..., :2])
        assert_close("keypoint scores", prediction.keypoints[..., 2], reference["keypoints_scores"][people])

    prompted = adapter_for(name, f"weights:{member}", model_kwargs=kwargs)
    prompted.check_compatible(dataset.info)
    references = []
    for item, prediction in zip(samples, prompted.predict(samples)):
        reference = keypoints_on_boxes(library, weights, item)
        references.append(reference)
        assert_close("keypoints", prediction.keypoints[..., :2], reference["keypoints"][..., :2])
        assert_close("keypoint scores", prediction.keypoints[..., 2], reference["keypoints_scores"])
        np.testing.assert_array_equal(prediction.scores, item.prompts.scores)
        assert_close("boxes", xyxy_to_xywh(reference["boxes"]), item.prompts.boxes)  # the prompts went in unchanged

    swapped = prompted.predict([colour_swapped(samples[2])])[0]
    miss = discrepancy(swapped.keypoints[..., :2], references[2]["keypoints"][..., :2])
    assert miss > MATERIAL, f"colour-swapped input still matches torchvision (difference {miss:g} px)"


def keypoints_on_boxes(model: torch.nn.Module, weights: Any, item: Sample) -> dict[str, np.ndarray]:
    heads = model.roi_heads
    original = item.load_image().shape[:2]
    prompts = np.asarray(item.prompts.boxes, dtype=np.float64)
    corners = torch.tensor(np.concatenate([prompts[:, :2], prompts[:, :2] + prompts[:, 2:]], axis=1), dtype=torch.float32)

    def prompts_instead(class_logits, box_regression, proposals, image_shapes):
        (height, width), = image_shapes
        ratio = torch.tensor([width / original[1], height / original[0]] * 2, dtype=torch.float32)
        count = len(corners)
        return [corners * ratio], [torch.ones(count)], [torch.ones(count, dtype=torch.int64)]

    heads.postprocess_detections = prompts_instead
    try:
        return detect(model, weights, item.image_path)
    finally:
        del heads.postprocess_detections


# --------------------------------------------------------------------------------------- segmentation
@pytest.mark.parametrize("name", list(SEGMENTERS))
def test_segmenter_matches_torchvision_with_its_weights(name: str, hub: Path) -> None:
    """torchvision's preset (shorter side 520, ImageNet normalisation) and forward; bench then resizes the
    logits to the image (bilinear) before the argmax, which the oracle does the same way."""
    import torch.nn.functional as F

    member, size = SEGMENTERS[name]
    weights = weights_of(name, member)

    def segment(model: torch.nn.Module, path: Path) -> np.ndarray:
        image = read(path)
        with torch.no_grad():
            logits = model(weights.transforms(resize_size=size)(image)[None])["out"]
        logits = F.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=False)
        return logits.argmax(1)[0].numpy()

    def calibration(model: torch.nn.Module) -> None:
        """Two images in one pass (DeepLabV3's image pooling branch normalises a 1x1 map), cropped alike."""
        images = [weights.transforms(resize_size=size)(read(IMAGES[key])) for key in ("voc-2011_000006", "coco-196141")]
        height, width = min(i.shape[1] for i in images), min(i.shape[2] for i in images)
        model(torch.stack([i[:, :height, :width] for i in images]))

    random_release(name, member, {}, hub, calibration)
    library = library_model(name, member, {})
    dataset = DATASETS.get("voc")(DATA / "voc", "2012-val", "semantic")
    adapter = adapter_for(name, f"weights:{member}", resize_size=size)
    adapter.check_compatible(dataset.info)
    samples = [dataset[i] for i in range(len(dataset))]
    references = []
    for item, prediction in zip(samples, adapter.predict(samples)):
        reference = segment(library, item.image_path)
        references.append(reference)
        assert len(np.unique(reference)) >= 3
        np.testing.assert_array_equal(prediction.label_map, reference)
    swapped = adapter.predict([colour_swapped(samples[0])])[0]
    changed = float((swapped.label_map != references[0]).mean())
    assert changed > MATERIAL, f"colour-swapped input changes only {changed:.2%} of the pixels"


# ----------------------------------------------------------------------------------------------- flow
def test_raft_matches_torchvision_with_its_weights(hub: Path, tmp_path: Path) -> None:
    """Two crops of a real Sintel pair: one a multiple of 8 (fed to RAFT as is), one not, padded as
    torchvision's optical-flow reference pads for Sintel (``InputPadder(mode="sintel")``: replicate, split
    evenly, the odd pixel after) and cropped back."""
    import torch.nn.functional as F

    name, member, updates = "tv-raft_small", "C_T_V2", 4
    weights = weights_of(name, member)
    frames = [np.asarray(Image.open(DATA / "sintel" / "training" / "clean" / "alley_1" / f"frame_000{i}.png").convert("RGB"))
              for i in (2, 3)]
    samples = []
    for index, (top, left, height, width) in enumerate([(100, 300, 200, 256), (90, 500, 203, 250)]):
        paths = []
        for number, frame in enumerate(frames):
            path = tmp_path / f"crop{index}_{number}.png"
            Image.fromarray(frame[top : top + height, left : left + width]).save(path)
            paths.append(path)
        samples.append(Sample(index, paths[0], None, image_path2=paths[1]))

    def flow(model: torch.nn.Module, item: Sample) -> np.ndarray:
        first, second = weights.transforms()(read(item.image_path)[None], read(item.image_path2)[None])
        height, width = first.shape[-2:]
        pad_h, pad_w = (-height) % 8, (-width) % 8
        pad = [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2]
        first, second = F.pad(first, pad, mode="replicate"), F.pad(second, pad, mode="replicate")
        with torch.no_grad():
            out = model(first, second, num_flow_updates=updates)[-1]
        return out[0, :, pad[2] : pad[2] + height, pad[0] : pad[0] + width].permute(1, 2, 0).numpy()

    random_release(name, member, {}, hub, lambda m: flow(m, samples[0]))
    library = library_model(name, member, {})
    adapter = adapter_for(name, f"weights:{member}", num_flow_updates=updates)
    references = []
    for item, prediction in zip(samples, adapter.predict(samples)):
        reference = flow(library, item)
        references.append(reference)
        assert reference.std() > 1e-2
        assert_close("flow", prediction.flow, reference)
    swapped = colour_swapped(samples[0])
    swapped._decoded[1] = np.ascontiguousarray(samples[0].load_image2()[..., ::-1])
    miss = discrepancy(adapter.predict([swapped])[0].flow, references[0])
    assert miss > MATERIAL, f"colour-swapped frames still match torchvision (difference {miss:g} px)"
