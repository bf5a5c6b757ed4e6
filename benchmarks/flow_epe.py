"""Flow metric throughput against a plain numpy EPE, on Sintel-sized frames (436 x 1024) in memory.

The plain rate is ``sqrt(((pred - gt) ** 2).sum(-1)).mean()`` per frame, the least any EPE must do; the metric
also computes 1px/3px/5px, Fl, the speed bands and matched/unmatched EPE.  Three sides take turns frame by
frame (in rotating order, so a change of the shared machine's speed hits them alike): the plain EPE,
``FlowMetric`` on its numpy path (the compiled kernels switched off, as without a C compiler) and
``FlowMetric`` with the compiled kernel (``harness.metrics.stream_kernels``).  Prints frames per second for
each, the metric's share of the plain rate, whether both metric paths give identical numbers, and the resident
set size after a tenth of the frames and after all of them (flat: the state is one row of sums per frame).
Run: ``python benchmarks/flow_epe.py [frames] [--valid] [--occluded]``.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.metrics import stream_kernels  # noqa: E402
from harness.metrics.flow import FlowMetric  # noqa: E402
from harness.core.structures import FlowPrediction, FlowTarget, Sample  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    frames = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 40
    with_valid = "--valid" in sys.argv
    with_occluded = "--occluded" in sys.argv
    rng = np.random.default_rng(0)
    gt = rng.normal(0, 20, (436, 1024, 2)).astype(np.float32)
    pred = (gt + rng.normal(0, 2, gt.shape)).astype(np.float32)
    valid = rng.random(gt.shape[:2]) < 0.9 if with_valid else None
    occluded = rng.random(gt.shape[:2]) < 0.2 if with_occluded else None
    sample = Sample(sample_id=0, image_path=None, target=FlowTarget(flow=gt, valid=valid, occluded=occluded))
    prediction = FlowPrediction(flow=pred)
    compiled = stream_kernels._C is not None
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; "
          f"compiled kernel: {'yes' if compiled else 'NOT BUILT'}")

    def plain() -> None:
        difference = pred.astype(np.float64) - gt
        epe = np.sqrt((difference ** 2).sum(-1))
        float(epe[valid].mean() if valid is not None else epe.mean())

    metrics = {"FlowMetric numpy": FlowMetric(), "FlowMetric": FlowMetric()}
    sides = ["plain numpy EPE", *metrics]
    seconds = dict.fromkeys(sides, 0.0)
    memory = []
    for index in range(frames):
        turn = index % len(sides)
        for side in sides[turn:] + sides[:turn]:
            stream_kernels.ENABLED = side == "FlowMetric" and compiled
            start = time.perf_counter()
            if side in metrics:
                metrics[side].update([sample], [prediction])
            else:
                plain()
            seconds[side] += time.perf_counter() - start
        if index + 1 in (max(1, frames // 10), frames):
            memory.append(rss_mb())
    values = []
    for side, metric in metrics.items():
        stream_kernels.ENABLED = side == "FlowMetric" and compiled
        start = time.perf_counter()
        values.append(metric.compute().metrics)
        seconds[side] += time.perf_counter() - start
    stream_kernels.ENABLED = compiled
    rate = {side: frames / seconds[side] for side in sides}
    identical = all(a == b or (a != a and b != b) for a, b in zip(values[0].values(), values[1].values()))
    extras = (" with a valid mask" if with_valid else "") + (" and occlusions" if with_occluded else "")
    print(f"{frames} frames 436x1024{extras}, interleaved frame by frame:")
    for side in sides:
        print(f"  {side:<18} {rate[side]:6.1f} frames/s  {rate[side] / rate['plain numpy EPE']:5.0%} of plain")
    print(f"metric values on both paths: {'identical' if identical else 'DIFFERENT'}; RSS after "
          f"{max(1, frames // 10)} frames {memory[0]:.1f} MB, after {frames} {memory[1]:.1f} MB")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if not identical:
        raise SystemExit("the compiled and numpy paths differ")


if __name__ == "__main__":
    main()
