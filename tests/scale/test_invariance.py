"""Same predictions, same numbers: every in-repo model of every task scores bit for bit the same whatever the
batch size (1, 3, 16), the number of data-loading workers (0, 1, 2) and the number of torchrun processes (1, 2),
on datasets whose images all differ in size.

Runs go through the public run path: ``run_models(RunConfig(...))`` in this process for the batch sizes, and
``torchrun -m harness.cli run --suite`` (two gloo processes, all five tasks in one launch) for the shards; both
are compared through the metrics.json files they write.  What this catches: a model that pads a batch to its
largest image (centernet did: AP 0.5154 at batch 16, 0.5107 at batch 4), batched float kernels whose last bits
follow the batch, and metric states whose float totals round differently when ranks add partial sums (flow,
Cityscapes iIoU did).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mixed_sizes import cropped_sintel, padded_coco, padded_voc

from harness.run.bench_run import RunConfig, default_models, open_dataset, run_models
from harness.tasks import get_task

ROOT = Path(__file__).resolve().parents[2]
TASKS = ("keypoints", "detection", "instance", "semantic", "flow")
SAMPLES = 8
BATCH_SIZES = (1, 3, 16)
#: (batch size, ``--workers``) of the single-process runs: the serial loop at every batch size, then workers
RUNS = tuple((batch_size, 0) for batch_size in BATCH_SIZES) + ((3, 2), (16, 1))
TORCHRUN_BATCH_SIZE = 3  # 4 samples per rank: batches of 3 + 1, unlike any single-process batching


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """task -> (data root, split) of a mixed-size copy of the task's embedded dataset."""
    out = tmp_path_factory.mktemp("mixed")
    roots = {task: open_dataset(get_task(task), None, None, None).info.root for task in TASKS}
    keypoints = padded_coco(roots["keypoints"], "person_keypoints_val.json", "val", out / "keypoints", SAMPLES)
    shapes = padded_coco(roots["detection"], "instances_val.json", "val", out / "shapes", SAMPLES)
    return {
        "keypoints": (keypoints, "val"),
        "detection": (shapes, "val"),
        "instance": (shapes, "val"),
        "semantic": (padded_voc(roots["semantic"], out / "voc", SAMPLES), "val"),
        "flow": (cropped_sintel(roots["flow"], out / "sintel", SAMPLES), "clean"),
    }


def scores(reports: Path) -> dict[tuple[str, str], dict]:
    """(task, model) -> {metrics, per_class} from every metrics.json under ``reports``."""
    found = {}
    for path in reports.glob("*/metrics.json"):
        record = json.loads(path.read_text())
        key = (record["task"], record["model"]["name"])
        assert key not in found, f"two reports for {key}"
        found[key] = {"metrics": record["metrics"], "per_class": record["per_class"], "samples": record["samples"]}
    return found


def differences(left, right, where: str = "") -> list[str]:
    """Every place where two JSON values differ, bit for bit (``==`` on floats; NaN equals NaN)."""
    if isinstance(left, dict) and isinstance(right, dict):
        if left.keys() != right.keys():
            return [f"{where}: keys {sorted(set(left) ^ set(right))}"]
        return [d for key in left for d in differences(left[key], right[key], f"{where}/{key}")]
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left) and math.isnan(right):
        return []
    return [] if left == right and type(left) is type(right) else [f"{where}: {left!r} != {right!r}"]


def test_the_mixed_datasets_have_mixed_sizes(mixed):
    for task, (root, split) in mixed.items():
        dataset = open_dataset(get_task(task), None, root, split)
        assert len(dataset) == SAMPLES, task
        sizes = {dataset[i].load_image().shape for i in range(len(dataset))}
        assert len(sizes) == SAMPLES, (task, sizes)  # every sample its own size
        assert any(h % 16 or w % 16 for h, w, _ in sizes), task


def test_padding_kept_the_annotations(mixed):
    """Padding at the bottom and right moves no annotation: boxes equal the originals', label padding is void."""
    root, split = mixed["detection"]
    padded = open_dataset(get_task("detection"), None, root, split)
    original = open_dataset(get_task("detection"), None, None, None)
    for index in range(SAMPLES):
        assert np.array_equal(padded[index].target.boxes, original[index].target.boxes)
        if padded[index].target.masks is not None:
            assert len(padded[index].target.masks) == len(original[index].target.masks)
    voc_root, _ = mixed["semantic"]
    [label_file] = sorted((voc_root / "VOCdevkit/VOC2012/SegmentationClass").glob("*.png"))[2:3]
    labels = np.asarray(Image.open(label_file))
    assert labels.ndim == 2 and (labels[-37:] == 255).all() and (labels[:-37] != 255).any()


def test_batch_size_and_process_count_change_no_bit(mixed, tmp_path):
    runs: dict[str, dict] = {}
    # no report pictures: this test is about the numbers, and pictures cost time per run (torchrun has a timeout)
    base = RunConfig(task="", cache=False, bootstrap=0, leaderboards_dir=tmp_path / "lb", gallery=0)
    for batch_size, workers in RUNS:
        reports = tmp_path / f"batch{batch_size}-workers{workers}"
        for task in TASKS:
            root, split = mixed[task]
            run_models(replace(base, task=task, data_root=root, split=split, batch_size=batch_size,
                               reports_dir=reports, workers=workers))
        runs[f"batch {batch_size}, {workers} workers"] = scores(reports)

    suite = tmp_path / "suite.yaml"
    suite.write_text(json.dumps({  # JSON is YAML
        "defaults": {"batch_size": TORCHRUN_BATCH_SIZE, "bootstrap": 0},
        "runs": [{"task": task, "data_root": str(mixed[task][0]), "split": mixed[task][1]} for task in TASKS],
    }))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "harness.cli",
         "run", "--suite", str(suite), "--no-cache", "--gallery", "0", "--workers", "1",
         "--reports-dir", str(tmp_path / "torchrun"),
         "--leaderboards-dir", str(tmp_path / "lb2")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs[f"2 processes, batch {TORCHRUN_BATCH_SIZE}, 1 worker each"] = scores(tmp_path / "torchrun")

    expected = {(task, model) for task in TASKS for model in default_models(task)}
    reference_name, reference = next(iter(runs.items()))
    assert set(reference) == expected
    for name, found in runs.items():
        assert set(found) == expected, name
        for key in sorted(expected):
            assert found[key]["samples"] == SAMPLES
            assert found[key]["metrics"], key
            problems = differences(reference[key], found[key])
            assert not problems, f"{key[1]} ({key[0]}): {name} vs {reference_name}: {problems[:5]}"
