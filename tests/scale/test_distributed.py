"""torchrun with two CPU processes (gloo) gives exactly the single-process metrics and predictions."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import toyplugin  # noqa: F401  (registers the toy task for the in-process run)
from harness.cli import main
from harness.run.distributed import DistContext

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


@given(n=st.integers(0, 200), world=st.integers(1, 8))
def test_shards_cover_every_sample_once_in_order(n, world):
    items = list(range(n))
    shards = [DistContext(world_size=world, rank=r).shard(items) for r in range(world)]
    assert [i for shard in shards for i in shard] == items
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def torchrun(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "BENCH_CACHE": os.environ["BENCH_CACHE"]}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(HERE / "toybench.py"), *args]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)


def only_record(reports: Path) -> tuple[dict, list]:
    [metrics_file] = reports.glob("*/metrics.json")
    return json.loads(metrics_file.read_text()), json.loads((metrics_file.parent / "predictions.json").read_text())


def test_two_processes_score_exactly_like_one(tmp_path):
    common = ["run", "--task", "toy", "--limit", "45", "--batch-size", "8", "--bootstrap", "50"]
    cache = ["--cache-dir", str(tmp_path / "cache")]
    done = torchrun(tmp_path, *common, *cache, "--reports-dir", str(tmp_path / "two"), "--leaderboards-dir", str(tmp_path / "lb2"))
    assert done.returncode == 0, done.stderr[-3000:]
    single = CliRunner().invoke(main, [*common, "--no-cache", "--reports-dir", str(tmp_path / "one"),
                                       "--leaderboards-dir", str(tmp_path / "lb1")])
    assert single.exit_code == 0, single.output
    two, two_predictions = only_record(tmp_path / "two")
    one, one_predictions = only_record(tmp_path / "one")
    for key in ("metrics", "confidence", "per_class", "curves", "settings", "samples"):
        assert two[key] == one[key], key
    assert two_predictions == one_predictions and len(one_predictions) == 45
    assert two["throughput"]["world_size"] == 2 and len(two["throughput"]["per_rank_images_per_s"]) == 2
    assert two["throughput"]["predicted_samples"] == 45
    assert two["provenance"]["world_size"] == 2 and one["provenance"]["world_size"] == 1
    assert done.stdout.count("wrote") == 1  # rank 0 alone reports

    # Each rank wrote its own chunks; one process re-scoring from them predicts nothing and agrees exactly.
    assert len(list((tmp_path / "cache").rglob("chunk-*.pred"))) == 6  # 22 + 23 samples in batches of 8
    rescored = CliRunner().invoke(main, [*common, *cache, "--reports-dir", str(tmp_path / "again")])
    assert rescored.exit_code == 0, rescored.output
    again, again_predictions = only_record(tmp_path / "again")
    assert again["throughput"]["predicted_samples"] == 0 and again["throughput"]["cached_samples"] == 45
    assert again["metrics"] == one["metrics"] and again["confidence"] == one["confidence"]
    assert again_predictions == one_predictions


def test_a_failing_rank_stops_every_rank_with_one_line(tmp_path):
    done = torchrun(tmp_path, "run", "--task", "toy", "--model", "toy-rank1-fails", "--no-cache", "--limit", "10",
                    "--reports-dir", str(tmp_path / "r"))
    assert done.returncode != 0
    assert "error: rank 1 failed: PredictionError: bad prediction for sample 1005" in done.stderr
    assert "error: bad prediction for sample 1005" in done.stderr
    assert not list((tmp_path / "r").glob("*/metrics.json"))


def test_keypoints_with_a_real_model_score_the_same_on_two_processes(tmp_path):
    """The real path: `torchrun -m harness.cli run --task keypoints` with an in-repo model and the COCO metric.

    Batch size 1: a float32 network's output can change in the last bits with the batch it is computed in, and
    this test is about the sharding and gathering, which must not change a single bit.
    """
    common = ["run", "--task", "keypoints", "--model", "regression", "--limit", "21", "--batch-size", "1",
              "--bootstrap", "20", "--no-cache"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "harness.cli",
         *common, "--reports-dir", str(tmp_path / "two")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    single = CliRunner().invoke(main, [*common, "--reports-dir", str(tmp_path / "one")])
    assert single.exit_code == 0, single.output
    two, two_predictions = only_record(tmp_path / "two")
    one, one_predictions = only_record(tmp_path / "one")
    assert two["throughput"]["world_size"] == 2
    for key in ("metrics", "confidence", "per_class", "samples"):
        assert two[key] == one[key], key
    assert two_predictions == one_predictions
