"""mmpose top-down pose estimators: ``--model mmpose:CONFIG``.

People come from ``sample.prompts`` (the dataset's person boxes, the "GT boxes" protocol), or from a detection
adapter given as the ``person_detector`` option (the "detected boxes" protocol; the detector must already be
matched to its own dataset with ``check_compatible``; its detections of ``person_category_id`` with a score of
at least ``person_score_threshold`` (default 0) are kept).

Each person's score is mmpose's CocoMetric default (``score_mode='bbox_keypoint'``): box score x mean of the
keypoint scores above 0.2 (0 when none is).  No OKS-NMS is applied.

Batch-sensitive only through rounding: crops all have the model's input size, and up to ``max_batch`` (64)
of them share a forward pass; with ``max_batch=1`` the keypoints equal ``inference_topdown``'s (one box per
call) to 1e-5 (``tests/adapters/test_parity_openmmlab.py``).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.core.catalog import ADAPTERS
from harness.core.adapter import Adapter, AdapterInfo
from adapters.openmmlab._common import (
    OpenMMLabAdapter,
    bgr,
    config_dataset_candidates,
    missing_metadata_message,
    predict_in_chunks,
    test_pipeline_config,
)
from harness.core.dataset import DatasetInfo
from harness.core.errors import BenchError
from harness.core.structures import KeypointsPrediction, PersonBoxes, Sample

#: mmpose CocoMetric's defaults for the instance score
KEYPOINT_SCORE_THRESHOLD = 0.2


def instance_scores(box_scores: np.ndarray, keypoint_scores: np.ndarray) -> np.ndarray:
    """box score x mean of the keypoint scores above the threshold (0 when none is), per person."""
    above = keypoint_scores > KEYPOINT_SCORE_THRESHOLD
    counts = above.sum(axis=1)
    sums = np.where(above, keypoint_scores, 0.0).sum(axis=1)
    means = np.divide(sums, counts, out=np.zeros_like(sums, dtype=np.float64), where=counts > 0)
    return box_scores * means


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


@ADAPTERS.register("mmpose:")
class MMPoseTopDown(OpenMMLabAdapter):
    #: ``bench run --model-arg`` keys (harness.run.model_options)
    accepted_options = {
        **OpenMMLabAdapter.accepted_options,
        "person_category_id": "category id of people in the detector's output",
        "person_score_threshold": "drop detected people below this score",
    }
    package = "mmpose"
    scope = "mmpose"
    task = "keypoints"
    #: person crops per forward pass; crops all have the model's input size, so batching changes only the
    #: rounding (up to 2e-2 px seen on a random heatmap model), not the padding
    default_max_batch = 64
    _compose: Any = None

    def build_model(self, config: Any) -> Any:
        from mmpose.registry import MODELS

        config.model.train_cfg = None
        if config.model.get("type") != "TopdownPoseEstimator":
            raise BenchError(f"{self.config_path.name} is a {config.model.get('type')} model; mmpose: runs top-down configs")
        return MODELS.build(config.model)

    def metadata_from_config(self, config: Any) -> dict[str, Any] | None:
        import mmpose.datasets  # noqa: F401  (registers the dataset classes)
        from mmpose.datasets.datasets.utils import parse_pose_metainfo
        from mmpose.registry import DATASETS

        for dataset in config_dataset_candidates(config):
            metainfo = dataset.get("metainfo")
            if metainfo is None:
                try:
                    dataset_type = dataset.get("type")
                    cls = dataset_type if isinstance(dataset_type, type) else DATASETS.get(dataset_type)
                except Exception:
                    cls = None
                metainfo = getattr(cls, "METAINFO", None) if cls is not None else None
            if not metainfo:
                continue
            try:
                parsed = parse_pose_metainfo(copy.deepcopy(dict(metainfo)))
            except Exception:  # e.g. a metainfo file that does not exist here
                continue
            if parsed.get("keypoint_id2name"):
                return parsed
        return None

    def validate_metadata(self, config: Any, metadata: dict[str, Any]) -> None:
        outputs = config.model.get("head", {}).get("out_channels")
        names = self.keypoint_names_of(metadata)
        if isinstance(outputs, int) and names and outputs != len(names):
            raise BenchError(
                f"model {self.name!r}: its head predicts {outputs} keypoints but its metadata names {len(names)}"
            )

    def published_protocol(self, config: Any) -> dict[str, Any]:
        """mmpose's COCO results use the person boxes of the config's test set: a detector's (``bbox_file``,
        then OKS-NMS in CocoMetric) or the ground truth; bench's default is the ground truth, without NMS."""
        dataset = config.get("test_dataloader", {}).get("dataset", {}) or {}
        bbox_file = dataset.get("bbox_file") if isinstance(dataset, dict) else None
        return {"person_boxes": f"detections ({Path(str(bbox_file)).name})" if bbox_file else "ground truth"}

    @staticmethod
    def keypoint_names_of(metadata: dict[str, Any]) -> list[str]:
        id2name = metadata.get("keypoint_id2name") or {}
        return [str(id2name[i]) for i in sorted(id2name)]

    def keypoint_names(self) -> list[str]:
        return self.keypoint_names_of(self.built().metadata)

    def info(self) -> AdapterInfo:
        built = self.built()
        codec = built.config.get("codec") or {}
        size = codec.get("input_size")
        extra: dict[str, Any] = {"boxes": "person_detector" if self.detector else "dataset prompts (GT boxes)",
                                 "instance_score": "box score x mean(keypoint scores > 0.2)"}
        return self.base_info(
            self.task,
            keypoint_names=self.keypoint_names(),
            input_size=(int(size[1]), int(size[0])) if size else None,
            extra=extra,
        )

    @property
    def detector(self) -> Adapter | None:
        detector = self.options.get("person_detector")
        if detector is not None and not isinstance(detector, Adapter):
            raise BenchError("option person_detector must be a detection adapter (an Adapter instance)")
        if detector is not None and detector.task != "detection":
            raise BenchError(f"person_detector {detector.name!r} is a {detector.task} model, not a detector")
        return detector

    def check_compatible(self, dataset: DatasetInfo) -> None:
        if not self.keypoint_names():
            raise BenchError(missing_metadata_message(self.name, "keypoint names", self.config_path))
        super().check_compatible(dataset)

    def person_boxes(self, samples: Sequence[Sample]) -> list[PersonBoxes]:
        detector = self.detector
        if detector is None:
            for sample in samples:
                if not isinstance(sample.prompts, PersonBoxes):
                    raise BenchError(
                        f"sample {sample.sample_id} has no person boxes: a top-down model needs the dataset's prompts "
                        "or a person_detector option"
                    )
            return [sample.prompts for sample in samples]
        category_id = self.options.get("person_category_id")
        if category_id is None:
            raise BenchError("option person_category_id is required with person_detector (the detector's person id)")
        threshold = float(self.options.get("person_score_threshold", 0.0))
        boxes = []
        for detections in detector.predict(samples):
            keep = (np.asarray(detections.labels) == int(category_id)) & (np.asarray(detections.scores) >= threshold)
            boxes.append(PersonBoxes(boxes=np.asarray(detections.boxes)[keep], scores=np.asarray(detections.scores)[keep]))
        return boxes

    def _pipeline(self) -> Any:
        if self._compose is None:
            from mmcv.transforms import Compose

            with self.scope_context():
                self._compose = Compose(test_pipeline_config(self.built().config, "LoadImage"))
        return self._compose

    def predict(self, samples: Sequence[Sample]) -> list[KeypointsPrediction]:
        import torch
        from mmengine.dataset import pseudo_collate

        built = self.built()
        pipeline = self._pipeline()
        prompts = self.person_boxes(samples)
        crops: list[tuple[int, np.ndarray, float]] = []  # (sample index, xyxy box, box score)
        for index, people in enumerate(prompts):
            xyxy = xywh_to_xyxy(np.asarray(people.boxes, dtype=np.float32).reshape(-1, 4))
            scores = np.asarray(people.scores, dtype=np.float64).reshape(-1)
            crops.extend((index, box, float(score)) for box, score in zip(xyxy, scores))
        images = {index: bgr(sample) for index, sample in enumerate(samples) if len(prompts[index].boxes)}
        keypoints: list[np.ndarray] = []
        with self.scope_context(), torch.no_grad():
            for chunk in predict_in_chunks(crops, self.max_batch()):
                items = []
                for index, box, score in chunk:
                    item = {"img": images[index], "bbox": box[None], "bbox_score": np.array([score], np.float32)}
                    item.update(built.metadata)
                    items.append(pipeline(item))
                for result in built.model.test_step(pseudo_collate(items)):
                    points = np.asarray(result.pred_instances.keypoints, dtype=np.float64)[0]
                    confidence = np.asarray(result.pred_instances.keypoint_scores, dtype=np.float64)[0]
                    keypoints.append(np.concatenate([points, confidence[:, None]], axis=1))
        return self._assemble(samples, prompts, crops, keypoints)

    def _assemble(self, samples: Sequence[Sample], prompts: list[PersonBoxes], crops: list[tuple[int, np.ndarray, float]],
                  keypoints: list[np.ndarray]) -> list[KeypointsPrediction]:
        count = len(self.keypoint_names())
        predictions = []
        for index in range(len(samples)):
            mine = [k for k, (owner, _, _) in enumerate(crops) if owner == index]
            points = np.stack([keypoints[k] for k in mine]) if mine else np.zeros((0, count, 3))
            box_scores = np.asarray(prompts[index].scores, dtype=np.float64).reshape(-1)
            predictions.append(KeypointsPrediction(
                keypoints=points,
                scores=instance_scores(box_scores, points[..., 2]) if mine else np.zeros(0),
                boxes=np.asarray(prompts[index].boxes, dtype=np.float64).reshape(-1, 4),
            ))
        return predictions
