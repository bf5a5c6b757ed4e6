"""mmdet detectors: ``--model mmdet:CONFIG`` (boxes) and ``--model mmdet-ins:CONFIG`` (boxes + masks).

Two names because the task is a property of the registered class (the runner checks it before building
anything): the same Mask R-CNN config runs as a detector under ``mmdet:`` and as an instance segmenter under
``mmdet-ins:``; a config without a mask head is refused by ``mmdet-ins:`` at its first prediction.

Labels: mmdet predicts indices into its ``classes``; after ``check_compatible`` proved the dataset lists the
same names in the same order, index i becomes ``dataset.category_ids[i]``.

Batch-sensitive: images sharing a forward pass are padded to the largest, so the adapter runs one image per
pass unless the ``max_batch`` option says otherwise; at one image it equals ``mmdet.apis.inference_detector``
to 1e-5 (``tests/adapters/test_parity_openmmlab.py``).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from harness.core.catalog import ADAPTERS
from adapters.openmmlab._common import (
    ClassListAdapter,
    bgr,
    class_metainfo_from_config,
    predict_in_chunks,
    test_pipeline_config,
)
from harness.core.errors import BenchError
from harness.core.structures import DetectionPrediction, Sample


def head_class_counts(node: Any, inside_rpn: bool = False) -> set[int]:
    """Every ``num_classes`` in the model config outside the RPN (whose one class is 'object')."""
    counts: set[int] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "num_classes" and not inside_rpn and isinstance(value, int):
                counts.add(value)
            else:
                counts |= head_class_counts(value, inside_rpn or key == "rpn_head")
    elif isinstance(node, (list, tuple)):
        for value in node:
            counts |= head_class_counts(value, inside_rpn)
    return counts


def masks_to_rle(masks: np.ndarray) -> list[dict[str, Any]]:
    """(N, H, W) bool -> COCO RLE dicts with str counts (JSON-ready, what COCO results files hold)."""
    from pycocotools import mask as mask_utils

    if len(masks) == 0:
        return []
    encoded = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    return [{"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")} for rle in encoded]


class MMDetAdapter(ClassListAdapter):
    package = "mmdet"
    scope = "mmdet"
    load_transform = "mmdet.LoadImageFromNDArray"
    task = "detection"
    with_masks = False
    #: one image per forward pass: the data preprocessor pads a batch to its largest image, which changes the
    #: detections of padding-sensitive models (Mask R-CNN, 3 images of 640x425, 500x333, 353x500 in one pass:
    #: 117 of its 120 box coordinates differ, by up to 639 px, as the ranking changes); even RTMDet, whose
    #: pipeline pads every image to one size, moves boxes by up to 3e-3 px through batched convolutions.
    #: Batch 1 is what ``inference_detector`` does.
    default_max_batch = 1
    #: two-stage detectors clip proposals to the data samples' image shapes, even in ``mode='tensor'``
    data_sample_class = "mmdet.structures:DetDataSample"
    _compose: Any = None

    def build_model(self, config: Any) -> Any:
        from mmdet.registry import MODELS

        return MODELS.build(config.model)

    def metadata_from_config(self, config: Any) -> dict[str, Any] | None:
        from mmdet.registry import DATASETS

        return class_metainfo_from_config(config, DATASETS)

    def validate_metadata(self, config: Any, metadata: dict[str, Any]) -> None:
        counts = head_class_counts(config.model)
        classes = list(metadata.get("classes") or [])
        if classes and counts and counts != {len(classes)}:
            raise BenchError(
                f"model {self.name!r}: its heads predict {sorted(counts)} classes but its metadata names "
                f"{len(classes)}; fix the checkpoint's meta.dataset_meta or the config"
            )


    def _pipeline(self) -> Any:
        if self._compose is None:
            from mmcv.transforms import Compose

            with self.scope_context():
                self._compose = Compose(test_pipeline_config(self.built().config, "mmdet.LoadImageFromNDArray"))
        return self._compose

    def predict(self, samples: Sequence[Sample]) -> list[DetectionPrediction]:
        import torch
        from mmengine.dataset import pseudo_collate

        category_ids = self.category_ids()
        model = self.built().model
        pipeline = self._pipeline()
        predictions: list[DetectionPrediction] = []
        with self.scope_context(), torch.no_grad():
            for chunk in predict_in_chunks(list(samples), self.max_batch()):
                batch = pseudo_collate([pipeline({"img": bgr(s), "img_id": i}) for i, s in enumerate(chunk)])
                for result in model.test_step(batch):
                    predictions.append(self._convert(result.pred_instances, category_ids))
        return predictions

    def _convert(self, instances: Any, category_ids: np.ndarray) -> DetectionPrediction:
        xyxy = instances.bboxes.detach().cpu().numpy().astype(np.float64).reshape(-1, 4)
        boxes = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
        scores = instances.scores.detach().cpu().numpy().astype(np.float64)
        labels = instances.labels.detach().cpu().numpy().astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= len(category_ids)):
            raise BenchError(f"model {self.name!r} predicted label {labels.max()} outside its {len(category_ids)} classes")
        masks = None
        if self.with_masks:
            if "masks" not in instances:
                raise BenchError(f"model {self.name!r} predicts no masks: {self.config_path.name} has no mask head; use mmdet:")
            masks = masks_to_rle(instances.masks.detach().cpu().numpy().astype(bool))
        return DetectionPrediction(boxes=boxes, scores=scores, labels=category_ids[labels], masks=masks)


@ADAPTERS.register("mmdet:")
class MMDetDetector(MMDetAdapter):
    task = "detection"


@ADAPTERS.register("mmdet-ins:")
class MMDetInstanceSegmenter(MMDetAdapter):
    task = "instance"
    with_masks = True
