"""Accuracy and speed of the in-repo keypoint models on the embedded COCO-layout val split, side by side.

    python benchmarks/inrepo_keypoints.py [--threads N] [--batch-size B]

AP is pycocotools' COCOeval (iouType='keypoints') on the GT-box prompts; images/s excludes image decoding, as
the runner measures it; the last column is each model's speed relative to the fastest image model in this run.
"""
from __future__ import annotations

import argparse

from harness.core.catalog import ADAPTERS
from adapters.inrepo.keypoints.validation import evaluate_adapter
from harness.datasets import DATASETS

MODELS = ("mean-pose", "regression", "heatmap", "soft-argmax")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    dataset = DATASETS.get("coco")(None, "val", "keypoints")
    rows = {}
    for name in MODELS:
        adapter = ADAPTERS.get(name)(name, options={"threads": args.threads})
        rows[name] = evaluate_adapter(adapter, dataset, batch_size=args.batch_size)
    fastest = max(rows[name]["images_per_s"] for name in MODELS if name != "mean-pose")
    print(f"{'model':12s} {'AP':>7s} {'AP50':>7s} {'AP75':>7s} {'AR':>7s} {'images/s':>9s} {'vs fastest':>10s}")
    for name, row in rows.items():
        print(
            f"{name:12s} {row['AP']:7.4f} {row['AP50']:7.4f} {row['AP75']:7.4f} {row['AR']:7.4f} "
            f"{row['images_per_s']:9.0f} {row['images_per_s'] / fastest:10.2f}"
        )


if __name__ == "__main__":
    main()
