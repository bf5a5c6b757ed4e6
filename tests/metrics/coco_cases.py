"""Small seeded COCO cases that hit the evaluator's corner cases, for differential and property tests.

Boxes live on an integer grid so that IoUs land exactly on thresholds (a half-height copy has IoU 0.5) and
areas exactly on the small/medium/large borders (32x32, 96x96); duplicated ground truths make IoU ties;
scores come from a handful of values so ties happen inside and across images; crowds, ``ignore`` fields
(which must have no effect), a ground truth with id 0, categories without ground truth, images without
ground truth or detections, more detections than maxDets, use_cats=False and other maxDets are all drawn.
"""
from __future__ import annotations

from typing import Any

import numpy as np

TIE_SCORES = (0.1, 0.3, 0.5, 0.7, 0.9)


def _scores(rng: np.random.Generator, n: int) -> list[float]:
    if rng.random() < 0.5:
        return [float(s) for s in rng.choice(TIE_SCORES, n)]
    return [float(s) for s in np.round(rng.random(n), 2)]


def _grid_box(rng: np.random.Generator, size: int) -> list[float]:
    choice = rng.random()
    borders = [v for v in (32, 96, 31, 33) if v < size]
    if choice < 0.15:
        w = h = float(rng.choice(borders))
    else:
        w, h = float(rng.integers(1, size // 2)), float(rng.integers(1, size // 2))
    x, y = float(rng.integers(0, size - int(w))), float(rng.integers(0, size - int(h)))
    if rng.random() < 0.1:
        x += 0.5
    return [x, y, w, h]


def _gt_area(rng: np.random.Generator, box: list[float]) -> float:
    choice = rng.random()
    if choice < 0.5:
        return box[2] * box[3]
    if choice < 0.65:
        return float(rng.choice([1024, 9216, 1023.5, 9216.5]))
    return float(np.round(box[2] * box[3] * rng.uniform(0.3, 1.2), 2))


def _detection_near(rng: np.random.Generator, box: list[float]) -> list[float]:
    x, y, w, h = box
    kind = rng.random()
    if kind < 0.3:
        return [x, y, w, h]
    if kind < 0.45:
        return [x, y, w, h / 2]  # IoU exactly 0.5
    if kind < 0.55:
        return [x, y, w * 0.75, h]  # IoU exactly 0.75
    shift = rng.integers(-3, 4, 4)
    return [x + shift[0], y + shift[1], max(w + shift[2], 1.0), max(h + shift[3], 1.0)]


def random_box_case(seed: int, size: int = 200) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """(gt, results, evaluate_coco keyword options) for boxes."""
    rng = np.random.default_rng(seed)
    num_images = int(rng.integers(1, 7))
    cat_ids = sorted(int(c) for c in rng.choice(np.arange(1, 30), int(rng.integers(1, 5)), replace=False))
    categories = [{"id": c, "name": f"cat{c}"} for c in cat_ids]
    used_cats = cat_ids[: max(1, len(cat_ids) - int(rng.integers(0, 2)))]  # maybe one category without GT
    image_ids = [int(i) for i in rng.choice(np.arange(1, 1000), num_images, replace=False)]
    images = [{"id": i, "width": size, "height": size, "file_name": f"{i}.jpg"} for i in image_ids]
    ann_ids = iter(int(i) for i in rng.choice(np.arange(1, 100000), 1000, replace=False))
    zero_id_used = rng.random() >= 0.1
    annotations, results = [], []
    for image_id in image_ids:
        boxes = []
        for _ in range(0 if rng.random() < 0.15 else int(rng.poisson(3))):
            box = _grid_box(rng, size)
            cat = int(rng.choice(used_cats))
            crowd = rng.random() < 0.15
            if crowd:
                box = [box[0], box[1], min(box[2] * 2, size - box[0]), min(box[3] * 2, size - box[1])]
            copies = 2 if rng.random() < 0.15 else 1
            for _ in range(copies):
                ann_id = 0 if not zero_id_used else next(ann_ids)
                zero_id_used = True
                ann = {"id": ann_id, "image_id": image_id, "category_id": cat, "bbox": list(box),
                       "area": _gt_area(rng, box), "iscrowd": int(crowd)}
                if rng.random() < 0.2:
                    ann["ignore"] = int(rng.integers(0, 2))
                annotations.append(ann)
                boxes.append((box, cat))
        if rng.random() < 0.15:
            continue  # an image without detections
        dets = []
        for box, cat in boxes:
            for _ in range(int(rng.choice([0, 1, 1, 2, 3]))):
                det_cat = cat if rng.random() > 0.1 else int(rng.choice(cat_ids))
                dets.append((_detection_near(rng, box), det_cat))
        for _ in range(int(rng.poisson(3)) + (int(rng.integers(10, 25)) if rng.random() < 0.2 else 0)):
            dets.append((_grid_box(rng, size), int(rng.choice(cat_ids))))
        for (box, cat), score in zip(dets, _scores(rng, len(dets))):
            results.append({"image_id": image_id, "category_id": cat, "bbox": box, "score": score})
    if not results:  # pycocotools cannot load an empty results list
        results.append({"image_id": image_ids[0], "category_id": cat_ids[0], "bbox": _grid_box(rng, size), "score": 0.5})
    order = rng.permutation(len(results))
    results = [results[i] for i in order]
    options: dict[str, Any] = {}
    draw = rng.random()
    if draw < 0.15:
        options["max_dets"] = (1, 2, 3)
    elif draw < 0.3:
        options["max_dets"] = (100, 300, 1000)
    elif draw < 0.4:
        options["max_dets"] = (1, 5, 10)
    if rng.random() < 0.15:
        options["use_cats"] = False
    return {"images": images, "annotations": annotations, "categories": categories}, results, options


def _rectangle_polygon(box: list[float]) -> list[float]:
    x, y, w, h = box
    return [x, y, x + w, y, x + w, y + h, x, y + h]


def _uncompressed_rle(mask: np.ndarray) -> dict[str, Any]:
    flat = mask.reshape(-1, order="F").astype(np.uint8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0] == 1:
        counts = [0] + counts
    return {"counts": counts, "size": list(mask.shape)}


def random_mask_case(seed: int) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """Masks on small images: rectangle and blob polygons, crowd regions as uncompressed RLE, RLE results."""
    from pycocotools import mask as mask_utils

    gt, box_results, options = random_box_case(seed, size=60)
    rng = np.random.default_rng(seed + 7)
    for ann in gt["annotations"]:
        x, y, w, h = ann["bbox"]
        if ann["iscrowd"]:
            mask = np.zeros((60, 60), dtype=np.uint8)
            mask[int(y): int(y + h), int(x): int(x + w)] = rng.random((len(range(int(y), int(y + h))),
                                                                      len(range(int(x), int(x + w))))) < 0.7
            ann["segmentation"] = _uncompressed_rle(mask)
        elif rng.random() < 0.7:
            ann["segmentation"] = [_rectangle_polygon(ann["bbox"])]
        else:
            ann["segmentation"] = [_rectangle_polygon([x, y, w / 2, h]), _rectangle_polygon([x + w / 2, y, w / 2, h / 2])]
    keep_bbox = rng.random() < 0.3  # results with bbox: pycocotools then takes w*h as their area
    results = []
    for res in box_results:
        rle = mask_utils.merge(mask_utils.frPyObjects([_rectangle_polygon(res["bbox"])], 60, 60))
        rle["counts"] = rle["counts"].decode("ascii")
        out = {"image_id": res["image_id"], "category_id": res["category_id"], "segmentation": rle,
               "score": res["score"]}
        if keep_bbox:
            out["bbox"] = res["bbox"]
        results.append(out)
    return gt, results, options


CUSTOM_SIGMAS = (0.05, 0.07, 0.1, 0.03)


def random_keypoint_case(
    seed: int, xtcocotools_compatible: bool = False
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """People with v in {0, 1, 2}, people without labelled keypoints (ignored via num_keypoints == 0, or not
    ignored when num_keypoints disagrees, which exercises OKS's doubled-box fallback), crowds, area borders.

    ``xtcocotools_compatible`` avoids what xtcocotools deliberately changes (it ignores a GT by its count of
    v > 0 rather than ``num_keypoints``, fixes the GT-id-0 quirk, drops results whose confidences are all 0).
    """
    rng = np.random.default_rng(seed)
    custom = rng.random() < 0.4
    k = len(CUSTOM_SIGMAS) if custom else 17
    options: dict[str, Any] = {"sigmas": list(CUSTOM_SIGMAS)} if custom else {}
    draw = rng.random()
    if draw < 0.15:
        options["max_dets"] = (3,)
    elif draw < 0.2:
        options["max_dets"] = (10,)  # the summary reads maxDets=20: everything is -1, as in pycocotools
    size = 300
    num_images = int(rng.integers(1, 6))
    image_ids = [int(i) for i in rng.choice(np.arange(1, 500), num_images, replace=False)]
    images = [{"id": i, "width": size, "height": size} for i in image_ids]
    categories = [{"id": 1, "name": "person", "keypoints": [f"k{j}" for j in range(k)], "skeleton": []}]
    annotations, results = [], []
    ann_id = 1 if xtcocotools_compatible else int(rng.integers(0, 2))  # sometimes starts at id 0
    with_bbox = rng.random() < 0.25
    for image_id in image_ids:
        people = []
        for _ in range(0 if rng.random() < 0.15 else int(rng.poisson(2.5))):
            box = _grid_box(rng, size)
            x, y, w, h = box
            pts = np.stack([rng.uniform(x, x + w, k), rng.uniform(y, y + h, k)], axis=1).round(1)
            v = rng.choice([0, 1, 2], size=k, p=[0.3, 0.3, 0.4])
            if rng.random() < 0.2:
                v[:] = 0
            num_keypoints = int(np.count_nonzero(v))
            if num_keypoints == 0 and rng.random() < 0.5 and not xtcocotools_compatible:
                num_keypoints = 3  # inconsistent on purpose: not ignored, scored against the doubled box
            coords = np.where(v[:, None] > 0, pts, 0)
            flat = np.concatenate([coords, v[:, None]], axis=1).reshape(-1)
            annotations.append({
                "id": ann_id, "image_id": image_id, "category_id": 1, "bbox": box, "area": _gt_area(rng, box),
                "iscrowd": int(rng.random() < 0.1), "num_keypoints": num_keypoints,
                "keypoints": [float(c) if j % 3 < 2 else int(c) for j, c in enumerate(flat)],
            })
            ann_id += 1
            people.append((box, pts))
        if rng.random() < 0.15:
            continue
        poses = []
        for box, pts in people:
            for _ in range(int(rng.choice([0, 1, 1, 2]))):
                noise = rng.choice([0.0, 1.0, 4.0, 15.0])
                poses.append((pts + rng.normal(0, noise, pts.shape), box))
        for _ in range(int(rng.poisson(1.5)) + (int(rng.integers(15, 25)) if rng.random() < 0.15 else 0)):
            box = _grid_box(rng, size)
            pts = np.stack([rng.uniform(box[0], box[0] + box[2], k), rng.uniform(box[1], box[1] + box[3], k)], 1)
            poses.append((pts, box))
        for (pts, box), score in zip(poses, _scores(rng, len(poses))):
            confidence = rng.uniform(0.01, 1.0, (k, 1)).round(2)
            flat = np.concatenate([pts.round(2), confidence], axis=1).reshape(-1)
            record = {"image_id": image_id, "category_id": 1, "keypoints": [float(c) for c in flat], "score": score}
            if with_bbox:
                record["bbox"] = box
            results.append(record)
    if not results:
        flat = [float(c) for c in rng.uniform(0, size, (k, 3)).round(1).reshape(-1)]
        results.append({"image_id": image_ids[0], "category_id": 1, "keypoints": flat, "score": 0.5})
        if with_bbox:
            results[0]["bbox"] = _grid_box(rng, size)
    order = rng.permutation(len(results))
    return {"images": images, "annotations": annotations, "categories": categories}, [results[i] for i in order], options


def case_features(gt: dict[str, Any], options: dict[str, Any]) -> dict[str, bool]:
    """Features where faster-coco-eval departs from pycocotools, so its comparisons can be skipped."""
    return {
        "gt_id_zero": any(a["id"] == 0 for a in gt["annotations"]),
        "custom_max_dets": "max_dets" in options and tuple(options["max_dets"]) not in ((1, 10, 100), (20,)),
    }
