"""The prediction cache never serves a number computed from other inputs (issue 11, finding 1).

The issue's case: the same annotations with every image mirrored, or replaced by black images under another
root, were served from the cache (AP 0.660 where ``--no-cache`` gives 0.000).  Here the cache must re-predict
exactly the samples whose images changed, and model fingerprints must be equal in two fresh processes.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.run.bench_run import RunConfig, get_task, open_dataset, run_models
from harness.core.fingerprint import UnstableFingerprint, stable_text

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 12


@pytest.fixture(scope="module")
def coco_copy(tmp_path_factory) -> Path:
    """The embedded COCO-layout detection split, copied to a root of its own (annotations + val/ images)."""
    source = open_dataset(get_task("detection"), "coco", None, None).info.root
    target = tmp_path_factory.mktemp("coco") / "root"
    shutil.copytree(source, target)
    return target


def config(tmp_path: Path, root: Path, **changes) -> RunConfig:
    base = RunConfig(task="detection", dataset="coco", data_root=root, split="val", models=("centernet",),
                     limit=LIMIT, batch_size=4, reports_dir=tmp_path / "reports", leaderboards_dir=tmp_path / "lb",
                     cache_dir=tmp_path / "cache", bootstrap=0)
    return replace(base, **changes)


def run(cfg: RunConfig) -> tuple[float, int, int]:
    [record] = run_models(cfg)
    return record["metrics"]["AP"], record["throughput"]["predicted_samples"], record["throughput"]["cached_samples"]


def images(root: Path) -> list[Path]:
    return sorted((root / "val").glob("*.jpg"))


def rewrite(path: Path, change) -> None:
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    Image.fromarray(change(pixels)).save(path, format="JPEG", quality=95)


def test_black_images_under_another_root_are_predicted_not_served(tmp_path, coco_copy):
    ap, predicted, cached = run(config(tmp_path, coco_copy))
    assert predicted == LIMIT and cached == 0 and ap > 0.1
    assert run(config(tmp_path, coco_copy))[1:] == (0, LIMIT)  # same inputs: served from the cache

    black = tmp_path / "black"
    shutil.copytree(coco_copy, black)
    for path in images(black):
        rewrite(path, np.zeros_like)
    ap_black, predicted, cached = run(config(tmp_path, black))
    assert (predicted, cached) == (LIMIT, 0)
    uncached = run(config(tmp_path, black, cache=False))[0]
    assert ap_black == uncached and ap_black < ap


def test_images_mirrored_in_place_are_predicted_again_and_one_changed_image_alone(tmp_path, coco_copy):
    root = tmp_path / "root"
    shutil.copytree(coco_copy, root)
    ap, _, _ = run(config(tmp_path, root))
    for path in images(root):
        rewrite(path, lambda pixels: np.ascontiguousarray(pixels[:, ::-1]))
    ap_mirrored, predicted, cached = run(config(tmp_path, root))
    assert (predicted, cached) == (LIMIT, 0)
    assert ap_mirrored == run(config(tmp_path, root, cache=False))[0]

    dataset = open_dataset(get_task("detection"), "coco", root, "val")
    one = Path(dataset[3].image_path)
    rewrite(one, lambda pixels: 255 - pixels)
    assert run(config(tmp_path, root))[1:] == (1, LIMIT - 1)
    assert run(config(tmp_path, root))[1:] == (0, LIMIT)  # the recomputed sample is cached in turn

    os.utime(one, ns=(0, 0))  # touched, same bytes: the hash decides, still served
    assert run(config(tmp_path, root))[1:] == (0, LIMIT)


def test_another_seed_is_another_cache_entry(tmp_path, coco_copy):
    run(config(tmp_path, coco_copy))
    assert run(config(tmp_path, coco_copy, seed=1))[1:] == (LIMIT, 0)


FINGERPRINTS = """
import json, sys
from harness.core.catalog import ADAPTERS
out = {}
for name, cls in sorted(ADAPTERS.items()):
    if getattr(cls, "runs_by_default", False):
        out[name] = cls(name).fingerprint()
print(json.dumps(out))
"""


def test_model_fingerprints_are_equal_in_two_processes():
    results = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": hash_seed, "OMP_NUM_THREADS": "1"}
        done = subprocess.run([sys.executable, "-c", FINGERPRINTS], capture_output=True, text=True, env=env,
                              cwd=ROOT, timeout=300)
        assert done.returncode == 0, done.stderr
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert results[0] == results[1]
    assert {"horn-schunck", "lucas-kanade", "farneback"} <= set(results[0])
    assert len(set(results[0].values())) == len(results[0])  # distinct models, distinct keys


def test_stable_text_refuses_closures_and_describes_dataclasses_by_field():
    def closure():
        return 1

    with pytest.raises(UnstableFingerprint, match="memory address"):
        stable_text({"estimator": closure})
    from adapters.inrepo.flow.classical import HornSchunck

    assert stable_text(HornSchunck()) == stable_text(HornSchunck())
    assert stable_text(HornSchunck(alpha=1.0)) != stable_text(HornSchunck())
    assert "0x" not in stable_text({"b": [1, 2.5, float("nan")], "a": Path("x"), "c": np.float32(1)})
