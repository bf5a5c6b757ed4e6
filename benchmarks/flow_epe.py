"""Flow metric throughput against a plain numpy EPE, on Sintel-sized frames (436 x 1024) in memory.

The plain rate is ``sqrt(((pred - gt) ** 2).sum(-1)).mean()`` per frame, the least any EPE must do; the metric
also computes 1px/3px/5px, Fl, the speed bands and matched/unmatched EPE.  Prints frames per second for both
and their ratio.  Run: ``python benchmarks/flow_epe.py [frames] [--valid]``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.metrics.flow import FlowMetric  # noqa: E402
from harness.core.structures import FlowPrediction, FlowTarget, Sample  # noqa: E402


def main() -> None:
    frames = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 40
    with_valid = "--valid" in sys.argv
    rng = np.random.default_rng(0)
    gt = rng.normal(0, 20, (436, 1024, 2)).astype(np.float32)
    pred = (gt + rng.normal(0, 2, gt.shape)).astype(np.float32)
    valid = rng.random(gt.shape[:2]) < 0.9 if with_valid else None
    sample = Sample(sample_id=0, image_path=None, target=FlowTarget(flow=gt, valid=valid))
    prediction = FlowPrediction(flow=pred)

    start = time.perf_counter()
    for _ in range(frames):
        difference = pred.astype(np.float64) - gt
        epe = np.sqrt((difference ** 2).sum(-1))
        float(epe[valid].mean() if valid is not None else epe.mean())
    plain = frames / (time.perf_counter() - start)

    metric = FlowMetric()
    start = time.perf_counter()
    for _ in range(frames):
        metric.update([sample], [prediction])
    metric.compute()
    ours = frames / (time.perf_counter() - start)
    print(f"{frames} frames 436x1024{' with a valid mask' if with_valid else ''}: plain numpy EPE {plain:.1f} "
          f"frames/s, FlowMetric {ours:.1f} frames/s ({ours / plain:.0%} of plain)")


if __name__ == "__main__":
    main()
