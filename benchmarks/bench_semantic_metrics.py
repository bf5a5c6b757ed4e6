"""Speed of the Cityscapes and generic semantic metrics against cityscapesscripts, in the same run.

Full-size frames (1024 x 2048) are made by tiling the real test frame; predictions perturb the ground truth.
Prints seconds per image and the ratio to the official script (its pure-Python path: numpy 2 builds have no
Cython extension).  Run: ``python benchmarks/bench_semantic_metrics.py [images]``.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.metrics.cityscapes import CityscapesSemanticMetric  # noqa: E402
from harness.metrics.semantic import SemanticSegmentationMetric  # noqa: E402

FRAME = ROOT / "tests" / "data" / "cityscapes" / "gtFine" / "val" / "frankfurt"


def frames(count: int):
    labels = np.asarray(Image.open(FRAME / "frankfurt_000000_000294_gtFine_labelIds.png"))
    instances = np.asarray(Image.open(FRAME / "frankfurt_000000_000294_gtFine_instanceIds.png"))
    rng = np.random.default_rng(0)
    for index in range(count):
        big_labels = np.tile(labels, (8, 8))
        big_instances = np.tile(instances, (8, 8)).astype(np.int32)
        tile_ids = (np.arange(64).reshape(8, 8).repeat(128, 0).repeat(256, 1) * 50)  # distinct instances per tile
        big_instances = np.where(big_instances >= 1000, big_instances + tile_ids, big_instances).astype(np.uint16)
        pred = big_labels.copy()
        flip = rng.random(pred.shape) < 0.2
        pred[flip] = rng.integers(0, 34, size=int(flip.sum()))
        yield big_labels, big_instances, pred


def main(count: int = 4) -> None:
    data = list(frames(count))
    start = time.perf_counter()
    ours = CityscapesSemanticMetric()
    for labels, instances, pred in data:
        ours.add_image(labels, pred, instances)
    ours_result = ours.compute()
    ours_time = (time.perf_counter() - start) / count

    start = time.perf_counter()
    generic = SemanticSegmentationMetric(34, ignore_index=255)
    generic.update_arrays([d[0] for d in data], [d[2] for d in data])
    generic.compute()
    generic_time = (time.perf_counter() - start) / count

    if not hasattr(np, "in1d"):
        np.in1d = lambda a, b, invert=False: np.isin(np.ravel(a), b, invert=invert)
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official

    args = official.args
    args.quiet, args.JSONOutput, args.colorized = True, False, False
    with tempfile.TemporaryDirectory() as tmp:
        gt_files, pred_files = [], []
        for index, (labels, instances, pred) in enumerate(data):
            gt = Path(tmp) / f"city_{index:06d}_000019_gtFine_labelIds.png"
            Image.fromarray(labels).save(gt)
            Image.fromarray(instances).save(str(gt).replace("labelIds", "instanceIds"))
            Image.fromarray(pred).save(Path(tmp) / f"pred_{index}.png")
            gt_files.append(str(gt))
            pred_files.append(str(Path(tmp) / f"pred_{index}.png"))
        start = time.perf_counter()
        for gt, pred in zip(gt_files, pred_files):
            for path in (gt, gt.replace("labelIds", "instanceIds"), pred):
                np.array(Image.open(path))
        decode_time = (time.perf_counter() - start) / count
        start = time.perf_counter()
        reference = official.evaluateImgLists(pred_files, gt_files, args)
        reference_time = (time.perf_counter() - start) / count - decode_time

    assert abs(ours_result.metrics["mIoU"] - reference["averageScoreClasses"]) < 1e-12
    assert abs(ours_result.metrics["iIoU"] - reference["averageScoreInstClasses"]) < 1e-12
    print(f"{count} images of 1024x2048")
    print(f"(PNG decode, subtracted from the reference: {decode_time:.3f} s/image)")
    print(f"cityscapesscripts                    : {reference_time:7.3f} s/image  1.00x")
    print(f"harness cityscapes_semantic          : {ours_time:7.3f} s/image  {reference_time / ours_time:5.1f}x faster")
    print(f"harness semantic (34-class matrix)   : {generic_time:7.3f} s/image  {reference_time / generic_time:5.1f}x faster")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4)
