"""Semantic mIoU streamed from PNG label maps against the PNG-decode bound, on 2048x1024 pairs, in one run.

Workload: ``--pairs`` (default 300) ground-truth / prediction pairs of 2048x1024 trainId PNGs (19 classes, 255 =
ignore), written once into a temporary folder: the embedded Cityscapes frame's labelTrainIds scaled up 8x
(nearest), rolled and mirrored per pair; the prediction is its ground truth shifted by a few pixels with a
block of wrong class, the smooth errors a model makes.

Each round times three serial sides taking turns pair by pair (each pair's three turns in rotating order, so a
drift of the shared machine's speed hits all alike), then a pipelined loop:

* ``decode``: read both PNGs of every pair (``read_label_png``, what ``bench eval --task semantic`` reads with),
  the least any mIoU from files must do: the decode-bound rate;
* ``mIoU numpy``: decode, then ``SemanticSegmentationMetric.update_arrays`` on the numpy path (the kernels
  switched off, as without a C compiler), then ``compute``;
* ``mIoU``: the same with the compiled kernel (``harness.metrics.stream_kernels``);
* ``mIoU, decode thread``: one thread decodes the next pair while the main thread counts the current one (the
  kernel releases the GIL, and so does Pillow's PNG decoder); timed after the three, so its share of the
  round's decode rate is exposed to load changes the others are not.

Reports pairs/s (median and min-max over rounds) and each rate as a share of the decode rate of its own round;
all mIoU values must be identical.  Memory: resident set size after the first tenth of the pairs and after all
of them in the interleaved loop, and after each tenth of a last compiled-kernel stream on its own (flat: the
state is one (C, C+1) matrix plus 3 x C counts per image for the intervals), and the process peak.

Run: python benchmarks/semantic_stream.py [--pairs 300] [--rounds 5]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.io.imageio import read_label_png  # noqa: E402
from harness.metrics import stream_kernels  # noqa: E402
from harness.metrics.semantic import SemanticSegmentationMetric  # noqa: E402

FRAME = (ROOT / "tests" / "data" / "cityscapes" / "gtFine" / "val" / "frankfurt"
         / "frankfurt_000000_000294_gtFine_labelTrainIds.png")
CLASSES = 19


def write_pairs(folder: Path, count: int) -> list[tuple[Path, Path]]:
    base = np.asarray(Image.open(FRAME)).repeat(8, 0).repeat(8, 1)  # 1024 x 2048
    rng = np.random.default_rng(0)
    pairs = []
    for index in range(count):
        truth = np.roll(base, int(rng.integers(0, 2048)), axis=1)
        if index % 2:
            truth = truth[:, ::-1]
        pred = np.roll(truth, (int(rng.integers(-4, 5)), int(rng.integers(-8, 9))), axis=(0, 1)).copy()
        y, x = int(rng.integers(0, 900)), int(rng.integers(0, 1800))
        pred[y:y + 120, x:x + 240] = int(rng.integers(0, CLASSES))
        pred[pred == 255] = int(rng.integers(0, CLASSES))  # a model predicts a class everywhere
        gt_path, pred_path = folder / f"{index:04d}_gt.png", folder / f"{index:04d}_pred.png"
        Image.fromarray(np.ascontiguousarray(truth)).save(gt_path)
        Image.fromarray(pred).save(pred_path)
        pairs.append((gt_path, pred_path))
    return pairs


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def interleaved(
    pairs: list[tuple[Path, Path]], memory: list[float], rotate: int
) -> tuple[dict[str, float], set[float]]:
    """Seconds of each serial side over all pairs, the sides taking turns pair by pair (in rotating order), so
    a change of the shared machine's speed hits them alike: ``decode`` reads both PNGs; ``mIoU numpy`` and
    ``mIoU`` read them and add them to their own metric (numpy path, compiled kernel)."""
    metrics = {"mIoU numpy": SemanticSegmentationMetric(CLASSES, ignore_index=255),
               "mIoU": SemanticSegmentationMetric(CLASSES, ignore_index=255)}
    seconds = {"decode": 0.0, "mIoU numpy": 0.0, "mIoU": 0.0}
    sides = list(seconds)
    for index, (gt_path, pred_path) in enumerate(pairs):
        turn = (index + rotate) % len(sides)
        for side in sides[turn:] + sides[:turn]:
            stream_kernels.ENABLED = side != "mIoU numpy" and stream_kernels._C is not None
            start = time.perf_counter()
            gt, pred = read_label_png(gt_path), read_label_png(pred_path)
            if side != "decode":
                metrics[side].update_arrays([gt], [pred])
            seconds[side] += time.perf_counter() - start
        if index + 1 in (max(1, len(pairs) // 10), len(pairs)):
            memory.append(rss_mb())
    stream_kernels.ENABLED = stream_kernels._C is not None
    values = set()
    for side, metric in metrics.items():
        start = time.perf_counter()
        values.add(metric.compute().metrics["mIoU"])
        seconds[side] += time.perf_counter() - start
    return seconds, values


def memory_profile(pairs: list[tuple[Path, Path]], samples: int = 10) -> list[float]:
    """Resident set size (MB) after each tenth of a compiled-kernel mIoU stream over every pair, alone in
    the loop (no numpy-path temporaries): flat when memory does not grow with the number of pairs."""
    metric = SemanticSegmentationMetric(CLASSES, ignore_index=255)
    marks = {max(1, len(pairs) * k // samples) for k in range(1, samples + 1)}
    sizes = []
    for index, (gt_path, pred_path) in enumerate(pairs):
        metric.update_arrays([read_label_png(gt_path)], [read_label_png(pred_path)])
        if index + 1 in marks:
            sizes.append(rss_mb())
    metric.compute()
    return sizes


def miou_threaded(pairs: list[tuple[Path, Path]]) -> float:
    metric = SemanticSegmentationMetric(CLASSES, ignore_index=255)
    read = lambda pair: (read_label_png(pair[0]), read_label_png(pair[1]))  # noqa: E731
    with ThreadPoolExecutor(1) as pool:
        ahead = pool.submit(read, pairs[0])
        for index in range(len(pairs)):
            gt, pred = ahead.result()
            if index + 1 < len(pairs):
                ahead = pool.submit(read, pairs[index + 1])  # at most one decoded pair waits: memory stays flat
            metric.update_arrays([gt], [pred])
    return metric.compute().metrics["mIoU"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; "
          f"compiled kernel: {'yes' if stream_kernels._C is not None else 'NOT BUILT'}")
    with tempfile.TemporaryDirectory(prefix="semantic-stream-") as scratch:
        started = time.perf_counter()
        pairs = write_pairs(Path(scratch), args.pairs)
        print(f"{args.pairs} pairs of 2048x1024 PNGs written in {time.perf_counter() - started:.0f} s")
        memory: list[float] = []
        for gt_path, pred_path in pairs[:20]:  # warm-up: page cache, imports
            read_label_png(gt_path), read_label_png(pred_path)
        names = ["decode", "mIoU numpy", "mIoU", "mIoU, decode thread"]
        rates: dict[str, list[float]] = {name: [] for name in names}
        shares: dict[str, list[float]] = {name: [] for name in names}
        values: set[float] = set()
        for round_index in range(args.rounds):
            seconds, found = interleaved(pairs, memory, round_index)
            values |= found
            start = time.perf_counter()
            values.add(miou_threaded(pairs))
            seconds["mIoU, decode thread"] = time.perf_counter() - start
            for name in names:
                rates[name].append(args.pairs / seconds[name])
                shares[name].append(seconds["decode"] / seconds[name])
            print(f"round {round_index + 1}: " + ", ".join(f"{n} {args.pairs / seconds[n]:.1f}/s" for n in names))
        print(f"\n{args.pairs} pairs of 2048x1024, {args.rounds} rounds (pairs/s and share of the decode rate: "
              "median [min .. max])")
        for name in names:
            r, s = rates[name], shares[name]
            print(f"  {name:<20} {statistics.median(r):7.1f} [{min(r):.1f} .. {max(r):.1f}]   "
                  f"{statistics.median(s):6.1%} [{min(s):.1%} .. {max(s):.1%}]")
        print(f"mIoU values: {sorted(values)} ({'identical' if len(values) == 1 else 'DIFFERENT'})")
        tenth = max(1, args.pairs // 10)
        firsts, lasts = memory[0::2], memory[1::2]
        print(f"RSS in the interleaved loop: after {tenth} pairs {max(firsts):.1f} MB, after {args.pairs} pairs "
              f"{max(lasts):.1f} MB (max over rounds); "
              f"process peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MB")
        sizes = memory_profile(pairs)
        print("RSS of a compiled mIoU stream after each tenth of the pairs (MB): "
              + " ".join(f"{size:.1f}" for size in sizes))
        print(f"load average after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
        if len(values) != 1:
            raise SystemExit("mIoU differs between the paths")


if __name__ == "__main__":
    main()
