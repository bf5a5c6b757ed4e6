"""Prediction cache codec vs pickle (unsafe to load) on one chunk, and bootstrap cost per resample.

Run: python benchmarks/prediction_cache.py   (prints times and ratios to pickle; no assertions)
"""
from __future__ import annotations

import io
import pickle
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.io import safecodec  # noqa: E402
from harness.core.structures import DetectionPrediction, KeypointsPrediction, SemanticPrediction  # noqa: E402


def best_of(function, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def chunks() -> dict[str, list]:
    rng = np.random.default_rng(0)
    return {
        "keypoints (16 images x 5 people)": [KeypointsPrediction(rng.random((5, 17, 3)), rng.random(5), rng.random((5, 4)))
                                             for _ in range(16)],
        "detection (16 images x 100 boxes)": [DetectionPrediction(rng.random((100, 4)), rng.random(100),
                                                                  rng.integers(1, 91, 100)) for _ in range(16)],
        "semantic (4 maps 512x1024 uint8)": [SemanticPrediction(rng.integers(0, 19, (512, 1024)).astype(np.uint8))
                                             for _ in range(4)],
    }


def main() -> None:
    print(f"{'chunk':36} {'codec write':>12} {'codec read':>11} {'pickle write':>13} {'pickle read':>12} "
          f"{'size codec/pickle':>18}")
    for name, values in chunks().items():
        blob = safecodec.dumps({"ids": list(range(len(values)))}, values)
        pickled = pickle.dumps(values)
        write = best_of(lambda: safecodec.dumps({"ids": list(range(len(values)))}, values))
        read = best_of(lambda: safecodec.loads(io.BytesIO(blob)))
        pwrite = best_of(lambda: pickle.dumps(values))
        pread = best_of(lambda: pickle.loads(pickled))
        print(f"{name:36} {write * 1e3:10.2f}ms {read * 1e3:9.2f}ms {pwrite * 1e3:11.2f}ms {pread * 1e3:10.2f}ms "
              f"{len(blob) / len(pickled):17.2f}x   (codec/pickle time: write {write / pwrite:.1f}x, read {read / pread:.1f}x)")

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "scale"))
    import toyplugin

    rng = np.random.default_rng(0)
    for n in (500, 5000):
        metric = toyplugin.ToyAccuracy()
        metric.update([toyplugin.Sample(sample_id=i, image_path=None, target=toyplugin.ToyTarget(int(l)))
                       for i, l in enumerate(rng.integers(0, 3, n))],
                      [toyplugin.ToyPrediction(s) for s in rng.dirichlet([1, 1, 1], n)])
        compute = best_of(metric.compute)
        boot = best_of(lambda: metric.bootstrap(n, 200, 0), repeats=1)
        print(f"bootstrap, toy metric, {n} images, 200 resamples: {boot:.2f}s "
              f"({boot / 200 / compute:.1f}x one compute per resample)")


if __name__ == "__main__":
    main()
