"""mmpose bottom-up pose estimators: ``--model mmpose-bu:CONFIG`` (RTMO, associative embedding, CID, DEKR, ...).

DEKR's adaptive activation blocks are mmcv deformable convolutions, served by the ``mmcv._ext`` shim from
``torchvision.ops.deform_conv2d``.

The whole image goes through the config's test pipeline (``BottomupResize`` & co.) and ``BottomupPoseEstimator``
returns every person it finds; no boxes are used, so these models run under ``bench run --task keypoints
--protocol bottom-up``.  A person's score follows the ``score_mode`` of the config's ``test_evaluator`` as
mmpose's ``CocoMetric`` applies it (``nms_mode`` 'none' in the shipped bottom-up configs): ``bbox`` -> the
model's instance (bbox) score, ``keypoint`` -> the mean keypoint score, ``bbox_keypoint`` -> bbox score x mean of
the keypoint scores above 0.2.  Its box is the model's when it predicts one (RTMO), else the keypoints' extent.
One image per forward pass (``BottomupResize`` pads each image on its own).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from harness.core.catalog import ADAPTERS
from adapters.openmmlab._common import bgr
from adapters.openmmlab.mmpose import MMPoseTopDown, instance_scores
from harness.core.errors import BenchError
from harness.core.structures import KeypointsPrediction, Sample


@ADAPTERS.register("mmpose-bu:")
class MMPoseBottomUp(MMPoseTopDown):
    bottom_up = True
    default_max_batch = 1

    def build_model(self, config: Any) -> Any:
        from mmpose.registry import MODELS

        config.model.train_cfg = None
        if config.model.get("type") != "BottomupPoseEstimator":
            raise BenchError(f"{self.config_path.name} is a {config.model.get('type')} model; mmpose-bu: runs "
                             "bottom-up configs (BottomupPoseEstimator)")
        return MODELS.build(config.model)

    def score_mode(self) -> str:
        evaluator = self.built().config.get("test_evaluator") or {}
        if isinstance(evaluator, (list, tuple)):
            evaluator = next((e for e in evaluator if "Coco" in str(e.get("type", ""))), {})
        return str(evaluator.get("score_mode", "bbox_keypoint"))

    def info(self):
        info = super().info()
        info.extra.update({"boxes": "none (bottom-up)", "instance_score": f"score_mode {self.score_mode()!r}",
                           "bottom_up": True})
        return info

    def predict(self, samples: Sequence[Sample]) -> list[KeypointsPrediction]:
        import torch
        from mmengine.dataset import pseudo_collate

        built = self.built()
        pipeline = self._pipeline()
        mode = self.score_mode()
        predictions = []
        with self.scope_context(), torch.no_grad():
            for sample in samples:
                item = {"img": bgr(sample), "img_id": sample.sample_id}
                item.update(built.metadata)
                result = built.model.test_step(pseudo_collate([pipeline(item)]))[0].pred_instances
                predictions.append(self._people(result, mode))
        return predictions

    def _people(self, instances: Any, mode: str) -> KeypointsPrediction:
        count = len(self.keypoint_names())
        points = np.asarray(instances.keypoints, dtype=np.float64).reshape(-1, count, 2)
        confidence = np.asarray(instances.keypoint_scores, dtype=np.float64).reshape(-1, count)
        people = len(points)
        box_scores = np.asarray(getattr(instances, "bbox_scores", np.ones(people)), dtype=np.float64).reshape(-1)
        if mode == "bbox":
            scores = box_scores
        elif mode == "keypoint":
            scores = confidence.mean(axis=1) if people else np.zeros(0)
        else:
            scores = instance_scores(box_scores, confidence) if people else np.zeros(0)
        boxes = getattr(instances, "bboxes", None)
        if boxes is not None and len(np.asarray(boxes)) == people:
            xyxy = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
            boxes = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
        else:
            low, high = (points.min(axis=1), points.max(axis=1)) if people else (np.zeros((0, 2)), np.zeros((0, 2)))
            boxes = np.concatenate([low, high - low], axis=1)
        return KeypointsPrediction(keypoints=np.concatenate([points, confidence[..., None]], axis=-1),
                                   scores=scores, boxes=boxes)
