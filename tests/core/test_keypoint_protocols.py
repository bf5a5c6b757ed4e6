"""Keypoint protocols: ``detector`` reproduces mmpose's CocoMetric on mmpose's own test set and detection file;
conditions are recorded and refused where they do not apply."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from harness.core.adapter import Adapter, AdapterInfo
from harness.run.bench_run import get_task
from harness.datasets.coco_keypoints import CocoKeypoints
from harness.core.errors import BenchError, DataError
from harness.labels.keypoints import COCO_KEYPOINT_NAMES, COCO_SIGMAS
from harness.core.fingerprint import file_digest
from harness.run.keypoint_protocols import (ConditionedDataset, KeypointCondition, oks_nms,
                                        read_person_boxes, wrap_adapter)
from harness.run.runner import evaluate
from harness.core.structures import KeypointsPrediction

DATA = Path(__file__).resolve().parents[1] / "data" / "coco-keypoints"
GT = DATA / "test_coco.json"
DETECTIONS = DATA / "test_coco_det_AP_H_56.json"
SUMMARY = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
MMPOSE_NAMES = ("AP", "AP .5", "AP .75", "AP (M)", "AP (L)", "AR", "AR .5", "AR .75", "AR (M)", "AR (L)")


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1, y1 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[0] + box[2], boxes[:, 0] + boxes[:, 2])
    y2 = np.minimum(box[1] + box[3], boxes[:, 1] + boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    return inter / (box[2] * box[3] + boxes[:, 2] * boxes[:, 3] - inter)


def jittered_poses(seed: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Per detection (file order): (image id, (17, 2) keypoints, (17,) scores).  A box that overlaps a labelled
    person gets that person's joints moved by noise proportional to its size; others get random joints in the
    box.  Joint scores are uniform in [0, 1], so the 0.2 threshold of the rescoring bites."""
    rng = np.random.default_rng(seed)
    gt = json.loads(GT.read_text())
    detections = json.loads(DETECTIONS.read_text())
    people: dict[int, list[dict]] = {}
    for ann in gt["annotations"]:
        if not ann["iscrowd"] and ann["num_keypoints"] > 0:
            people.setdefault(ann["image_id"], []).append(ann)
    out = []
    for det in detections:
        box = np.asarray(det["bbox"], np.float64)
        candidates = people.get(det["image_id"], [])
        overlaps = _iou(box, np.asarray([a["bbox"] for a in candidates])) if candidates else np.zeros(0)
        if len(overlaps) and overlaps.max() > 0.3:
            person = candidates[int(overlaps.argmax())]
            joints = np.asarray(person["keypoints"], np.float64).reshape(17, 3)[:, :2]
            size = np.sqrt(person["area"])
            joints = joints + rng.normal(0, 0.06, (17, 2)) * size
            missing = np.asarray(person["keypoints"]).reshape(17, 3)[:, 2] == 0
            joints[missing] = box[:2] + rng.uniform(0, 1, (int(missing.sum()), 2)) * box[2:]
        else:
            joints = box[:2] + rng.uniform(0, 1, (17, 2)) * box[2:]
        out.append((det["image_id"], joints, rng.uniform(0, 1, 17)))
    return out


def mmpose_scales(box: np.ndarray) -> np.ndarray:
    """mmpose's top-down bbox scale: (w, h) x 1.25 padding, then widened or heightened to 192/256."""
    w, h = box[2] * 1.25, box[3] * 1.25
    aspect = 192 / 256
    return np.array([w, w / aspect]) if w > h * aspect else np.array([h * aspect, h])


def mmpose_coco_metric(poses) -> dict[str, float]:
    """The oracle: mmpose.evaluation.CocoMetric with its defaults, fed one top-down instance per detection."""
    from mmpose.evaluation import CocoMetric

    detections = json.loads(DETECTIONS.read_text())
    metric = CocoMetric(ann_file=str(GT))
    metric.dataset_meta = {"num_keypoints": 17, "sigmas": np.asarray(COCO_SIGMAS)}
    samples = []
    for index, (det, (image_id, joints, scores)) in enumerate(zip(detections, poses)):
        samples.append({
            "id": index, "img_id": image_id, "category_id": 1, "ori_shape": (0, 0),
            "pred_instances": {"keypoints": joints[None], "keypoint_scores": scores[None]},
            "gt_instances": {"bbox_scores": np.array([det["score"]]),
                             "bbox_scales": mmpose_scales(np.asarray(det["bbox"], np.float64))[None]},
        })
    with contextlib.redirect_stdout(io.StringIO()):
        metric.process([], samples)
        numbers = metric.compute_metrics(metric.results)
    return {name: float(numbers[key]) for name, key in zip(SUMMARY, MMPOSE_NAMES)}


class FilePoses(Adapter):
    """A top-down "model" that returns the jittered pose of each prompt box: an image's boxes arrive in the
    file's order (the file has two identical boxes in one image, so coordinates would not do)."""

    task = "keypoints"
    batch_invariant = True
    needs_images = False

    def __init__(self, poses, detections) -> None:
        super().__init__("file-poses")
        self.by_image: dict[int, list] = {}
        for det, (_, joints, scores) in zip(detections, poses):
            self.by_image.setdefault(det["image_id"], []).append((det["bbox"][:4], joints, scores))

    def info(self) -> AdapterInfo:
        return AdapterInfo(name=self.name, task="keypoints", keypoint_names=list(COCO_KEYPOINT_NAMES))

    def predict(self, samples):
        out = []
        for sample in samples:
            people = self.by_image.get(sample.sample_id, [])
            assert [p[0] for p in people] == sample.prompts.boxes.tolist()
            found = [(joints, scores) for _, joints, scores in people]
            keypoints = np.array([np.concatenate([j, s[:, None]], axis=1) for j, s in found]).reshape(-1, 17, 3)
            out.append(KeypointsPrediction(keypoints=keypoints, scores=keypoints[..., 2].mean(axis=1) if found
                                           else np.zeros(0), boxes=sample.prompts.boxes))
        return out


def bench_detector_protocol(poses) -> dict[str, float]:
    task = get_task("keypoints")
    dataset = CocoKeypoints(GT, DATA, name="coco", split="val")
    condition = KeypointCondition("detector", person_boxes=DETECTIONS, source_digest=file_digest(DETECTIONS))
    boxes = read_person_boxes(DETECTIONS, 1, [image["id"] for image in dataset.index.images])
    conditioned = ConditionedDataset(dataset, condition, boxes, task.protocol(dataset.info))
    adapter = wrap_adapter(FilePoses(poses, json.loads(DETECTIONS.read_text())), condition, dataset.info.sigmas)
    adapter.check_compatible(conditioned.info)
    evaluation = evaluate(task, conditioned, adapter, indices=range(len(conditioned)), batch_size=3)
    metrics = evaluation.result.metrics
    assert set(metrics) >= {"AP", "AR"} and "PCK@0.2" not in metrics  # PCK pairs people one-to-one: GT boxes only
    return {name: float(metrics[name]) for name in SUMMARY}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_detector_protocol_reproduces_mmpose_coco_metric(seed):
    pytest.importorskip("mmpose")
    poses = jittered_poses(seed)
    oracle = mmpose_coco_metric(poses)
    ours = bench_detector_protocol(poses)
    assert 0.2 < oracle["AP"] < 0.9, oracle
    for name in SUMMARY:
        assert ours[name] == pytest.approx(oracle[name], abs=1e-12), (name, ours, oracle)


def test_without_oks_nms_and_rescoring_the_numbers_differ():
    """The oracle comparison has teeth: the same poses on the same boxes, scored without mmpose's rescoring and
    OKS-NMS, give other numbers."""
    pytest.importorskip("mmpose")
    poses = jittered_poses(0)
    task = get_task("keypoints")
    dataset = CocoKeypoints(GT, DATA, name="coco", split="val")
    condition = KeypointCondition("detector", person_boxes=DETECTIONS, source_digest=file_digest(DETECTIONS))
    boxes = read_person_boxes(DETECTIONS, 1, [image["id"] for image in dataset.index.images])
    conditioned = ConditionedDataset(dataset, condition, boxes, task.protocol(dataset.info))
    plain = FilePoses(poses, json.loads(DETECTIONS.read_text()))
    evaluation = evaluate(task, conditioned, plain, indices=range(len(conditioned)), batch_size=4)
    assert abs(evaluation.result.metrics["AP"] - mmpose_coco_metric(poses)["AP"]) > 1e-3


def test_oks_nms_on_hand_built_people():
    """Two identical people: the lower-scored one goes (OKS 1 > 0.9); a far-away person stays."""
    person = np.stack([np.linspace(0, 40, 17), np.linspace(0, 80, 17)], axis=1)
    keypoints = np.stack([person, person + 0.01, person + 500.0])
    keep = oks_nms(keypoints, np.array([0.5, 0.9, 0.7]), np.full(3, 3000.0), COCO_SIGMAS)
    assert keep.tolist() == [1, 2]


def test_conditions_are_validated_and_recorded(tmp_path):
    with pytest.raises(BenchError, match="needs exactly one"):
        KeypointCondition("detector")
    with pytest.raises(BenchError, match="unknown keypoint protocol"):
        KeypointCondition("top-down")
    with pytest.raises(BenchError, match="apply to --protocol detector"):
        KeypointCondition("bottom-up", person_boxes=DETECTIONS)
    bad = tmp_path / "boxes.json"
    bad.write_text(json.dumps([{"image_id": 999, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}]))
    with pytest.raises(DataError, match="image_id 999 is not in the dataset"):
        read_person_boxes(bad, 1, [785])
    condition = KeypointCondition("detector", person_boxes=DETECTIONS, source_digest=file_digest(DETECTIONS))
    assert condition.protocol_name("coco-keypoints").startswith("coco-keypoints/detector:test_coco_det_AP_H_56.json@")
    assert condition.record()["nms"] == "oks-nms 0.9"
