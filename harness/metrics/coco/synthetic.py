"""Seeded synthetic COCO ground truth and results, for the speed benchmark and the differential tests.

The generator aims at the statistics that stress an evaluator rather than at pretty pictures: objects of every
size around the small/medium/large borders, crowd regions, duplicated boxes (IoU ties between ground truths),
scores rounded so that ties across images happen, wrong-class and background false positives, images without
ground truth and images without detections, categories that never occur.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from harness.labels.keypoints import COCO_SIGMAS

_NUM_KEYPOINTS = len(COCO_SIGMAS)


def _categories(num_categories: int) -> list[dict[str, Any]]:
    # Non-contiguous ids like COCO's (1..90 with gaps), so code that confuses ids and indices fails.
    ids = [i + 1 + i // 5 for i in range(num_categories)]
    return [{"id": cid, "name": f"class_{cid}", "supercategory": "thing"} for cid in ids]


def _random_boxes(rng: np.random.Generator, n: int, width: int, height: int) -> np.ndarray:
    """Boxes with log-uniform areas from 2x2 to most of the image, inside the image."""
    side = np.exp(rng.uniform(np.log(2.0), np.log(0.9 * min(width, height)), n))
    aspect = np.exp(rng.uniform(np.log(0.33), np.log(3.0), n))
    w = np.minimum(side * np.sqrt(aspect), width - 1.0)
    h = np.minimum(side / np.sqrt(aspect), height - 1.0)
    x = rng.uniform(0, width - w)
    y = rng.uniform(0, height - h)
    return np.round(np.stack([x, y, w, h], axis=1), 2)


def _jitter(rng: np.random.Generator, boxes: np.ndarray, scale: float | np.ndarray) -> np.ndarray:
    w, h = boxes[:, 2:3], boxes[:, 3:4]
    noise = rng.normal(0.0, scale, boxes.shape) * np.concatenate([w, h, w, h], axis=1)
    out = boxes + noise
    out[:, 2:] = np.maximum(out[:, 2:], 0.5)
    return np.round(out, 2)


def _scores(rng: np.random.Generator, n: int, quality: np.ndarray | float) -> np.ndarray:
    # two decimals: many exact ties, inside and across images
    return np.round(np.clip(rng.beta(2, 2, n) * 0.6 + 0.4 * quality, 0.01, 1.0), 2)


def synthetic_boxes(
    seed: int,
    num_images: int = 100,
    num_categories: int = 20,
    gt_per_image: float = 7.3,
    dets_per_image: int = 100,
    crowd_fraction: float = 0.01,
    ignore_fraction: float = 0.02,
    duplicate_fraction: float = 0.02,
    empty_image_fraction: float = 0.02,
    undetected_image_fraction: float = 0.02,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A COCO instances dict (bbox only) and a results list of ``dets_per_image`` detections per image."""
    rng = np.random.default_rng(seed)
    categories = _categories(num_categories)
    cat_ids = np.array([c["id"] for c in categories])
    # a long-tailed class frequency (person-like head class), last category never annotated
    weights = 1.0 / np.arange(1, num_categories + 1) ** 1.1
    if num_categories > 1:
        weights[-1] = 0.0
    weights /= weights.sum()
    images, annotations, results = [], [], []
    ann_id = 1
    for image_index in range(num_images):
        image_id = int(image_index * 3 + 1)  # sparse ids
        width, height = int(rng.integers(200, 641)), int(rng.integers(200, 641))
        images.append({"id": image_id, "width": width, "height": height, "file_name": f"{image_id:012d}.jpg"})
        n_gt = 0 if rng.random() < empty_image_fraction else int(rng.poisson(gt_per_image))
        boxes = _random_boxes(rng, n_gt, width, height)
        labels = rng.choice(cat_ids, size=n_gt, p=weights)
        duplicate = rng.random(n_gt) < duplicate_fraction
        boxes = np.concatenate([boxes, boxes[duplicate]])
        labels = np.concatenate([labels, labels[duplicate]])
        crowd = rng.random(len(boxes)) < crowd_fraction
        for box, label, is_crowd in zip(boxes, labels, crowd):
            # the GT area is a mask area, so it differs from w*h and crosses the size borders differently
            area = float(np.round(box[2] * box[3] * rng.uniform(0.4, 1.0), 2))
            ann = {
                "id": ann_id,
                "image_id": image_id,
                "category_id": int(label),
                "bbox": [float(v) for v in box],
                "area": area,
                "iscrowd": int(is_crowd),
            }
            if rng.random() < ignore_fraction:
                ann["ignore"] = 1  # pycocotools overwrites this with iscrowd; it must not matter
            annotations.append(ann)
            ann_id += 1
        if rng.random() < undetected_image_fraction:
            continue
        # true-ish positives: 0-3 jittered copies of each GT, sometimes with the wrong class
        copies = rng.choice([0, 1, 1, 1, 2, 3], size=len(boxes))
        src = np.repeat(np.arange(len(boxes)), copies)
        det_boxes = _jitter(rng, boxes[src], rng.choice([0.02, 0.05, 0.12], size=(len(src), 1)))
        det_labels = labels[src].copy()
        wrong = rng.random(len(src)) < 0.08
        det_labels[wrong] = rng.choice(cat_ids, size=int(wrong.sum()))
        det_scores = _scores(rng, len(src), 1.0)
        n_fp = max(dets_per_image - len(src), 0)
        fp_boxes = _random_boxes(rng, n_fp, width, height)
        fp_labels = rng.choice(cat_ids, size=n_fp, p=weights)
        fp_scores = _scores(rng, n_fp, 0.0)
        all_boxes = np.concatenate([det_boxes, fp_boxes])[:dets_per_image]
        all_labels = np.concatenate([det_labels, fp_labels])[:dets_per_image]
        all_scores = np.concatenate([det_scores, fp_scores])[:dets_per_image]
        order = rng.permutation(len(all_boxes))
        for i in order:
            results.append(
                {
                    "image_id": image_id,
                    "category_id": int(all_labels[i]),
                    "bbox": [float(v) for v in all_boxes[i]],
                    "score": float(all_scores[i]),
                }
            )
    gt = {"images": images, "annotations": annotations, "categories": categories}
    return gt, results


def _polygon_in_box(rng: np.random.Generator, box: np.ndarray, roughness: float, vertices: int = 12) -> list[float]:
    """A roughly elliptical polygon filling the box; detections use a smoother one, so mask IoU follows box IoU."""
    x, y, w, h = box
    angles = np.linspace(0, 2 * np.pi, vertices, endpoint=False) + rng.uniform(0, 0.3)
    radius = 1.0 - rng.uniform(0, roughness, vertices)
    px = x + w / 2 + np.cos(angles) * radius * w / 2
    py = y + h / 2 + np.sin(angles) * radius * h / 2
    return [float(v) for v in np.round(np.stack([px, py], axis=1).reshape(-1), 2)]


def synthetic_masks(
    seed: int, num_images: int = 50, num_categories: int = 10, dets_per_image: int = 30, keep_result_bbox: bool = False
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Instances with polygon masks (crowds as uncompressed RLE) and RLE mask results.

    ``keep_result_bbox`` keeps the ``bbox`` field in the results, which (as in pycocotools) makes the result
    area w*h instead of the mask area.
    """
    from pycocotools import mask as mask_utils

    gt, box_results = synthetic_boxes(
        seed, num_images=num_images, num_categories=num_categories, gt_per_image=5, dets_per_image=dets_per_image
    )
    rng = np.random.default_rng(seed + 1)
    sizes = {image["id"]: (image["height"], image["width"]) for image in gt["images"]}
    for ann in gt["annotations"]:
        h, w = sizes[ann["image_id"]]
        polygon = _polygon_in_box(rng, np.array(ann["bbox"]), roughness=0.3)
        if ann["iscrowd"]:
            rle = mask_utils.merge(mask_utils.frPyObjects([polygon], h, w))
            mask = mask_utils.decode(rle)
            flat = mask.reshape(-1, order="F")
            change = np.flatnonzero(np.diff(flat)) + 1
            bounds = np.concatenate([[0], change, [flat.size]])
            counts = np.diff(bounds).tolist()
            if flat[0] == 1:
                counts = [0] + counts
            ann["segmentation"] = {"counts": counts, "size": [h, w]}
        else:
            ann["segmentation"] = [polygon]
    results = []
    for res in box_results:
        h, w = sizes[res["image_id"]]
        polygon = _polygon_in_box(rng, np.array(res["bbox"]), roughness=0.1)
        rle = mask_utils.merge(mask_utils.frPyObjects([polygon], h, w))
        rle["counts"] = rle["counts"].decode("ascii")
        out = {"image_id": res["image_id"], "category_id": res["category_id"], "segmentation": rle, "score": res["score"]}
        if keep_result_bbox:
            out["bbox"] = res["bbox"]
        results.append(out)
    return gt, results


def synthetic_keypoints(
    seed: int,
    num_images: int = 100,
    people_per_image: float = 3.0,
    dets_per_image: int = 12,
    num_keypoints: int = _NUM_KEYPOINTS,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Person keypoints: GT with v in {0, 1, 2}, some people with no labelled keypoint, crowds; results are
    jittered GT poses (score ties included) plus random poses."""
    rng = np.random.default_rng(seed)
    categories = [{"id": 1, "name": "person", "keypoints": [f"k{i}" for i in range(num_keypoints)], "skeleton": []}]
    images, annotations, results = [], [], []
    ann_id = 1
    for image_index in range(num_images):
        image_id = int(image_index + 1)
        width, height = int(rng.integers(200, 641)), int(rng.integers(200, 641))
        images.append({"id": image_id, "width": width, "height": height, "file_name": f"{image_id:012d}.jpg"})
        n = int(rng.poisson(people_per_image))
        boxes = _random_boxes(rng, n, width, height)
        poses = []
        for box in boxes:
            x, y, w, h = box
            kx = np.round(rng.uniform(x, x + w, num_keypoints), 1)
            ky = np.round(rng.uniform(y, y + h, num_keypoints), 1)
            visibility = rng.choice([0, 1, 2], size=num_keypoints, p=[0.3, 0.2, 0.5])
            if rng.random() < 0.15:
                visibility[:] = 0
            truth = np.stack([kx, ky], axis=1)
            kx, ky = kx.copy(), ky.copy()
            kx[visibility == 0] = 0
            ky[visibility == 0] = 0
            is_crowd = rng.random() < 0.03
            keypoints = np.stack([kx, ky, visibility], axis=1)
            annotations.append(
                {
                    "id": ann_id,
                    "image_id": image_id,
                    "category_id": 1,
                    "bbox": [float(v) for v in box],
                    "area": float(np.round(w * h * rng.uniform(0.4, 1.0), 2)),
                    "iscrowd": int(is_crowd),
                    "num_keypoints": int(np.count_nonzero(visibility)),
                    "keypoints": [float(v) if i % 3 < 2 else int(v) for i, v in enumerate(keypoints.reshape(-1))],
                }
            )
            ann_id += 1
            poses.append((box, truth))
        dets = []
        for box, truth in poses:
            for _ in range(int(rng.choice([0, 1, 1, 2]))):
                scale = rng.choice([0.005, 0.02, 0.05]) * np.sqrt(box[2] * box[3])
                dets.append(truth + rng.normal(0, scale, truth.shape))
        while len(dets) < dets_per_image and rng.random() < 0.8:
            box = _random_boxes(rng, 1, width, height)[0]
            dets.append(np.stack([rng.uniform(box[0], box[0] + box[2], num_keypoints),
                                  rng.uniform(box[1], box[1] + box[3], num_keypoints)], 1))
        for pose in dets[: dets_per_image + 5]:  # sometimes more than maxDets
            confidence = rng.uniform(0, 1, (num_keypoints, 1))
            flat = np.round(np.concatenate([pose, confidence], axis=1), 2).reshape(-1)
            results.append(
                {"image_id": image_id, "category_id": 1, "keypoints": [float(v) for v in flat],
                 "score": float(np.round(rng.uniform(0.2, 1.0), 1))}
            )
    return {"images": images, "annotations": annotations, "categories": categories}, results


def resampled_files(gt: dict[str, Any], results: list[dict[str, Any]], counts: np.ndarray
                    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """What one bootstrap resample means, as COCO files: image i (by sorted id) ``counts[i]`` times, the copies side by
    side, images and annotations renumbered.  Evaluating these files is the slow reference that the resampled
    intervals must equal bit for bit (tests and ``benchmarks/coco_bootstrap.py --check``)."""
    images = sorted(gt["images"], key=lambda image: image["id"])
    anns: dict[Any, list[dict[str, Any]]] = {}
    dets: dict[Any, list[dict[str, Any]]] = {}
    for ann in gt["annotations"]:
        anns.setdefault(ann["image_id"], []).append(ann)
    for det in results:
        dets.setdefault(det["image_id"], []).append(det)
    out_images: list[dict[str, Any]] = []
    out_anns: list[dict[str, Any]] = []
    out_results: list[dict[str, Any]] = []
    for image, count in zip(images, counts):
        for _ in range(int(count)):
            new_id = len(out_images) + 1
            out_images.append({**image, "id": new_id})
            out_anns += [{**a, "image_id": new_id, "id": len(out_anns) + k + 1}
                         for k, a in enumerate(anns.get(image["id"], []))]
            out_results += [{**d, "image_id": new_id} for d in dets.get(image["id"], [])]
    return {**gt, "images": out_images, "annotations": out_anns}, out_results
