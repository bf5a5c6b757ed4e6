"""torchvision detectors: ``tv-fasterrcnn_*``, ``tv-retinanet_*``, ``tv-fcos_*``, ``tv-ssd*`` (detection),
``tv-maskrcnn_*`` (instance) and ``tv-keypointrcnn_resnet50_fpn`` (keypoints, on the dataset's person boxes).

The models take RGB floats in [0, 1] at any size and return boxes in original-image pixels.  Labels are COCO's
91-slot indices (``labels.COCO_LABELS``): ``check_compatible`` requires the dataset's class names to be those
80 names in that order, then label L maps to ``dataset.category_ids[position of L]``; the 11 unused slots
(background and COCO's N/A ids) cannot be scored and are dropped.  Mask R-CNN masks are thresholded at 0.5
(torchvision's reference evaluation).  Options: ``model_kwargs`` go to the builder (e.g. ``min_size``,
``box_score_thresh``), ``max_batch`` images per forward pass (default 1).

Batch-sensitive: the models' transform pads a batch to its largest image (rounded up to 32), and the padding
moves every box of a padding-sensitive model; batch 1 is what torchvision's detection reference evaluates
with, and what ``tests/adapters/test_parity_torchvision.py`` proves equal to torchvision's own call.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from harness.core.catalog import ADAPTERS
from harness.core.adapter import AdapterInfo
from adapters.torchvision._common import TorchvisionAdapter, image_tensor
from adapters.torchvision.labels import COCO_LABEL_SLOTS, COCO_LABELS, PERSON_LABELS, TORCHVISION_SPELLING
from harness.core.dataset import DatasetInfo
from harness.core.errors import BenchError
from harness.labels.keypoints import COCO_KEYPOINT_NAMES
from harness.core.structures import DetectionPrediction, KeypointsPrediction, PersonBoxes, Sample

DETECTION_BUILDERS = (
    "fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "fasterrcnn_mobilenet_v3_large_fpn",
    "fasterrcnn_mobilenet_v3_large_320_fpn", "retinanet_resnet50_fpn", "retinanet_resnet50_fpn_v2",
    "fcos_resnet50_fpn", "ssd300_vgg16", "ssdlite320_mobilenet_v3_large",
)
INSTANCE_BUILDERS = ("maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2")
KEYPOINT_BUILDERS = ("keypointrcnn_resnet50_fpn",)
MASK_THRESHOLD = 0.5
#: (height, width) of ``example_input``'s images: a typical COCO frame
EXAMPLE_SIZE = (480, 640)


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    boxes = boxes.astype(np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


class TorchvisionDetectorBase(TorchvisionAdapter):
    """Shared by the three tasks: label table, label -> category-id lookup, batched forward."""

    label_table: dict[int, str] = COCO_LABELS
    label_slots = COCO_LABEL_SLOTS
    fixed_kwargs = {"num_classes": COCO_LABEL_SLOTS}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lookup: np.ndarray | None = None

    def classes(self) -> list[str]:
        return [self.label_table[label] for label in sorted(self.label_table)]

    def check_weights_meta(self, meta: dict[str, Any]) -> None:
        categories = [TORCHVISION_SPELLING.get(c, c) for c in meta.get("categories", [])]
        expected = {label: name for label, name in enumerate(categories) if name not in ("N/A", "background", "no person")}
        if expected != self.label_table:
            raise BenchError(f"torchvision weights for {self.builder} use a label table bench does not know; refusing to guess")

    def check_compatible(self, dataset: DatasetInfo) -> None:
        super().check_compatible(dataset)
        if dataset.category_ids and len(dataset.category_ids) != len(dataset.classes):
            raise BenchError(f"dataset {dataset.name!r} lists {len(dataset.classes)} classes but {len(dataset.category_ids)} ids")
        lookup = np.full(self.label_slots, -1, dtype=np.int64)
        ids = dataset.category_ids or list(range(len(dataset.classes)))
        for position, label in enumerate(sorted(self.label_table)):
            lookup[label] = ids[position]
        self._lookup = lookup

    def category_lookup(self) -> np.ndarray:
        if self._lookup is None:
            raise BenchError(
                f"model {self.name!r} has not been matched to a dataset yet: call check_compatible(dataset.info) "
                "before predict, so its labels map to that dataset's category ids"
            )
        return self._lookup

    def max_batch(self) -> int:
        """Images per forward pass: 1 unless the ``max_batch`` option says otherwise (see the module docstring)."""
        value = self.options.get("max_batch", 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BenchError(f"option max_batch must be a positive integer, got {value!r}")
        return value

    def example_input(self, batch_size: int) -> Any:
        """A list of ``batch_size`` RGB images in [0, 1] at 480 x 640 (a COCO-sized frame): the detector resizes
        and pads them itself, and that transform is part of the timed forward pass."""
        import torch

        generator = torch.Generator().manual_seed(0)
        return [torch.rand((3, *EXAMPLE_SIZE), generator=generator) for _ in range(batch_size)]

    def forward(self, samples: Sequence[Sample]) -> list[dict[str, np.ndarray]]:
        import torch

        model = self.model()
        size = self.max_batch()
        outputs: list[dict[str, np.ndarray]] = []
        with torch.no_grad():
            for start in range(0, len(samples), size):
                images = [image_tensor(s.load_image(), self.device).float().div_(255) for s in samples[start : start + size]]
                for result in model(images):
                    outputs.append({key: value.detach().cpu().numpy() for key, value in result.items()})
        return outputs

    def kept(self, output: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the detections with a scoreable label, and their dataset category ids."""
        labels = output["labels"].astype(np.int64)
        lookup = self.category_lookup()
        in_range = (labels >= 0) & (labels < len(lookup))
        category = np.full(labels.shape, -1, dtype=np.int64)
        category[in_range] = lookup[labels[in_range]]
        keep = np.flatnonzero(category >= 0)
        return keep, category[keep]


#: torchvision's ``meta["_metrics"]["COCO-val2017"]`` names (percentages) -> bench's metric names, per task
PUBLISHED_METRICS = {"detection": {"box_map": "AP"}, "instance": {"mask_map": "AP", "box_map": "bbox/AP"}}


class TorchvisionDetector(TorchvisionDetectorBase):
    task = "detection"

    def info(self) -> AdapterInfo:
        extra: dict[str, Any] = {"label_space": "COCO 91-slot (label == COCO category id)"}
        published = self.published()
        if published:
            extra["published"] = published
        return self.base_info(classes=self.classes(), extra=extra)

    def published(self) -> dict[str, Any] | None:
        """The COCO val2017 scores torchvision lists for the release these weights are (box / mask mAP)."""
        self.model()  # identifies the release
        scores = ((self._release.meta.get("_metrics") or {}).get("COCO-val2017") or {}) if self._release else {}
        metrics = {bench: round(float(scores[name]) / 100.0, 10)
                   for name, bench in PUBLISHED_METRICS[self.task].items() if name in scores}
        if not metrics:
            return None
        return {"dataset": "coco", "metrics": metrics, "source_dataset": "COCO-val2017", "weights": self._release.url}

    def predict(self, samples: Sequence[Sample]) -> list[DetectionPrediction]:
        predictions = []
        for output in self.forward(samples):
            keep, categories = self.kept(output)
            predictions.append(DetectionPrediction(
                boxes=xyxy_to_xywh(output["boxes"][keep]),
                scores=output["scores"][keep].astype(np.float64),
                labels=categories,
                masks=self.masks(output, keep),
            ))
        return predictions

    def masks(self, output: dict[str, np.ndarray], keep: np.ndarray) -> list[dict[str, Any]] | None:
        return None


class TorchvisionInstanceSegmenter(TorchvisionDetector):
    task = "instance"

    def masks(self, output: dict[str, np.ndarray], keep: np.ndarray) -> list[dict[str, Any]] | None:
        from pycocotools import mask as mask_utils

        if len(keep) == 0:
            return []
        binary = output["masks"][keep, 0] > MASK_THRESHOLD  # (N, H, W)
        encoded = mask_utils.encode(np.asfortranarray(binary.transpose(1, 2, 0).astype(np.uint8)))
        return [{"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")} for rle in encoded]


class TorchvisionKeypointRCNN(TorchvisionDetectorBase):
    """Top-down on the dataset's person boxes (``sample.prompts``), like every keypoints model here: the prompt
    boxes go through the model's own resize into its keypoint RoI head, so there is one prediction per prompt and
    its score is the prompt's.  Samples without prompts (or option ``use_prompts=False``) use the model's own
    person detections, scored by the detector.  Per-joint confidences are the raw keypoint-heatmap logits
    torchvision returns."""

    #: ``bench run --model-arg`` keys (harness.run.model_options)
    accepted_options = {
        **TorchvisionDetectorBase.accepted_options,
        "use_prompts": "score the dataset's person boxes (default true)",
    }

    task = "keypoints"
    label_table = PERSON_LABELS
    label_slots = 2
    fixed_kwargs = {"num_classes": 2, "num_keypoints": len(COCO_KEYPOINT_NAMES)}

    def use_prompts(self) -> bool:
        return bool(self.options.get("use_prompts", True))

    def info(self) -> AdapterInfo:
        boxes = "dataset prompts (GT boxes); own detections when a sample has none" if self.use_prompts() else "own detections"
        return self.base_info(classes=self.classes(), keypoint_names=list(COCO_KEYPOINT_NAMES), extra={"boxes": boxes})

    def check_weights_meta(self, meta: dict[str, Any]) -> None:
        super().check_weights_meta(meta)
        if list(meta.get("keypoint_names", [])) != list(COCO_KEYPOINT_NAMES):
            raise BenchError(f"torchvision weights for {self.builder} list keypoints bench does not know")

    def predict(self, samples: Sequence[Sample]) -> list[KeypointsPrediction]:
        prompted = [isinstance(s.prompts, PersonBoxes) and self.use_prompts() for s in samples]
        predictions: dict[int, KeypointsPrediction] = {}
        with_prompts = [i for i, p in enumerate(prompted) if p]
        without = [i for i, p in enumerate(prompted) if not p]
        if with_prompts:
            predictions.update(zip(with_prompts, self.predict_on_prompts([samples[i] for i in with_prompts])))
        if without:
            predictions.update(zip(without, self.predict_own_people([samples[i] for i in without])))
        return [predictions[i] for i in range(len(samples))]

    def predict_own_people(self, samples: Sequence[Sample]) -> list[KeypointsPrediction]:
        predictions = []
        for output in self.forward(samples):
            keep, _ = self.kept(output)
            points = output["keypoints"][keep].astype(np.float64).reshape(-1, len(COCO_KEYPOINT_NAMES), 3)
            points[..., 2] = output["keypoints_scores"][keep].astype(np.float64).reshape(points.shape[:2])
            predictions.append(KeypointsPrediction(
                keypoints=points,
                scores=output["scores"][keep].astype(np.float64),
                boxes=xyxy_to_xywh(output["boxes"][keep]),
            ))
        return predictions

    def predict_on_prompts(self, samples: Sequence[Sample]) -> list[KeypointsPrediction]:
        import torch
        from torchvision.models.detection.roi_heads import keypointrcnn_inference
        from torchvision.models.detection.transform import resize_boxes

        self.category_lookup()  # same contract as the detection path: matched to a dataset first
        model = self.model()
        size = self.max_batch()
        predictions = []
        with torch.no_grad():
            for start in range(0, len(samples), size):
                chunk = samples[start : start + size]
                images = [image_tensor(s.load_image(), self.device).float().div_(255) for s in chunk]
                originals = [tuple(image.shape[-2:]) for image in images]
                batch, _ = model.transform(images)
                prompts = [np.asarray(s.prompts.boxes, dtype=np.float64).reshape(-1, 4) for s in chunk]
                boxes = [
                    resize_boxes(torch.tensor(np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1), dtype=torch.float32,
                                              device=self.device), original, resized)
                    for b, original, resized in zip(prompts, originals, batch.image_sizes)
                ]
                features = model.backbone(batch.tensors)
                heads = model.roi_heads
                logits = heads.keypoint_predictor(heads.keypoint_head(heads.keypoint_roi_pool(features, boxes, batch.image_sizes)))
                points, confidences = keypointrcnn_inference(logits, boxes)
                outputs = model.transform.postprocess([{"boxes": b, "keypoints": p} for b, p in zip(boxes, points)],
                                                      batch.image_sizes, originals)
                for sample, output, confidence, prompt in zip(chunk, outputs, confidences, prompts):
                    keypoints = output["keypoints"].cpu().numpy().astype(np.float64).reshape(-1, len(COCO_KEYPOINT_NAMES), 3)
                    keypoints[..., 2] = confidence.cpu().numpy().reshape(keypoints.shape[:2])
                    predictions.append(KeypointsPrediction(
                        keypoints=keypoints,
                        scores=np.asarray(sample.prompts.scores, dtype=np.float64).reshape(-1),
                        boxes=prompt,
                    ))
        return predictions


for _builder in DETECTION_BUILDERS:
    ADAPTERS.register(f"tv-{_builder}")(TorchvisionDetector)
for _builder in INSTANCE_BUILDERS:
    ADAPTERS.register(f"tv-{_builder}")(TorchvisionInstanceSegmenter)
for _builder in KEYPOINT_BUILDERS:
    ADAPTERS.register(f"tv-{_builder}")(TorchvisionKeypointRCNN)
