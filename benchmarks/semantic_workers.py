"""``bench run --task semantic`` with data-loading workers vs the serial loop (``--workers 0``), whole processes.

Workload: 200 Cityscapes-sized frames (2048x1024), the embedded Cityscapes val frames scaled up (images
bilinear, labelIds and instanceIds nearest; the second hundred mirrored), written once as PNGs in the Cityscapes
layout (``leftImg8bit/val/<city>/``, ``gtFine/val/<city>/``) into ``--root`` (default: a temporary folder).

Each pair runs the two commands back to back, in alternating order (A B, B A, ...), so a drift of the shared
machine's speed hits both alike; the report gives each side's median and min-max of wall seconds and the
median and min-max of the per-pair ratio serial / workers (above 1: the workers win).  Runs use ``--no-cache
--bootstrap 0 --gallery 0`` (the model runs every time, nothing but the loop is timed) and
``OMP_NUM_THREADS=1``.

The default model is ``majority-class``: it reads every frame and scores it but computes almost nothing, so
the run is bound by the data stage (PNG decoding, ground truth, metric), which is what workers move.  The
in-repo networks take about 2.2 s (fcn) to 2.9 s (unet) per 2048x1024 frame on one CPU thread, against about
0.1 s of decoding: pass ``--model fcn`` for that case (a run then lasts ~8 minutes).

Run: python benchmarks/semantic_workers.py [--pairs 3] [--workers 1] [--model majority-class] [--root DIR]
(prints the table; no assertions).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FRAMES = 200
SIZE = (2048, 1024)  # (width, height), as Pillow takes it


def write_frames(root: Path, frames: int = FRAMES) -> Path:
    """The embedded Cityscapes val split scaled up to 2048x1024 under ``root`` (skipped if already there)."""
    from harness.datasets.cityscapes import open_cityscapes
    from harness.io.imageio import read_label_png

    done = root / ".complete"
    if done.is_file():
        return root
    source = open_cityscapes(None, "val", "semantic")
    for number in range(frames):
        sample = source[number % len(source)]
        mirror = (number // len(source)) % 2 == 1
        city = str(sample.meta["city"])
        frame = f"{city}_{number:06d}_000019"
        image = Image.fromarray(sample.load_image()).resize(SIZE, Image.BILINEAR)
        labels = Image.fromarray(read_label_png(Path(sample.meta["label_ids_path"])).astype(np.uint8))
        labels = labels.resize(SIZE, Image.NEAREST)
        instances = read_label_png(Path(sample.meta["instance_ids_path"])).astype(np.int32)
        instances_image = Image.fromarray(instances).resize(SIZE, Image.NEAREST)
        if mirror:
            image, labels, instances_image = (picture.transpose(Image.FLIP_LEFT_RIGHT)
                                              for picture in (image, labels, instances_image))
        images_dir = root / "leftImg8bit" / "val" / city
        truth_dir = root / "gtFine" / "val" / city
        images_dir.mkdir(parents=True, exist_ok=True)
        truth_dir.mkdir(parents=True, exist_ok=True)
        image.save(images_dir / f"{frame}_leftImg8bit.png")
        labels.save(truth_dir / f"{frame}_gtFine_labelIds.png")
        Image.fromarray(np.asarray(instances_image).astype(np.uint16)).save(truth_dir / f"{frame}_gtFine_instanceIds.png")
    done.write_text("ok\n")
    return root


def command(root: Path, out: Path, model: str, workers: int, batch_size: int) -> list[str]:
    return [sys.executable, "-m", "harness.cli", "run", "--task", "semantic", "--dataset", "cityscapes",
            "--data-root", str(root), "--split", "val", "--model", model, "--workers", str(workers),
            "--batch-size", str(batch_size), "--no-cache", "--bootstrap", "0", "--gallery", "0",
            "--reports-dir", str(out / "reports"), "--leaderboards-dir", str(out / "leaderboards")]


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"run failed ({done.returncode}): {' '.join(argv)}\n{done.stderr[-2000:]}")
    return seconds


def loop_figures(out: Path) -> tuple[float, float]:
    """(data wait ms per batch, end-to-end images/s) of the newest run under ``out``, from its metrics.json."""
    newest = max((out / "reports").glob("*/metrics.json"), key=lambda path: path.stat().st_mtime)
    throughput = json.loads(newest.read_text())["throughput"]
    stages = throughput.get("stages_ms") or {}  # absent when no batch was timed after the warm-up
    return float(stages.get("data_wait", "nan")), float(throughput.get("end_to_end_images_per_s") or "nan")


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):8.2f}  [{min(values):.2f} .. {max(values):.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--model", default="majority-class")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--frames", type=int, default=FRAMES, help="frames to write (the workload is 200)")
    parser.add_argument("--root", type=Path, default=None, help="where the frames are (re)used; default: a temp folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="semantic-workers-") as scratch:
        root = args.root or Path(scratch) / "cityscapes"
        started = time.perf_counter()
        write_frames(root, args.frames)
        print(f"{args.frames} frames of {SIZE[0]}x{SIZE[1]} in {root} ({time.perf_counter() - started:.0f} s to write)")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        serial_argv = command(root, Path(scratch) / "serial", args.model, 0, args.batch_size)
        workers_argv = command(root, Path(scratch) / "workers", args.model, args.workers, args.batch_size)
        timed(workers_argv, env, Path(scratch))  # warm-up: page cache, .pyc files
        serial: list[float] = []
        parallel: list[float] = []
        inside: dict[str, list[tuple[float, float]]] = {"serial": [], "workers": []}
        for pair in range(args.pairs):
            order = [(serial, serial_argv, "serial"), (parallel, workers_argv, "workers")]
            for times, argv, side in (order if pair % 2 == 0 else order[::-1]):
                times.append(timed(argv, env, Path(scratch)))
                inside[side].append(loop_figures(Path(scratch) / side))
            print(f"pair {pair + 1}: serial {serial[-1]:.2f} s, {args.workers} worker(s) {parallel[-1]:.2f} s")
        ratios = [s / p for s, p in zip(serial, parallel)]
        print(f"\nbench run --task semantic --model {args.model}, {args.frames} frames, batch {args.batch_size}, "
              f"{args.pairs} pairs (wall seconds: median [min .. max])")
        print(f"  --workers 0           {spread(serial)}")
        print(f"  --workers {args.workers:<11d} {spread(parallel)}")
        print(f"  ratio serial/workers  {spread(ratios)}")
        print("inside the loop (metrics.json throughput): data wait ms per batch; end-to-end images/s")
        for side in ("serial", "workers"):
            waits, rates = [w for w, _ in inside[side]], [r for _, r in inside[side]]
            print(f"  {side:<8} data wait {spread(waits)}   images/s {spread(rates)}")


if __name__ == "__main__":
    main()
