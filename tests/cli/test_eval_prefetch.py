"""The start-up prefetch of ``bench eval`` on COCO files (``harness.cli.early``, ``harness.io.prefetch``): the
files are parsed while the imports run, and the scores, errors and exit codes are exactly those of the command
without it -- including when a file changes between the prefetch and its use."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import early, main
from harness.file_eval import coco_results
from harness.io import prefetch
from harness.metrics.coco import kernels, synthetic

ROOT = Path(__file__).resolve().parents[2]
COCO = ROOT / "tests" / "data" / "coco"
COCO_GT = COCO / "instances_val2014_100.json"
COCO_BBOX = COCO / "instances_val2014_fakebbox100_results.json"

needs_kernels = pytest.mark.skipif(not kernels.ENABLED, reason="the compiled COCO kernels are not built")


@pytest.fixture(autouse=True)
def no_leftover_jobs():
    prefetch._jobs.clear()
    yield
    prefetch._jobs.clear()


@pytest.fixture
def keypoint_files(tmp_path: Path) -> tuple[Path, Path]:
    gt, results = synthetic.synthetic_keypoints(3, num_images=40)
    gt_path, results_path = tmp_path / "gt.json", tmp_path / "results.json"
    gt_path.write_text(json.dumps(gt))
    results_path.write_text(json.dumps(results))
    return gt_path, results_path


def run_eval(task: str, gt: Path, pred: Path, out: Path):
    return CliRunner().invoke(main, ["eval", "--task", task, "--gt", str(gt), "--pred", str(pred), "--json", str(out)])


def started_as_cli(task: str, gt: Path | str, pred: Path | str) -> bool:
    return early.prefetch_eval_files(["bench", "eval", "--task", task, "--gt", str(gt), "--pred", str(pred)])


# ------------------------------------------------------------------------------------------ reading argv
def test_eval_files_reads_options_as_click_does() -> None:
    assert early.eval_files(["eval", "--task", "keypoints", "--gt", "g.json", "--pred", "p.json"]) == (
        "keypoints", "keypoints", "g.json", "p.json")
    assert early.eval_files(["eval", "--pred=p.json", "--task=detection", "--json", "o.json", "--gt", "g.json"]) == (
        "detection", "bbox", "g.json", "p.json")
    # the last of a repeated option wins; --iou-type overrides the task's
    assert early.eval_files(["eval", "--task", "instance", "--gt", "a", "--gt", "b", "--pred", "p",
                             "--iou-type", "bbox"]) == ("instance", "bbox", "b", "p")


@pytest.mark.parametrize("args", [
    ["run", "--task", "keypoints", "--gt", "g", "--pred", "p"],  # another command
    ["eval", "--task", "semantic", "--gt", "g", "--pred", "p"],  # not a COCO file evaluation
    ["eval", "--task", "keypoints", "--gt", "g"],  # no results
    ["eval", "--task", "keypoints", "--gt", "g", "--", "--pred", "p"],  # after "--": arguments, not options
    ["eval", "--task", "keypoints", "--gt", "g", "--pred"],  # no value
    ["eval", "--run", "runs/x"],
    [],
])
def test_eval_files_leaves_everything_else_alone(args: list[str]) -> None:
    assert early.eval_files(args) is None


def test_only_the_bench_command_itself_prefetches(keypoint_files) -> None:
    gt, pred = keypoint_files
    args = ["eval", "--task", "keypoints", "--gt", str(gt), "--pred", str(pred)]
    assert not early.prefetch_eval_files(["/usr/bin/pytest", *args])  # a process that merely imports harness.cli
    assert not prefetch._jobs
    assert early.invoked_as_cli(["-m", *args], ["python", "-m", "harness.cli", *args])
    assert early.invoked_as_cli(["/venv/bin/bench", *args])
    assert not early.prefetch_eval_files(["-m", *args])  # this process is `python -m pytest`, not harness.cli
    assert not prefetch._jobs


def test_the_task_table_is_the_evaluators() -> None:
    assert early.COCO_TASKS == coco_results.IOU_TYPE_OF_TASK
    assert (early.RESULTS, early.GROUND_TRUTH) == (coco_results.RESULTS, coco_results.GROUND_TRUTH)


# ------------------------------------------------------------------------------------------ the cache
def test_take_hands_out_a_parse_once_and_only_for_an_unchanged_file(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"first")
    assert prefetch.take("k", path) is prefetch.MISSING  # never started
    prefetch.start("k", path, bytes.upper)
    assert prefetch.started("k", tmp_path / "." / "a.txt")  # the same file however it is spelt
    assert prefetch.take("k", path) == b"FIRST"
    assert prefetch.take("k", path) is prefetch.MISSING  # taken

    prefetch.start("k", path, bytes.upper)
    prefetch._jobs[prefetch._key("k", path)].thread.join()
    path.write_bytes(b"second, longer")
    assert prefetch.take("k", path) is prefetch.MISSING  # changed since it was read

    prefetch.start("k", path, lambda data: None)  # "not my format" is a result too
    assert prefetch.take("k", path) is None

    def broken(data: bytes) -> None:
        raise ValueError(data)

    prefetch.start("k", path, broken)
    assert prefetch.take("k", path) is prefetch.MISSING
    prefetch.start("k", tmp_path / "missing.json", bytes.upper)
    assert prefetch.take("k", tmp_path / "missing.json") is prefetch.MISSING
    prefetch.start("other", path, bytes.upper)
    assert prefetch.take("k", path) is prefetch.MISSING  # another kind of parse of the same file


def test_only_regular_files_are_read_ahead(tmp_path: Path) -> None:
    """A pipe keeps its bytes for the evaluator: the prefetch neither reads nor hands out anything for it."""
    fifo = tmp_path / "results.fifo"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # a writer, so that an open for reading would not block
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the evaluator's own reading, later
    try:
        os.write(writer, b"[1, 2, 3]")
        prefetch.start("k", fifo, bytes.upper)
        time.sleep(0.2)
        os.close(writer)  # end of the data: a read of the pipe would end now, not hang
        writer = -1
        assert prefetch.take("k", fifo) is prefetch.MISSING
        assert os.read(reader, 100) == b"[1, 2, 3]"  # the bytes are still there for the evaluator
    finally:
        os.close(reader)
        if writer >= 0:
            os.close(writer)


def test_a_path_that_is_another_file_now_is_not_taken(tmp_path: Path) -> None:
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_bytes(b"[1]")
    second.write_bytes(b"[2]")
    prefetch.start("k", first, bytes.upper)
    prefetch._jobs[prefetch._key("k", first)].thread.join()
    os.replace(second, first)  # same name, another file (same size and, possibly, the same mtime)
    assert prefetch.take("k", first) is prefetch.MISSING


# ------------------------------------------------------------------------------------------ end to end
@needs_kernels
@pytest.mark.parametrize("task", ["keypoints", "detection"])
def test_prefetched_scores_equal_the_plain_command(tmp_path: Path, keypoint_files, task: str) -> None:
    gt, pred = keypoint_files if task == "keypoints" else (COCO_GT, COCO_BBOX)
    plain = run_eval(task, gt, pred, tmp_path / "plain.json")
    assert plain.exit_code == 0, plain.output
    assert started_as_cli(task, gt, pred)
    assert len(prefetch._jobs) == 2
    fast = run_eval(task, gt, pred, tmp_path / "fast.json")
    assert fast.exit_code == 0, fast.output
    assert not prefetch._jobs  # both parses were used
    assert fast.output.replace("fast.json", "plain.json") == plain.output
    assert json.loads((tmp_path / "fast.json").read_text()) == json.loads((tmp_path / "plain.json").read_text())


@needs_kernels
def test_a_file_changed_after_the_prefetch_is_read_again(tmp_path: Path, keypoint_files) -> None:
    gt, pred = keypoint_files
    assert started_as_cli("keypoints", gt, pred)
    for job in prefetch._jobs.values():
        job.thread.join()
    results = json.loads(pred.read_text())
    pred.write_text(json.dumps(results[: len(results) // 2]))
    fast = run_eval("keypoints", gt, pred, tmp_path / "fast.json")
    prefetch._jobs.clear()
    plain = run_eval("keypoints", gt, pred, tmp_path / "plain.json")
    assert fast.exit_code == plain.exit_code == 0, (fast.output, plain.output)
    fast_record, plain_record = (json.loads((tmp_path / name).read_text()) for name in ("fast.json", "plain.json"))
    assert fast_record == plain_record
    assert fast_record["settings"]["results"] == len(results) // 2


@needs_kernels
@pytest.mark.parametrize("change", ["unknown image", "bad score", "not json"])
def test_bad_files_give_the_same_one_line_error(tmp_path: Path, keypoint_files, change: str) -> None:
    gt, pred = keypoint_files
    results = json.loads(pred.read_text())
    if change == "unknown image":
        results[5]["image_id"] = 10**9
    elif change == "bad score":
        results[7]["score"] = "high"
    pred.write_text(json.dumps(results) if change != "not json" else "[{")
    plain = run_eval("keypoints", gt, pred, tmp_path / "plain.json")
    assert started_as_cli("keypoints", gt, pred)
    fast = run_eval("keypoints", gt, pred, tmp_path / "fast.json")
    assert plain.exit_code == fast.exit_code == 2
    assert fast.stderr == plain.stderr and len(plain.stderr.strip().splitlines()) == 1, plain.stderr


@needs_kernels
def test_python_m_harness_cli_prefetches_and_prints_what_click_prints(tmp_path: Path, keypoint_files) -> None:
    """The real entry (``python -m harness.cli``): same output and exit codes as the in-process command, for a
    good pair of files and for a bad one; and the prefetch did run there."""
    gt, pred = keypoint_files
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"image_id": 10**9, "category_id": 1, "score": 0.5, "keypoints": [0.0] * 51}]))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    probe = ("import sys, runpy; sys.argv = ['-m', *sys.argv[1:]]; sys.orig_argv = [sys.executable, '-m', "
             "'harness.cli', *sys.argv[1:]]; import harness.io.prefetch as p; p.start = lambda *a, s=p.start: "
             "(s(*a), sys.stderr.write('prefetch ')); import harness.cli")
    for results in (pred, bad):
        args = ["eval", "--task", "keypoints", "--gt", str(gt), "--pred", str(results)]
        outside = subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                                 env=env, cwd=tmp_path)
        probed = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, env=env,
                                cwd=tmp_path)
        inside = CliRunner().invoke(main, args)
        assert outside.returncode == probed.returncode == inside.exit_code == (0 if results == pred else 2)
        assert outside.stdout == probed.stdout == inside.stdout
        assert outside.stderr == inside.stderr
        assert probed.stderr == "prefetch prefetch " + inside.stderr  # both files were read ahead there
