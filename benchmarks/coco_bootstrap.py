"""Cost of a COCO bootstrap interval against one COCO evaluation, on the COCO-5k-sized synthetic sets.

Issue 10 asks that an interval of 200 resamples at COCO size take at most twice one evaluation.  Both timings
start from the parsed COCO dicts (the JSON files of ``benchmarks/coco_eval.py``, generated there on first use
and cached), so they measure the same work a ``bench run`` does after inference:

* one evaluation: ``evaluate_coco(gt, results, iou_type)`` (tables, overlaps, matching, accumulation, summary);
* the interval: ``resampled_stats(gt, results, iou_type, counts)`` with ``resample_counts(images, R, seed)``,
  i.e. what ``CocoMetric.resampled`` runs (tables, overlaps and matching once, then R weighted accumulations).

Each is timed ``--rounds`` times, alternating, and the median is printed with the load average (the machine
may be shared).  ``--check N`` also compares the first N resamples with the slow path (a full ``evaluate_coco``
of each resampled image list) and fails unless they are equal bit for bit.

    python benchmarks/coco_bootstrap.py                          # bbox-5k, 200 resamples, 3 rounds
    python benchmarks/coco_bootstrap.py --sets bbox-5k,keypoints-5k --resamples 200 --rounds 1 --check 2
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402

from coco_eval import DATASETS, DEFAULT_CACHE, materialise  # noqa: E402
from harness.core.metric import resample_counts  # noqa: E402
from harness.metrics.coco import evaluate_coco  # noqa: E402
from harness.metrics.coco.evaluator import resampled_stats  # noqa: E402
from harness.metrics.coco.synthetic import resampled_files  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="bbox-5k", help="comma-separated sets of benchmarks/coco_eval.py")
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="data seed (the resampling seed is 1)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--check", type=int, default=0, help="compare this many resamples with the slow path")
    args = parser.parse_args(argv)
    for name in [s for s in args.sets.split(",") if s]:
        data = DATASETS[name]
        gt_path, pred_path = materialise(data, args.cache_dir, args.seed)
        gt = json.loads(gt_path.read_text())
        results = json.loads(pred_path.read_text())
        # a lowered maxDets for keypoints, as benchmarks/coco_eval.py evaluates them
        options = {"max_dets": (20,)} if data.iou_type == "keypoints" else {}
        counts = resample_counts(len(gt["images"]), args.resamples, seed=1)
        one_times, boot_times = [], []
        load_before = os.getloadavg()
        draws = None
        for _ in range(args.rounds):
            started = time.perf_counter()
            evaluate_coco(gt, results, data.iou_type, **options)
            one_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            _, draws = resampled_stats(gt, results, data.iou_type, counts, **options)
            boot_times.append(time.perf_counter() - started)
        one, boot = statistics.median(one_times), statistics.median(boot_times)
        print(f"{name}: {len(gt['images'])} images, {len(results)} results; load {load_before[0]:.2f} -> "
              f"{os.getloadavg()[0]:.2f}")
        print(f"  one evaluation     {one:8.2f} s   (rounds: {', '.join(f'{t:.2f}' for t in one_times)})")
        print(f"  {args.resamples} resamples    {boot:8.2f} s   (rounds: {', '.join(f'{t:.2f}' for t in boot_times)})"
              f"   = {boot / one:.2f}x one evaluation")
        assert draws is not None
        for row in range(min(args.check, len(counts))):
            reference = evaluate_coco(*resampled_files(gt, results, counts[row]), data.iou_type, **options)
            if not np.array_equal(draws[row], reference.stats):
                raise SystemExit(f"  resample {row}: {draws[row].tolist()} != slow path {reference.stats.tolist()}")
            print(f"  resample {row}: equal to the slow path")


if __name__ == "__main__":
    main()
