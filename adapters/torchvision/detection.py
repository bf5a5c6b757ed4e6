"""torchvision detectors: ``tv-fasterrcnn_*``, ``tv-retinanet_*``, ``tv-fcos_*``, ``tv-ssd*`` (detection),
``tv-maskrcnn_*`` (instance) and ``tv-keypointrcnn_resnet50_fpn`` (keypoints, finds its own people).

The models take RGB floats in [0, 1] at any size and return boxes in original-image pixels.  Labels are COCO's
91-slot indices (``labels.COCO_LABELS``): ``check_compatible`` requires the dataset's class names to be those
80 names in that order, then label L maps to ``dataset.category_ids[position of L]``; the 11 unused slots
(background and COCO's N/A ids) cannot be scored and are dropped.  Mask R-CNN masks are thresholded at 0.5
(torchvision's reference evaluation).  Options: ``model_kwargs`` go to the builder (e.g. ``min_size``,
``box_score_thresh``), ``max_batch`` images per forward pass (default 4).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from adapters import ADAPTERS
from adapters.base import AdapterInfo
from adapters.torchvision._common import TorchvisionAdapter, image_tensor
from adapters.torchvision.labels import COCO_LABEL_SLOTS, COCO_LABELS, PERSON_LABELS, TORCHVISION_SPELLING
from harness.datasets.base import DatasetInfo
from harness.errors import BenchError
from harness.keypoint_meta import COCO_KEYPOINT_NAMES
from harness.structures import DetectionPrediction, KeypointsPrediction, Sample

DETECTION_BUILDERS = (
    "fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "fasterrcnn_mobilenet_v3_large_fpn",
    "fasterrcnn_mobilenet_v3_large_320_fpn", "retinanet_resnet50_fpn", "retinanet_resnet50_fpn_v2",
    "fcos_resnet50_fpn", "ssd300_vgg16", "ssdlite320_mobilenet_v3_large",
)
INSTANCE_BUILDERS = ("maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2")
KEYPOINT_BUILDERS = ("keypointrcnn_resnet50_fpn",)
MASK_THRESHOLD = 0.5


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

    def forward(self, samples: Sequence[Sample]) -> list[dict[str, np.ndarray]]:
        import torch

        model = self.model()
        size = int(self.options.get("max_batch", 4))
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


class TorchvisionDetector(TorchvisionDetectorBase):
    task = "detection"

    def info(self) -> AdapterInfo:
        return self.base_info(classes=self.classes(), extra={"label_space": "COCO 91-slot (label == COCO category id)"})

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
    """Finds people itself (ignores the dataset's person-box prompts); per-joint confidences are the raw
    keypoint-heatmap logits torchvision returns, the person score is the box score (torchvision's reference)."""

    task = "keypoints"
    label_table = PERSON_LABELS
    label_slots = 2
    fixed_kwargs = {"num_classes": 2, "num_keypoints": len(COCO_KEYPOINT_NAMES)}

    def info(self) -> AdapterInfo:
        return self.base_info(classes=self.classes(), keypoint_names=list(COCO_KEYPOINT_NAMES),
                              extra={"boxes": "own person detections (prompts ignored)"})

    def check_weights_meta(self, meta: dict[str, Any]) -> None:
        super().check_weights_meta(meta)
        if list(meta.get("keypoint_names", [])) != list(COCO_KEYPOINT_NAMES):
            raise BenchError(f"torchvision weights for {self.builder} list keypoints bench does not know")

    def predict(self, samples: Sequence[Sample]) -> list[KeypointsPrediction]:
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


for _builder in DETECTION_BUILDERS:
    ADAPTERS.register(f"tv-{_builder}")(TorchvisionDetector)
for _builder in INSTANCE_BUILDERS:
    ADAPTERS.register(f"tv-{_builder}")(TorchvisionInstanceSegmenter)
for _builder in KEYPOINT_BUILDERS:
    ADAPTERS.register(f"tv-{_builder}")(TorchvisionKeypointRCNN)
