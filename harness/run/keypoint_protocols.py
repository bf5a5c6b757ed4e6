"""Keypoint protocols as named run conditions: ``gt-boxes`` (default), ``detector`` and ``bottom-up``.

COCO keypoint numbers mean different things depending on where the people come from.  ``gt-boxes`` (bench's
default, unchanged) gives a top-down model the annotated person boxes.  ``detector`` is the protocol of the
published top-down COCO numbers (mmpose's ``bbox_file`` configs): person boxes from a detector, each person
scored ``box score x mean of its keypoint scores above 0.2`` and duplicates removed by OKS-NMS at 0.9, exactly as
mmpose's ``CocoMetric`` (``score_mode='bbox_keypoint'``, ``keypoint_score_thr=0.2``, ``nms_mode='oks_nms'``,
``nms_thr=0.9``).  ``bottom-up`` gives no boxes at all: the model finds every person itself, and its instance
scores are used as they are (no NMS).

A non-default protocol is a different experiment, so it gets its own protocol name (and hence its own
``protocol.key`` and leaderboard table): ``coco-keypoints/detector:<source>`` or ``coco-keypoints/bottom-up``.
Its metrics are COCO OKS AP/AR only: PCK and MPJPE pair prediction i with person i, which only GT boxes give.

Numbers are float64 throughout.  mmpose's dataset reads detection scores as float32; the arithmetic (the
keypoint-score mean accumulated in joint order, the float32 OKS of its NMS, ``argsort`` order) is the same.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from harness.core.dataset import Dataset
from harness.core.errors import BenchError, DataError
from harness.core.fingerprint import file_digest
from harness.core.protocol import MetricSpec, ProtocolOverride
from harness.core.structures import KeypointsPrediction, PersonBoxes, Sample

KEYPOINT_PROTOCOLS = ("gt-boxes", "detector", "bottom-up")
#: mmpose CocoMetric defaults for top-down results
KEYPOINT_SCORE_THRESHOLD = 0.2
OKS_NMS_THRESHOLD = 0.9
#: the crop every top-down COCO config uses (192x256, 1.25 padding): OKS-NMS takes a person's area from it
CROP_ASPECT = 0.75
CROP_PADDING = 1.25


# ------------------------------------------------------------------------------------------- arithmetic
def rescore(box_scores: np.ndarray, keypoint_scores: np.ndarray, threshold: float = KEYPOINT_SCORE_THRESHOLD
            ) -> np.ndarray:
    """``box score x mean(keypoint scores > threshold)`` per person (0 when no joint passes), summed in joint
    order as mmpose does (so the last bit matches, and with it the order of near-ties)."""
    scores = np.zeros(len(box_scores), dtype=np.float64)
    for person, (box_score, joints) in enumerate(zip(box_scores, keypoint_scores)):
        total, count = 0.0, 0
        for value in joints:
            if value > threshold:
                total += float(value)
                count += 1
        scores[person] = float(box_score) * (total / count if count else 0.0)
    return scores


def crop_areas(boxes_xywh: np.ndarray, aspect: float = CROP_ASPECT, padding: float = CROP_PADDING) -> np.ndarray:
    """Area of each box's top-down crop region (padded, then widened or heightened to ``aspect`` = w/h), which
    mmpose's OKS-NMS uses as the person's area (``prod(bbox_scales)``)."""
    boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    w, h = boxes[:, 2] * padding, boxes[:, 3] * padding
    wider = w > h * aspect
    return np.where(wider, w * (w / aspect), (h * aspect) * h)


def keypoint_extent_areas(keypoints: np.ndarray) -> np.ndarray:
    """Area of the keypoints' bounding box, mmpose's area when a prediction has no crop (bottom-up)."""
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.size == 0:
        return np.zeros(len(keypoints))
    span = keypoints[..., :2].max(axis=1) - keypoints[..., :2].min(axis=1)
    return span[:, 0] * span[:, 1]


def oks_nms(keypoints: np.ndarray, scores: np.ndarray, areas: np.ndarray, sigmas: Sequence[float],
            threshold: float = OKS_NMS_THRESHOLD) -> np.ndarray:
    """Indices kept by greedy OKS-NMS, highest score first: a person is dropped when its OKS with a kept one
    exceeds ``threshold``.  OKS as in mmpose's ``oks_iou``: every joint counts, the scale is the mean of the two
    areas (plus one ulp), and the similarity is rounded to float32 before the comparison."""
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if len(keypoints) == 0:
        return np.zeros(0, dtype=np.int64)
    variances = (np.asarray(sigmas, dtype=np.float64) * 2) ** 2
    order = np.asarray(scores).argsort()[::-1]
    keep = []
    while len(order) > 0:
        best, rest = order[0], order[1:]
        keep.append(best)
        d2 = ((keypoints[rest, :, :2] - keypoints[best, None, :, :2]) ** 2).sum(axis=-1)
        scale = (areas[best] + areas[rest]) / 2 + np.spacing(1)
        exponent = d2 / variances / scale[:, None] / 2
        similarity = (np.exp(-exponent).sum(axis=1) / keypoints.shape[1]).astype(np.float32)
        order = rest[similarity <= threshold]
    return np.asarray(keep, dtype=np.int64)


# ------------------------------------------------------------------------------------------- person boxes
def read_person_boxes(path: Path, category_id: int, image_ids: Iterable[int]) -> dict[int, PersonBoxes]:
    """A COCO detection results file's ``category_id`` boxes per image (mmpose keeps only category 1, person).

    Images without a box get none; a box for an image the dataset does not have, or a malformed entry, is
    refused in one line naming the file and the entry.
    """
    from harness.io.jsonio import read_json

    path = Path(path)
    if not path.is_file():
        raise DataError("person boxes file not found", path)
    entries = read_json(path)
    if not isinstance(entries, list):
        raise DataError("expected a COCO detection results list [{image_id, category_id, bbox, score}, ...]", path)
    known = set(int(i) for i in image_ids)
    boxes: dict[int, list[list[float]]] = {}
    scores: dict[int, list[float]] = {}
    for index, entry in enumerate(entries):
        where = f"entry {index}"
        if not isinstance(entry, dict) or not {"image_id", "category_id", "bbox", "score"} <= set(entry):
            raise DataError(f"{where}: needs image_id, category_id, bbox and score", path)
        if entry["category_id"] != category_id:
            continue
        box, score = entry["bbox"], entry["score"]
        if not (isinstance(box, list) and len(box) >= 4 and all(_finite(v) for v in box[:4])) or box[2] < 0 or box[3] < 0:
            raise DataError(f"{where}: bbox must be [x, y, w, h] with finite w, h >= 0, got {box!r}", path)
        if not _finite(score):
            raise DataError(f"{where}: score must be a finite number, got {score!r}", path)
        if entry["image_id"] not in known:
            raise DataError(f"{where}: image_id {entry['image_id']!r} is not in the dataset", path)
        boxes.setdefault(int(entry["image_id"]), []).append([float(v) for v in box[:4]])
        scores.setdefault(int(entry["image_id"]), []).append(float(score))
    return {image: PersonBoxes(np.asarray(boxes[image], np.float64), np.asarray(scores[image], np.float64))
            for image in boxes}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ------------------------------------------------------------------------------------------- the condition
@dataclass(frozen=True)
class KeypointCondition:
    """One named keypoint protocol and where its people come from; ``record()`` goes into metrics.json."""

    name: str = "gt-boxes"
    #: detector: a COCO detection results file ...
    person_boxes: Path | None = None
    #: ... or a bench model whose predictions give the boxes (a detection model, or a bottom-up keypoints model)
    person_detector: str | None = None
    keypoint_score_threshold: float = KEYPOINT_SCORE_THRESHOLD
    nms_threshold: float = OKS_NMS_THRESHOLD
    #: filled in by ``bind``: a content hash of the boxes' source
    source_digest: str = ""

    def __post_init__(self) -> None:
        if self.name not in KEYPOINT_PROTOCOLS:
            raise BenchError(f"unknown keypoint protocol {self.name!r} (known: {', '.join(KEYPOINT_PROTOCOLS)})")
        if self.name == "detector" and (self.person_boxes is None) == (self.person_detector is None):
            raise BenchError("--protocol detector needs exactly one of --person-boxes FILE (COCO detection results) "
                             "or --person-detector MODEL")
        if self.name != "detector" and (self.person_boxes is not None or self.person_detector is not None):
            raise BenchError(f"--person-boxes/--person-detector apply to --protocol detector, not {self.name}")

    @property
    def is_default(self) -> bool:
        return self.name == "gt-boxes"

    @property
    def source(self) -> str:
        if self.person_boxes is not None:
            return f"{Path(self.person_boxes).name}@{self.source_digest[:8]}"
        if self.person_detector is not None:
            return f"{self.person_detector}@{self.source_digest[:8]}"
        return ""

    def protocol_name(self, base: str) -> str:
        if self.name == "detector":
            return f"{base}/detector:{self.source}"
        return base if self.is_default else f"{base}/{self.name}"

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.name == "detector":
            out.update({"person_boxes": str(self.person_boxes) if self.person_boxes else None,
                        "person_detector": self.person_detector, "source_sha256": self.source_digest,
                        "score": f"box score x mean(keypoint scores > {self.keypoint_score_threshold:g})",
                        "nms": f"oks-nms {self.nms_threshold:g}", "crop_aspect": CROP_ASPECT,
                        "crop_padding": CROP_PADDING})
        elif self.name == "bottom-up":
            out.update({"score": "model instance score", "nms": "none"})
        else:
            out.update({"score": "model instance score", "nms": "none", "boxes": "ground truth"})
        return out


def condition_from_record(recorded: dict[str, Any] | None) -> KeypointCondition | None:
    """The condition a run recorded (``protocol.condition``), to score its written files the same way; None for
    the default or a record without one."""
    if not recorded or recorded.get("name", "gt-boxes") == "gt-boxes":
        return None
    boxes = recorded.get("person_boxes")
    return KeypointCondition(str(recorded["name"]), person_boxes=Path(boxes) if boxes else None,
                             person_detector=recorded.get("person_detector"),
                             source_digest=str(recorded.get("source_sha256") or ""))


def conditioned_for_files(task: Any, dataset: Dataset, condition: KeypointCondition | None) -> Dataset:
    """The dataset as a run under ``condition`` scored it, for re-scoring that run's written predictions (the
    files already hold the final people: no boxes are needed)."""
    if condition is None or condition.is_default:
        return dataset
    return ConditionedDataset(dataset, condition, {}, task.protocol(dataset.info))


def accepts(adapter_class: type, condition: KeypointCondition) -> bool:
    """Whether a keypoints model can run under ``condition``: bottom-up models (``bottom_up = True``) find
    people themselves and ignore boxes, top-down ones need boxes."""
    bottom_up = bool(getattr(adapter_class, "bottom_up", False))
    return bottom_up if condition.name == "bottom-up" else not bottom_up


# ------------------------------------------------------------------------------------------- dataset wrapper
class ConditionedDataset(Dataset):
    """A keypoints dataset whose prompts follow the condition: detector boxes, or none (bottom-up).

    Its fingerprint adds the condition and the boxes' hash, so cached predictions of one condition never serve
    another; its ``info.protocol`` renames the protocol and keeps only the COCO OKS metric.
    """

    def __init__(self, dataset: Dataset, condition: KeypointCondition, prompts: dict[int, PersonBoxes] | None,
                 base_protocol: Any) -> None:
        self.dataset, self.condition, self.prompts = dataset, condition, prompts
        override = ProtocolOverride(
            name=condition.protocol_name(base_protocol.name), version=base_protocol.version,
            metrics=tuple(spec for spec in base_protocol.metrics if spec.metric == "coco_keypoints")
            or (MetricSpec("coco_keypoints"),),
            headline="AP", columns=("AP", "AP50", "AP75", "APm", "APl", "AR"),
            submission=base_protocol.submission,
            reference=f"{base_protocol.reference}; person scores and OKS-NMS as mmpose CocoMetric"
            if condition.name == "detector" else base_protocol.reference,
        )
        self.info = replace(dataset.info, protocol=override,
                            extra={**dataset.info.extra, "keypoint_protocol": condition.record()})

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Sample:
        sample = self.dataset[index]
        if self.condition.name == "bottom-up":
            sample.prompts = None
        elif self.condition.name == "detector":
            assert self.prompts is not None
            sample.prompts = self.prompts.get(int(sample.sample_id), PersonBoxes(np.zeros((0, 4)), np.zeros(0)))
        return sample

    def source_files(self) -> Iterable[Path]:
        return self.dataset.source_files()

    def fingerprint(self) -> str:
        inner = self.dataset.fingerprint()
        return hashlib.sha256(f"{inner}|{self.condition.name}|{self.condition.source_digest}".encode()).hexdigest()[:16]

    def coco_ground_truth(self) -> dict:
        return self.dataset.coco_ground_truth()  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:  # reader-specific helpers (counts, annotation_file, ...)
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


def postprocess_detector(sample: Sample, prediction: KeypointsPrediction, sigmas: Sequence[float],
                         condition: KeypointCondition) -> KeypointsPrediction:
    """mmpose's top-down scoring of one image: rescore by the prompt box scores, then OKS-NMS."""
    prompts = sample.prompts
    count = len(prediction.keypoints)
    box_scores = np.asarray(prompts.scores if prompts is not None else np.ones(count), dtype=np.float64)
    if len(box_scores) != count:
        raise BenchError(f"sample {sample.sample_id}: a top-down model returned {count} people for "
                         f"{len(box_scores)} person boxes")
    keypoints = np.asarray(prediction.keypoints, dtype=np.float64)
    scores = rescore(box_scores, keypoints[..., 2], condition.keypoint_score_threshold)
    areas = crop_areas(prompts.boxes if prompts is not None else prediction.boxes)
    keep = oks_nms(keypoints, scores, areas, sigmas, condition.nms_threshold)
    return KeypointsPrediction(keypoints=keypoints[keep].reshape(-1, *keypoints.shape[1:]) if count else keypoints,
                               scores=scores[keep], boxes=np.asarray(prediction.boxes, np.float64).reshape(-1, 4)[keep])


def wrap_adapter(adapter: Any, condition: KeypointCondition, sigmas: Sequence[float]) -> Any:
    """``adapter`` as it runs under ``condition``: refused when it cannot, post-processed under ``detector``."""
    from harness.core.adapter import Adapter

    if not accepts(type(adapter), condition):
        kind = "a bottom-up model (it ignores person boxes)" if getattr(adapter, "bottom_up", False) else \
            "a top-down model (it needs person boxes)"
        raise BenchError(f"model {adapter.name!r} is {kind}; it cannot run under --protocol {condition.name}")
    if condition.name != "detector":
        return adapter

    class DetectorProtocol(Adapter):
        """The wrapped model, then mmpose's rescoring and OKS-NMS; fingerprinted with the condition."""

        task = adapter.task
        needs_images = getattr(adapter, "needs_images", True)
        batch_invariant = getattr(adapter, "batch_invariant", False)

        def __init__(self) -> None:
            super().__init__(adapter.name, checkpoint=adapter.checkpoint, device=adapter.device,
                             trust_checkpoint=adapter.trust_checkpoint, options=adapter.options)
            self.inner = adapter

        def info(self):
            return self.inner.info()

        def weights_file(self):
            return self.inner.weights_file()

        def check_compatible(self, dataset) -> None:
            self.inner.check_compatible(dataset)

        def fingerprint(self) -> str:
            tag = f"{self.inner.fingerprint()}|{condition.name}|{condition.keypoint_score_threshold}|" \
                  f"{condition.nms_threshold}|{CROP_ASPECT}|{CROP_PADDING}|{file_digest(Path(__file__))}"
            return hashlib.sha256(tag.encode()).hexdigest()[:16]

        def torch_module(self):
            return self.inner.torch_module()

        def predict(self, samples):
            predictions = self.inner.predict(samples)
            return [postprocess_detector(sample, prediction, sigmas, condition)
                    for sample, prediction in zip(samples, predictions)]

    # the prediction cache hashes the code of the adapter's package: the wrapped model's, not the harness's
    DetectorProtocol.__module__ = type(adapter).__module__
    return DetectorProtocol()


# ------------------------------------------------------------------------------------------- one bench run
def boxes_from_model(model: Any, dataset: Dataset) -> dict[int, PersonBoxes]:
    """Person boxes from a bench model run over the dataset: a bottom-up keypoints model's people (their boxes
    and instance scores), as a detector would give them."""
    if not getattr(model, "bottom_up", False):
        raise BenchError(f"--person-detector {model.name!r}: give a bottom-up keypoints model (its people's boxes "
                         "and scores are the detections) or a COCO detection results file with --person-boxes")
    model.check_compatible(dataset.info)
    out: dict[int, PersonBoxes] = {}
    for index in range(len(dataset)):
        sample = dataset[index]
        sample.prompts = None
        prediction = model.predict([sample])[0]
        out[int(sample.sample_id)] = PersonBoxes(np.asarray(prediction.boxes, np.float64).reshape(-1, 4),
                                                 np.asarray(prediction.scores, np.float64))
    return out


def condition_run(task: Any, dataset: Dataset, adapters: list[Any], condition: KeypointCondition,
                  explicit_models: bool, build_model: Any = None) -> tuple[Dataset, list[Any]]:
    """The dataset and models of a ``bench run --task keypoints --protocol NAME``.

    Without ``--model``, models that cannot run under the condition are left out (top-down ones under
    ``bottom-up`` and the other way round); a model named explicitly is refused in one line instead.
    ``build_model(name)`` builds the ``--person-detector`` model.
    """
    if task.name != "keypoints":
        raise BenchError(f"--protocol applies to the keypoints task, not {task.name}")
    if dataset.info.protocol is not None and not condition.is_default:
        raise BenchError(f"--protocol {condition.name}: dataset {dataset.info.name!r} is scored with its own "
                         f"protocol {dataset.info.protocol.name!r}, which gives ground-truth boxes")
    if not explicit_models:  # the models that fit the condition and have weights for this dataset's skeleton
        adapters = [adapter for adapter in adapters if accepts(type(adapter), condition)
                    and getattr(adapter, "has_weights_for", lambda info: True)(dataset.info)]
        if not adapters:
            raise BenchError(f"no in-repo keypoints model runs under --protocol {condition.name}")
    if condition.is_default:
        dataset.info.extra["keypoint_protocol"] = condition.record()
        for adapter in adapters:
            wrap_adapter(adapter, condition, dataset.info.sigmas)  # refuses a bottom-up model
        return dataset, adapters
    prompts = None
    if condition.name == "detector":
        if condition.person_boxes is not None:
            digest = file_digest(Path(condition.person_boxes))
            prompts = read_person_boxes(Path(condition.person_boxes), dataset.info.category_ids[0],
                                        [int(dataset[i].sample_id) for i in range(len(dataset))])
        else:
            detector = build_model(condition.person_detector)
            digest = detector.fingerprint()
            prompts = boxes_from_model(detector, dataset)
        condition = replace(condition, source_digest=digest)
    conditioned = ConditionedDataset(dataset, condition, prompts, task.protocol(dataset.info))
    return conditioned, [wrap_adapter(adapter, condition, dataset.info.sigmas) for adapter in adapters]
