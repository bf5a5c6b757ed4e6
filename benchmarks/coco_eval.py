"""Speed of our COCO evaluator against faster-coco-eval (C++) and pycocotools, in the same run, same inputs.

Inputs are generated from a seed (``harness.metrics.coco.synthetic``): a COCO-val-sized box set by default
(5000 images, ~36k ground truths incl. crowds, 100 detections per image = jittered ground truths, wrong
classes and background false positives, scores rounded to 2 decimals so ties abound), a smaller mask set and
a person-keypoint set.  Each evaluator gets its own deep copy (the references write into the dicts) prepared
outside the timed region; the time covers loading the dicts, evaluate, accumulate and summarize.  The stats
of all three must agree to 1e-12, else the script exits non-zero.

    python benchmarks/coco_eval.py                      # bbox 5000 images + segm 500 + keypoints 5000
    python benchmarks/coco_eval.py --images 1000 --skip-pycocotools
"""
from __future__ import annotations

import contextlib
import copy
import io
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import click
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.metrics.coco import evaluate_coco  # noqa: E402
from harness.metrics.coco.synthetic import synthetic_boxes, synthetic_keypoints, synthetic_masks  # noqa: E402


def _reference(module: str, gt: dict, results: list, iou_type: str) -> np.ndarray:
    if module == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval as Eval

        kwargs: dict[str, Any] = {}
    else:
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as Eval

        kwargs = {"print_function": lambda *a, **k: None}
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
        evaluator = Eval(coco_gt, coco_dt, iou_type, **kwargs)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return np.asarray(evaluator.stats, dtype=np.float64)


def _timed(run: Callable[[dict, list], np.ndarray], gt: dict, results: list, repeat: int, copies: bool) -> tuple:
    best, stats = float("inf"), None
    for _ in range(repeat):
        g, r = (copy.deepcopy(gt), copy.deepcopy(results)) if copies else (gt, results)
        start = time.perf_counter()
        stats = run(g, r)
        best = min(best, time.perf_counter() - start)
    return best, stats


def bench(name: str, gt: dict, results: list, iou_type: str, repeat: int, skip_pycocotools: bool) -> bool:
    print(f"\n{name}: {len(gt['images'])} images, {len(gt['annotations'])} ground truths "
          f"({sum(a['iscrowd'] for a in gt['annotations'])} crowd), {len(results)} results")
    rows = [("ours", *_timed(lambda g, r: evaluate_coco(g, r, iou_type).stats, gt, results, repeat, False))]
    rows.append(("faster-coco-eval",
                 *_timed(lambda g, r: _reference("faster", g, r, iou_type), gt, results, repeat, True)))
    if not skip_pycocotools:
        rows.append(("pycocotools", *_timed(lambda g, r: _reference("pycocotools", g, r, iou_type), gt, results, 1,
                                            True)))
    ours_time, ours_stats = rows[0][1], rows[0][2]
    ok = True
    print(f"  {'evaluator':<18}{'seconds':>10}{'x ours':>10}{'max |stats diff|':>20}")
    for label, seconds, stats in rows:
        diff = float(np.max(np.abs(stats - ours_stats)))
        ok &= diff <= 1e-12
        print(f"  {label:<18}{seconds:>10.3f}{seconds / ours_time:>10.2f}{diff:>20.2e}")
    print("  stats:", np.array2string(ours_stats, precision=4, max_line_width=120))
    return ok


@click.command()
@click.option("--images", default=5000, show_default=True, help="images in the box benchmark")
@click.option("--categories", default=80, show_default=True)
@click.option("--dets", default=100, show_default=True, help="detections per image")
@click.option("--mask-images", default=500, show_default=True, help="images in the mask benchmark (0 = skip)")
@click.option("--keypoint-images", default=5000, show_default=True, help="images in the keypoint benchmark (0 = skip)")
@click.option("--seed", default=0, show_default=True)
@click.option("--repeat", default=1, show_default=True, help="best of N for ours and faster-coco-eval")
@click.option("--skip-pycocotools", is_flag=True, help="pycocotools takes about a minute on the box set")
def main(images: int, categories: int, dets: int, mask_images: int, keypoint_images: int, seed: int, repeat: int,
         skip_pycocotools: bool) -> None:
    ok = True
    gt, results = synthetic_boxes(seed, num_images=images, num_categories=categories, dets_per_image=dets)
    ok &= bench("bbox", gt, results, "bbox", repeat, skip_pycocotools)
    if mask_images:
        gt, results = synthetic_masks(seed, num_images=mask_images, num_categories=20, dets_per_image=50)
        ok &= bench("segm", gt, results, "segm", repeat, skip_pycocotools)
    if keypoint_images:
        gt, results = synthetic_keypoints(seed, num_images=keypoint_images, dets_per_image=20)
        ok &= bench("keypoints", gt, results, "keypoints", repeat, skip_pycocotools)
    if not ok:
        raise SystemExit("stats differ by more than 1e-12")
    print("\nall stats agree to 1e-12")


if __name__ == "__main__":
    main()
