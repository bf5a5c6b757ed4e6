"""torchvision adapters: build with random weights, round-trip a checkpoint, predict on real images, score.

Speed: tiny images and small proposal counts through ``model_kwargs``; a model is never downloaded (the
autouse fixture makes any download attempt fail the test).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
# imported before any test patches torch.hub: torchvision.models._api binds load_state_dict_from_url at import,
# and a binding made while a test's refusal is patched in would outlive the test (and break later files)
import torchvision.models  # noqa: F401

from harness.core.catalog import ADAPTERS
from harness.core.adapter import Adapter
from adapters.torchvision.labels import COCO_LABELS, VOC_CLASSES
from harness.core.dataset import DatasetInfo
from harness.core.errors import BenchError
from harness.labels.keypoints import COCO_KEYPOINT_NAMES
from harness.core.structures import (
    DetectionPrediction,
    FlowPrediction,
    KeypointsPrediction,
    PersonBoxes,
    Sample,
    SemanticPrediction,
)
from tests.conftest import DATA
from tests.adapters.samples import (
    CATEGORIES,
    coco80_info,
    coco_eval,
    detection_results,
    keypoint_results,
    mean_iou,
)

RCNN = {"min_size": 96, "max_size": 160, "rpn_pre_nms_top_n_test": 100, "rpn_post_nms_top_n_test": 30,
        "box_detections_per_img": 20, "box_score_thresh": 0.0}
DENSE = {"min_size": 96, "max_size": 160, "topk_candidates": 100, "detections_per_img": 20, "score_thresh": 0.0}
#: one name per family; the first of each adapter class also round-trips a checkpoint (saving and re-reading
#: every ResNet-50 model would double the file's run time without testing anything new)
ROUND_TRIP = {"tv-fasterrcnn_mobilenet_v3_large_320_fpn", "tv-maskrcnn_resnet50_fpn", "tv-keypointrcnn_resnet50_fpn",
              "tv-lraspp_mobilenet_v3_large", "tv-raft_small"}
CASES = {
    "tv-fasterrcnn_mobilenet_v3_large_320_fpn": {"model_kwargs": RCNN},
    "tv-retinanet_resnet50_fpn": {"model_kwargs": DENSE},
    "tv-fcos_resnet50_fpn": {"model_kwargs": DENSE},
    "tv-ssdlite320_mobilenet_v3_large": {"model_kwargs": {"detections_per_img": 20, "score_thresh": 0.0, "topk_candidates": 20}},
    "tv-maskrcnn_resnet50_fpn": {"model_kwargs": RCNN},
    "tv-keypointrcnn_resnet50_fpn": {"model_kwargs": {**RCNN, "box_detections_per_img": 5}},
    "tv-fcn_resnet50": {"resize_size": 64},
    "tv-deeplabv3_mobilenet_v3_large": {"resize_size": 64},
    "tv-lraspp_mobilenet_v3_large": {"resize_size": 64},
    "tv-raft_small": {"num_flow_updates": 3},
}
VOC_INFO = DatasetInfo(name="voc", task="semantic", split="val", root=Path("."), classes=list(VOC_CLASSES), ignore_index=255)
FLOW_SHIFT = (3, 2)  # frame 2 is frame 1 moved right by 3 and down by 2 pixels


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("an adapter tried to download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", refuse)


def build(name: str, checkpoint: Path | str | None = None, **options) -> Adapter:
    options = {**CASES.get(name, {}), **options}
    return ADAPTERS.get(name)(name, checkpoint=checkpoint, options=options)


_cache: dict[str, Adapter] = {}


def random_adapter(name: str) -> Adapter:
    """One random-weight adapter per name for the whole module (built under a fixed seed); tests that replace
    the network build their own."""
    if name not in _cache:
        torch.manual_seed(0)
        _cache[name] = build(name)
        _cache[name].model()
    return _cache[name]


def flow_samples(tiny_coco, tmp_path: Path) -> list[Sample]:
    """Crops of real images (odd sizes, one under RAFT's 128-px minimum, to exercise the padding) and copies
    shifted by FLOW_SHIFT: the true flow is that shift wherever it stays in frame."""
    from PIL import Image

    samples = []
    dx, dy = FLOW_SHIFT
    for index, original in enumerate(sorted((DATA / "coco-keypoints").glob("*.jpg"))[:2]):
        image = np.asarray(Image.open(original).convert("RGB"))[:131 - 30 * index, :170 + index]
        moved = np.zeros_like(image)
        moved[dy:, dx:] = image[:-dy, :-dx]
        paths = [tmp_path / f"{index}_1.png", tmp_path / f"{index}_2.png"]
        Image.fromarray(image).save(paths[0])
        Image.fromarray(moved).save(paths[1])
        samples.append(Sample(index, paths[0], None, image_path2=paths[1]))
    return samples


def task_samples(task: str, tiny_coco, tmp_path: Path) -> tuple[list[Sample], DatasetInfo]:
    if task in ("detection", "instance"):
        return tiny_coco.detection_samples()[:2], coco80_info(task)
    if task == "keypoints":
        dataset = tiny_coco.keypoint_dataset()
        return [dataset[0], dataset[1]], dataset.info
    if task == "semantic":
        return tiny_coco.person_label_maps(VOC_CLASSES.index("person"), 0)[:2], VOC_INFO
    return flow_samples(tiny_coco, tmp_path), DatasetInfo(name="shifted", task="flow", split="val", root=Path("."))


def assert_same_predictions(first: list, second: list) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second):
        assert type(a) is type(b)
        for field, value in vars(a).items():
            other = getattr(b, field)
            if isinstance(value, np.ndarray):
                np.testing.assert_allclose(value, other, rtol=1e-5, atol=1e-4, err_msg=field)
            else:
                assert value == other, field


def score(task: str, tiny_coco, samples: list[Sample], predictions: list) -> float:
    if task == "detection":
        return float(coco_eval(tiny_coco.gt(), detection_results(samples, predictions), "bbox")[0])
    if task == "instance":
        return float(coco_eval(tiny_coco.gt(), detection_results(samples, predictions), "segm")[0])
    if task == "keypoints":
        return float(coco_eval(tiny_coco.gt(), keypoint_results(samples, predictions), "keypoints")[0])
    if task == "semantic":
        return mean_iou(samples, predictions, len(VOC_CLASSES))
    dx, dy = FLOW_SHIFT
    errors = [np.linalg.norm(p.flow[dy:, dx:] - np.array([dx, dy]), axis=-1).mean() for p in predictions]
    return float(np.mean(errors))


def check_shapes(task: str, samples: list[Sample], predictions: list) -> None:
    for sample, prediction in zip(samples, predictions):
        height, width = sample.load_image().shape[:2]
        if task in ("detection", "instance"):
            assert isinstance(prediction, DetectionPrediction)
            count = len(prediction.scores)
            assert prediction.boxes.shape == (count, 4) and prediction.labels.shape == (count,)
            assert set(prediction.labels.tolist()) <= set(COCO_LABELS)  # dataset category ids, N/A slots dropped
            assert (prediction.boxes[:, 2:] >= 0).all()
            assert (prediction.masks is not None) == (task == "instance")
            if prediction.masks is not None:
                assert len(prediction.masks) == count and all(m["size"] == [height, width] for m in prediction.masks)
        elif task == "keypoints":
            assert isinstance(prediction, KeypointsPrediction)
            count = len(prediction.scores)
            assert prediction.keypoints.shape == (count, 17, 3) and prediction.boxes.shape == (count, 4)
        elif task == "semantic":
            assert isinstance(prediction, SemanticPrediction)
            assert prediction.label_map.shape == (height, width)
            assert prediction.label_map.min() >= 0 and prediction.label_map.max() < len(VOC_CLASSES)
        else:
            assert isinstance(prediction, FlowPrediction)
            assert prediction.flow.shape == (height, width, 2) and prediction.flow.dtype == np.float32


@pytest.mark.parametrize("name", sorted(CASES))
def test_random_init_predict_score_and_checkpoint_round_trip(name: str, tiny_coco, tmp_path: Path) -> None:
    fresh = random_adapter(name)
    task = fresh.task
    samples, info = task_samples(task, tiny_coco, tmp_path)
    assert "random weights" in fresh.info().extra["warning"]
    fresh.check_compatible(info)
    expected = fresh.predict(samples)
    check_shapes(task, samples, expected)
    value = score(task, tiny_coco, samples, expected)
    assert np.isfinite(value) and (value >= -1 if task in ("detection", "instance", "keypoints") else value >= 0)
    if name not in ROUND_TRIP:
        return

    checkpoint = tmp_path / "weights.pt"
    torch.save(fresh.model().state_dict(), checkpoint)
    torch.manual_seed(1)  # a different random init: equal outputs prove the weights were loaded
    loaded = build(name, checkpoint=checkpoint)
    assert "warning" not in loaded.info().extra
    assert loaded.info().parameters == fresh.info().parameters > 0
    loaded.check_compatible(info)
    assert_same_predictions(expected, loaded.predict(samples))


class FakeDetector(torch.nn.Module):
    """Returns the ground truth in torchvision's output format, plus detections on unscoreable labels."""

    def __init__(self, outputs: list[dict[str, torch.Tensor]]) -> None:
        super().__init__()
        self.outputs = outputs
        self.served = 0  # the adapter may call it once per image (its default batch is 1)

    def forward(self, images):
        batch = self.outputs[self.served : self.served + len(images)]
        assert len(batch) == len(images)
        self.served += len(images)
        return batch


def gt_outputs(samples: list[Sample], with_masks: bool = False, keypoints: bool = False) -> list[dict[str, torch.Tensor]]:
    from pycocotools import mask as mask_utils

    outputs = []
    for sample in samples:
        target = sample.target
        keep = ~target.iscrowd & (target.num_keypoints > 0) if keypoints else ~target.iscrowd
        boxes = target.boxes[keep].copy()
        boxes[:, 2:] += boxes[:, :2]
        count = len(boxes)
        labels = np.ones(count, np.int64)
        # two extra detections on label slots no dataset class owns: background (0) and a COCO N/A id (12)
        boxes = np.concatenate([boxes, [[0, 0, 5, 5], [1, 1, 6, 6]]])
        labels = np.concatenate([labels, [0, 12]]) if not keypoints else np.concatenate([labels, [0, 0]])
        output = {"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels),
                  "scores": torch.linspace(1.0, 0.5, count + 2)}
        if with_masks:
            masks = [mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(p, target.height, target.width)))
                     for p, kept in zip(target.masks, keep) if kept]
            masks += [np.zeros((target.height, target.width), np.uint8)] * 2
            output["masks"] = torch.tensor(np.stack(masks)[:, None].astype(np.float32) * 0.9)
        if keypoints:
            points = np.concatenate([target.keypoints[keep], np.zeros((2, 17, 3))]).astype(np.float32)
            output["keypoints"] = torch.tensor(points)
            output["keypoints_scores"] = torch.full(points.shape[:2], 3.0)
        outputs.append(output)
    return outputs


def test_detection_postprocessing_is_exact_on_the_ground_truth(tiny_coco) -> None:
    samples = tiny_coco.detection_samples()
    adapter = build("tv-fasterrcnn_mobilenet_v3_large_320_fpn")
    adapter._model = FakeDetector(gt_outputs(samples))
    adapter.check_compatible(coco80_info("detection"))
    predictions = adapter.predict(samples)
    assert all(set(p.labels.tolist()) == {1} for p in predictions)  # background and N/A dropped
    stats = coco_eval(tiny_coco.gt(), detection_results(samples, predictions), "bbox")
    assert stats[0] == pytest.approx(1.0) and stats[8] == pytest.approx(1.0)


def test_instance_masks_are_exact_on_the_ground_truth(tiny_coco) -> None:
    samples = tiny_coco.detection_samples()
    adapter = build("tv-maskrcnn_resnet50_fpn")
    adapter._model = FakeDetector(gt_outputs(samples, with_masks=True))
    adapter.check_compatible(coco80_info("instance"))
    predictions = adapter.predict(samples)
    stats = coco_eval(tiny_coco.gt(), detection_results(samples, predictions), "segm")
    assert stats[0] == pytest.approx(1.0)


def test_keypoint_rcnn_output_is_exact_on_the_ground_truth(tiny_coco) -> None:
    dataset = tiny_coco.keypoint_dataset()
    samples = list(dataset)
    adapter = build("tv-keypointrcnn_resnet50_fpn", use_prompts=False)  # its own people, here the ground truth
    adapter._model = FakeDetector(gt_outputs(samples, keypoints=True))
    adapter.check_compatible(dataset.info)
    predictions = adapter.predict(samples)
    assert all(np.all(p.keypoints[..., 2] == 3.0) for p in predictions)
    stats = coco_eval(tiny_coco.gt(), keypoint_results(samples, predictions), "keypoints")
    assert stats[0] == pytest.approx(1.0)


def test_keypoint_rcnn_estimates_one_person_per_prompt_box(tiny_coco) -> None:
    """The prompt boxes are resized with the image: wrong scaling would put joints outside their box."""
    dataset = tiny_coco.keypoint_dataset()
    samples = list(dataset)
    samples.append(Sample("empty", samples[0].image_path, None, prompts=PersonBoxes(np.zeros((0, 4)), np.zeros(0))))
    adapter = random_adapter("tv-keypointrcnn_resnet50_fpn")
    adapter.check_compatible(dataset.info)
    together = adapter.predict(samples)
    for sample, prediction in zip(samples, together):
        np.testing.assert_array_equal(prediction.boxes, sample.prompts.boxes)
        np.testing.assert_array_equal(prediction.scores, sample.prompts.scores)
        x, y, w, h = (prediction.boxes[:, None, i] for i in range(4))
        points = prediction.keypoints
        assert points.shape == (len(sample.prompts.boxes), 17, 3)
        assert ((points[..., 0] >= x - 1) & (points[..., 0] <= x + w + 1)).all()
        assert ((points[..., 1] >= y - 1) & (points[..., 1] <= y + h + 1)).all()
    alone = adapter.predict(samples[1:2])  # another batch, another padded size: the same answer
    np.testing.assert_allclose(alone[0].keypoints, together[1].keypoints, rtol=1e-4, atol=1e-3)


def test_labels_map_through_the_dataset_category_ids_not_through_coco_ids(tiny_coco) -> None:
    samples = tiny_coco.detection_samples()[:1]
    info = coco80_info("detection")
    info.category_ids = [1000 + i for i in range(80)]  # same names, ids of some other numbering
    adapter = build("tv-fasterrcnn_mobilenet_v3_large_320_fpn")
    adapter._model = FakeDetector([{"boxes": torch.tensor([[0.0, 0, 4, 4], [1, 1, 5, 5]]), "labels": torch.tensor([1, 90]),
                                    "scores": torch.tensor([0.9, 0.8])}])
    adapter.check_compatible(info)
    assert adapter.predict(samples)[0].labels.tolist() == [1000, 1079]  # person is first, toothbrush last


def test_label_table_is_cocos_ids_and_torchvisions_categories() -> None:
    from torchvision.models import get_model_weights

    assert COCO_LABELS == {c["id"]: c["name"] for c in CATEGORIES}
    from adapters.torchvision.detection import DETECTION_BUILDERS, INSTANCE_BUILDERS

    for builder in DETECTION_BUILDERS + INSTANCE_BUILDERS:
        categories = get_model_weights(builder).DEFAULT.meta["categories"]
        assert {i: c for i, c in enumerate(categories) if c not in ("__background__", "N/A")} == COCO_LABELS, builder
    voc = get_model_weights("fcn_resnet50").DEFAULT.meta["categories"]
    assert ["background"] + voc[1:] == VOC_CLASSES and voc[0] == "__background__"
    assert get_model_weights("keypointrcnn_resnet50_fpn").DEFAULT.meta["keypoint_names"] == COCO_KEYPOINT_NAMES


def test_every_registered_name_is_a_torchvision_builder_of_its_task() -> None:
    from torchvision.models import list_models

    names = [name for name in ADAPTERS.names() if name.startswith("tv-")]
    tasks = {name: ADAPTERS.get(name).task for name in names}
    assert set(CASES) <= set(names)
    assert {name[3:] for name in names} <= set(list_models())
    assert all(not getattr(ADAPTERS.get(name), "runs_by_default", False) for name in names)
    assert tasks["tv-fasterrcnn_resnet50_fpn"] == "detection" and tasks["tv-maskrcnn_resnet50_fpn_v2"] == "instance"
    assert tasks["tv-keypointrcnn_resnet50_fpn"] == "keypoints" and tasks["tv-deeplabv3_resnet101"] == "semantic"
    assert tasks["tv-raft_large"] == "flow"


@pytest.mark.parametrize(
    ("name", "info", "message"),
    [
        ("tv-fasterrcnn_mobilenet_v3_large_320_fpn",
         DatasetInfo(name="voc", task="detection", split="val", root=Path("."), classes=VOC_CLASSES[1:],
                     category_ids=list(range(1, 21))), "classes differ"),
        ("tv-fasterrcnn_mobilenet_v3_large_320_fpn",
         DatasetInfo(name="coco", task="detection", split="val", root=Path("."),
                     classes=[c["name"] for c in CATEGORIES][::-1], category_ids=[c["id"] for c in CATEGORIES][::-1]),
         "first difference: #0 'person' vs 'toothbrush'"),
        ("tv-lraspp_mobilenet_v3_large",
         DatasetInfo(name="ade", task="semantic", split="val", root=Path("."), classes=["wall", "building"]), "classes differ"),
        ("tv-keypointrcnn_resnet50_fpn",
         DatasetInfo(name="rev", task="keypoints", split="val", root=Path("."), classes=["person"], category_ids=[1],
                     keypoint_names=COCO_KEYPOINT_NAMES[::-1]), "predicts keypoints"),
        ("tv-raft_small", VOC_INFO, "is a flow model"),
    ],
)
def test_mismatched_datasets_are_refused(name: str, info: DatasetInfo, message: str) -> None:
    with pytest.raises(BenchError, match=message):
        build(name).check_compatible(info)


def test_predict_before_matching_a_dataset_is_refused(tiny_coco) -> None:
    with pytest.raises(BenchError, match="check_compatible"):
        build("tv-fasterrcnn_mobilenet_v3_large_320_fpn").predict(tiny_coco.detection_samples()[:1])


class Unsafe:
    """Stands for any pickled object that is not plain data."""


def test_a_checkpoint_that_needs_unpickling_is_refused_unless_trusted(tmp_path: Path) -> None:
    model = random_adapter("tv-lraspp_mobilenet_v3_large").model()
    path = tmp_path / "pickled.pt"
    torch.save({"state_dict": model.state_dict(), "extra": Unsafe()}, path)
    with pytest.raises(BenchError, match="refusing to unpickle.*--trust-checkpoint"):
        ADAPTERS.get("tv-lraspp_mobilenet_v3_large")("tv-lraspp_mobilenet_v3_large", checkpoint=path).model()
    trusted = ADAPTERS.get("tv-lraspp_mobilenet_v3_large")("tv-lraspp_mobilenet_v3_large", checkpoint=path, trust_checkpoint=True)
    assert "warning" not in trusted.info().extra


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save(random_adapter("tv-raft_small").model().state_dict(), path)
    with pytest.raises(BenchError, match="does not fit lraspp_mobilenet_v3_large"):
        build("tv-lraspp_mobilenet_v3_large", checkpoint=path).model()


@pytest.fixture()
def hub_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # torch.hub.set_dir stores the folder in torch.hub._hub_dir for good (set_dir(previous) would pin the default
    # and hide a later test's $TORCH_HOME); patching the attribute restores its original value (None)
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    return tmp_path / "hub"


def test_named_weights_load_only_from_the_local_hub_cache(hub_dir: Path) -> None:
    from torchvision.models import get_model_weights

    name = "tv-lraspp_mobilenet_v3_large"
    with pytest.raises(BenchError, match="not in the local torch hub cache.*never downloads"):
        build(name, checkpoint="weights:COCO_WITH_VOC_LABELS_V1").model()
    with pytest.raises(BenchError, match="unknown weights 'IMAGENET'.*COCO_WITH_VOC_LABELS_V1"):
        build(name, checkpoint="weights:IMAGENET").model()
    with pytest.raises(BenchError, match="not lraspp_mobilenet_v3_large weights"):
        build(name, checkpoint="weights:FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1").model()

    reference = random_adapter(name).model()
    url = get_model_weights("lraspp_mobilenet_v3_large").DEFAULT.url
    cached = hub_dir / "checkpoints" / url.rsplit("/", 1)[-1]
    cached.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), cached)
    for spec in ("weights:DEFAULT", "weights:LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1"):
        adapter = build(name, checkpoint=spec)
        assert adapter.weights_file() == cached
        assert "LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1" in adapter.info().extra["weights"]
        loaded = adapter.model().state_dict()
        assert all(torch.equal(loaded[k], v) for k, v in reference.state_dict().items())
    by_option = build(name, weights="DEFAULT")
    assert by_option.fingerprint() == build(name, weights="DEFAULT").fingerprint()
    assert by_option.weights_file() == cached


def test_the_flow_of_a_shifted_image_pads_and_crops_to_the_input_size(tiny_coco, tmp_path: Path) -> None:
    """Odd sizes exercise the padding; a fake RAFT returns the padded input size so the crop is checked."""
    from adapters.torchvision.flow import centred_padding

    assert centred_padding(136, 160) == (0, 0, 0, 0) and centred_padding(131, 171) == (2, 3, 2, 3)
    assert centred_padding(64, 160) == (0, 0, 32, 32)  # grown to RAFT's minimum of 128 rows
    samples = flow_samples(tiny_coco, tmp_path)
    adapter = build("tv-raft_small")

    class FakeRAFT(torch.nn.Module):
        def forward(self, first, second, num_flow_updates):
            assert first.shape[-2] % 8 == 0 and first.shape[-1] % 8 == 0 and num_flow_updates == 3
            assert first.min() >= -1 and first.max() <= 1
            grid = torch.stack(torch.meshgrid(torch.arange(first.shape[-2]), torch.arange(first.shape[-1]), indexing="ij"))
            return [grid[None].float().repeat(first.shape[0], 1, 1, 1)]

    adapter._model = FakeRAFT()
    for sample, prediction in zip(samples, adapter.predict(samples)):
        height, width = sample.load_image().shape[:2]
        _, _, top, _ = centred_padding(height, width)
        assert prediction.flow.shape == (height, width, 2)
        assert prediction.flow[0, 0, 0] == top  # the crop starts after the top padding rows
